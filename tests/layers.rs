//! The layers of src/: imports point down only, rooms on one floor do not import each other,
//! and no module imports another that imports it back (directly or around a circle).
//!
//! Reads the sources as text: every `crate::a::b` path in a library file (and `pimg::a::b`
//! in the binary's files) is an import of the deepest module it names.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Floors from the bottom; a module may import only from floors below its own.
const FLOORS: &[&[&str]] = &[
    &["tree", "epoch", "ids", "digest", "progress"],
    &["codec"],
    &["profile", "inputs"],
    &["artifact", "firmware", "publish"],
    &["build"],
    &["prove"],
    &["cli"],
    &["main"],
];

fn floor_of(top: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&top))
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/codec/fat/read.rs` → `codec::fat::read`; `src/codec/mod.rs` → `codec`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every module path the text names after `prefix::`, stripped of items: the longest prefix
/// that is a known module.
fn imports(text: &str, prefix: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let needle = format!("{prefix}::");
    for (at, _) in text.match_indices(&needle) {
        if at > 0 {
            let before = text.as_bytes()[at - 1];
            if before.is_ascii_alphanumeric() || before == b'_' {
                continue;
            }
        }
        let rest = &text[at + needle.len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=segs.len()).rev() {
            let m = segs[..n].join("::");
            if known.contains(&m) {
                found.insert(m);
                break;
            }
        }
    }
    found
}

/// Lines that are comments or strings in tests are not imports; code is.
fn code_only(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("*"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files.sort();
    let lib: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            let m = module_of(src, f);
            m != "main" && m != "lib" && !m.starts_with("cli")
        })
        .collect();
    let known: BTreeSet<String> = lib.iter().map(|f| module_of(src, f)).collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let m = module_of(src, f);
        if m == "lib" {
            continue;
        }
        let text = code_only(&fs::read_to_string(f).unwrap());
        let mut deps = imports(&text, "crate", &known);
        deps.extend(imports(&text, "pimg", &known));
        if m == "main" || m.starts_with("cli") {
            let cli: BTreeSet<String> = files
                .iter()
                .map(|f| module_of(src, f))
                .filter(|m| m.starts_with("cli"))
                .collect();
            deps.extend(imports(&text, "crate", &cli));
        }
        deps.remove(&m);
        g.insert(m, deps);
    }
    g
}

fn top(m: &str) -> &str {
    m.split("::").next().unwrap()
}

/// Every import that goes up a floor or sideways to another room on the same floor.
fn violations(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (m, deps) in g {
        let Some(mine) = floor_of(top(m)) else {
            bad.push(format!(
                "{m}: module on no floor; add it to FLOORS in tests/layers.rs"
            ));
            continue;
        };
        for d in deps {
            if top(d) == top(m) {
                continue;
            }
            match floor_of(top(d)) {
                Some(theirs) if theirs < mine => {}
                Some(theirs) if theirs == mine => bad.push(format!(
                    "{m} imports {d}: rooms on one floor ({}) must not import each other",
                    FLOORS[mine].join(", ")
                )),
                Some(_) => bad.push(format!("{m} imports {d}, which is on a floor above")),
                None => bad.push(format!("{m} imports {d}, a module on no floor")),
            }
        }
    }
    bad
}

/// One circle of imports, if any: a path m → … → m.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            match state.get(d.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == d).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if !state.contains_key(m) {
            if let Some(c) = visit(m, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn imports_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&graph(&src));
    assert!(bad.is_empty(), "layer violations:\n  {}", bad.join("\n  "));
}

#[test]
fn no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if let Some(c) = cycle(&graph(&src)) {
        panic!("import cycle: {}", c.join(" → "));
    }
}

/// The checker itself can fail: an upward import, a sideways one and a circle are caught.
#[test]
fn the_checker_catches_upward_sideways_and_circular_imports() {
    let mut g = BTreeMap::new();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    g.insert("codec::fat::read".to_string(), set(&["build"]));
    g.insert("profile::board".to_string(), set(&["inputs"]));
    g.insert("inputs".to_string(), set(&["tree"]));
    g.insert("build".to_string(), set(&["codec::fat::read"]));
    g.insert("tree".to_string(), set(&[]));
    let bad = violations(&g);
    assert!(bad
        .iter()
        .any(|b| b.contains("codec::fat::read imports build")));
    assert!(bad
        .iter()
        .any(|b| b.contains("profile::board imports inputs")));
    assert_eq!(bad.len(), 2, "{bad:?}");
    let c = cycle(&g).expect("the circle build → codec::fat::read → build");
    assert_eq!(c.first(), c.last());
}
