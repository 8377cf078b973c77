//! Runs the windows-sys program and checks that the unchanged Windows code behaved as on
//! Windows: the seed exercises' messages, VirtualQuery's view, and GetLastError.

use std::process::Command;

#[test]
fn windows_sys_program_runs_the_seed_exercises() {
    let out = Command::new(env!("CARGO_BIN_EXE_windows-sys-seeds"))
        .output()
        .expect("run windows-sys-seeds");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "exit status {}", out.status);
    for expected in [
        "GetSystemInfo: dwPageSize = 4096, dwAllocationGranularity = 65536",
        "Dir. de RESERVA = 0x40000000",
        "reserved: BaseAddress = 0x40000000, RegionSize = 0x8000, State = MEM_RESERVE, Protect = 0x0",
        "commit + write + VirtualProtect(PAGE_READONLY): TRUE (old protection 0x4), byte = 42",
        "committed: BaseAddress = 0x40000000, RegionSize = 0x1000, State = MEM_COMMIT, Protect = 0x2",
        "FlushInstructionCache: TRUE",
        "Exito en la liberacion",
        "released: BaseAddress = 0x1000000, RegionSize = ",
        "State = MEM_FREE, Protect = 0x1",
        // ERROR_INVALID_ADDRESS: the address is free memory now.
        "VirtualFree again: FALSE, GetLastError() = 487",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}
