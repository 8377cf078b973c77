// Unmapping a view by raw address is unsafe on the process's space: safe code could unmap a
// view whose bytes a live `&[AtomicU8]` from the safe face still points into.
#![forbid(unsafe_code)]

fn main() {
    let s = virtmem::Section::new(65536).unwrap();
    let v = s.map(0, 0, virtmem::ViewAccess::ReadWrite).unwrap();
    let bytes = v.atomic_bytes(0, 16).unwrap();
    let _ = virtmem::NativeSpace::get().unmap_view(v.as_ptr() as usize, false);
    println!("{}", bytes[0].load(std::sync::atomic::Ordering::Relaxed));
}
