// Freeing a raw heap block is unsafe: safe code could keep using the memory.
#![forbid(unsafe_code)]
use virtmem::{Heap, HeapOptions};

fn main() -> virtmem::Result<()> {
    let heap = Heap::new(HeapOptions::default())?;
    let p = heap.alloc_raw(16)?;
    heap.free_raw(p)?;
    Ok(())
}
