// MEM_RESET lets the kernel zero the pages at any moment: not while a slice shows them.
#![forbid(unsafe_code)]
use virtmem::{Protect, Reservation};

fn main() -> virtmem::Result<()> {
    let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    let s = r.as_slice(0, 4096)?;
    r.reset(0, 4096)?;
    println!("{}", s[0]);
    Ok(())
}
