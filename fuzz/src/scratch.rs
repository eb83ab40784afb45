//! A folder of this fuzzing process's own, emptied before each input is written into it: the
//! readers these targets drive take paths, as they do for a stranger's published folder.
#![allow(dead_code)] // each target uses the helpers it needs
use std::path::{Path, PathBuf};

pub fn folder(target: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pimg-fuzz-{target}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Splits `data` at its first two NUL bytes into up to three parts.
pub fn parts(data: &[u8]) -> [&[u8]; 3] {
    let mut it = data.splitn(3, |&b| b == 0);
    [
        it.next().unwrap_or(&[]),
        it.next().unwrap_or(&[]),
        it.next().unwrap_or(&[]),
    ]
}

pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, data).unwrap();
    p
}

/// A fresh folder holding `data`'s three parts (see `parts`) under these names.
pub fn folder_of_parts(target: &str, data: &[u8], names: [&str; 3]) -> PathBuf {
    let dir = folder(target);
    for (name, part) in names.into_iter().zip(parts(data)) {
        write(&dir, name, part);
    }
    dir
}
