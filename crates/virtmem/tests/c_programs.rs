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

// ---------------------------------------------------------------------------------------------
// Sections and views (sections.md)
// ---------------------------------------------------------------------------------------------

/// Named sections shared between processes (sections.md §14) are being built in another branch:
/// until they are merged, CreateFileMappingA with a name fails with ERROR_NOT_SUPPORTED (or a
/// second process cannot find the name), `shared_message` exits 77 and `sections_conformance`
/// skips CF8, OF2 and NS2 with a PENDING line. While this is `true` that is accepted, with a
/// printed note; once the names are in, set it to `false` so that a regression fails.
const NAMED_SECTIONS_PENDING: bool = false;

/// The file API (sections.md §17: CreateFileA, WriteFile, ...) is being built in another branch.
/// While include/virtmem.h does not declare it, `growable_file` is not built and
/// `sections_conformance` leaves out its file-backed cases, with a printed note, if this is
/// `true`. Once the file API is merged the header declares it and both run regardless; then set
/// this to `false` so that losing the declarations fails.
const FILE_API_PENDING: bool = false;

/// What a program prints and exits with when a feature of this build is missing (automake's
/// "skipped").
const EXIT_PENDING: i32 = 77;

fn header_has_file_api() -> bool {
    std::fs::read_to_string(repo_root().join("include/virtmem.h"))
        .expect("include/virtmem.h")
        .contains(" WINAPI CreateFileA(")
}

