// The atomic bytes a shared view lends borrow it: it cannot be unmapped meanwhile.
#![forbid(unsafe_code)]
use std::sync::atomic::Ordering;
use virtmem::{Section, ViewAccess};

fn main() -> virtmem::Result<()> {
    let s = Section::new(4096)?;
    let v = s.map(0, 0, ViewAccess::ReadWrite)?;
    let bytes = v.atomic_bytes(0, 16)?;
    v.unmap()?;
    bytes[0].store(1, Ordering::Relaxed);
    Ok(())
}
