//! Byte-level tests of the squashfs writer and reader: one superblock checked by hand, the
//! refusals of each, and round trips.

use super::read::{Squashfs, SquashfsEntryKind};
use super::write::{write_squashfs, SquashfsEntry, SquashfsError, SquashfsKind, SquashfsOptions};
use super::*;
use crate::codec::reader::ReadError;
use crate::codec::testdata::noise;
use std::io::Cursor;

const EPOCH: u32 = 1_700_000_000;

fn entry<'a>(path: &'a str, kind: SquashfsKind<'a>, mode: u16) -> SquashfsEntry<'a> {
    SquashfsEntry {
        path,
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

fn opts() -> SquashfsOptions {
    SquashfsOptions {
        mtime: EPOCH,
        ..SquashfsOptions::default()
    }
}

fn image(entries: &[SquashfsEntry], o: &SquashfsOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_squashfs(&mut out, entries, 0o755, o).unwrap();
    out
}

fn open(img: &[u8]) -> Result<Squashfs<Cursor<&[u8]>>, ReadError> {
    Squashfs::open(Cursor::new(img), img.len() as u64)
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The metadata block at `at`: its content and the bytes it takes in the image.
fn metadata(img: &[u8], at: usize) -> (Vec<u8>, usize) {
    let h = le16(img, at);
    let len = usize::from(h & 0x7FFF);
    let body = &img[at + 2..at + 2 + len];
    if h & METADATA_UNCOMPRESSED != 0 {
        return (body.to_vec(), 2 + len);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(body), &mut out).unwrap();
    (out, 2 + len)
}

#[test]
fn superblock_by_hand() {
    // One 2-byte file: it goes to a fragment, which zlib cannot shrink, so it is stored as is
    // right after the superblock. Every table is then small enough to follow by hand.
    let img = image(&[entry("a", SquashfsKind::File(b"hi"), 0o644)], &opts());
    assert_eq!(img.len(), 4096, "padded to 4 KiB");
    assert_eq!(&img[0..4], b"hsqs");
    assert_eq!(le32(&img, 4), 2, "inode count: 'a' and the root");
    assert_eq!(le32(&img, 8), EPOCH, "mkfs time");
    assert_eq!(le32(&img, 12), 131_072, "block size");
    assert_eq!(le32(&img, 16), 1, "fragment count");
    assert_eq!(le16(&img, 20), 1, "compressor gzip");
    assert_eq!(le16(&img, 22), 17, "block log");
    assert_eq!(le16(&img, 24), 0x0200, "flags: no xattrs");
    assert_eq!(le16(&img, 26), 1, "id count: only 0");
    assert_eq!((le16(&img, 28), le16(&img, 30)), (4, 0), "version");
    // 'a' is a 32-byte basic file inode at the start of the inode table; the root follows.
    assert_eq!(le64(&img, 32), 32, "root inode: block 0, offset 32");
    assert_eq!(le64(&img, 56), u64::MAX, "no xattr table");
    assert_eq!(le64(&img, 88), u64::MAX, "no export table");
    assert_eq!(&img[96..98], b"hi", "fragment block stored uncompressed");

    let inode_table = le64(&img, 64) as usize;
    assert_eq!(inode_table, 98);
    // The inode table (64 bytes) compresses: a gzip block with its length in the header.
    assert_eq!(le16(&img, inode_table) & METADATA_UNCOMPRESSED, 0);
    let (inodes, stored) = metadata(&img, inode_table);
    let dir_table = le64(&img, 72) as usize;
    assert_eq!(dir_table, inode_table + stored);
    assert_eq!(inodes.len(), 64);
    // File 'a': type 2, mode 0644, uid/gid index 0, mtime, inode 1, start 98 (where its
    // data would be), fragment 0 at offset 0, size 2, no block sizes.
    assert_eq!(le16(&inodes, 0), 2);
    assert_eq!(le16(&inodes, 2), 0o644);
    assert_eq!((le16(&inodes, 4), le16(&inodes, 6)), (0, 0));
    assert_eq!(le32(&inodes, 8), EPOCH);
    assert_eq!(le32(&inodes, 12), 1);
    assert_eq!(le32(&inodes, 16), 98);
    assert_eq!((le32(&inodes, 20), le32(&inodes, 24)), (0, 0));
    assert_eq!(le32(&inodes, 28), 2);
    // Root: type 1, mode 0755, inode 2, listing at block 0 offset 0 of 21 + 3 bytes, two
    // links (no subdirectory), parent inode 3 (one past the count, as mksquashfs writes).
    assert_eq!(le16(&inodes, 32), 1);
    assert_eq!(le16(&inodes, 34), 0o755);
    assert_eq!(le32(&inodes, 44), 2);
    assert_eq!(le32(&inodes, 48), 0, "listing block");
    assert_eq!(le32(&inodes, 52), 2, "links");
    assert_eq!(le16(&inodes, 56), 24, "listing size + 3");
    assert_eq!(le16(&inodes, 58), 0, "listing offset");
    assert_eq!(le32(&inodes, 60), 3, "parent");

    // Directory table: one header (count-1 = 0, inode block 0, base inode 1) and the entry
    // (offset 0, inode delta 0, type 2, name length-1 = 0, "a"): 21 bytes.
    let (listing, stored) = metadata(&img, dir_table);
    assert_eq!(
        listing,
        &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a']
    );
    // Fragment table: one entry (start 96, size 2 | uncompressed bit), then its index.
    let frag_meta = dir_table + stored;
    let (frag, stored) = metadata(&img, frag_meta);
    assert_eq!(le64(&frag, 0), 96);
    assert_eq!(le32(&frag, 8), 2 | BLOCK_UNCOMPRESSED);
    assert_eq!(le32(&frag, 12), 0);
    let frag_index = le64(&img, 80) as usize;
    assert_eq!(frag_index, frag_meta + stored);
    assert_eq!(le64(&img, frag_index), frag_meta as u64);
    // Id table: one id (0), then its index; bytes used end there.
    let id_meta = frag_index + 8;
    let (ids, stored) = metadata(&img, id_meta);
    assert_eq!(ids, &[0, 0, 0, 0]);
    let id_index = le64(&img, 48) as usize;
    assert_eq!(id_index, id_meta + stored);
    assert_eq!(le64(&img, id_index), id_meta as u64);
    assert_eq!(le64(&img, 40), id_index as u64 + 8, "bytes used");
    assert!(img[id_index + 8..].iter().all(|&b| b == 0), "zero padding");

    // The shared parser agrees with the hand reading.
    let sb = Superblock::parse(img[..96].try_into().unwrap());
    assert_eq!(sb.encode().as_slice(), &img[..96]);
    assert_eq!(sb.fields().len(), 19);
    assert_eq!(sb.fields()[5].value, "gzip");
}

#[test]
fn refusals_name_the_entry() {
    let o = opts();
    let write = |e: &[SquashfsEntry]| write_squashfs(Vec::new(), e, 0o755, &o).unwrap_err();
    let f = SquashfsKind::File(b"x");
    match write(&[entry("a", f, 0o644), entry("a", f, 0o600)]) {
        SquashfsError::Duplicate { path } => assert_eq!(path, "a"),
        e => panic!("{e}"),
    }
    match write(&[entry("d/x", f, 0o644)]) {
        SquashfsError::MissingParent { path, parent } => {
            assert_eq!((path.as_str(), parent.as_str()), ("d/x", "d"))
        }
        e => panic!("{e}"),
    }
    match write(&[entry("f", f, 0o644), entry("f/x", f, 0o644)]) {
        SquashfsError::ParentNotDirectory { path, .. } => assert_eq!(path, "f/x"),
        e => panic!("{e}"),
    }
    for bad in ["/a", "a/", "a//b", "./a", "a/..", ""] {
        match write(&[entry(bad, SquashfsKind::Dir, 0o755)]) {
            SquashfsError::BadName { path, .. } => assert_eq!(path, bad),
            e => panic!("{bad:?}: {e}"),
        }
    }
    let long = "n".repeat(257);
    assert!(matches!(
        write(&[entry(&long, f, 0o644)]),
        SquashfsError::BadName { .. }
    ));
    assert!(matches!(
        write(&[entry("a", f, 0o100644)]),
        SquashfsError::BadMode { .. }
    ));
    assert!(matches!(
        write(&[entry("l", SquashfsKind::Symlink(""), 0o777)]),
        SquashfsError::BadSymlink { .. }
    ));
    let msg = write(&[entry("d/x", f, 0o644)]).to_string();
    assert!(msg.contains("'d/x'") && msg.contains("'d'"), "{msg}");
    let bad_bs = SquashfsOptions {
        block_size: 3000,
        ..o
    };
    assert!(matches!(
        write_squashfs(Vec::new(), &[], 0o755, &bad_bs).unwrap_err(),
        SquashfsError::BadOption {
            field: "block_size",
            ..
        }
    ));
}

/// A tree with everything the writer does: nested and empty directories, an empty file, a
/// file of exactly one block, several blocks with a short tail, noise, symlinks, owners.
fn sample(data: &[Vec<u8>; 4]) -> Vec<SquashfsEntry<'_>> {
    let mut e = vec![
        entry("usr", SquashfsKind::Dir, 0o755),
        entry("usr/lib", SquashfsKind::Dir, 0o755),
        entry("usr/lib/empty-dir", SquashfsKind::Dir, 0o700),
        entry("usr/lib/empty", SquashfsKind::File(b""), 0o644),
        entry("usr/lib/one-block", SquashfsKind::File(&data[0]), 0o644),
        entry("usr/lib/several", SquashfsKind::File(&data[1]), 0o755),
        entry("usr/lib/noise", SquashfsKind::File(&data[2]), 0o600),
        entry("usr/lib/small", SquashfsKind::File(&data[3]), 0o644),
        entry("lib", SquashfsKind::Symlink("usr/lib"), 0o777),
        entry("usr/lib/a-b", SquashfsKind::File(b"dash"), 0o644),
    ];
    e.push(SquashfsEntry {
        uid: 1000,
        gid: 100,
        ..entry("usr/lib/owned", SquashfsKind::File(b"owned\n"), 0o640)
    });
    e.reverse();
    e
}

fn sample_data(bs: usize) -> [Vec<u8>; 4] {
    [
        vec![b'x'; bs],
        (0..3 * bs + 1234).map(|i| (i % 251) as u8).collect(),
        noise(2 * bs + 17, 7),
        b"small file\n".to_vec(),
    ]
}

#[test]
fn round_trip_lists_and_reads_everything() {
    for compression in [
        Compression::Gzip { level: 9 },
        Compression::Xz { preset: 6 },
    ] {
        let o = SquashfsOptions {
            block_size: 4096,
            compression,
            ..opts()
        };
        let data = sample_data(4096);
        let entries = sample(&data);
        let img = image(&entries, &o);
        let mut fs = open(&img).unwrap();
        let listed = fs.entries().unwrap();
        let mut want: Vec<&SquashfsEntry> = entries.iter().collect();
        want.sort_by_key(|e| e.path.as_bytes());
        assert_eq!(
            listed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
            want.iter().map(|e| e.path).collect::<Vec<_>>()
        );
        for (l, e) in listed.clone().iter().zip(&want) {
            assert_eq!(
                (l.mode, l.uid, l.gid, l.mtime),
                (e.mode, e.uid, e.gid, EPOCH),
                "{}",
                l.path
            );
            match e.kind {
                SquashfsKind::File(d) => {
                    assert_eq!(l.kind, SquashfsEntryKind::File);
                    assert_eq!(fs.read_file(l, u64::MAX).unwrap(), d, "{}", l.path);
                    assert_eq!(fs.read_path(e.path, u64::MAX).unwrap(), d);
                }
                SquashfsKind::Dir => assert_eq!(l.kind, SquashfsEntryKind::Dir),
                SquashfsKind::Symlink(t) => assert_eq!(l.target.as_deref(), Some(t)),
            }
        }
        let several = listed.iter().find(|l| l.path == "usr/lib/several").unwrap();
        assert!(matches!(
            fs.read_file(several, 100),
            Err(ReadError::Limit { max: 100, .. })
        ));
        assert!(matches!(
            fs.lookup("usr/nope"),
            Err(ReadError::NotFound { .. })
        ));
    }
}

#[test]
fn same_bytes_for_any_thread_count_and_order() {
    let data = sample_data(4096);
    let entries = sample(&data);
    let one = image(
        &entries,
        &SquashfsOptions {
            block_size: 4096,
            ..opts()
        },
    );
    let mut rev = entries.clone();
    rev.reverse();
    let four = image(
        &rev,
        &SquashfsOptions {
            block_size: 4096,
            threads: 4,
            ..opts()
        },
    );
    assert_eq!(one, four);
}

#[test]
fn many_entries_cross_metadata_blocks() {
    // Enough inodes and entries for several metadata blocks in both tables, and more than
    // 256 entries in one directory (several directory headers).
    let names: Vec<String> = (0..3000).map(|i| format!("d/file-{i:05}.ko.xz")).collect();
    let mut entries = vec![entry("d", SquashfsKind::Dir, 0o755)];
    entries.extend(
        names
            .iter()
            .map(|n| entry(n, SquashfsKind::File(n.as_bytes()), 0o644)),
    );
    let img = image(&entries, &opts());
    let mut fs = open(&img).unwrap();
    let listed = fs.entries().unwrap();
    assert_eq!(listed.len(), 3001);
    for l in listed.iter().skip(1).step_by(97) {
        assert_eq!(fs.read_file(l, 1 << 20).unwrap(), l.path.as_bytes());
    }
}

#[test]
fn damage_is_reported_not_panicked() {
    let data = sample_data(4096);
    let img = image(
        &sample(&data),
        &SquashfsOptions {
            block_size: 4096,
            ..opts()
        },
    );
    // Every single-byte change of the metadata, and every truncation: no panic.
    let meta = le64(&img, 64) as usize;
    for at in (0..96).chain(meta..img.len().min(meta + 600)) {
        for v in [0x00, 0xFF, 0x7F] {
            let mut bad = img.clone();
            bad[at] = v;
            if let Ok(mut fs) = open(&bad) {
                if let Ok(list) = fs.entries() {
                    for l in &list {
                        let _ = fs.read_file(l, 1 << 20);
                    }
                }
            }
        }
    }
    for len in [0, 95, 96, 200, meta, img.len() - 4096] {
        let _ = open(&img[..len]).map(|fs| fs.entries());
    }
    let mut bad = img.clone();
    bad[20] = 3;
    let e = open(&bad).err().unwrap().to_string();
    assert!(e.contains("lzo"), "{e}");
    let mut bad = img.clone();
    bad[0] = b'x';
    assert!(open(&bad).is_err());
}