/// The circular buffer of the VirtualAlloc2 documentation: a placeholder split in two, one
/// section mapped into both halves with MapViewOfFile3(MEM_REPLACE_PLACEHOLDER).
#[test]
fn ring_buffer_maps_one_section_twice_back_to_back() {
    let Some(cc) = c_compiler_or_skip("ring_buffer") else {
        return;
    };
    let dir = scratch("ring_buffer");
    let exe = dir.join("ring_buffer");
    compile_static(&cc, FLAGS, &[example("ring_buffer.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}\n{stdout}", out.status);
    assert!(stdout.contains("read back in one piece"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ring_buffer: ok"), "{stdout}");
}

/// Two processes (the program starts itself again) exchange a message and a reply through a
/// named section.
#[test]
fn shared_message_between_two_processes() {
    let Some(cc) = c_compiler_or_skip("shared_message") else {
        return;
    };
    let dir = scratch("shared_message");
    let exe = dir.join("shared_message");
    compile_static(&cc, FLAGS, &[example("shared_message.c")], &exe);
    let (out, stdout) = run(&exe);
    if out.status.code() == Some(EXIT_PENDING) && NAMED_SECTIONS_PENDING {
        println!(
            "PENDING shared_message_between_two_processes: named sections across processes are \
             not in this build (see NAMED_SECTIONS_PENDING)"
        );
        eprintln!("PENDING shared_message_between_two_processes: see NAMED_SECTIONS_PENDING");
        return;
    }
    assert!(out.status.success(), "exit status {}\n{stdout}", out.status);
    assert!(
        stdout.contains("[child] replied: \"Reply from the second process.\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("[parent] process ") && stdout.contains("shared_message: ok"),
        "{stdout}"
    );
}

/// A growable buffer in a SEC_RESERVE section, saved with WriteFile and read back through a
/// view of the file.
#[test]
fn growable_file_through_a_sec_reserve_buffer_and_a_file_view() {
    let Some(cc) = c_compiler_or_skip("growable_file") else {
        return;
    };
    if !header_has_file_api() {
        if !FILE_API_PENDING {
            panic!("include/virtmem.h does not declare the file API (CreateFileA, ...)");
        }
        println!(
            "PENDING growable_file: the file API is not in include/virtmem.h yet (see \
             FILE_API_PENDING)"
        );
        eprintln!("PENDING growable_file: see FILE_API_PENDING");
        return;
    }
    let dir = scratch("growable_file");
    let exe = dir.join("growable_file");
    compile_static(&cc, FLAGS, &[example("growable_file.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}\n{stdout}", out.status);
    assert!(stdout.contains("error 5 (ERROR_ACCESS_DENIED)"), "{stdout}");
    assert!(
        stdout.contains("error 1224 (ERROR_USER_MAPPED_FILE)"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("growable_file: ok"), "{stdout}");
}

/// The [T] rules of sections.md (and some [I] ones) through the C symbols. Cases marked KNOWN
/// in the program are engine bugs it reports without failing; they are echoed here.
#[test]
fn sections_conformance_cases_pass_through_the_c_symbols() {
    let Some(cc) = c_compiler_or_skip("sections_conformance") else {
        return;
    };
    let dir = scratch("sections_conformance");
    let exe = dir.join("sections_conformance");
    compile_static(&cc, FLAGS, &[example("sections_conformance.c")], &exe);
    let (out, stdout) = run(&exe);
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("KNOWN") || l.starts_with("PENDING") || l.starts_with("NOTE"))
    {
        eprintln!("sections_conformance: {line}");
    }
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "failed cases:\n{stdout}");
    assert!(
        passed >= 40,
        "only {passed} cases ran; expected at least 40"
    );
    assert!(out.status.success(), "exit status {}", out.status);
    if !NAMED_SECTIONS_PENDING {
        assert!(
            !stdout.contains("PENDING"),
            "named-section cases were skipped:\n{stdout}"
        );
    }
    if header_has_file_api() {
        assert!(
            !stdout.contains("file-backed cases did not run"),
            "{stdout}"
        );
    } else {
        if !FILE_API_PENDING {
            panic!("include/virtmem.h does not declare the file API (CreateFileA, ...)");
        }
    }
}

#[test]
fn nt_layer_from_c() {
    let Some(cc) = c_compiler_or_skip("nt_layer") else {
        return;
    };
    let dir = scratch("nt_layer");
    let exe = dir.join("nt_layer");
    compile_static(&cc, FLAGS, &[example("nt_layer.c")], &exe);
    let (out, stdout) = run(&exe);
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "failed checks:\n{stdout}");
    assert!(passed >= 18, "only {passed} checks ran");
    assert!(out.status.success(), "exit status {}", out.status);
}

/// Heaps and moveable Global memory through the C symbols and header (issue 16): a private
/// heap walked with HeapWalk, a GMEM_MOVEABLE block locked, moved, discarded and freed.
#[test]
fn heap_demo_runs_through_the_c_symbols() {
    let Some(cc) = c_compiler_or_skip("heap_demo") else {
        return;
    };
    let dir = scratch("heap_demo");
    let exe = dir.join("heap_demo");
    compile_static(&cc, FLAGS, &[example("heap_demo.c")], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}\n{stdout}", out.status);
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "{stdout}");
    assert!(passed >= 40, "{stdout}");
    assert!(stdout.contains("9 busy blocks"), "{stdout}");
}

/// The heap's thread state is an initial-exec TLS block (`engine/heap/tls.rs`): a program
/// that never linked virtmem `dlopen`s libvirtmem.so and four threads allocate and free on
/// the process heap and a HEAP_NO_SERIALIZE heap each, through `dlsym`ed functions.
#[test]
fn the_shared_library_works_when_dlopened() {
    let Some(cc) = c_compiler_or_skip("dlopen") else {
        return;
    };
    let dir = scratch("dlopen");
    let src = dir.join("heap_dlopen.c");
    std::fs::write(&src, DLOPEN_PROGRAM).unwrap();
    let exe = dir.join("heap_dlopen");
    let mut cmd = std::process::Command::new(&cc);
    cmd.args(FLAGS)
        .arg("-pthread")
        .arg(&src)
        .arg("-ldl")
        .arg("-o")
        .arg(&exe);
    compile(cmd);
    let lib = lib_dir().join("libvirtmem.so");
    let out = std::process::Command::new(&exe).arg(&lib).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit status {}", out.status);
    assert_eq!(summary(&stdout), (4, 0), "{stdout}");
}

const DLOPEN_PROGRAM: &str = r#"
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *(*get_heap_t)(void);
typedef void *(*create_t)(unsigned, size_t, size_t);
typedef int (*destroy_t)(void *);
typedef void *(*alloc_t)(void *, unsigned, size_t);
typedef int (*free_t)(void *, unsigned, void *);
typedef size_t (*size_t_fn)(void *, unsigned, const void *);

static get_heap_t GetProcessHeap_;
static create_t HeapCreate_;
static destroy_t HeapDestroy_;
static alloc_t HeapAlloc_;
static free_t HeapFree_;
static size_t_fn HeapSize_;

static void *worker(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    void *ph = GetProcessHeap_();
    void *own = HeapCreate_(0x1 /* HEAP_NO_SERIALIZE */, 0, 1 << 20);
    if (!ph || !own) return (void *)1;
    for (int round = 0; round < 20000; round++) {
        size_t n = 16 + (size_t)((round * 7 + id) % 240);
        unsigned char *a = HeapAlloc_(ph, 0, n);
        unsigned char *b = HeapAlloc_(own, 0, n);
        if (!a || !b) return (void *)2;
        memset(a, (int)id, n);
        memset(b, (int)id, n);
        if (HeapSize_(ph, 0, a) != n || HeapSize_(own, 0, b) != n) return (void *)3;
        if (a[n - 1] != (unsigned char)id || b[0] != (unsigned char)id) return (void *)4;
        if (!HeapFree_(ph, 0, a) || !HeapFree_(own, 0, b)) return (void *)5;
        /* A double free on this thread's own heap only: on the shared process heap another
           thread may already have been given the block again, and would lose it. */
        if (HeapFree_(own, 0, b)) return (void *)6;
    }
    return HeapDestroy_(own) ? NULL : (void *)7;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    GetProcessHeap_ = (get_heap_t)dlsym(lib, "GetProcessHeap");
    HeapCreate_ = (create_t)dlsym(lib, "HeapCreate");
    HeapDestroy_ = (destroy_t)dlsym(lib, "HeapDestroy");
    HeapAlloc_ = (alloc_t)dlsym(lib, "HeapAlloc");
    HeapFree_ = (free_t)dlsym(lib, "HeapFree");
    HeapSize_ = (size_t_fn)dlsym(lib, "HeapSize");
    if (!GetProcessHeap_ || !HeapCreate_ || !HeapDestroy_ || !HeapAlloc_ || !HeapFree_ || !HeapSize_)
        return 1;
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    int passed = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r) {
            printf("thread %d failed at step %d\n", i, (int)(uintptr_t)r);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
"#;
