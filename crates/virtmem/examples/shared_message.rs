//! Two processes exchange a message through a named section (`Local\...`), as Windows programs
//! share memory. The program runs itself a second time (Windows would use CreateProcess):
//! the first process creates the section and writes a message; the second opens the section
//! by name, reads the message and writes a reply; the first reads the reply.
//!
//! Run it with `cargo run -p virtmem --example shared_message`.

use std::ffi::CString;
use std::ptr::null;
use virtmem::win32::*;

const SIZE: usize = 0x10000;

fn fail(what: &str) -> ! {
    eprintln!("{what} failed, GetLastError() = {}", GetLastError());
    std::process::exit(1)
}

/// Maps the whole section read-write.
///
/// # Safety
///
/// `h` is a section handle of at least `SIZE` bytes.
unsafe fn view(h: HANDLE) -> *mut u8 {
    // SAFETY: forwarded contract.
    let v = unsafe { MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, SIZE) }.Value as *mut u8;
    if v.is_null() {
        fail("MapViewOfFile");
    }
    v
}

/// Reads the NUL-terminated text at `p`.
///
/// # Safety
///
/// `p` points to readable memory holding a NUL within `SIZE` bytes.
unsafe fn text(p: *const u8) -> String {
    // SAFETY: forwarded contract.
    unsafe { std::ffi::CStr::from_ptr(p.cast()) }
        .to_string_lossy()
        .into_owned()
}

fn child(name: &str) {
    let cname = CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; the view is `SIZE` bytes.
    unsafe {
        let h = OpenFileMappingA(FILE_MAP_WRITE, FALSE, cname.as_ptr().cast());
        if h.is_null() {
            fail("OpenFileMappingA");
        }
        let v = view(h);
        println!("  [child]  read \"{}\"", text(v));
        let reply = b"hello from the second process\0";
        std::ptr::copy_nonoverlapping(reply.as_ptr(), v.add(0x1000), reply.len());
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "child" {
        child(&args[2]);
        return;
    }
    let name = format!("Local\\virtmem-example-{}", std::process::id());
    let cname = CString::new(name.clone()).unwrap();
    // SAFETY: a NUL-terminated name; the view is `SIZE` bytes; the message fits.
    unsafe {
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            SIZE as u32,
            cname.as_ptr().cast(),
        );
        if h.is_null() {
            fail("CreateFileMappingA");
        }
        let v = view(h);
        let msg = b"hello from the first process\0";
        std::ptr::copy_nonoverlapping(msg.as_ptr(), v, msg.len());
        println!("  [parent] created {name} and wrote \"{}\"", text(v));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["child", &name])
            .status()
            .expect("run the second process");
        if !status.success() {
            eprintln!("the second process failed: {status}");
            std::process::exit(1);
        }
        let reply = text(v.add(0x1000));
        println!("  [parent] read the reply \"{reply}\"");
        assert_eq!(reply, "hello from the second process");
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
        // The name went with the last handle.
        if !OpenFileMappingA(FILE_MAP_READ, FALSE, cname.as_ptr().cast()).is_null() {
            eprintln!("the name outlived its last handle");
            std::process::exit(1);
        }
        println!(
            "  the name is gone with the last handle (ERROR_FILE_NOT_FOUND = {})",
            GetLastError()
        );
    }
}
