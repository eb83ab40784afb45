//! Writes small valid inputs for every fuzz target into `<dir>/<target>/`, built with pimg's
//! own writers, so the fuzzers start from real structure. `scripts/fuzz.sh` runs it
//! (`cargo run --release --example fuzz_seeds -- fuzz/corpus`); an example of pimg rather than
//! a fuzz binary, so it is a plain program whatever instrumentation the fuzz build uses.
// A seed generator writes its files where it is told, outside any output folder.
#![allow(clippy::disallowed_methods)]
use pimg::codec::fat::write::{self as fat, FatParams, FatType};
use pimg::codec::partition::write::{self as disk, DiskLayout, TableKind};
use pimg::codec::squashfs as sqfs;
use pimg::codec::{cpio::write as cpio, gzip::write as gzip, tar::write as tar};
use pimg::tree::{Node, Tree, TreePath};
use std::io::Cursor;
use std::path::Path;

fn tree() -> Tree {
    let files: [(&str, Node); 5] = [
        ("boot", Node::dir(0o755)),
        ("boot/vmlinuz-rpi", Node::file(vec![7u8; 3000], 0o644)),
        ("config.txt", Node::file(b"arm_64bit=1\n".to_vec(), 0o644)),
        (
            "a-rather-long-file-name-for-lfn.txt",
            Node::file(vec![1u8; 700], 0o600),
        ),
        ("link", Node::symlink("config.txt")),
    ];
    let mut t = Tree::new();
    for (path, node) in files {
        t.insert(TreePath::new(path).unwrap(), node, "seed")
            .unwrap();
    }
    t
}

fn fat_tree() -> Tree {
    let mut t = Tree::new();
    for (path, node) in tree().iter() {
        if !matches!(node.kind, pimg::tree::NodeKind::Symlink(_)) {
            t.insert(path.clone(), node.clone(), "seed").unwrap();
        }
    }
    t
}

fn fat_volume(size: u64) -> Vec<u8> {
    let mut v = Cursor::new(vec![0u8; size as usize]);
    let params = FatParams {
        fat_type: FatType::Fat12,
        bytes_per_cluster: 512,
        volume_id: 0x1234_5678,
        label: "PIBOOT".into(),
        epoch: 1_700_000_000,
    };
    fat::write_fat(&mut v, size, &fat_tree(), &params).unwrap();
    v.into_inner()
}

fn disk(table: TableKind) -> Vec<u8> {
    let size = 256 * 1024;
    let (offset, part) = (64 * 1024, 128 * 1024);
    let mut d = Cursor::new(vec![0u8; size as usize]);
    let layout = DiskLayout {
        size,
        table,
        part_offset: offset,
        part_size: part,
        mbr_type: 0x0c,
        bootable: false,
        disk_signature: 0xdead_beef,
        disk_guid: [1; 16],
        part_guid: [2; 16],
        part_name: "PIBOOT".into(),
    };
    disk::write_table(&mut d, &layout).unwrap();
    let mut d = d.into_inner();
    let vol = fat_volume(part);
    d[offset as usize..(offset + part) as usize].copy_from_slice(&vol);
    d
}

