//! Embeds the shipped board profiles and overlays, and the Cargo.lock digest, into the binary
//! so that `cargo install` users get them and the buildinfo can name the exact dependency set.
// A build script reads cargo's environment and writes into OUT_DIR; it sorts every listing.
#![allow(clippy::disallowed_methods)]

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut out = String::new();

    println!("cargo:rerun-if-changed=boards");
    println!("cargo:rerun-if-changed=overlays");
    println!("cargo:rerun-if-changed=Cargo.lock");

    out.push_str("/// Shipped board profiles: (name, TOML text), sorted by name.\n");
    out.push_str("pub static BOARDS: &[(&str, &str)] = &[\n");
    let mut boards: Vec<PathBuf> = fs::read_dir(root.join("boards"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    boards.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    boards.sort();
    for b in &boards {
        println!("cargo:rerun-if-changed={}", b.display());
        let name = b.file_stem().unwrap().to_str().unwrap();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            b.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    out.push_str("/// Shipped overlays: (name, entries in bytewise path order).\n");
    out.push_str("pub static OVERLAYS: &[(&str, &[EmbeddedEntry])] = &[\n");
    let mut overlays: Vec<PathBuf> = fs::read_dir(root.join("overlays"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    overlays.retain(|p| p.is_dir());
    overlays.sort();
    for o in &overlays {
        let name = o.file_name().unwrap().to_str().unwrap();
        writeln!(out, "    ({name:?}, &[").unwrap();
        let mut entries = Vec::new();
        walk(o, o, &mut entries);
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (rel, line) in entries {
            let _ = rel;
            writeln!(out, "        {line},").unwrap();
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n\n");

    let lock = fs::read(root.join("Cargo.lock")).unwrap_or_default();
    let digest = Sha256::digest(&lock);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    writeln!(
        out,
        "/// SHA-256 of the Cargo.lock this binary was built with."
    )
    .unwrap();
    writeln!(out, "pub const CARGO_LOCK_SHA256: &str = {hex:?};").unwrap();

    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("embedded.rs");
    fs::write(dest, out).unwrap();
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    children.sort();
    for c in children {
        let rel = c
            .strip_prefix(base)
            .unwrap()
            .to_str()
            .expect("overlay paths must be UTF-8");
        let meta = fs::symlink_metadata(&c).unwrap();
        println!("cargo:rerun-if-changed={}", c.display());
        let line = if meta.file_type().is_symlink() {
            let target = fs::read_link(&c).unwrap();
            format!(
                "EmbeddedEntry {{ path: {rel:?}, kind: EmbeddedKind::Symlink({:?}) }}",
                target.to_str().unwrap()
            )
        } else if meta.is_dir() {
            walk(base, &c, out);
            format!("EmbeddedEntry {{ path: {rel:?}, kind: EmbeddedKind::Dir }}")
        } else {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o100 != 0;
            format!(
                "EmbeddedEntry {{ path: {rel:?}, kind: EmbeddedKind::File(include_bytes!({:?}), {exec}) }}",
                c.display().to_string()
            )
        };
        out.push((rel.to_string(), line));
    }
}
