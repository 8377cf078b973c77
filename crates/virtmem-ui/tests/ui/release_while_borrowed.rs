// Releasing consumes the reservation, which a live slice still borrows.
#![forbid(unsafe_code)]
use virtmem::{Protect, Reservation};

fn main() -> virtmem::Result<()> {
    let r = Reservation::committed(4096, Protect::ReadWrite)?;
    let s = r.as_slice(0, 4096)?;
    r.release()?;
    println!("{}", s[0]);
    Ok(())
}
