// The engine is not part of the public surface: safe code cannot reach the process's space
// and release memory behind a borrow.
#![forbid(unsafe_code)]

fn main() {
    let space = virtmem::engine::Space::native();
    let _ = space.virtual_free(0x10000, 0, 0x8000);
}
