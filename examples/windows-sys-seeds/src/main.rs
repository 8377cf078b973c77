//! The course's two exercises (reserve 8 pages at 0x40000000; reserve 4 pages at 0x01000000
//! and release them), written against `windows-sys` 0.61 exactly as they would be on Windows.
//! The only addition for Linux is the `use virtmem as _;` line: it links virtmem, whose
//! `#[no_mangle] extern "system"` functions are the symbols windows-sys's declarations call.
//! On Windows that line (and the dependency) is compiled out and kernel32 answers instead.
//!
//! Run it with `cargo run -p windows-sys-seeds`.

#[cfg(not(windows))]
use virtmem as _;

use core::ffi::c_void;
use windows_sys::Win32::Foundation::{GetLastError, SetLastError};
use windows_sys::Win32::System::Diagnostics::Debug::FlushInstructionCache;
use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, VirtualProtect, VirtualQuery, MEMORY_BASIC_INFORMATION, MEM_COMMIT,
    MEM_FREE, MEM_RELEASE, MEM_RESERVE, PAGE_PROTECTION_FLAGS, PAGE_READONLY, PAGE_READWRITE,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

fn state_name(state: u32) -> &'static str {
    match state {
        MEM_COMMIT => "MEM_COMMIT",
        MEM_RESERVE => "MEM_RESERVE",
        MEM_FREE => "MEM_FREE",
        _ => "?",
    }
}

/// VirtualQuery, printed.
fn query(what: &str, address: *const c_void) {
    let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { core::mem::zeroed() };
    // SAFETY: `mbi` is a writable MEMORY_BASIC_INFORMATION of the length passed.
    let n = unsafe { VirtualQuery(address, &mut mbi, size_of::<MEMORY_BASIC_INFORMATION>()) };
    if n == 0 {
        // SAFETY: GetLastError has no preconditions.
        println!("{what}: VirtualQuery failed, GetLastError() = {}", unsafe {
            GetLastError()
        });
        return;
    }
    println!(
        "{what}: BaseAddress = {:p}, RegionSize = {:#x}, State = {}, Protect = {:#x}",
        mbi.BaseAddress,
        mbi.RegionSize,
        state_name(mbi.State),
        mbi.Protect
    );
}

fn main() {
    // SAFETY (all blocks below): Win32 calls with valid arguments; memory is only touched
    // after it was committed read-write.
    let mut si: SYSTEM_INFO = unsafe { core::mem::zeroed() };
    unsafe { GetSystemInfo(&mut si) };
    println!(
        "GetSystemInfo: dwPageSize = {}, dwAllocationGranularity = {}",
        si.dwPageSize, si.dwAllocationGranularity
    );

    // Ejemplo de uso de VirtualAlloc(): reservar 8 paginas a partir de la direccion 40000000,
    // de modo que puedan ser leidas y escritas.
    let p = unsafe {
        VirtualAlloc(
            0x4000_0000 as *const c_void,
            8 * 4096,
            MEM_RESERVE,
            PAGE_READWRITE,
        )
    };
    if p.is_null() {
        println!("Fallo en la RESERVA");
    } else {
        println!("Dir. de RESERVA = {p:p}");
    }
    query("reserved", p);

    // The reservation can then be committed, written and protected, as on Windows.
    let page = unsafe { VirtualAlloc(p, 4096, MEM_COMMIT, PAGE_READWRITE) };
    if !page.is_null() {
        unsafe { (page as *mut u8).write(42) };
        let mut old: PAGE_PROTECTION_FLAGS = 0;
        let ok = unsafe { VirtualProtect(page, 4096, PAGE_READONLY, &mut old) };
        println!(
            "commit + write + VirtualProtect(PAGE_READONLY): {} (old protection {old:#x}), byte = {}",
            if ok != 0 { "TRUE" } else { "FALSE" },
            unsafe { (page as *const u8).read() }
        );
        query("committed", page);
    }
    let flushed = unsafe { FlushInstructionCache(GetCurrentProcess(), page, 4096) };
    println!(
        "FlushInstructionCache: {}",
        if flushed != 0 { "TRUE" } else { "FALSE" }
    );
    unsafe { VirtualFree(p, 0, MEM_RELEASE) };

    // Ejemplo de uso de VirtualFree(): reservar 4 paginas a partir de la direccion 0x01000000
    // y despues liberarlas completamente.
    let p = unsafe {
        VirtualAlloc(
            0x0100_0000 as *const c_void,
            4 * 4096,
            MEM_RESERVE,
            PAGE_READWRITE,
        )
    };
    if unsafe { VirtualFree(p, 0, MEM_RELEASE) } != 0 {
        println!("Exito en la liberacion");
    } else {
        println!("Fallo en la liberacion");
    }
    query("released", p);

    // Releasing it a second time fails, and GetLastError says why.
    unsafe { SetLastError(0) };
    let again = unsafe { VirtualFree(p, 0, MEM_RELEASE) };
    println!(
        "VirtualFree again: {}, GetLastError() = {}",
        if again != 0 { "TRUE" } else { "FALSE" },
        unsafe { GetLastError() }
    );
}
