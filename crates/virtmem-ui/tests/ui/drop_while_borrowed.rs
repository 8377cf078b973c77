// A slice cannot outlive the reservation whose pages it shows.
#![forbid(unsafe_code)]
use virtmem::{Protect, Reservation};

fn main() -> virtmem::Result<()> {
    let r = Reservation::committed(4096, Protect::ReadWrite)?;
    let s = r.as_slice(0, 4096)?;
    drop(r);
    println!("{}", s[0]);
    Ok(())
}
