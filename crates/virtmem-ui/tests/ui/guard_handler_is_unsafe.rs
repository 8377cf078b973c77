// The guard-page handler runs in signal context: installing one is unsafe.
#![forbid(unsafe_code)]

fn main() {
    virtmem::set_guard_page_handler(Some(Box::new(|_| {
        let _ = String::from("allocates in a signal handler");
        true
    })));
}