/// A Unix `ar` archive of `members` (what a `.deb` is).
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend_from_slice(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A squashfs image of `t` with 4 KiB blocks and a file of several blocks added.
fn squashfs(t: &Tree, compression: sqfs::Compression) -> Vec<u8> {
    use sqfs::write::{SquashfsEntry, SquashfsKind};
    let big: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut entries = vec![SquashfsEntry {
        path: "big",
        kind: SquashfsKind::File(&big),
        mode: 0o644,
        uid: 1000,
        gid: 1000,
    }];
    for (path, node) in t.iter() {
        let kind = match &node.kind {
            pimg::tree::NodeKind::File(d) => SquashfsKind::File(d),
            pimg::tree::NodeKind::Symlink(s) => SquashfsKind::Symlink(s),
            pimg::tree::NodeKind::Dir => SquashfsKind::Dir,
            _ => continue,
        };
        entries.push(SquashfsEntry {
            path: path.as_str(),
            kind,
            mode: node.mode as u16,
            uid: 0,
            gid: 0,
        });
    }
    let opts = sqfs::write::SquashfsOptions {
        mtime: 1_700_000_000,
        block_size: 4096,
        compression,
        threads: 1,
    };
    let mut out = Vec::new();
    sqfs::write::write_squashfs(&mut out, &entries, 0o755, &opts).unwrap();
    out
}

/// A tree of one text file at `name`.
fn one_file(name: &str, data: &[u8]) -> Tree {
    let mut t = Tree::new();
    t.insert(
        TreePath::new(name).unwrap(),
        Node::file(data.to_vec(), 0o644),
        "seed",
    )
    .unwrap();
    t
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds DIR");
    let dir = Path::new(&dir);
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    let t = tree();
    let tar_bytes = tar::write_tree(Vec::new(), &t, 1_700_000_000).unwrap();
    let mut w = cpio::CpioWriter::new(Vec::new());
    for (i, (path, node)) in t.iter().enumerate() {
        let data: &[u8] = match &node.kind {
            pimg::tree::NodeKind::File(d) => d,
            pimg::tree::NodeKind::Symlink(s) => s.as_bytes(),
            _ => &[],
        };
        w.append(&cpio::CpioEntry {
            name: path.as_str(),
            ino: i as u32 + 1,
            mode: node.type_bits() | node.mode,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 1_700_000_000,
            data,
            ..cpio::CpioEntry::default()
        })
        .unwrap();
    }
    let cpio_bytes = w.finish().unwrap();
    put("partitions", "mbr.img", &disk(TableKind::Mbr));
    put("partitions", "gpt.img", &disk(TableKind::Gpt));
    put("fat", "fat12.img", &fat_volume(128 * 1024));
    put(
        "gzip",
        "text.gz",
        &gzip::gzip_bytes(b"hello, hello, hello pimg\n", 9),
    );
    put("gzip", "cpio.gz", &gzip::gzip_bytes(&cpio_bytes, 9));
    put("cpio", "plain.cpio", &cpio_bytes);
    put(
        "release",
        "tar.xz",
        &pimg::codec::xz::xz_bytes(&tar_bytes, 1),
    );
    put(
        "release",
        "tar.zst",
        &pimg::codec::zstd::zstd_bytes(&tar_bytes, 1),
    );
    let mut fat = std::io::Cursor::new(fat_volume(128 * 1024));
    let mut set = pimg::codec::bmap::BlockSet::new(128 * 1024);
    set.mark(0, 4096);
    set.mark(3 * 4096, 8192);
    put(
        "release",
        "fat.bmap",
        &pimg::codec::bmap::write(&mut fat, 128 * 1024, &set).unwrap(),
    );
    put("cpio", "cpio.gz", &gzip::gzip_bytes(&cpio_bytes, 6));
    put("tar", "plain.tar", &tar_bytes);
    put("tar", "tar.gz", &gzip::gzip_bytes(&tar_bytes, 6));
    let mut pair = vec![128u8];
    pair.extend_from_slice(&gzip::gzip_bytes(&tar_bytes, 6));
    let mut t2 = tar_bytes.clone();
    t2[100] ^= 1;
    pair.extend_from_slice(&gzip::gzip_bytes(&t2, 6));
    put("diff_archives", "tar-pair", &pair);
    let mut pair = vec![128u8];
    pair.extend_from_slice(&cpio_bytes);
    let mut c2 = cpio_bytes.clone();
    c2[50] = b'F';
    pair.extend_from_slice(&c2);
    put("diff_archives", "cpio-pair", &pair);

    // A published folder as pimg writes it (SHA256SUMS, NUL, buildinfo, NUL, image start).
    put(
        "published",
        "rpi3b",
        include_bytes!("../fuzz/seeds/published-rpi3b"),
    );
    // A gpg-made Ed25519 signature and the public key that checks it.
    put(
        "signature",
        "ed25519.asc",
        include_bytes!("../fuzz/seeds/signature-ed25519.asc"),
    );
    put(
        "signature",
        "key.asc",
        include_bytes!("../fuzz/seeds/signature-key.asc"),
    );
    // A .deb and an .apk holding the seed tree.
    let control = b"Package: seed\nVersion: 1\nArchitecture: all\nDescription: x\n";
    let control_tgz = gzip::gzip_bytes(
        &tar::write_tree(Vec::new(), &one_file("control", control), 1_700_000_000).unwrap(),
        6,
    );
    let data_tgz = gzip::gzip_bytes(&tar_bytes, 6);
    put(
        "packages",
        "seed.deb",
        &ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control_tgz),
            ("data.tar.gz", &data_tgz),
        ]),
    );
    let pkginfo = format!(
        "pkgname = seed\npkgver = 1-r0\narch = noarch\nsize = 4000\ndatahash = {}\n",
        pimg::digest::sha256_hex(&data_tgz)
    );
    let mut apk = gzip::gzip_bytes(
        &tar::write_tree(
            Vec::new(),
            &one_file(".PKGINFO", pkginfo.as_bytes()),
            1_700_000_000,
        )
        .unwrap(),
        6,
    );
    apk.extend_from_slice(&data_tgz);
    put("packages", "seed.apk", &apk);
    // The shipped default overlay's apkovl.
    let default = pimg::profile::overlay::load("default").unwrap();
    let epoch = pimg::epoch::SourceDateEpoch::new(1_700_000_000).unwrap();
    put(
        "apkovl",
        "default.apkovl.tar.gz",
        &pimg::artifact::apkovl::write(&default, epoch, 6).unwrap(),
    );
    // Small squashfs images of the seed tree (4 KiB blocks: a file of several blocks, one in a
    // fragment, a symlink), gzip and xz.
    for (name, compression) in [
        ("gzip.sqfs", sqfs::Compression::Gzip { level: 9 }),
        ("xz.sqfs", sqfs::Compression::Xz { preset: 1 }),
    ] {
        put("squashfs", name, &squashfs(&t, compression));
    }
    // diff's squashfs adapter: an image and the same with its superblock time, or a byte in
    // the middle, changed (equal lengths, so the target's half split separates them).
    let gz = squashfs(&t, sqfs::Compression::Gzip { level: 9 });
    let mut later = gz.clone();
    later[8] ^= 0x01;
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    for (name, b) in [("squashfs-mtime", &later), ("squashfs-flip", &flipped)] {
        put("diff_archives", name, &[&[128u8][..], &gz, b].concat());
    }
    // The same package with a signature segment in front, and a signed index of it.
    let segment =
        pimg::codec::apkindex::signature_segment("seed.rsa.pub", &[0x5a; 256], 0, 6).unwrap();
    put(
        "packages",
        "seed-signed.apk",
        &[segment.as_slice(), &apk].concat(),
    );
    let record = pimg::codec::apkindex::IndexRecord {
        name: "seed".into(),
        version: "1-r0".into(),
        depends: vec!["musl".into()],
        ..Default::default()
    };
    let index = pimg::codec::apkindex::write_index(&[record], "seed", 0, 6).unwrap();
    put(
        "packages",
        "APKINDEX.tar.gz",
        &[segment.as_slice(), &index].concat(),
    );
    // An overlay's .attributes and etc/hostname.
    put(
        "attributes",
        "default",
        b"# owners and modes\netc/shadow 0640 0 42\nroot 0700 0 0\n\0pimg\n",
    );
}
