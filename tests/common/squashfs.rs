//! squashfs helpers: `unsquashfs -lln` parsed, and pimg's reader checked against it.

use super::referee;
use pimg::codec::squashfs::read::{Squashfs, SquashfsEntryKind, SquashfsListing};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// `unsquashfs ARGS` with TZ=UTC; fails the test unless it exits 0; what it printed.
pub fn unsquashfs(args: &[&str]) -> String {
    let out = referee("unsquashfs", "squashfs-tools")
        .args(args)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .bytes();
    String::from_utf8(out).unwrap()
}

/// `mksquashfs SRC IMG` as the referees run it: root owners, every time `epoch`, two
/// processors, then `extra`; fails the test unless it exits 0.
pub fn mksquashfs(src: &Path, img: &Path, epoch: &str, extra: &[&str]) {
    referee("mksquashfs", "squashfs-tools")
        .arg(src)
        .arg(img)
        .args(["-all-root", "-mkfs-time", epoch, "-all-time", epoch])
        .args(["-noappend", "-no-progress", "-quiet", "-processors", "2"])
        .args(extra)
        .run();
}

/// One line of `unsquashfs -lln`: (path below the root, permissions, owner, size, time,
/// symlink target), the root as "".
pub type Line = (String, String, String, u64, String, Option<String>);

pub fn parse_listing(text: &str) -> BTreeMap<String, Line> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || !f[5].starts_with("squashfs-root") {
            continue;
        }
        let path = f[5]
            .strip_prefix("squashfs-root")
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        let target = (f.len() == 8 && f[6] == "->").then(|| f[7].to_string());
        let line = (
            path.clone(),
            f[0].to_string(),
            f[1].to_string(),
            f[2].parse().unwrap(),
            format!("{} {}", f[3], f[4]),
            target,
        );
        assert!(out.insert(path, line).is_none(), "path listed twice: {l}");
    }
    out
}

/// `ls -l`-style permissions of a listing entry.
pub fn perms(kind: SquashfsEntryKind, mode: u16) -> String {
    let t = match kind {
        SquashfsEntryKind::Dir => 'd',
        SquashfsEntryKind::File => '-',
        SquashfsEntryKind::Symlink => 'l',
        SquashfsEntryKind::BlockDevice => 'b',
        SquashfsEntryKind::CharDevice => 'c',
        SquashfsEntryKind::Fifo => 'p',
        SquashfsEntryKind::Socket => 's',
    };
    let mut s = String::from(t);
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

pub fn shown_time(mtime: u32) -> String {
    let iso = pimg::epoch::iso8601(i64::from(mtime));
    iso[..16].replace('T', " ")
}

pub fn line_of(l: &SquashfsListing) -> Line {
    (
        l.path.clone(),
        perms(l.kind, l.mode),
        format!("{}/{}", l.uid, l.gid),
        l.size,
        shown_time(l.mtime),
        l.target.clone(),
    )
}

/// pimg's reader lists `img` exactly as `unsquashfs -lln` does (root included) and reads
/// every file; returns the files' contents by path.
pub fn reader_agrees(img_path: &Path) -> BTreeMap<String, Vec<u8>> {
    let text = unsquashfs(&["-lln", img_path.to_str().unwrap()]);
    let theirs = parse_listing(&text);
    let file = fs::File::open(img_path).unwrap();
    let len = file.metadata().unwrap().len();
    let mut fs = Squashfs::open(file, len).unwrap();
    let listed = fs.entries().unwrap();
    let mut ours: BTreeMap<String, Line> = listed
        .iter()
        .map(|l| (l.path.clone(), line_of(l)))
        .collect();
    ours.insert(String::new(), line_of(&fs.root().unwrap()));
    assert_eq!(ours.len(), theirs.len(), "entry counts differ");
    for (path, line) in &theirs {
        assert_eq!(
            ours.get(path),
            Some(line),
            "'{path}' differs from unsquashfs -lln"
        );
    }
    let mut contents = BTreeMap::new();
    for l in listed.iter().filter(|l| l.kind == SquashfsEntryKind::File) {
        contents.insert(l.path.clone(), fs.read_file(l, 1 << 30).unwrap());
    }
    contents
}
