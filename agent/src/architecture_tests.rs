//! Checks that keep the crate's shape as docs/ARCHITECTURE.md describes it: the module map in
//! `lib.rs` lists every module, the leaves import nothing of the crate, the store imports no
//! feature, no feature imports `config`, and no module is on an import cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::<module>` paths each top-level module uses, from its source files (comments skipped).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative.components().next().expect("a file").as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" || top == "architecture_tests" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        let entry = edges.entry(top.clone()).or_default();
        // Test code does not count: an inline `#[cfg(test)] mod … {` ends the file's shipped part,
        // and any other `#[cfg(test)]` item (`mod tests;`, a test-only enum variant) is one line.
        let mut skip_next = false;
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("#[cfg(test)]") {
                let next = lines.get(n + 1).map_or("", |l| l.trim_start());
                let module =
                    next.starts_with("mod ") || next.starts_with("pub mod ") || next.starts_with("pub(crate) mod ");
                if module && next.ends_with('{') {
                    break;
                }
                skip_next = true;
                continue;
            }
            if std::mem::take(&mut skip_next) || trimmed.starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("crate::") {
                let name: String =
                    line[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != top {
                    entry.insert(name);
                }
            }
        }
    }
    edges
}

/// The modules that sit on an import cycle (strongly connected components larger than one).
fn tangled(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    edges.keys().filter(|m| reach(m).contains(*m)).cloned().collect()
}

#[test]
fn leaves_import_nothing_of_the_crate_and_the_store_no_feature() {
    let edges = imports();
    for leaf in ["units", "timestamp", "exit", "counters", "backoff", "secrets", "shutdown", "systemd", "telemetry"] {
        assert_eq!(edges.get(leaf).cloned().unwrap_or_default(), BTreeSet::new(), "{leaf} must be a leaf");
    }
    let store = edges.get("store").cloned().unwrap_or_default();
    let allowed: BTreeSet<String> = ["event", "timestamp", "units"].iter().map(|s| s.to_string()).collect();
    assert!(store.is_subset(&allowed), "the store may use only {allowed:?}; it uses {store:?}");
    for feature in ["telemetry", "tls", "store", "status", "devices", "printing", "sinks", "sources", "stations"] {
        assert!(
            !edges.get(feature).is_some_and(|e| e.contains("config")),
            "{feature} imports config: the feature owns its config type, config composes them"
        );
    }
}

#[test]
fn no_module_is_on_an_import_cycle() {
    let edges = imports();
    let tangled = tangled(&edges);
    assert!(
        tangled.is_empty(),
        "modules on an import cycle: {tangled:?}; the rules in docs/ARCHITECTURE.md say which way each may import ({edges:?})"
    );
}

#[test]
fn the_module_map_in_lib_rs_lists_every_module() {
    let lib = include_str!("lib.rs");
    let map: String = lib.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
    for line in lib.lines() {
        let declared = line.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
        if let Some(name) = declared.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            if name == "architecture_tests" {
                continue;
            }
            assert!(
                map.contains(&format!("[`{name}`]")) || map.contains(&format!("`{name}`")),
                "lib.rs declares `{name}` but its module map does not describe it"
            );
        }
    }
}
