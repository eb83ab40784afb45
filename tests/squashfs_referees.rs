//! squashfs-tools judges pimg's squashfs writer (`unsquashfs -lln/-lls`, `-d`, `-s`), and
//! mksquashfs's images judge pimg's reader. A missing tool fails the test with an install
//! hint; these checks are the point of the file, so they are never skipped.
// Tests make their fixtures and read their results with the file system directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{noise, run, sha256_hex, squashfs::*};
use pimg::codec::squashfs::read::{Squashfs, SquashfsEntryKind};
use pimg::codec::squashfs::write::{
    write_squashfs, SquashfsEntry, SquashfsKind, SquashfsOptions, SquashfsStats,
};
use pimg::codec::squashfs::Compression;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// 2023-11-14 22:13:20 UTC.
const EPOCH: u32 = 1_700_000_000;
/// How `unsquashfs -lls` shows EPOCH with TZ=UTC.
const EPOCH_SHOWN: &str = "2023-11-14 22:13";
const BLOCK: usize = 128 * 1024;

/// Text-like bytes that compress.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[(i / 7 + seed) % 37])
        .collect()
}

/// What a fixture entry is, owned.
#[derive(Clone, Debug)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Clone, Debug)]
struct Item {
    path: String,
    kind: Kind,
    mode: u16,
    uid: u32,
    gid: u32,
}

