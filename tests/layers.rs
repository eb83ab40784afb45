//! The layers of src/: imports point down only, rooms on one floor do not import each other,
//! and no module imports another that imports it back (directly or around a circle); and the
//! build's stages and artifacts stay in functions short enough to read at once.
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

/// The longest function, in lines from its `fn` line to its closing brace, that the build's
/// stages and the artifacts may have.
const MAX_FN_LINES: usize = 80;

/// The folders whose functions [`MAX_FN_LINES`] bounds.
const SHORT_FN_DIRS: &[&str] = &["build", "artifact"];

/// `text` with every comment, string and character literal blanked (newlines kept), so that
/// the braces left are the code's.
fn blank_literals(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let word_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if !word_before && (b[i] == b'r' || b[i..].starts_with(b"br")) {
            // A raw string: r"…", r#"…"#, br"…"; else just an identifier starting with r.
            let mut j = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
            j += hashes;
            if b.get(j) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            i = j + 1;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{7f}'); a lifetime has no closing quote.
            let len = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            i += len.unwrap_or(1);
            if len.is_none() {
                continue;
            }
        } else {
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    out
}

/// The index just past the brace that closes the one at `open`.
fn closing_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The functions of `text` longer than `max` lines, as `name (N lines, from line L)`;
/// `#[cfg(test)]` modules are skipped.
fn long_functions(text: &str, max: usize) -> Vec<String> {
    let code = blank_literals(text);
    let line_of = |at: usize| code[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts_word = i == 0 || !is_word(code[i - 1]);
        if starts_word && rest.starts_with(b"#[cfg(test)]") {
            // Skip the item it guards when that is a module with a body.
            let after = i + b"#[cfg(test)]".len();
            let item: Vec<u8> = code[after..].iter().copied().take(200).collect();
            let item = String::from_utf8_lossy(&item);
            let body = item.find(['{', ';']);
            if item.trim_start().starts_with("mod ")
                && body.is_some_and(|p| item.as_bytes()[p] == b'{')
            {
                i = closing_brace(&code, after + body.unwrap());
                continue;
            }
        }
        if starts_word && rest.starts_with(b"fn ") {
            let name: String = rest[3..]
                .iter()
                .skip_while(|c| c.is_ascii_whitespace())
                .take_while(|&&c| is_word(c))
                .map(|&c| c as char)
                .collect();
            // A declaration without a body (in a trait) ends at `;` before any `{`.
            let body = rest.iter().position(|&c| c == b'{' || c == b';');
            if let Some(p) = body.filter(|&p| !name.is_empty() && rest[p] == b'{') {
                let end = closing_brace(&code, i + p);
                let (first, last) = (line_of(i), line_of(end - 1));
                let lines = last - first + 1;
                if lines > max {
                    found.push(format!("{name} ({lines} lines, from line {first})"));
                }
            }
        }
        i += 1;
    }
    found
}

#[test]
fn no_function_in_the_build_or_the_artifacts_is_longer_than_80_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in SHORT_FN_DIRS {
        rs_files(&src.join(dir), &mut files);
    }
    files.sort();
    let mut long = Vec::new();
    for f in &files {
        for l in long_functions(&fs::read_to_string(f).unwrap(), MAX_FN_LINES) {
            long.push(format!("{}: {l}", f.strip_prefix(&src).unwrap().display()));
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them into named steps):\n  {}",
        long.join("\n  ")
    );
}

/// The length checker itself can fail: a function one line too long is caught, one at the
/// limit is not, and braces in strings, characters, comments and test modules do not count.
#[test]
fn the_length_checker_counts_from_fn_to_its_closing_brace() {
    let body = |n: usize| "    let _x = 1;\n".repeat(n);
    let text = format!(
        "/// A brace in a comment: {{\n\
         fn at_limit() {{\n{}}}\n\
         pub(crate) fn too_long<'a>(s: &'a str) -> char {{\n\
         let _ = \"}}\"; let _ = r#\"{{\"#; let _ = '}}'; /* }} */\n{}'{{'\n}}\n\
         trait T {{ fn declared(&self); }}\n\
         #[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{}    }}\n}}\n",
        body(78),
        body(77),
        body(100),
    );
    assert_eq!(
        long_functions(&text, 80),
        vec!["too_long (81 lines, from line 82)".to_string()]
    );
    assert!(long_functions(&text, 81).is_empty());
}
