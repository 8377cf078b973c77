//! The layers (ARCHITECTURE.md) stay layers: a module never names one above it. Read from the
//! source: every `crate::<module>` path in a layer's files must name that layer or one below.

use std::path::{Path, PathBuf};

/// Each layer, bottom up, with the top-level modules it consists of.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["vocab"]),
    ("OS seam", &["os"]),
    ("rules", &["rules", "error"]),
    ("engine", &["engine"]),
    (
        "faces",
        &[
            "win32",
            "safe",
            "native",
            "sim",
            "spaces",
            "internals",
            "lib",
        ],
    ),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn level(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut problems = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_str().unwrap();
        let top = top.strip_suffix(".rs").unwrap_or(top);
        let mine = level(top).unwrap_or_else(|| panic!("{}: module in no layer", rel.display()));
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + 7..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(theirs) = level(&name) {
                    if theirs > mine {
                        problems.push(format!(
                            "{}:{}: the {} layer names `crate::{name}` ({})",
                            rel.display(),
                            n + 1,
                            LAYERS[mine].0,
                            LAYERS[theirs].0
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