fn item(path: &str, kind: Kind, mode: u16) -> Item {
    Item {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

/// A modloop-like tree: nested directories, an empty directory and file, a file of exactly
/// one block, one of several blocks with a short tail, incompressible data (whole blocks and
/// a small file), symlinks, modes 0644/0755/0600/0700, owners 0 and 1000, and a directory of
/// 300 modules (more than one directory header, several fragment blocks).
fn fixture() -> Vec<Item> {
    let k = "usr/lib/modules/6.12.0";
    let mut v = vec![
        item("usr", Kind::Dir, 0o755),
        item("usr/lib", Kind::Dir, 0o755),
        item("usr/lib/modules", Kind::Dir, 0o755),
        item(k, Kind::Dir, 0o755),
        item(&format!("{k}/kernel"), Kind::Dir, 0o755),
        item(&format!("{k}/kernel/drivers"), Kind::Dir, 0o755),
        item(&format!("{k}/kernel/drivers/mmc"), Kind::Dir, 0o755),
        item(
            &format!("{k}/kernel/drivers/mmc/sdhci.ko.xz"),
            Kind::File(noise(30_000, 1)),
            0o644,
        ),
        item(
            &format!("{k}/modules.order"),
            Kind::File(pattern(5000, 3)),
            0o644,
        ),
        item(&format!("{k}/kernel/m"), Kind::Dir, 0o755),
        item("etc", Kind::Dir, 0o755),
        item("etc/empty", Kind::File(Vec::new()), 0o644),
        item("lib", Kind::Dir, 0o755),
        item(
            "lib/modules",
            Kind::Symlink("../usr/lib/modules".into()),
            0o777,
        ),
        item("lib/firmware", Kind::Dir, 0o755),
        item(
            "lib/firmware/one-block.bin",
            Kind::File(pattern(BLOCK, 5)),
            0o644,
        ),
        item(
            "lib/firmware/several.bin",
            Kind::File(pattern(3 * BLOCK + 1234, 9)),
            0o755,
        ),
        item(
            "lib/firmware/noise.bin",
            Kind::File(noise(2 * BLOCK + 17, 2)),
            0o600,
        ),
        item("usr/bin", Kind::Dir, 0o755),
        item("usr/bin/sh", Kind::Symlink("busybox".into()), 0o777),
        item("mnt", Kind::Dir, 0o755),
        Item {
            uid: 1000,
            gid: 1000,
            ..item("home", Kind::Dir, 0o755)
        },
        Item {
            uid: 1000,
            gid: 1000,
            ..item("home/user", Kind::Dir, 0o700)
        },
        Item {
            uid: 1000,
            gid: 100,
            ..item("home/user/notes", Kind::File(b"remember\n".to_vec()), 0o600)
        },
    ];
    for i in 0..300 {
        v.push(item(
            &format!("{k}/kernel/m/module-{i:03}.ko.xz"),
            Kind::File(noise(400 + i, 100 + i as u32)),
            0o644,
        ));
    }
    // Any order in: the writer sorts.
    v.reverse();
    v
}

fn entries(items: &[Item]) -> Vec<SquashfsEntry<'_>> {
    items
        .iter()
        .map(|i| SquashfsEntry {
            path: &i.path,
            kind: match &i.kind {
                Kind::Dir => SquashfsKind::Dir,
                Kind::File(d) => SquashfsKind::File(d),
                Kind::Symlink(t) => SquashfsKind::Symlink(t),
            },
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
        })
        .collect()
}

fn build(items: &[Item], compression: Compression, threads: usize) -> (Vec<u8>, SquashfsStats) {
    let opts = SquashfsOptions {
        mtime: EPOCH,
        block_size: BLOCK as u32,
        compression,
        threads,
    };
    let mut out = Vec::new();
    let stats = write_squashfs(&mut out, &entries(items), 0o755, &opts).unwrap();
    (out, stats)
}

/// The tree unsquashfs lists for our image is exactly the fixture.
fn listing_is_fixture(listing: &BTreeMap<String, Line>, items: &[Item]) {
    let mut want: BTreeMap<&str, &Item> = items.iter().map(|i| (i.path.as_str(), i)).collect();
    let root = listing.get("").expect("unsquashfs lists the root");
    assert_eq!((root.1.as_str(), root.2.as_str()), ("drwxr-xr-x", "0/0"));
    for (path, (_, perm, owner, size, time, target)) in
        listing.iter().filter(|(p, _)| !p.is_empty())
    {
        let i = want
            .remove(path.as_str())
            .unwrap_or_else(|| panic!("unsquashfs lists '{path}', not in the tree"));
        assert_eq!(time, EPOCH_SHOWN, "{path}");
        assert_eq!(owner, &format!("{}/{}", i.uid, i.gid), "{path}");
        let (kind, len) = match &i.kind {
            Kind::Dir => (SquashfsEntryKind::Dir, None),
            Kind::File(d) => (SquashfsEntryKind::File, Some(d.len() as u64)),
            Kind::Symlink(t) => (SquashfsEntryKind::Symlink, Some(t.len() as u64)),
        };
        assert_eq!(perm, &perms(kind, i.mode), "{path}");
        if let Some(len) = len {
            assert_eq!(*size, len, "{path}");
        }
        if let Kind::Symlink(t) = &i.kind {
            assert_eq!(target.as_deref(), Some(t.as_str()), "{path}");
        }
    }
    assert!(
        want.is_empty(),
        "unsquashfs does not list {:?}",
        want.keys().collect::<Vec<_>>()
    );
}

#[test]
fn unsquashfs_lists_extracts_and_describes_our_images() {
    let items = fixture();
    let tmp = tempfile::tempdir().unwrap();
    for (name, compression, shown) in [
        ("gzip", Compression::Gzip { level: 9 }, "gzip"),
        ("xz", Compression::Xz { preset: 6 }, "xz"),
    ] {
        let (img, stats) = build(&items, compression, 2);
        assert!(
            stats.fragment_blocks >= 2 && stats.stored_uncompressed >= 2,
            "{stats:?}"
        );
        let path = tmp.path().join(format!("{name}.sqfs"));
        fs::write(&path, &img).unwrap();
        let p = path.to_str().unwrap();

        let lln = parse_listing(&unsquashfs(&["-lln", p]));
        listing_is_fixture(&lln, &items);
        // -lls shows names for owners the host knows; the rest of each line is the same.
        let lls = parse_listing(&unsquashfs(&["-lls", p]));
        assert_eq!(lls.len(), lln.len());
        for (path, l) in &lls {
            let n = &lln[path];
            assert_eq!((&l.1, l.3, &l.4, &l.5), (&n.1, n.3, &n.4, &n.5), "{path}");
            if n.2 == "0/0" {
                assert_eq!(l.2, "root/root", "{path}");
            }
        }

        let stat = unsquashfs(&["-s", p]);
        assert!(stat.contains(&format!("Compression {shown}")), "{stat}");
        assert!(stat.contains(&format!("Block size {BLOCK}")), "{stat}");
        assert!(
            stat.contains(&format!("Number of inodes {}", items.len() + 1)),
            "{stat}"
        );
        assert!(stat.contains("Number of ids 3"), "{stat}");

        let out = tmp.path().join(format!("{name}-root"));
        unsquashfs(&["-n", "-d", out.to_str().unwrap(), p]);
        for i in &items {
            let at = out.join(&i.path);
            let meta = fs::symlink_metadata(&at).unwrap_or_else(|e| panic!("{}: {e}", i.path));
            assert_eq!((meta.uid(), meta.gid()), (i.uid, i.gid), "{}", i.path);
            match &i.kind {
                Kind::Dir => assert!(meta.is_dir(), "{}", i.path),
                Kind::File(d) => {
                    assert!(meta.is_file(), "{}", i.path);
                    assert!(
                        fs::read(&at).unwrap() == *d,
                        "{} differs after extraction",
                        i.path
                    );
                }
                Kind::Symlink(t) => {
                    assert_eq!(fs::read_link(&at).unwrap().to_str(), Some(t.as_str()))
                }
            }
            if !matches!(i.kind, Kind::Symlink(_)) {
                assert_eq!(
                    meta.permissions().mode() & 0o7777,
                    u32::from(i.mode),
                    "{}",
                    i.path
                );
                assert_eq!(meta.mtime(), i64::from(EPOCH), "{}", i.path);
            }
        }

        // pimg's reader agrees with unsquashfs on this image and reads the fixture back.
        let contents = reader_agrees(&path);
        for i in &items {
            if let Kind::File(d) = &i.kind {
                assert!(contents[&i.path] == *d, "{}", i.path);
            }
        }
    }
}

#[test]
fn same_bytes_for_any_thread_count() {
    let items = fixture();
    for compression in [
        Compression::Gzip { level: 9 },
        Compression::Xz { preset: 6 },
    ] {
        let (one, _) = build(&items, compression, 1);
        let (four, _) = build(&items, compression, 4);
        assert!(
            one == four,
            "{compression:?}: 1 and 4 threads give different images"
        );
    }
}

#[test]
fn golden_image_hashes() {
    let items = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let mut sums = String::new();
    let names = ["modloop-gzip.sqfs", "modloop-xz.sqfs"];
    for (name, compression) in names.iter().zip([
        Compression::Gzip { level: 9 },
        Compression::Xz { preset: 6 },
    ]) {
        let (img, _) = build(&items, compression, 2);
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&img)));
    }
    fs::write(tmp.path().join("SHA256SUMS"), sums).unwrap();
    common::assert_golden(tmp.path(), &names, "squashfs-fixture.sha256");
}

