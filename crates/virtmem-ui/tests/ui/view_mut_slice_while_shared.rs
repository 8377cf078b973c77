// A view lends `&mut [u8]` only while no other loan of it is alive.
#![forbid(unsafe_code)]
use virtmem::UniqueView;

fn main() -> virtmem::Result<()> {
    let mut v = UniqueView::new(4096)?;
    let a = v.as_slice(0, 16)?;
    let b = v.as_mut_slice(0, 16)?;
    b[0] = 1;
    println!("{}", a[0]);
    Ok(())
}
