// A view of a section others can write lends plain slices only to `unsafe` code.
#![forbid(unsafe_code)]
use virtmem::{Section, ViewAccess};

fn main() -> virtmem::Result<()> {
    let s = Section::new(4096)?;
    let v = s.map(0, 0, ViewAccess::ReadWrite)?;
    let bytes = v.as_slice(0, 16)?;
    println!("{}", bytes[0]);
    Ok(())
}
