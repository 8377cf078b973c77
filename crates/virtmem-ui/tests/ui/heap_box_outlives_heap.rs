// A HeapBox cannot outlive the heap its value lives in (dropping the heap destroys it).
#![forbid(unsafe_code)]
use virtmem::{Heap, HeapOptions};

fn main() -> virtmem::Result<()> {
    let b;
    {
        let heap = Heap::new(HeapOptions::default())?;
        b = heap.boxed(7u64)?;
    }
    println!("{}", *b);
    Ok(())
}