/// Writes the fixture as real files (plus what only mksquashfs makes: a sparse file, a hard
/// link, a directory whose listing spans metadata blocks) under `dir`.
fn write_tree(dir: &Path, items: &[Item]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for i in &sorted {
        let at = dir.join(&i.path);
        match &i.kind {
            Kind::Dir => fs::create_dir_all(&at).unwrap(),
            Kind::File(d) => {
                fs::write(&at, d).unwrap();
                files.insert(i.path.clone(), d.clone());
            }
            Kind::Symlink(t) => std::os::unix::fs::symlink(t, &at).unwrap(),
        }
    }
    let mut sparse = vec![0u8; 3 * BLOCK];
    sparse.extend_from_slice(b"end\n");
    fs::write(dir.join("etc/sparse"), &sparse).unwrap();
    files.insert("etc/sparse".into(), sparse);
    fs::hard_link(dir.join("etc/empty"), dir.join("etc/empty-link")).unwrap();
    files.insert("etc/empty-link".into(), Vec::new());
    fs::create_dir(dir.join("big")).unwrap();
    for i in 0..500 {
        let name = format!("big/a-rather-long-module-name-number-{i:04}.ko.xz");
        let d = pattern(100 + i, i);
        fs::write(dir.join(&name), &d).unwrap();
        files.insert(name, d);
    }
    // Modes last: a 0700 directory is still writable by its owner, root.
    for i in sorted
        .iter()
        .filter(|i| !matches!(i.kind, Kind::Symlink(_)))
    {
        fs::set_permissions(
            dir.join(&i.path),
            fs::Permissions::from_mode(u32::from(i.mode)),
        )
        .unwrap();
    }
    files
}

