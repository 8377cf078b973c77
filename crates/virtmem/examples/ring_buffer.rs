//! A ring buffer that never wraps: one section mapped twice, back to back, into two halves of
//! a placeholder (the "circular buffer" scenario of Microsoft's VirtualAlloc2 documentation).
//! A record written across the end of the first view reads contiguously, because the second
//! view shows the same memory right after it.
//!
//! Run it with `cargo run -p virtmem --example ring_buffer`.

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

fn fail(what: &str) -> ! {
    eprintln!("{what} failed, GetLastError() = {}", GetLastError());
    std::process::exit(1)
}

fn main() {
    let size = 0x10000usize; // one allocation granule
                             // SAFETY: every pointer passed below is NULL, a valid out-parameter, or memory these
                             // calls just mapped; the views are unmapped before the placeholder is released.
    unsafe {
        // Reserve 2×size as one placeholder, then split it into two.
        let p = VirtualAlloc2(
            null_mut(),
            null(),
            2 * size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as *mut u8;
        if p.is_null() {
            fail("VirtualAlloc2");
        }
        if VirtualFree(p.cast(), size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) == FALSE {
            fail("VirtualFree(MEM_PRESERVE_PLACEHOLDER)");
        }
        let section = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            size as u32,
            null(),
        );
        if section.is_null() {
            fail("CreateFileMappingW");
        }
        // Both halves show the section from offset 0.
        for half in [p, p.add(size)] {
            let v = MapViewOfFile3(
                section,
                null_mut(),
                half as *const c_void,
                0,
                size,
                MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                null_mut(),
                0,
            );
            if v.Value != half.cast() {
                fail("MapViewOfFile3(MEM_REPLACE_PLACEHOLDER)");
            }
        }
        // The views keep the section alive.
        CloseHandle(section);

        // A writer at the end of the ring writes a record that runs past the end...
        let record = b"a record that crosses the end of the ring";
        let at = size - 10;
        std::ptr::copy_nonoverlapping(record.as_ptr(), p.add(at), record.len());
        // ...and its tail is at the start of the ring (the same memory, seen through view 1).
        let tail = std::slice::from_raw_parts(p, record.len() - 10);
        assert_eq!(tail, &record[10..]);
        // The reader reads it in one piece, never wrapping.
        let read = std::slice::from_raw_parts(p.add(at), record.len());
        assert_eq!(read, record);
        println!(
            "ring of {size:#x} bytes at {p:p}: wrote {} bytes at offset {at:#x}, read back in one \
             piece: \"{}\"",
            record.len(),
            String::from_utf8_lossy(read)
        );

        for half in [p, p.add(size)] {
            if UnmapViewOfFileEx(
                MEMORY_MAPPED_VIEW_ADDRESS { Value: half.cast() },
                MEM_PRESERVE_PLACEHOLDER,
            ) == FALSE
            {
                fail("UnmapViewOfFileEx");
            }
        }
        VirtualFree(p.cast(), 0, MEM_RELEASE);
        VirtualFree(p.add(size).cast(), 0, MEM_RELEASE);
        println!("unmapped and released");
    }
}
