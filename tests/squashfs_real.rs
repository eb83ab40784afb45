//! A modloop of Debian's real arm64 module tree (qemu/setup.sh fetches the kernel package
//! into inputs/): squashfs-tools must list and extract pimg's image exactly, one and two
//! threads must give the same bytes, and pimg's reader must read mksquashfs's image of the
//! same tree back to the same files.
// Tests make their fixtures and read their results with the file system and clock directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{real_inputs, referee, squashfs::*};
use pimg::codec::squashfs::write::{write_squashfs, SquashfsEntry, SquashfsKind, SquashfsOptions};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

const EPOCH: u32 = 1_700_000_000;

enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// Everything under `dir` as (path relative to it, kind, permission bits), sorted.
fn walk(dir: &Path) -> Vec<(String, Kind, u16)> {
    fn go(base: &Path, d: &Path, out: &mut Vec<(String, Kind, u16)>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = (meta.permissions().mode() & 0o7777) as u16;
            if meta.is_dir() {
                out.push((rel, Kind::Dir, mode));
                go(base, &p, out);
            } else if meta.is_symlink() {
                let t = fs::read_link(&p).unwrap().to_str().unwrap().to_string();
                out.push((rel, Kind::Symlink(t), mode));
            } else {
                out.push((rel, Kind::File(fs::read(&p).unwrap()), mode));
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn real_module_tree_modloop() {
    let inputs = real_inputs();
    let mut debs: Vec<_> = fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("linux-image-") && n.ends_with("_arm64.deb")
        })
        .collect();
    debs.sort();
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    referee("dpkg-deb", "dpkg")
        .arg("-x")
        .arg(&debs[0])
        .arg(&x)
        .run();
    let src = x.join("usr/lib");
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let tree = walk(&src);
    let entries: Vec<SquashfsEntry> = tree
        .iter()
        .map(|(path, kind, mode)| SquashfsEntry {
            path,
            kind: match kind {
                Kind::Dir => SquashfsKind::Dir,
                Kind::File(d) => SquashfsKind::File(d),
                Kind::Symlink(t) => SquashfsKind::Symlink(t),
            },
            mode: *mode,
            uid: 0,
            gid: 0,
        })
        .collect();
    let input_bytes: usize = tree
        .iter()
        .map(|(_, k, _)| match k {
            Kind::File(d) => d.len(),
            _ => 0,
        })
        .sum();
    let files = tree
        .iter()
        .filter(|(_, k, _)| matches!(k, Kind::File(_)))
        .count();

    let mut images = Vec::new();
    for threads in [1, 2] {
        let opts = SquashfsOptions {
            mtime: EPOCH,
            threads,
            ..SquashfsOptions::default()
        };
        let start = Instant::now();
        let mut img = Vec::new();
        let stats = write_squashfs(&mut img, &entries, 0o755, &opts).unwrap();
        eprintln!(
            "pimg gzip-9, {threads} thread(s): {files} files, {input_bytes} bytes in, {} bytes out, {:.2} s; {stats:?}",
            img.len(),
            start.elapsed().as_secs_f64()
        );
        images.push(img);
    }
    assert!(
        images[0] == images[1],
        "1 and 2 threads give different images"
    );
    let ours = tmp.path().join("ours.sqfs");
    fs::write(&ours, &images[0]).unwrap();

    // unsquashfs and pimg's reader agree on the listing; both give back the input bytes.
    let read = reader_agrees(&ours);
    let out = tmp.path().join("out");
    unsquashfs(&["-n", "-d", out.to_str().unwrap(), ours.to_str().unwrap()]);
    let extracted = walk(&out);
    assert_eq!(extracted.len(), tree.len());
    for ((p, k, m), (q, l, n)) in tree.iter().zip(&extracted) {
        assert_eq!((p, m), (q, n));
        match (k, l) {
            (Kind::File(a), Kind::File(b)) => {
                assert!(a == b, "'{p}' extracted differs");
                assert!(read[p] == *a, "'{p}' read back differs");
            }
            (Kind::Dir, Kind::Dir) => {}
            (Kind::Symlink(a), Kind::Symlink(b)) => assert_eq!(a, b),
            _ => panic!("'{p}' changed kind"),
        }
    }

    // mksquashfs's image of the same tree, read by pimg.
    let theirs = tmp.path().join("theirs.sqfs");
    let epoch = EPOCH.to_string();
    let start = Instant::now();
    mksquashfs(&src, &theirs, &epoch, &[]);
    eprintln!(
        "mksquashfs gzip, 2 processors: {} bytes, {:.2} s",
        fs::metadata(&theirs).unwrap().len(),
        start.elapsed().as_secs_f64()
    );
    let read: BTreeMap<String, Vec<u8>> = reader_agrees(&theirs);
    for (p, k, _) in &tree {
        if let Kind::File(d) = k {
            assert!(
                read[p] == *d,
                "'{p}' of mksquashfs's image read back differs"
            );
        }
    }
}
