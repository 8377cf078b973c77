// Raw-address operations on the process's memory are unsafe: safe code cannot protect a Vec's
// buffer PAGE_NOACCESS.
#![forbid(unsafe_code)]

fn main() {
    let v = vec![0u8; 8192];
    let s = virtmem::NativeSpace::get();
    let _ = s.virtual_protect(v.as_ptr() as usize, 4096, virtmem::win32::PAGE_NOACCESS);
    println!("{}", v[0]);
}
