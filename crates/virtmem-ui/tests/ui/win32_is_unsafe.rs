// The Win32 face keeps Windows' unsafe signatures.
#![forbid(unsafe_code)]

fn main() {
    let v = vec![0u8; 8192];
    let mut old = 0;
    virtmem::win32::VirtualProtect(v.as_ptr().cast(), 4096, virtmem::win32::PAGE_NOACCESS, &mut old);
}
