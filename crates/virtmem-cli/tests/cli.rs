//! The `virtmem` command end to end: the tour, the seed programs, errors, maps, the REPL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtmem"));
    c.env_remove("NO_COLOR").env_remove("VIRTMEM_WRITE_WATCH");
    c
}

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("virtmem runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a program given as text (written to a temporary file named `name`).
fn run_src(name: &str, src: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join(name);
    std::fs::write(&f, src).expect("write");
    let mut c = bin();
    c.current_dir(dir.path()).arg("run").arg("--no-color");
    c.args(extra).arg(name);
    c.output().expect("virtmem runs")
}

#[test]
fn tour_simulated() {
    let o = run(&["tour", "--sim-only", "--no-color"]);
    assert!(o.status.success());
    insta::assert_snapshot!(text(&o.stdout));
}

#[test]
fn tour_native_and_simulated() {
    let o = run(&["tour", "--no-color"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert_eq!(s.matches("▶ simulated win32 process").count(), 2);
    // Exercises 1 and 2, and exercise 3's two programs in this process.
    assert_eq!(s.matches("▶ this Linux process").count(), 3);
    assert_eq!(
        s.matches("▶ processes A and B, two simulated win32 processes")
            .count(),
        1
    );
    assert!(s.contains("output: Exito en la liberacion"));
    // Exercise 3 in the simulator: B reads what A wrote, through a view of its own.
    assert!(s.contains(
        "output: Proceso B: vista en 0x10000, mensaje leido: Hola, proceso B: te saluda el proceso A"
    ));
    assert!(s.contains("process A waits for a key: process B runs now"));
    // Natively too, 0x40000000 is normally free: the seed's answer.
    assert!(
        s.matches("output: Dir. de RESERVA = 0x40000000").count() == 2
            || s.contains("output: Fallo en la RESERVA"),
        "{s}"
    );
    // Colours only when asked.
    assert!(!s.contains('\x1b'));
    let c = run(&["tour", "--sim-only", "--color", "always"]);
    assert!(text(&c.stdout).contains("\x1b[32m"));
}

#[test]
fn seed_programs_verbatim() {
    // The course's solutions exactly as the notes print them (blank lines, typographic quotes).
    let alloc = programs().join("seed_virtualalloc.c");
    let free = programs().join("seed_virtualfree.c");
    assert!(std::fs::read_to_string(&alloc).unwrap().contains('“'));
    let mut all = String::new();
    for sim in ["win32", "win64", "win32-3gb"] {
        for f in [&alloc, &free] {
            let o = bin()
                .args(["run", "--no-color", "--trace", "--sim", sim])
                .arg(f)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            all.push_str(&format!(
                "$ virtmem run --trace --sim {sim} {}\n{}\n",
                f.file_name().unwrap().to_string_lossy(),
                text(&o.stdout)
            ));
        }
    }
    insta::assert_snapshot!(all);
    // On this process, through virtmem on real memory.
    let o = bin()
        .args(["run", "--native"])
        .arg(&alloc)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let s = text(&o.stdout);
    assert!(
        s == "Dir. de RESERVA = 0x40000000\n" || s == "Fallo en la RESERVA\n",
        "{s}"
    );
    let o = bin().args(["run", "--native"]).arg(&free).output().unwrap();
    assert_eq!(text(&o.stdout), "Exito en la liberacion\n");
}

#[test]
fn language_features() {
    let o = bin()
        .args(["run", "--no-color"])
        .arg(programs().join("features.c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("features_win32", text(&o.stdout));
    let o = bin()
        .args(["run", "--no-color", "--sim", "win64"])
        .arg(programs().join("features.c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("features_win64", text(&o.stdout));
    // Natively the addresses differ; the rest is the same.
    let n = bin()
        .args(["run", "--native"])
        .arg(programs().join("features.c"))
        .output()
        .unwrap();
    assert_eq!(n.status.code(), Some(0), "{}", text(&n.stderr));
    let n = text(&n.stdout);
    assert!(n.contains("caught exception 0xc0000005 writing to a read-only page"));
    assert!(n.contains("VirtualProtect on a reserved page: error 487, old 0x1"));
}

#[test]
fn write_watch_awe_and_virtualalloc2() {
    let f = programs().join("advanced.c");
    let mut all = String::new();
    for sim in ["win32", "win64"] {
        let o = bin()
            .args(["run", "--no-color", "--trace", "--sim", sim])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        all.push_str(&format!(
            "$ virtmem run --trace --sim {sim} advanced.c\n{}\n",
            text(&o.stdout)
        ));
    }
    insta::assert_snapshot!(all);
    // Both ways of tracking writes, on the simulated and on the real space.
    for native in [false, true] {
        for mode in ["kernel", "signal"] {
            let mut c = bin();
            c.env("VIRTMEM_WRITE_WATCH", mode).arg("run");
            if native {
                c.arg("--native");
            }
            let o = c.arg(&f).output().unwrap();
            let s = text(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{mode} {native}: {}",
                text(&o.stderr)
            );
            assert!(
                s.starts_with(
                    "r=0 count=2 gran=4096\n  written: page 1\n  written: page 3\nafter reset: 0\n"
                ),
                "{mode} {native}: {s}"
            );
            assert!(s.contains("moved: 42"), "{s}");
        }
    }
}

#[test]
fn guard_pages_and_exceptions() {
    let g = examples().join("guard.c");
    let o = bin().args(["run", "--no-color"]).arg(&g).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!(text(&o.stdout));
    // The same on real memory: the guard page is consumed, never a crash.
    let n = bin().args(["run", "--native"]).arg(&g).output().unwrap();
    assert_eq!(n.status.code(), Some(0), "{}", text(&n.stderr));
    assert!(text(&n.stdout).contains("try 1: guard page exception 0x80000001"));
    assert!(text(&n.stdout).contains("try 2: the write worked"));
}

const CRASH: &str = "main()\n{\n    char *p = VirtualAlloc(NULL, 4096, MEM_RESERVE, PAGE_READWRITE);\n    printf(\"reserved %p\\n\", p);\n    p[10] = 'x';\n    printf(\"never\\n\");\n}\n";

#[test]
fn unhandled_exceptions_end_the_program() {
    let o = run_src("crash.c", CRASH, &[]);
    assert_eq!(o.status.code(), Some(4));
    let report = format!("stdout:\n{}stderr:\n{}", text(&o.stdout), text(&o.stderr));
    insta::assert_snapshot!(report);
    // On real memory the access is checked first: reported, the tool does not crash.
    let n = run_src("crash.c", CRASH, &["--native"]);
    assert_eq!(n.status.code(), Some(4));
    assert!(text(&n.stderr).contains("unhandled exception 0xC0000005: access violation at 0x"));
    assert!(text(&n.stderr).contains("(write)"));
    // Reading address 0x10 natively, too.
    let r = run_src(
        "read.c",
        "int main(void) { int *p = (int *)0x10; return *p; }\n",
        &["--native"],
    );
    assert_eq!(r.status.code(), Some(4));
    assert!(text(&r.stderr).contains("access violation at 0x10 (read)"));
}

#[test]
fn error_messages_name_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "missing_semicolon.c",
            "main()\n{\n  void *p;\n  p = VirtualAlloc(NULL, 4096, MEM_COMMIT, PAGE_READWRITE)\n  printf(\"%p\", p);\n}\n",
        ),
        ("bad_expression.c", "main() {\n  int x = 3 +;\n}\n"),
        (
            "undeclared.c",
            "main() {\n  p = VirtualAlloc(NULL, 1, MEM_COMMIT, PAGE_READWRITE);\n}\n",
        ),
        (
            "typo_function.c",
            "main() {\n  void *p = VirtualAloc(NULL, 1, MEM_COMMIT, PAGE_READWRITE);\n}\n",
        ),
        (
            "typo_constant.c",
            "main() {\n  void *p = VirtualAlloc(NULL, 1, MEM_COMIT, PAGE_READWRITE);\n}\n",
        ),
        (
            "argument_count.c",
            "main() {\n  VirtualFree(NULL, 0);\n}\n",
        ),
        ("unclosed_string.c", "main() {\n  printf(“sin cerrar);\n}\n"),
        ("unclosed_block.c", "main() {\n  if (1) {\n    printf(\"x\");\n"),
        ("float.c", "main() {\n  float f;\n}\n"),
        ("void_variable.c", "main() {\n  void p;\n}\n"),
        ("else_without_if.c", "main() {\n  int x;\n  x = 1;;\n  else x = 2;\n}\n"),
        ("bad_character.c", "main() {\n  int x = 1 @ 2;\n}\n"),
        (
            "deref_void.c",
            "main() {\n  void *p = VirtualAlloc(NULL, 1, MEM_COMMIT, PAGE_READWRITE);\n  *p = 1;\n}\n",
        ),
    ];
    let mut all = String::new();
    for (name, src) in cases {
        let o = run_src(name, src, &[]);
        all.push_str(&format!(
            "== {name} (exit {})\n{}",
            o.status.code().unwrap_or(-1),
            text(&o.stderr)
        ));
        assert!(o.stdout.is_empty() || *name == "deref_void.c", "{name}");
    }
    insta::assert_snapshot!(all);
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["run", "/nonexistent/x.c"]).status.code(), Some(66));
    assert_eq!(
        run(&["run", "--sim", "win16", "x.c"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run_src("r.c", "int main(void) { return 7; }\n", &[])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        run_src("e.c", "main() { exit(9); printf(\"no\"); }\n", &[])
            .status
            .code(),
        Some(9)
    );
    assert_eq!(
        run_src("d.c", "int main(void) { int z = 0; return 1 / z; }\n", &[])
            .status
            .code(),
        Some(4)
    );
    let o = run_src(
        "loop.c",
        "main() { while (1) { } }\n",
        &["--max-steps", "1000"],
    );
    assert_eq!(o.status.code(), Some(5));
    assert!(text(&o.stderr).contains("more than 1000 steps"));
    let o = run(&["run", "--sim", "custom", "--page-size", "0x3000", "x.c"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("power of two"));
}

#[test]
fn custom_layouts() {
    let src = "main() {\n  SYSTEM_INFO si;\n  GetSystemInfo(&si);\n  char *p = VirtualAlloc(NULL, 1, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);\n  MEMORY_BASIC_INFORMATION m;\n  VirtualQuery(p, &m, sizeof(m));\n  printf(\"%u %#x %p %p %p %#x\\n\", si.dwPageSize, si.dwAllocationGranularity, si.lpMaximumApplicationAddress, p, m.BaseAddress, (unsigned)m.RegionSize);\n}\n";
    let o = run_src(
        "c.c",
        src,
        &[
            "--sim",
            "custom",
            "--page-size",
            "0x4000",
            "--granularity",
            "0x40000",
            "--min-address",
            "0x40000",
            "--max-address",
            "0x3FFFFFFF",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "16384 0x40000 0x3fffffff 0x40000 0x40000 0x4000\n"
    );
    let o = run_src("c.c", src, &["--sim", "win32-3gb"]);
    assert_eq!(
        text(&o.stdout),
        "4096 0x10000 0xbffeffff 0x10000 0x10000 0x1000\n"
    );
}

const SCRIPT: &str = "char *p = VirtualAlloc((void *)0x40000000, 16*4096, MEM_RESERVE, PAGE_READWRITE);\nVirtualAlloc(p, 2*4096, MEM_COMMIT, PAGE_READWRITE);\nVirtualAlloc(p + 4*4096, 4096, MEM_COMMIT, PAGE_READONLY);\nVirtualAlloc(p + 5*4096, 4096, MEM_COMMIT, PAGE_READWRITE | PAGE_GUARD);\nVirtualAlloc(p + 6*4096, 4096, MEM_COMMIT, PAGE_EXECUTE_READ);\nVirtualAlloc(p + 7*4096, 4096, MEM_COMMIT, PAGE_NOACCESS);\nVirtualAlloc(NULL, 1 << 20, MEM_RESERVE | MEM_COMMIT | MEM_TOP_DOWN, PAGE_EXECUTE_READWRITE);\nVirtualAlloc((void *)0x00400000, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);\n";

fn map_of_script(format: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.c"), SCRIPT).unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args(["map", "--no-color", "--script", "s.c", "--format", format])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    (dir, text(&o.stdout))
}

#[test]
fn map_table() {
    let (_d, s) = map_of_script("table");
    insta::assert_snapshot!(s);
}

#[test]
fn map_json() {
    let (_d, s) = map_of_script("json");
    let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
    let regions = v["regions"].as_array().unwrap();
    assert_eq!(v["pointer_size"], 4);
    assert_eq!(regions.len(), 13);
    // Contiguous from the minimum to the maximum address.
    assert_eq!(regions[0]["base"], "0x10000");
    assert_eq!(regions.last().unwrap()["end"], "0x7fff0000");
    for w in regions.windows(2) {
        assert_eq!(w[0]["end"], w[1]["base"]);
    }
    let guard = regions.iter().find(|r| r["base"] == "0x40005000").unwrap();
    assert_eq!(guard["protect"], "PAGE_READWRITE|PAGE_GUARD");
    assert_eq!(guard["state"], "commit");
    assert_eq!(guard["allocation_base"], "0x40000000");
    assert_eq!(guard["size"], 4096);
    insta::assert_snapshot!(s);
    // The native map is JSON too.
    let n = run(&["map", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&n.stdout).expect("valid JSON");
    assert_eq!(v["pointer_size"], 8);
    assert!(v["regions"].as_array().unwrap().len() > 3);
}

#[test]
fn map_svg_is_well_formed_with_one_element_per_region() {
    let (_d, s) = map_of_script("svg");
    let doc = roxmltree::Document::parse(&s).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let regions: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("region"))
        .collect();
    assert_eq!(regions.len(), 13);
    assert!(regions.iter().all(|n| n.tag_name().name() == "rect"));
    let bases: Vec<&str> = regions
        .iter()
        .map(|n| n.attribute("data-base").unwrap())
        .collect();
    let (_d2, j) = map_of_script("json");
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let want: Vec<&str> = v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["base"].as_str().unwrap())
        .collect();
    assert_eq!(bases, want);
    // Small regions stay visible: every band is at least 16 units high.
    for n in &regions {
        let h: f64 = n.attribute("height").unwrap().parse().unwrap();
        assert!(h >= 16.0, "{h}");
    }
    // One allocation outline per allocation, and a legend.
    let allocs = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("allocation"))
        .count();
    assert_eq!(allocs, 3);
    assert!(doc
        .descendants()
        .any(|n| n.attribute("class") == Some("legend")));
    // The native picture too.
    let n = run(&["map", "--format", "svg"]);
    roxmltree::Document::parse(&text(&n.stdout)).expect("well-formed native SVG");
}

#[test]
fn html_map_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser"].iter().find_map(|c| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| text(&o.stdout).trim().to_string())
    }) else {
        println!("SKIPPED html_map_in_headless_chromium: chromium is not installed (apt-get install chromium)");
        return;
    };
    let (dir, html) = map_of_script("html");
    let page = dir.path().join("map.html");
    std::fs::write(&page, &html).unwrap();
    let shot = dir.path().join("map.png");
    let profile = dir.path().join("profile");
    // --screenshot waits for the page's load event before it captures: no timers.
    let o = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,800")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(o.status.success(), "chromium failed: {}", text(&o.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (1200, 800));
    // A blank page compresses to a few kilobytes; the map is far richer.
    assert!(png.len() > 30_000, "screenshot only {} bytes", png.len());
    if let Ok(keep) = std::env::var("VIRTMEM_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn repl_through_stdin() {
    let input = "void *p;\n\
        p = VirtualAlloc((void *)0x40000000, 8*4096, MEM_RESERVE, PAGE_READWRITE);\n\
        p\n\
        VirtualAlloc(p, 4096, MEM_COMMIT, PAGE_READWRITE)\n\
        *(int *)p = 5;\n\
        ((int *)p)[0] + 1\n\
        MEMORY_BASIC_INFORMATION mbi;\n\
        VirtualQuery(p, &mbi, sizeof(mbi));\n\
        mbi\n\
        map\n\
        *((char *)p + 4096) = 1;\n\
        VirtualFree(p, 4096, MEM_RELEASE)\n\
        GetLastError()\n\
        for (int i = 0; i < 3; i++) {\n\
          printf(\"%d \", i);\n\
        }\n\
        int twice(int x) { return 2 * x; }\n\
        twice(21)\n\
        foo(1);\n\
        quit\n\
        printf(\"after quit\");\n";
    let mut child = bin()
        .args(["repl", "--no-color"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(format!(
        "stdout:\n{}stderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    ));
}

#[test]
fn map_help_and_native_table() {
    let o = run(&["map", "--no-color"]);
    assert!(o.status.success());
    let s = text(&o.stdout);
    assert!(s.starts_with("this process (native, virtmem on real memory)\n"));
    assert!(s.contains("image"));
    let h = run(&["--help"]);
    assert!(text(&h.stdout).contains("Exit codes"));
}

#[test]
fn native_programs_change_only_their_own_memory() {
    // Issue 12: a program used to re-protect the interpreter's own heap and kill the tool
    // with SIGSEGV. Every call that would change memory the program did not allocate fails
    // with ERROR_INVALID_ADDRESS (487); queries work; its own memory works as usual.
    let o = bin()
        .args(["run", "--native", "--no-color"])
        .arg(programs().join("native_guard.c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    let expected = [
        "found the tool's memory: 1",
        "VirtualProtect(tool): failed, error 487",
        // As for any failed VirtualProtect, the old protection reads PAGE_NOACCESS.
        "old 0x1",
        "VirtualProtectEx(tool): failed, error 487",
        "VirtualProtect(literal): failed, error 487",
        "VirtualProtect(&local): failed, error 487",
        "VirtualFree(tool, 0, MEM_RELEASE): failed, error 487",
        "VirtualFree(tool, 4096, MEM_DECOMMIT): failed, error 487",
        "VirtualFree(literal, 0, MEM_RELEASE): failed, error 487",
        "VirtualLock(tool): failed, error 487",
        "VirtualUnlock(tool): failed, error 487",
        "VirtualAlloc(tool, MEM_COMMIT): failed, error 487",
        "VirtualAlloc(&local, MEM_COMMIT): failed, error 487",
        "VirtualAlloc(tool, MEM_RESET): failed, error 487",
        "DiscardVirtualMemory(tool): 487",
        "GetWriteWatch(reset, tool): -1, error 487",
        "VirtualAlloc(tool, MEM_RESERVE): failed, error 487",
        "ResetWriteWatch(tool): -1, error 487",
        "VirtualQuery(tool): 48, committed 1, protect 0x4",
        "commit: ok",
        "protect: ok",
        "old 0x4, p[0] 42",
        "lock: ok",
        "unlock: ok",
        "protect past the end: failed, error 487",
        "decommit: ok",
        "release: ok",
        "protect after release: failed, error 487",
        "split: ok",
        "replace the second half: ok",
        "commit it: ok",
        "v[5] = 9",
        "release it: ok",
        "release the first half: ok",
        "AllocateUserPhysicalPages: ok",
        "FreeUserPhysicalPages(other): failed, error 487",
        "MapUserPhysicalPages(w, other): failed, error 487",
        "MapUserPhysicalPages(tool, own): failed, error 487",
        "MapUserPhysicalPages(w, own): ok",
        "FreeUserPhysicalPages(own): ok",
        "VirtualFree(w): ok",
        "the tool is still alive",
    ];
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{s}");
    for (got, want) in lines.iter().zip(expected) {
        if want == "lock: ok" || want == "unlock: ok" {
            // Locking the program's own page may meet a tiny RLIMIT_MEMLOCK; never the guard.
            assert!(
                *got == want || (got.contains("failed") && !got.ends_with(" 487")),
                "{s}"
            );
        } else {
            assert_eq!(*got, want, "{s}");
        }
    }
}

const WRITE_TOOL: &str = "int main(void) {\n    MEMORY_BASIC_INFORMATION mbi;\n    char *a = NULL;\n    while (VirtualQuery(a, &mbi, sizeof(mbi)) && !(mbi.State == MEM_COMMIT && mbi.Protect == PAGE_READWRITE))\n        a = (char *)mbi.BaseAddress + mbi.RegionSize;\n    printf(\"reading: %d\\n\", *(char *)mbi.BaseAddress == *(char *)mbi.BaseAddress);\n    *(char *)mbi.BaseAddress = 1;\n    printf(\"never\\n\");\n}\n";

#[test]
fn native_programs_cannot_write_to_the_tool() {
    // Reading any readable memory works; a store into the tool's own memory stops the
    // program with a runtime error (the tool reports it and exits normally).
    let o = run_src("write_tool.c", WRITE_TOOL, &["--native"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "reading: 1\n");
    let e = text(&o.stderr);
    assert!(e.contains("write_tool.c:7:"), "{e}");
    assert!(
        e.contains("that memory was not allocated by the program"),
        "{e}"
    );
}

#[test]
fn sections_in_a_simulated_process() {
    // CreateFileMapping, two MapViewOfFile views, a write in one read back in the other,
    // UnmapViewOfFile: the rules of sections.md, in a simulated 32-bit process.
    let o = bin()
        .args(["run", "--no-color", "--sim", "win32"])
        .arg(programs().join("sections.c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let expected = [
        "CreateFileMapping: ok, last error 0",
        "two views: ok",
        "read through view B: escrito en la vista A",
        "view B: type 0x40000, state 0x1000, protect 0x2, size 0x3000, base is view: 1",
        "writing to the read-only view: exception 0xc0000005",
        "VirtualFree(view): 0, error 87",
        "copy-on-write: c \"Escri\", a \"escri\", protect 0x4",
        "same name again: last error 183",
        "OpenFileMapping(unknown): (nil), error 2",
        "through the duplicate: x",
        "CloseHandle x3: 1 1 1",
        "CloseHandle again: 0, error 6",
        "UnmapViewOfFile(a + 0x1064): 1",
        "UnmapViewOfFile(a) again: 0, error 487",
        "view B after CloseHandle: escrito en la vista A",
        "FlushViewOfFile(b): 1",
        "file-backed: (nil), error 50",
    ];
    assert_eq!(text(&o.stdout).lines().collect::<Vec<_>>(), expected);
    // The trace names the arguments.
    let o = bin()
        .args(["run", "--no-color", "--trace", "--sim", "win64"])
        .arg(programs().join("sections.c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    for want in [
        "CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0x0, 0x3000, NULL) = 0x4",
        "MapViewOfFile(0x4, FILE_MAP_WRITE, 0x0, 0x0, 0x0) = 0x10000",
        "CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0x0, 0x1000, L\"Local\\\\seccion\")",
        "DuplicateHandle(GetCurrentProcess(), 0xc, GetCurrentProcess(), &dup, 0, FALSE, DUPLICATE_SAME_ACCESS) = TRUE",
        "UnmapViewOfFile(0x10000) = FALSE  GetLastError() = 487 (ERROR_INVALID_ADDRESS)",
        "CreateFileMappingA(0x10, NULL, PAGE_READONLY, 0x0, 0x0, NULL) = NULL  GetLastError() = 50 (ERROR_NOT_SUPPORTED)",
    ] {
        assert!(s.contains(want), "{want}\n{s}");
    }
}

const SECTIONS_SCRIPT: &str = "HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_RESERVE, 0, 0x20000, \"Local\\\\mapa\");\nchar *a = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);\nchar *b = MapViewOfFileEx(h, FILE_MAP_READ, 0, 0, 0x10000, (void *)0x40000000);\nVirtualAlloc(a + 0x3000, 0x2000, MEM_COMMIT, PAGE_READWRITE);\nHANDLE u = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READONLY, 0, 0x1000, NULL);\nMapViewOfFile(u, FILE_MAP_READ, 0, 0, 0);\nVirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);\n";

fn map_of_sections(format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.c"), SECTIONS_SCRIPT).unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args(["map", "--no-color", "--script", "s.c", "--format", format])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    text(&o.stdout)
}

#[test]
fn maps_show_views_as_mapped() {
    let t = map_of_sections("table");
    let lines: Vec<&str> = t.lines().collect();
    let row = |base: &str| -> &str {
        lines
            .iter()
            .find(|l| l.starts_with(base))
            .unwrap_or_else(|| panic!("{base}\n{t}"))
    };
    // The first view: reserved, then the committed pages, then reserved again; named.
    let first = row("0x00010000");
    assert!(
        first.contains(" reserve ") && first.contains(" mapped "),
        "{t}"
    );
    assert!(first.ends_with("Local\\mapa"), "{t}");
    let committed = row("0x00013000");
    assert!(committed.contains("commit   READWRITE") && committed.contains(" mapped "));
    assert!(committed.ends_with("Local\\mapa"));
    // The second view, at the address asked for, sees the commit with its own protection.
    let second = row("0x40003000");
    assert!(
        second.contains("commit   READONLY") && second.contains(" mapped "),
        "{t}"
    );
    // An unnamed section's view is mapped, with no name; private memory is private.
    let unnamed = lines
        .iter()
        .find(|l| l.contains(" mapped ") && !l.contains("Local"))
        .expect("the unnamed view");
    assert!(unnamed.trim_end().ends_with('#'), "{t}");
    assert!(t.contains(" private "));

    let j = map_of_sections("json");
    let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
    let regions = v["regions"].as_array().unwrap();
    let views: Vec<&serde_json::Value> = regions.iter().filter(|r| r["type"] == "mapped").collect();
    assert_eq!(views.len(), 7, "{j}");
    let named = views.iter().filter(|r| r["name"] == "Local\\mapa").count();
    assert_eq!(named, 6, "{j}");
    let r = regions.iter().find(|r| r["base"] == "0x40003000").unwrap();
    assert_eq!(
        (
            &r["state"],
            &r["protect"],
            &r["allocation_base"],
            &r["name"]
        ),
        (
            &serde_json::json!("commit"),
            &serde_json::json!("PAGE_READONLY"),
            &serde_json::json!("0x40000000"),
            &serde_json::json!("Local\\mapa")
        )
    );
    // Private memory and free memory carry no name.
    assert!(regions
        .iter()
        .filter(|r| r["type"] != "mapped")
        .all(|r| r.get("name").is_none()));

    let svg = map_of_sections("svg");
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(svg.contains("· mapped · Local\\mapa"), "{svg}");
    let html = map_of_sections("html");
    assert!(html.contains("<th>name</th>") && html.contains("<td>Local\\mapa</td>"));
}

const NATIVE_SECTIONS: &str = "int main(void) {\n    MEMORY_BASIC_INFORMATION mbi;\n    char *t = NULL;\n    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x2000, NULL);\n    char *a = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);\n    char *b = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);\n    a[100] = 42;\n    printf(\"b[100] = %d\\n\", b[100]);\n    while (VirtualQuery(t, &mbi, sizeof(mbi)) && !(mbi.State == MEM_COMMIT && mbi.Protect == PAGE_READWRITE))\n        t = (char *)mbi.BaseAddress + mbi.RegionSize;\n    printf(\"UnmapViewOfFile(tool): %d, error %lu\\n\", UnmapViewOfFile(mbi.BaseAddress), GetLastError());\n    printf(\"CloseHandle(not ours): %d, error %lu\\n\", CloseHandle((HANDLE)0x400), GetLastError());\n    printf(\"UnmapViewOfFile(a): %d\\n\", UnmapViewOfFile(a + 0x1000));\n    printf(\"CloseHandle(h): %d\\n\", CloseHandle(h));\n    printf(\"b[100] = %d\\n\", b[100]);\n    return 0;\n}\n";

#[test]
fn native_views_are_the_programs_own() {
    // On this process a program's views are its memory (it may write to them and unmap
    // them); the tool's memory and handles stay out of its reach (487, 6).
    let o = run_src("native_sections.c", NATIVE_SECTIONS, &["--native"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "b[100] = 42\nUnmapViewOfFile(tool): 0, error 487\nCloseHandle(not ours): 0, error 6\nUnmapViewOfFile(a): 1\nCloseHandle(h): 1\nb[100] = 42\n"
    );
}

const RING: &str = "int main(void)\n{\n    SIZE_T size = 0x10000;\n    char *p = (char *)VirtualAlloc2(NULL, NULL, 2 * size, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS, NULL, 0);\n    VirtualFree(p, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER);\n    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)size, NULL);\n    char *v1 = (char *)MapViewOfFile3(h, GetCurrentProcess(), p, 0, size, MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE, NULL, 0);\n    char *v2 = (char *)MapViewOfFile3(h, NULL, p + size, 0, size, MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE, NULL, 0);\n    CloseHandle(h);\n    strcpy(v1 + size - 3, \"ring\");\n    printf(\"%d %d across the middle: %s, wrapped: %c\\n\", v1 == p, v2 == p + size, v1 + size - 3, v1[0]);\n    printf(\"unmap to placeholder: %d\\n\", UnmapViewOfFileEx(v1, MEM_PRESERVE_PLACEHOLDER));\n    MEMORY_BASIC_INFORMATION mbi;\n    VirtualQuery(p, &mbi, sizeof(mbi));\n    printf(\"state %#lx type %#lx\\n\", mbi.State, mbi.Type);\n    printf(\"bad process: %p %lu\\n\", MapViewOfFile3(h, (HANDLE)0x1234, NULL, 0, 0, 0, PAGE_READWRITE, NULL, 0), GetLastError());\n    printf(\"UnmapViewOfFile2(NULL): %d %lu\\n\", UnmapViewOfFile2(NULL, v2, 0), GetLastError());\n    printf(\"UnmapViewOfFile2: %d\\n\", UnmapViewOfFile2(GetCurrentProcess(), v2, 0));\n    return 0;\n}\n";

#[test]
fn a_circular_buffer_of_two_views_in_placeholders() {
    // PH3: MapViewOfFile3(MEM_REPLACE_PLACEHOLDER) into both halves of a split placeholder;
    // a record across the middle wraps to the start. On the native space too (the
    // placeholders are the program's own).
    for mode in [&["--sim", "win32"][..], &["--sim", "win64"], &["--native"]] {
        let o = run_src("ring.c", RING, mode);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stdout),
            "1 1 across the middle: ring, wrapped: g\n\
             unmap to placeholder: 1\n\
             state 0x2000 type 0x20000\n\
             bad process: (nil) 6\n\
             UnmapViewOfFile2(NULL): 0 6\n\
             UnmapViewOfFile2: 1\n",
            "{mode:?}"
        );
    }
}

// --- `virtmem status` (issue 15 item 6). ---

/// A /proc/meminfo value in bytes.
fn meminfo_bytes(key: &str) -> u64 {
    let t = std::fs::read_to_string("/proc/meminfo").unwrap();
    let l = t
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn status_table_and_json() {
    let out = run(&["status", "--no-color"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for k in [
        "GlobalMemoryStatusEx",
        "physical total",
        "commit limit",
        "GetProcessMemoryInfo",
        "working set",
        "private usage",
        "working set minimum",
        "VirtualLock quota",
        "DEP",
    ] {
        assert!(t.contains(k), "{k} missing in:\n{t}");
    }
    assert!(
        t.contains(&format!("({})", meminfo_bytes("MemTotal"))),
        "{t}"
    );

    let out = run(&["status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["system"]["total_phys"], meminfo_bytes("MemTotal"));
    let p = &v["process"];
    let ws = p["working_set_size"].as_u64().unwrap();
    assert!(ws > 0 && p["peak_working_set_size"].as_u64().unwrap() >= ws);
    // The working-set minimum is the lock limit the child inherited from this process.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) },
        0
    );
    if lim.rlim_cur != libc::RLIM_INFINITY {
        assert_eq!(p["working_set_minimum"], lim.rlim_cur);
    }
    assert!(p["working_set_maximum"].as_u64() >= p["working_set_minimum"].as_u64());
    assert!(p["dep"]["enabled"].is_boolean());
    assert!(!(v["system"]["low_memory"] == true && v["system"]["high_memory"] == true));
    // The tool allocates nothing through virtmem before printing: no private commit.
    assert_eq!(p["private_usage"], 0);
}

// ---- map --pid: another process ----

/// A `sleep 30` child, killed when dropped.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn map_pid_draws_another_process_in_every_format() {
    let kid = Sleeper(Command::new("sleep").arg("30").spawn().expect("sleep runs"));
    let pid = kid.0.id().to_string();
    // The sleeper's stack, as its kernel lists it, must show up in every format.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let stack = maps.lines().find(|l| l.ends_with("[stack]")).unwrap();
    let stack_start = u64::from_str_radix(stack.split('-').next().unwrap(), 16).unwrap();

    let o = run(&["map", "--pid", &pid, "--color", "never"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains(&format!("process {pid} (sleep")), "{t}");
    assert!(t.contains(&format!("{stack_start:x}")), "{t}");
    assert!(
        t.contains("image") && t.contains("private") && t.contains("free"),
        "{t}"
    );
    assert!(
        t.contains("sleep"),
        "the executable's mappings are named: {t}"
    );

    let o = run(&["map", "--pid", &pid, "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let regions = j["regions"].as_array().unwrap();
    assert!(regions.len() > 5);
    assert!(text(&o.stdout).contains(&format!("{stack_start:x}")));

    for (format, marker) in [("svg", "<svg"), ("html", "<html")] {
        let o = run(&["map", "--pid", &pid, "--format", format]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains(marker), "{format}");
    }
}

#[test]
fn map_pid_of_no_process_is_an_error() {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let o = run(&["map", "--pid", max.trim(), "--color", "never"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!("cannot open process {}", max.trim())),
        "{e}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn map_pid_we_may_not_read_is_a_clear_error() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid only reads this process's credentials.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("skipped: needs root, to run the command as uid nobody");
        return;
    }
    let o = bin()
        .args(["map", "--pid", "1", "--color", "never"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("virtmem runs as nobody");
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("cannot open process 1: access denied"), "{e}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Heaps and Global/Local memory in a simulated process (issue 16 item 6): the program's
/// results, and the map labelling the heaps' reservations as heaps (table and JSON).
#[test]
fn heap_program_runs_and_the_map_labels_heaps() {
    let prog = examples().join("heap.c");
    for sim in ["win32", "win64"] {
        let o = bin()
            .args(["run", "--no-color", "--sim", sim, "--map"])
            .arg(&prog)
            .output()
            .expect("virtmem runs");
        let s = text(&o.stdout);
        assert!(o.status.success(), "{sim}: {s}{}", text(&o.stderr));
        for want in [
            "size 100, first byte 0",
            "grown to 20000, last byte kept: 7",
            "refused: error 87",
            "HeapWalk: 1 busy block(s), then error 259",
            "flags 1",
            "size 4096, text \"moveable\"",
        ] {
            assert!(s.contains(want), "{sim}: no {want:?} in\n{s}");
        }
        let heap_rows = s.lines().filter(|l| l.ends_with("heap (process)")).count();
        assert!(heap_rows >= 2, "{sim}: committed and reserved parts\n{s}");
        assert!(s.lines().any(|l| l.contains("heap 0x")), "{sim}: {s}");
        assert!(s.contains("heap handle table (Global/Local)"), "{sim}: {s}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&prog, dir.path().join("s.c")).expect("copy");
    let o = bin()
        .current_dir(dir.path())
        .args(["map", "--no-color", "--script", "s.c", "--format", "json"])
        .output()
        .expect("virtmem runs");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let names: Vec<&str> = j["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"heap (process)"), "{names:?}");
    // Native programs do not get the tool's heaps.
    let o = run_src(
        "n.c",
        "void *p = HeapAlloc(GetProcessHeap(), 0, 8);\nprintf(\"%p %d\\n\", p, (int)GetLastError());\n",
        &["--native"],
    );
    assert!(text(&o.stdout).contains(" 120"), "{}", text(&o.stdout));
}