#[test]
fn reader_reads_mksquashfs_images() {
    let items = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let files = write_tree(&src, &items);
    let epoch = EPOCH.to_string();
    for (name, extra) in [
        ("gzip", &[][..]),
        ("xz", &["-comp", "xz"][..]),
        ("xz-opts", &["-comp", "xz", "-Xdict-size", "50%"][..]),
        ("small-blocks", &["-b", "4096", "-always-use-fragments"][..]),
        ("no-fragments", &["-no-fragments", "-noI"][..]),
    ] {
        let img = tmp.path().join(format!("{name}.sqfs"));
        mksquashfs(&src, &img, &epoch, extra);
        let contents = reader_agrees(&img);
        assert_eq!(
            contents.keys().collect::<Vec<_>>(),
            files.keys().collect::<Vec<_>>(),
            "{name}: files listed"
        );
        for (path, d) in &files {
            assert!(contents[path] == *d, "{name}: '{path}' read back differs");
        }
        let file = fs::File::open(&img).unwrap();
        let len = file.metadata().unwrap().len();
        let sq = Squashfs::open(file, len).unwrap();
        assert_eq!(sq.superblock().mkfs_time, EPOCH, "{name}");
        let link = sq.lookup("etc/empty-link").unwrap();
        assert_eq!(link.nlink, 2, "{name}: the hard link's extended inode");
    }
}

#[test]
fn inspect_lists_every_entry_with_its_digest() {
    let items = fixture();
    let (img, _) = build(&items, Compression::Gzip { level: 9 }, 2);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("modloop-rpi");
    fs::write(&path, &img).unwrap();
    let ins = pimg::prove::inspect::inspect_path(&path).unwrap();
    assert_eq!(ins.kind, pimg::codec::detect::ArtifactKind::Squashfs);
    assert!(ins.problems.is_empty(), "{:?}", ins.problems);
    let a = ins.archive.expect("entries listed");
    assert!(
        a.format.contains("gzip") && a.format.contains("131072"),
        "{}",
        a.format
    );
    assert_eq!(a.entries.len(), items.len());
    for i in &items {
        let e = a.entries.iter().find(|e| e.path == i.path).unwrap();
        assert_eq!(
            (e.uid, e.gid, e.mtime),
            (u64::from(i.uid), u64::from(i.gid), i64::from(EPOCH))
        );
        if let Kind::File(d) = &i.kind {
            assert_eq!(
                e.sha256.as_deref(),
                Some(sha256_hex(d).as_str()),
                "{}",
                i.path
            );
        }
    }
}

/// A damaged squashfs given to `pimg inspect` and `pimg diff`: a clear error naming the file,
/// the structure and the byte (inspect, exit 2), or the difference that says so (diff,
/// exit 1); never a panic.
#[test]
fn damaged_images_are_named_by_inspect_and_diff() {
    let (img, _) = build(&fixture(), Compression::Gzip { level: 9 }, 2);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::write(t.join("good"), &img).unwrap();
    fs::write(t.join("truncated"), &img[..img.len() / 2]).unwrap();
    // A byte of the inode table's first metadata block (its start is at offset 64).
    let inodes = u64::from_le_bytes(img[64..72].try_into().unwrap()) as usize;
    let mut bad = img.clone();
    bad[inodes + 5] ^= 0xff;
    fs::write(t.join("bad"), &bad).unwrap();

    let o = run(t, &["inspect", "truncated"], &[]);
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(
        o.stderr
            .contains("truncated: squashfs image (bytes used) at byte 0: needs")
            && o.stderr.contains("but the input ends at byte"),
        "{}",
        o.stderr
    );
    let o = run(t, &["inspect", "bad"], &[]);
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(
        o.stderr.contains(&format!(
            "bad: squashfs inode table metadata block at byte {inodes}"
        )),
        "{}",
        o.stderr
    );
    let o = run(t, &["diff", "good", "bad"], &[]);
    assert_eq!(o.code(), Some(1), "{}", o.report());
    assert!(
        o.stdout.contains(&format!(
            "squashfs image: readable vs squashfs inode table metadata block at byte {inodes}"
        )),
        "{}",
        o.stdout
    );
}
