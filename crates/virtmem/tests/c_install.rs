//! `scripts/install.sh PREFIX` into a temporary prefix, then C programs built the way the
//! README says: `cc prog.c $(pkg-config --cflags --libs virtmem)` (PKG_CONFIG_PATH pointing
//! into the prefix), against the installed `.so`, and against the installed `.a`.
//!
//! The script runs its own `cargo build --release -p virtmem`, with CARGO_TARGET_DIR set to a
//! directory under `target/tmp/` so it does not wait for the lock the outer `cargo test`
//! holds (and stays incremental between runs). Skipped, with a printed reason, when there is
//! no C compiler or no pkg-config.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn pkg_config(pc_path: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", pc_path)
        .args(args)
        .arg("virtmem")
        .output()
        .expect("run pkg-config");
    assert!(
        out.status.success(),
        "pkg-config {args:?} virtmem failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn install_script_and_pkg_config() {
    let Some(cc) = c_compiler_or_skip("install_script_and_pkg_config") else {
        return;
    };
    let has_pkg_config = Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pkg_config {
        println!("SKIPPED install_script_and_pkg_config: pkg-config is not installed");
        eprintln!("SKIPPED install_script_and_pkg_config: pkg-config is not installed");
        return;
    }

    let dir = scratch("install");
    // The script quotes its paths: a space in the prefix must not matter to it.
    let prefix = dir.join("prefix with space");
    let root = repo_root();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("virtmem-install-target");
    let out = Command::new("sh")
        .arg(root.join("scripts/install.sh"))
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("VIRTMEM_LIB_DIR")
        .env_remove("DESTDIR")
        .output()
        .expect("run scripts/install.sh");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "scripts/install.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "lib/libvirtmem.a",
        "lib/libvirtmem.so",
        "include/virtmem.h",
        "include/windows.h",
        "lib/pkgconfig/virtmem.pc",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }

    let pc_path = prefix.join("lib/pkgconfig");
    assert_eq!(
        pkg_config(&pc_path, &["--modversion"]),
        [env!("CARGO_PKG_VERSION")]
    );
    let static_libs = pkg_config(&pc_path, &["--static", "--libs"]);
    for lib in ["-lvirtmem", "-lpthread", "-ldl", "-lm"] {
        assert!(
            static_libs.iter().any(|a| a == lib),
            "{lib} missing from {static_libs:?}"
        );
    }

    // Again, into a prefix without a space (an unquoted `$(pkg-config ...)` splits at
    // spaces), from the libraries just installed (VIRTMEM_LIB_DIR: no build).
    let plain = dir.join("prefix");
    let out = Command::new("sh")
        .arg(root.join("scripts/install.sh"))
        .arg(&plain)
        .env("VIRTMEM_LIB_DIR", prefix.join("lib"))
        .output()
        .expect("run scripts/install.sh");
    assert!(
        out.status.success(),
        "scripts/install.sh with VIRTMEM_LIB_DIR failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pc_path = plain.join("lib/pkgconfig");
    let flags = pkg_config(&pc_path, &["--cflags", "--libs"]);
    let include = format!("-I{}", plain.join("include").display());
    assert!(flags.contains(&include), "{include} missing from {flags:?}");
    let libdir = pkg_config(&pc_path, &["--variable=libdir"]);
    assert_eq!(libdir, [plain.join("lib").display().to_string()]);

    // cc ejercicio1.c $(pkg-config --cflags --libs virtmem): links libvirtmem.so.
    let exe = dir.join("ejercicio1");
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=gnu11", "-Wno-implicit-int"])
        .arg(root.join("examples/c/ejercicio1.c"))
        .args(&flags)
        .arg("-o")
        .arg(&exe);
    compile(cmd);
    let out = Command::new(&exe)
        .env("LD_LIBRARY_PATH", plain.join("lib"))
        .output()
        .expect("run ejercicio1");
    assert!(out.status.success(), "exit status {}", out.status);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Dir. de RESERVA = 0x40000000"
    );
    // Without the library path the dynamic loader must not find it: it really is the .so.
    let out = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run ejercicio1");
    assert!(!out.status.success(), "ran without finding libvirtmem.so?");

    // cc conformance.c $(pkg-config --cflags virtmem) <libdir>/libvirtmem.a -lpthread -ldl -lm
    let exe = dir.join("conformance");
    let mut cmd = Command::new(&cc);
    cmd.arg("-std=gnu11")
        .arg(root.join("examples/c/conformance.c"))
        .args(pkg_config(&pc_path, &["--cflags"]))
        .arg(plain.join("lib/libvirtmem.a"))
        .args(SYSTEM_LIBS)
        .arg("-o")
        .arg(&exe);
    compile(cmd);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
