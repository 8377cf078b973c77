//! The course's two exercises (VirtualAlloc and VirtualFree), run on Linux through virtmem's
//! Win32 face, followed by the map of the address space around them.
//!
//! Run it with `cargo run --release -p virtmem --example seeds`.

use std::ffi::c_void;
use virtmem::win32::*;

fn state_name(s: u32) -> &'static str {
    match s {
        MEM_COMMIT => "commit",
        MEM_RESERVE => "reserve",
        _ => "free",
    }
}

fn type_name(t: u32) -> &'static str {
    match t {
        MEM_PRIVATE => "private",
        MEM_MAPPED => "mapped",
        MEM_IMAGE => "image",
        _ => "",
    }
}

/// Prints the regions from `from` until `to` as a VirtualQuery walk.
fn map(from: usize, to: usize) {
    println!(
        "    {:>18}  {:>12}  {:<8} {:>8} {:<8} {:>18}",
        "address", "size", "state", "protect", "type", "allocation base"
    );
    let mut at = from;
    while at < to {
        let mut mbi = MEMORY_BASIC_INFORMATION::default();
        // SAFETY: `mbi` is a valid, writable MEMORY_BASIC_INFORMATION.
        let n = unsafe { VirtualQuery(at as *const c_void, &mut mbi, size_of_val(&mbi)) };
        if n == 0 {
            println!(
                "    VirtualQuery failed, GetLastError() = {}",
                GetLastError()
            );
            return;
        }
        let size = mbi.RegionSize.min(to - at);
        let bar = "#".repeat(((size as f64).log2() as usize).saturating_sub(11).min(30));
        println!(
            "    {:#18x}  {:#12x}  {:<8} {:>#8x} {:<8} {:>18}  {}",
            mbi.BaseAddress as usize,
            mbi.RegionSize,
            state_name(mbi.State),
            mbi.Protect,
            type_name(mbi.Type),
            if mbi.AllocationBase.is_null() {
                String::new()
            } else {
                format!("{:#x}", mbi.AllocationBase as usize)
            },
            bar
        );
        at = mbi.BaseAddress as usize + mbi.RegionSize;
    }
}

fn main() {
    // SAFETY: these are the Win32 calls of the exercises, with valid arguments.
    unsafe {
        println!("Exercise 1: reserve 8 pages at 0x40000000, readable and writable");
        println!("  p = VirtualAlloc((void *)0x40000000, 8*4096, MEM_RESERVE, PAGE_READWRITE);");
        let p = VirtualAlloc(
            0x4000_0000 as *const c_void,
            8 * 4096,
            MEM_RESERVE,
            PAGE_READWRITE,
        );
        if p.is_null() {
            println!("Fallo en la RESERVA (GetLastError() = {})", GetLastError());
        } else {
            println!("Dir. de RESERVA = {p:p}");
        }
        map(0x4000_0000 - 0x10000, 0x4000_0000 + 0x20000);

        println!();
        println!("Exercise 2: reserve 4 pages at 0x01000000, then release them");
        println!("  p = VirtualAlloc((void *)0x01000000, 4*4096, MEM_RESERVE, PAGE_READWRITE);");
        let q = VirtualAlloc(
            0x0100_0000 as *const c_void,
            4 * 4096,
            MEM_RESERVE,
            PAGE_READWRITE,
        );
        println!("  -> {q:p}");
        map(0x0100_0000, 0x0100_0000 + 0x10000);
        println!("  VirtualFree(p, 0, MEM_RELEASE);");
        if VirtualFree(q, 0, MEM_RELEASE) != 0 {
            println!("Exito en la liberacion");
        } else {
            println!(
                "Fallo en la liberacion (GetLastError() = {})",
                GetLastError()
            );
        }
        map(0x0100_0000, 0x0100_0000 + 0x10000);

        if !p.is_null() {
            VirtualFree(p, 0, MEM_RELEASE);
        }
    }
}
