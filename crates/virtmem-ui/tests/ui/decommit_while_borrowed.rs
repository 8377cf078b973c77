// A slice borrows its reservation: its pages cannot be decommitted while the slice lives.
#![forbid(unsafe_code)]
use virtmem::{Protect, Reservation};

fn main() -> virtmem::Result<()> {
    let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    let s = r.as_mut_slice(0, 4096)?;
    r.decommit(0, 4096)?;
    s[0] = 1;
    Ok(())
}
