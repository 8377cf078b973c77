// The OS backend is not public: safe code cannot build a real-memory backend and unmap with it.
#![forbid(unsafe_code)]
use virtmem::os::Os;

fn main() {
    let os = virtmem::os::linux::LinuxOs::new();
    let _ = os.unmap(0x10000, 0x10000);
}
