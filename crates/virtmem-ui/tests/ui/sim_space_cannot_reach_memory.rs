// A simulated space is safe because it maps nothing: it exposes no backend to reach the
// process's memory through.
#![forbid(unsafe_code)]

fn main() {
    let s = virtmem::sim::SimSpace::new(virtmem::Layout::WIN32);
    let _ = s.os();
}
