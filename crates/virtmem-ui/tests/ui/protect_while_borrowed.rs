// Pages a slice shows cannot be made PAGE_NOACCESS (or guard pages) while it lives.
#![forbid(unsafe_code)]
use virtmem::{Protect, Reservation};

fn main() -> virtmem::Result<()> {
    let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    let s = r.as_slice(0, 4096)?;
    r.protect(0, 4096, Protect::NoAccess)?;
    println!("{}", s[0]);
    Ok(())
}
