//! Shared helpers of the tests that build C programs against libvirtmem (`c_header.rs`,
//! `c_programs.rs`, `c_install.rs`): finding the repository, a C compiler and this build's
//! `libvirtmem.a` / `libvirtmem.so`, and compiling and running programs.
//!
//! Where the library comes from: `cargo test` compiles virtmem's library target once, with all
//! of its crate types (`rlib`, `staticlib`, `cdylib`) in the same rustc run, into
//! `target/<profile>/deps/` (next to the test binaries); unlike `cargo build` it does not copy
//! them up to `target/<profile>/`. So the tests take `libvirtmem.a` and `libvirtmem.so` from the
//! directory of the running test binary, which is right for any profile, `--target` or
//! `CARGO_TARGET_DIR`. If they are missing there (or older than the rlib the test was linked
//! with), the tests build them with `cargo build -p virtmem --lib` into a target directory of
//! their own under `target/tmp/` (a separate target directory, so the nested cargo never waits
//! for the lock the outer `cargo test` holds). `VIRTMEM_C_TEST_LIB_DIR=DIR` uses the libraries
//! in DIR instead; `VIRTMEM_C_TEST_FORCE_BUILD=1` forces the nested build.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The repository root (where `include/` and `examples/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A scratch directory for this test's outputs, under cargo's `target/tmp`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("virtmem-c")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// The C compiler: `$CC`, else the first of `cc`, `gcc`, `clang` that runs. `None` (the test
/// then prints why and skips) if there is none.
pub fn c_compiler() -> Option<String> {
    static CC: OnceLock<Option<String>> = OnceLock::new();
    CC.get_or_init(|| {
        let from_env = std::env::var("CC").ok().filter(|s| !s.trim().is_empty());
        from_env
            .into_iter()
            .chain(["cc", "gcc", "clang"].map(String::from))
            .find(|cc| runs(cc))
    })
    .clone()
}

/// The C++ compiler (`$CXX`, `c++`, `g++`, `clang++`), for the header's `extern "C"` check.
pub fn cxx_compiler() -> Option<String> {
    let from_env = std::env::var("CXX").ok().filter(|s| !s.trim().is_empty());
    from_env
        .into_iter()
        .chain(["c++", "g++", "clang++"].map(String::from))
        .find(|cxx| runs(cxx))
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Returns the C compiler, or prints why the calling test is skipped.
pub fn c_compiler_or_skip(test: &str) -> Option<String> {
    let cc = c_compiler();
    if cc.is_none() {
        println!("SKIPPED {test}: no C compiler found ($CC, cc, gcc, clang)");
        eprintln!("SKIPPED {test}: no C compiler found ($CC, cc, gcc, clang)");
    }
    cc
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The directory holding this build's `libvirtmem.a` and `libvirtmem.so` (see the module doc).
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_or_build_lib_dir).clone()
}

fn find_or_build_lib_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VIRTMEM_C_TEST_LIB_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe
        .parent()
        .expect("test executable directory")
        .to_path_buf();
    let forced = std::env::var_os("VIRTMEM_C_TEST_FORCE_BUILD").is_some();
    if !forced && fresh_libs_in(&deps) {
        return deps;
    }
    build_libs_separately(&deps)
}

/// Whether `dir` holds libvirtmem.a and .so at least as new as the rlib next to them.
fn fresh_libs_in(dir: &Path) -> bool {
    let (Some(a), Some(so)) = (
        modified(&dir.join("libvirtmem.a")),
        modified(&dir.join("libvirtmem.so")),
    ) else {
        return false;
    };
    let newest_rlib = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libvirtmem") && n.ends_with(".rlib")
        })
        .filter_map(|e| modified(&e.path()))
        .max();
    // The same rustc run writes all three (the rlib first); allow for coarse timestamps.
    let slack = Duration::from_secs(2);
    match newest_rlib {
        Some(rlib) => a + slack >= rlib && so + slack >= rlib,
        None => true,
    }
}

fn build_libs_separately(deps: &Path) -> PathBuf {
    // target/<profile>/deps -> target/<profile> -> its name is the profile's directory.
    let profile_dir = deps.parent().expect("profile directory");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("virtmem-c-lib");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "-p", "virtmem", "--lib", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if release {
        cmd.arg("--release");
    }
    eprintln!("libvirtmem.a not built by this cargo run: running {cmd:?}");
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build -p virtmem --lib failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = target_dir.join(if release { "release" } else { "debug" });
    assert!(
        dir.join("libvirtmem.a").exists(),
        "{} has no libvirtmem.a",
        dir.display()
    );
    dir
}

/// The static library to link C programs with.
pub fn static_lib() -> PathBuf {
    lib_dir().join("libvirtmem.a")
}

/// What a C program needs after `libvirtmem.a` (Rust's standard library uses them).
pub const SYSTEM_LIBS: [&str; 3] = ["-lpthread", "-ldl", "-lm"];

/// Runs a compiler command; panics with its output if it fails. Prints its warnings.
pub fn compile(mut cmd: Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compile failed: {cmd:?}\n{stderr}");
    if !stderr.trim().is_empty() {
        eprintln!("compiler output for {cmd:?}:\n{stderr}");
    }
}

/// `cc -Iinclude <flags> src... libvirtmem.a -lpthread -ldl -lm -o out`.
pub fn compile_static(cc: &str, flags: &[&str], sources: &[PathBuf], out: &Path) {
    let mut cmd = Command::new(cc);
    cmd.arg("-I")
        .arg(repo_root().join("include"))
        .args(flags)
        .args(sources)
        .arg(static_lib())
        .args(SYSTEM_LIBS)
        .arg("-o")
        .arg(out);
    compile(cmd);
}

/// Compiles against `libvirtmem.so` (`-l:libvirtmem.so`, found through an rpath).
pub fn compile_shared(cc: &str, flags: &[&str], sources: &[PathBuf], out: &Path) {
    let dir = lib_dir();
    let mut cmd = Command::new(cc);
    cmd.arg("-I")
        .arg(repo_root().join("include"))
        .args(flags)
        .args(sources)
        .arg("-L")
        .arg(&dir)
        .arg("-l:libvirtmem.so")
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg("-o")
        .arg(out);
    compile(cmd);
}

/// Runs a program; returns its output (stdout as text) after echoing it for the test log.
pub fn run(exe: &Path) -> (Output, String) {
    let out = Command::new(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("--- {} ({}):\n{stdout}", exe.display(), out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        println!("--- stderr:\n{stderr}");
    }
    (out, stdout)
}

/// Whether tests may change host-wide settings: `VIRTMEM_HOST_TESTS=1`, as root.
pub fn host_tests() -> Result<(), &'static str> {
    if std::env::var("VIRTMEM_HOST_TESTS").as_deref() != Ok("1") {
        return Err("set VIRTMEM_HOST_TESTS=1 (as root) to change host-wide settings");
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("changing host-wide settings needs root");
    }
    Ok(())
}

/// Writes `value` to a sysctl file and puts the old value back when dropped (also when the
/// test fails or panics).
pub struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    /// Sets `path` to `value`, remembering the old value.
    pub fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap().trim().to_string();
        std::fs::write(path, value).unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(self.path, &self.old) {
            eprintln!("could not restore {} to {}: {e}", self.path, self.old);
        }
    }
}
