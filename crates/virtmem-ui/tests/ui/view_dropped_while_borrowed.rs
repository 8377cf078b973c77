// A slice cannot outlive the view whose pages it shows: dropping the view unmaps them.
#![forbid(unsafe_code)]
use virtmem::UniqueView;

fn main() -> virtmem::Result<()> {
    let v = UniqueView::new(4096)?;
    let s = v.as_slice(0, 4096)?;
    drop(v);
    println!("{}", s[0]);
    Ok(())
}
