// The C face's handler registration is unsafe from Rust too.
#![forbid(unsafe_code)]

fn main() {
    virtmem::win32::virtmem_set_guard_page_handler(None);
}
