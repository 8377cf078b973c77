// Committing changes a unique view's pages: not while a slice of it is borrowed.
#![forbid(unsafe_code)]
use virtmem::UniqueView;

fn main() -> virtmem::Result<()> {
    let mut v = UniqueView::reserved(65536)?;
    v.commit(0, 4096)?;
    let s = v.as_slice(0, 4096)?;
    v.commit(4096, 4096)?;
    println!("{}", s[0]);
    Ok(())
}
