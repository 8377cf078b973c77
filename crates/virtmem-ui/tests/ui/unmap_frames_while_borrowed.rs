// The frames mapped into an AWE window cannot be taken out while a slice of it lives.
#![forbid(unsafe_code)]
use virtmem::{PhysicalPages, Reservation};

fn main() -> virtmem::Result<()> {
    let mut w = Reservation::awe_window(4096)?;
    let mut pages = PhysicalPages::allocate(1)?;
    w.map_physical(0, &mut pages)?;
    let s = w.as_slice(0, 4096)?;
    let frames = w.unmap_physical(0, 1)?;
    drop(frames);
    println!("{}", s[0]);
    Ok(())
}
