// The Win32 Global functions hand out raw memory: calling them needs `unsafe`.
#![forbid(unsafe_code)]
use virtmem::win32::*;

fn main() {
    let h = GlobalAlloc(GMEM_MOVEABLE, 16);
    let _p = GlobalLock(h);
}
