//! Runs `examples/seeds.rs` (the course's two exercises), which `cargo test` builds, and
//! checks what it prints.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples").join(name)
}

#[test]
fn seed_exercises_print_what_the_course_expects() {
    let bin = example("seeds");
    if !bin.exists() {
        // `cargo test` builds examples; a filtered run (`--test seeds`) may not have.
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "virtmem", "--example", "seeds"])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    let out = Command::new(&bin).output().expect("run the seeds example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Dir. de RESERVA = 0x40000000"), "{text}");
    assert!(text.contains("Exito en la liberacion"), "{text}");
    // The map after exercise 1 shows the reservation: 8 pages, reserved, Protect 0.
    assert!(
        text.lines()
            .any(|l| l.contains("0x40000000") && l.contains("0x8000") && l.contains("reserve")),
        "{text}"
    );
    // After the release, 0x01000000 is free again.
    let last_map_line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("0x1000000"));
    assert!(last_map_line.is_some_and(|l| l.contains("free")), "{text}");
}
