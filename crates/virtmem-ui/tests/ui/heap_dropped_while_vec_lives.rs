// A heap cannot be dropped (destroyed) while a HeapVec still uses it.
#![forbid(unsafe_code)]
use virtmem::{Heap, HeapOptions, HeapVec};

fn main() -> virtmem::Result<()> {
    let heap = Heap::new(HeapOptions::default())?;
    let mut v: HeapVec<'_, u8> = HeapVec::new_in(&heap);
    v.push(1);
    drop(heap);
    println!("{}", v[0]);
    Ok(())
}
