//! Compiles and runs the C programs of `examples/c/` against this build's libvirtmem, as a C
//! user would: `cc -Iinclude prog.c libvirtmem.a -lpthread -ldl -lm` (and once against
//! `libvirtmem.so`). Where the library is found: see `common/mod.rs`. Skipped, with a printed
//! reason, only when no C compiler exists.

mod common;

use common::*;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/c").join(name)
}

/// The flags the seed solutions need: `main()` has no return type, as in the course notes.
/// C99 and later reject implicit int unless told; C99 also makes `main` return 0 at its `}`.
const SEED_FLAGS: &[&str] = &["-std=gnu11", "-Wall", "-Wno-implicit-int"];
/// My own programs: plain C11 with the usual warnings.
const FLAGS: &[&str] = &["-std=gnu11", "-Wall", "-Wextra", "-O1"];

/// Parses the closing "N passed, M failed" line.
fn summary(stdout: &str) -> (u32, u32) {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no 'N passed, M failed' line in:\n{stdout}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn ejercicio1_reserves_8_pages_at_0x40000000() {
    let Some(cc) = c_compiler_or_skip("ejercicio1") else {
        return;
    };
    let dir = scratch("ejercicio1");
    let exe = dir.join("ejercicio1");
    compile_static(&cc, SEED_FLAGS, &[example("ejercicio1.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}", out.status);
    // The notes print without a newline.
    assert_eq!(stdout, "Dir. de RESERVA = 0x40000000");
}

#[test]
fn ejercicio2_releases_what_it_reserved() {
    let Some(cc) = c_compiler_or_skip("ejercicio2") else {
        return;
    };
    let dir = scratch("ejercicio2");
    let exe = dir.join("ejercicio2");
    compile_static(&cc, SEED_FLAGS, &[example("ejercicio2.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}", out.status);
    assert_eq!(stdout, "Exito en la liberacion");
}

#[test]
fn seeds_also_compile_as_c89() {
    // In C89 implicit int is plain C; main's exit status is then undefined, so only the
    // output is checked.
    let Some(cc) = c_compiler_or_skip("seeds_also_compile_as_c89") else {
        return;
    };
    let dir = scratch("seeds-c89");
    for (name, expected) in [
        ("ejercicio1", "Dir. de RESERVA = 0x40000000"),
        ("ejercicio2", "Exito en la liberacion"),
    ] {
        let exe = dir.join(name);
        compile_static(&cc, &["-std=gnu89"], &[example(&format!("{name}.c"))], &exe);
        let (_, stdout) = run(&exe);
        assert_eq!(stdout, expected);
    }
}

#[test]
fn conformance_cases_pass_through_the_c_symbols() {
    let Some(cc) = c_compiler_or_skip("conformance") else {
        return;
    };
    let dir = scratch("conformance");
    let exe = dir.join("conformance");
    compile_static(&cc, FLAGS, &[example("conformance.c")], &exe);
    let (out, stdout) = run(&exe);
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "failed cases:\n{stdout}");
    assert!(
        passed >= 25,
        "only {passed} cases ran; expected at least 25"
    );
    assert!(out.status.success(), "exit status {}", out.status);
}

#[test]
fn last_error_is_per_thread_across_pthreads() {
    let Some(cc) = c_compiler_or_skip("lasterror_threads") else {
        return;
    };
    let dir = scratch("lasterror_threads");
    let exe = dir.join("lasterror_threads");
    compile_static(
        &cc,
        &[FLAGS, &["-pthread"]].concat(),
        &[example("lasterror_threads.c")],
        &exe,
    );
    let (out, stdout) = run(&exe);
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "{stdout}");
    assert!(passed > 1000, "only {passed} checks ran");
    assert!(out.status.success(), "exit status {}", out.status);
}

#[test]
fn programs_link_against_the_shared_library() {
    let Some(cc) = c_compiler_or_skip("shared library") else {
        return;
    };
    let dir = scratch("shared");

    let seed = dir.join("ejercicio2");
    compile_shared(&cc, SEED_FLAGS, &[example("ejercicio2.c")], &seed);
    let (out, stdout) = run(&seed);
    assert!(out.status.success());
    assert_eq!(stdout, "Exito en la liberacion");

    let conformance = dir.join("conformance");
    compile_shared(&cc, FLAGS, &[example("conformance.c")], &conformance);
    let (out, stdout) = run(&conformance);
    assert_eq!(summary(&stdout).1, 0, "{stdout}");
    assert!(out.status.success());

    // It really is dynamically linked: the binary names libvirtmem.so.
    let binary = std::fs::read(&conformance).unwrap();
    assert!(
        binary.windows(13).any(|w| w == b"libvirtmem.so"),
        "conformance does not reference libvirtmem.so"
    );
}

/// Issue 12, item 7: a `malloc` replacement for the whole process built on VirtualAlloc /
/// VirtualFree (glibc's and the Rust runtime's own allocations included), which aborts if
/// virtmem calls back into it; four threads allocate, free and reallocate.
#[test]
fn a_malloc_built_on_virtmem_serves_the_whole_process() {
    let Some(cc) = c_compiler_or_skip("malloc_on_virtmem") else {
        return;
    };
    let dir = scratch("malloc_on_virtmem");
    let exe = dir.join("malloc_on_virtmem");
    let mut flags = FLAGS.to_vec();
    flags.push("-pthread");
    compile_static(&cc, &flags, &[example("malloc_on_virtmem.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(
        out.status.success(),
        "exit status {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&stdout), (1, 0), "{stdout}");
}
