//! Independent tools judge pimg's archive writers and .deb reader: GNU cpio, busybox cpio,
//! tar and gunzip, GNU tar, gzip, xz. A missing tool fails the test with an install hint; these
//! checks are the point of the file, so they are never skipped.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::referee;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pimg::codec::archive::ArchiveError;
use pimg::codec::gzip::write as gzip;
use pimg::codec::tar::write::{write_tree, TarMeta, TarWriter};
use pimg::inputs::deb::{self, DebError, Member, MemberKind};
use pimg::tree::{Node, NodeKind, Tree, TreePath};

/// 2023-11-14 22:13:20 UTC.
const EPOCH: u64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------
// Tools

/// The Debian package of each referee tool used here.
fn package(tool: &str) -> &'static str {
    match tool {
        "xz" => "xz-utils",
        "cpio" => "cpio",
        "busybox" => "busybox",
        "gzip" => "gzip",
        _ => "tar",
    }
}

/// Runs a tool with `stdin`, in `cwd`, with TZ=UTC; fails the test unless it exits 0.
fn run(cwd: &Path, program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    referee(program, package(program))
        .args(args)
        .cwd(cwd)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(stdin)
        .bytes()
}

/// Like [`run`], for tools that print text.
fn run_text(cwd: &Path, program: &str, args: &[&str], stdin: &[u8]) -> String {
    String::from_utf8(run(cwd, program, args, stdin)).unwrap()
}

// ---------------------------------------------------------------------------------------
// Fixture tree

/// A path of exactly 150 bytes, three directories deep.
fn long_path() -> String {
    let p = format!("deep/{}/{}/leaf.txt", "a".repeat(60), "b".repeat(70));
    let p = format!("{p}{}", "c".repeat(150 - p.len()));
    assert_eq!(p.len(), 150);
    p
}

fn fixture_tree() -> Tree {
    let mut t = Tree::new();
    let mut add = |path: &str, node: Node| {
        t.insert(TreePath::new(path).unwrap(), node, "fixture")
            .unwrap()
    };
    add("etc", Node::dir(0o755));
    add(
        "etc/shadow",
        Node {
            gid: 42,
            ..Node::file(b"root:*:19000:0:99999:7:::\n".to_vec(), 0o640)
        },
    );
    add("etc/empty", Node::file(Vec::new(), 0o644));
    add(
        "usr/bin/su",
        Node::file(b"\x7fELF pretend setuid binary".to_vec(), 0o4755),
    );
    add("bin/sh", Node::symlink("../usr/bin/su"));
    add("tmp", Node::dir(0o1777));
    add(
        &long_path(),
        Node::file(b"long name content\n".to_vec(), 0o600),
    );
    t
}

/// The `ls -l` style mode string of a node.
fn mode_string(node: &Node) -> String {
    let kind = match node.kind {
        NodeKind::Dir => 'd',
        NodeKind::File(_) => '-',
        NodeKind::Symlink(_) => 'l',
        NodeKind::CharDevice { .. } => 'c',
    };
    let m = node.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let exec = |x: u32, special: u32, set: char| match (m & x != 0, m & special != 0) {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't'),
    ]
    .iter()
    .collect()
}

fn cpio_archive(tree: &Tree) -> Vec<u8> {
    pimg::artifact::initramfs::write_cpio(tree, EPOCH as u32, Vec::new()).unwrap()
}

/// Listing lines keyed by name: (mode string, owner "uid/gid").
type Listing = BTreeMap<String, (String, String)>;

fn expected_listing(tree: &Tree, dir_suffix: &str) -> Listing {
    tree.iter()
        .map(|(path, node)| {
            let mut name = path.as_str().to_string();
            match &node.kind {
                NodeKind::Dir => name.push_str(dir_suffix),
                NodeKind::Symlink(target) => name = format!("{name} -> {target}"),
                _ => {}
            }
            (
                name,
                (mode_string(node), format!("{}/{}", node.uid, node.gid)),
            )
        })
        .collect()
}

/// Parses `ls -l` style lines: mode, then `owner_fields` fields naming the owner, then
/// `skip` fields (size, date...), then the name (which may contain " -> ").
fn parse_listing(text: &str, owner: impl Fn(&[&str]) -> (String, usize)) -> Listing {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (owner, name_at) = owner(&fields);
            (fields[name_at..].join(" "), (fields[0].to_string(), owner))
        })
        .collect()
}

/// A referee's `listing` of an archive of `tree` names every entry (directories with
/// `dir_suffix`) with the tree's mode and owner; `owner` reads the owner and where the name
/// starts from a line's fields.
fn assert_listing(
    tree: &Tree,
    dir_suffix: &str,
    listing: &str,
    owner: impl Fn(&[&str]) -> (String, usize),
) {
    assert_eq!(
        parse_listing(listing, owner),
        expected_listing(tree, dir_suffix),
        "the referee said:\n{listing}"
    );
}

/// A new empty folder `out` in `dir`, to extract into.
fn out_folder(dir: &Path) -> PathBuf {
    let out = dir.join("out");
    fs::create_dir(&out).unwrap();
    out
}

/// True when the tests run as root, like the initramfs that unpacks these archives: only
/// then do extractors restore every mode bit exactly (otherwise the umask may apply).
fn running_as_root() -> bool {
    let probe = tempfile::tempdir().unwrap();
    fs::metadata(probe.path()).unwrap().uid() == 0
}

/// Checks extracted bytes, symlink targets and (as root, if asked) modes against the tree.
fn check_extracted(root: &Path, tree: &Tree, check_modes: bool, check_mtime: bool) {
    let check_modes = check_modes && running_as_root();
    for (path, node) in tree.iter() {
        let p = root.join(path.as_str());
        let meta = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        match &node.kind {
            NodeKind::File(data) => {
                assert_eq!(&fs::read(&p).unwrap(), &**data, "{path}");
                if check_mtime {
                    let mtime = meta
                        .modified()
                        .unwrap()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap();
                    assert_eq!(mtime.as_secs(), EPOCH, "{path}");
                }
            }
            NodeKind::Symlink(target) => {
                assert!(meta.file_type().is_symlink(), "{path}");
                assert_eq!(fs::read_link(&p).unwrap(), Path::new(target), "{path}");
            }
            NodeKind::Dir => assert!(meta.is_dir(), "{path}"),
            NodeKind::CharDevice { .. } => unreachable!(),
        }
        if check_modes && !meta.file_type().is_symlink() {
            assert_eq!(
                meta.permissions().mode() & 0o7777,
                node.mode,
                "mode of {path}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// cpio

#[test]
fn gnu_cpio_lists_and_extracts_the_newc_archive() {
    let tree = fixture_tree();
    let archive = cpio_archive(&tree);
    let dir = tempfile::tempdir().unwrap();

    // GNU cpio with -n prints: mode nlink uid gid size month day year name.
    let listing = run_text(dir.path(), "cpio", &["-itvn", "--quiet"], &archive);
    let owner = |f: &[&str]| (format!("{}/{}", f[2], f[3]), 8);
    assert_listing(&tree, "", &listing, owner);

    let out = out_folder(dir.path());
    run(
        &out,
        "cpio",
        &[
            "-id",
            "--quiet",
            "--no-absolute-filenames",
            "--preserve-modification-time",
        ],
        &archive,
    );
    check_extracted(&out, &tree, true, true);
}

#[test]
fn busybox_cpio_reads_the_gzipped_archive() {
    let tree = fixture_tree();
    let archive = gzip::gzip_bytes(&cpio_archive(&tree), 9);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("initramfs.cpio.gz"), &archive).unwrap();
    run(dir.path(), "gzip", &["-t", "initramfs.cpio.gz"], &[]);

    let plain = run(dir.path(), "gzip", &["-dc", "initramfs.cpio.gz"], &[]);
    let listing = run_text(dir.path(), "busybox", &["cpio", "-t"], &plain);
    let names: Vec<&str> = listing.lines().collect();
    let expected: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, expected, "busybox cpio -t said:\n{listing}");

    let out = out_folder(dir.path());
    run(&out, "busybox", &["cpio", "-id"], &plain);
    check_extracted(&out, &tree, false, false);
}

/// Bytes that compress well (runs, a repeating ramp) interleaved with bytes that do not
/// (a xorshift stream), so that pieces compress to very different sizes and speeds.
fn mixed_bytes(len: usize) -> Vec<u8> {
    let noise = common::pattern("mixed", len);
    let piece = |(i, n): (usize, u8)| match (i / 40_000) % 3 {
        0 => n,
        1 => (i % 253) as u8,
        _ => 0,
    };
    noise.into_iter().enumerate().map(piece).collect()
}

#[test]
fn multi_piece_gzip_is_read_by_every_referee() {
    // Many pieces, more than the encoder keeps in flight, and a short last piece.
    let data = mixed_bytes(37 * gzip::CHUNK + 4321);
    let gz = gzip::gzip_bytes_threads(&data, 9, 1);
    for threads in [2, 3, 8] {
        assert!(
            gzip::gzip_bytes_threads(&data, 9, threads) == gz,
            "{threads} threads gave other bytes than 1"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("big.gz"), &gz).unwrap();
    run(dir.path(), "gzip", &["-t", "big.gz"], &[]);
    assert!(
        run(dir.path(), "gzip", &["-dc", "big.gz"], &[]) == data,
        "gzip -dc"
    );
    assert!(
        run(dir.path(), "busybox", &["gunzip", "-c"], &gz) == data,
        "busybox gunzip"
    );

    let (header, back, trailer) = pimg::codec::gzip::read::decompress(&gz).unwrap();
    assert!(back == data, "pimg's gzip reader");
    assert_eq!((header.mtime, header.xfl, header.os), (0, 2, 255));
    assert_eq!(trailer.crc32, trailer.computed_crc32);
    assert_eq!(trailer.isize as usize, data.len());
    assert_eq!(trailer.trailing, 0);
}

#[test]
fn busybox_cpio_reads_a_multi_piece_archive() {
    // A cpio archive of several pieces whose entries straddle piece boundaries.
    let mut tree = fixture_tree();
    for (i, len) in [3 * gzip::CHUNK + 17, gzip::CHUNK, 1, 2 * gzip::CHUNK - 1]
        .into_iter()
        .enumerate()
    {
        let path = TreePath::new(&format!("lib/big{i}.bin")).unwrap();
        tree.insert(path, Node::file(mixed_bytes(len), 0o644), "fixture")
            .unwrap();
    }
    let mut enc = gzip::GzEncoder::new(Vec::new(), 9, 4);
    enc.write_all(&cpio_archive(&tree)).unwrap();
    let archive = enc.finish().unwrap();
    assert!(archive == gzip::gzip_bytes_threads(&cpio_archive(&tree), 9, 1));
    let dir = tempfile::tempdir().unwrap();
    let out = out_folder(dir.path());
    let plain = run(dir.path(), "busybox", &["gunzip", "-c"], &archive);
    run(&out, "busybox", &["cpio", "-id"], &plain);
    check_extracted(&out, &tree, false, false);
}

// ---------------------------------------------------------------------------------------
// tar

fn tar_gz(tree: &Tree) -> Vec<u8> {
    let enc = write_tree(gzip::encoder(Vec::new(), 9), tree, EPOCH).unwrap();
    enc.finish().unwrap()
}

/// A tar referee on the fixture tree's archive `a.tar.gz` in a fresh folder: `program`
/// with `list` prints mode, owner "uid/gid", size, date, time and name of every entry as the
/// tree has them; with `extract` (into `out`) it restores bytes, links, modes and mtimes.
/// Returns the folder.
fn tar_referee(program: &str, list: &[&str], extract: &[&str]) -> tempfile::TempDir {
    let tree = fixture_tree();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.tar.gz"), tar_gz(&tree)).unwrap();
    run(dir.path(), "gzip", &["-t", "a.tar.gz"], &[]);

    let listing = run_text(dir.path(), program, list, &[]);
    assert_listing(&tree, "/", &listing, |f| (f[1].to_string(), 5));

    let out = out_folder(dir.path());
    run(dir.path(), program, extract, &[]);
    check_extracted(&out, &tree, true, true);
    dir
}

#[test]
fn gnu_tar_lists_and_extracts_the_archive() {
    let dir = tar_referee(
        "tar",
        &["-tvzf", "a.tar.gz", "--numeric-owner"],
        &["-xzpf", "a.tar.gz", "-C", "out", "--numeric-owner"],
    );
    // Owners are only restored when the extracting user may chown.
    if running_as_root() {
        let shadow = dir.path().join("out/etc/shadow");
        assert_eq!(fs::metadata(shadow).unwrap().gid(), 42);
    }
}

#[test]
fn busybox_tar_lists_and_extracts_the_archive() {
    // busybox prints numeric owners when the header has no user/group names; `-C out -zxf`
    // is how Alpine's initramfs unpacks an apkovl.
    tar_referee(
        "busybox",
        &["tar", "-tzvf", "a.tar.gz"],
        &["tar", "-C", "out", "-zxf", "a.tar.gz"],
    );
}

#[test]
fn tar_and_cpio_output_is_identical_across_runs() {
    let tree = fixture_tree();
    assert_eq!(tar_gz(&tree), tar_gz(&tree));
    assert_eq!(cpio_archive(&tree), cpio_archive(&tree));
}

#[test]
fn writers_refuse_unrepresentable_entries() {
    let mut tar = TarWriter::new(Vec::new());
    let meta = TarMeta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1 << 40,
    };
    let err = tar.append_file("x", &meta, b"").unwrap_err();
    assert!(
        matches!(err, ArchiveError::FieldTooLarge { field: "mtime", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("'x'"), "{err}");
}

// ---------------------------------------------------------------------------------------
// .deb

const CONTROL: &str = "Package: pimg-fixture\nVersion: 1.2-3\nArchitecture: arm64\n\
                       Maintainer: nobody\nDescription: test package\n two lines\n";

/// A member owned by root with `mode`, dated at the epoch.
fn meta(mode: u32) -> TarMeta {
    TarMeta {
        mode,
        uid: 0,
        gid: 0,
        mtime: EPOCH,
    }
}

fn control_tar_gz(control: &str) -> Vec<u8> {
    let mut w = TarWriter::new(gzip::encoder(Vec::new(), 6));
    w.append_dir(".", &meta(0o755)).unwrap();
    w.append_file("./control", &meta(0o644), control.as_bytes())
        .unwrap();
    w.finish().unwrap().finish().unwrap()
}

/// A data.tar laid out as dpkg-deb writes it: `./` first, `./`-prefixed names, GNU format.
fn data_tar(extra: &dyn Fn(&mut TarWriter<Vec<u8>>)) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    w.append_dir(".", &meta(0o755)).unwrap();
    w.append_dir("./usr", &meta(0o755)).unwrap();
    w.append_dir("./usr/bin", &meta(0o755)).unwrap();
    w.append_file("./usr/bin/tool", &meta(0o4755), b"#!/bin/sh\necho hi\n")
        .unwrap();
    w.append_symlink("./usr/bin/alias", "tool", &meta(0o777))
        .unwrap();
    w.append_file(&format!("./usr/{}", long_path()), &meta(0o644), b"long")
        .unwrap();
    w.append_file("./usr/empty", &meta(0o644), b"").unwrap();
    extra(&mut w);
    w.finish().unwrap()
}

fn no_extra(_: &mut TarWriter<Vec<u8>>) {}

fn deb_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        b.append(
            &ar::Header::new(name.as_bytes().to_vec(), data.len() as u64),
            *data,
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

fn standard_deb(data_name: &str, data: &[u8]) -> Vec<u8> {
    deb_bytes(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar_gz(CONTROL)),
        (data_name, data),
    ])
}

fn xz_cli(data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), "xz", &["-0", "-c"], data)
}

fn write_deb(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Every member with the content of files.
fn scan(path: &Path) -> Result<Vec<(Member, Vec<u8>)>, DebError> {
    let mut out = Vec::new();
    deb::scan_data(path, &mut |m, r| {
        let mut content = Vec::new();
        r.read_to_end(&mut content)
            .map_err(|e| DebError::Aborted(e.to_string()))?;
        out.push((m.clone(), content));
        Ok(())
    })?;
    Ok(out)
}

fn check_standard_members(members: &[(Member, Vec<u8>)]) {
    let summary: Vec<(String, MemberKind, u32)> = members
        .iter()
        .map(|(m, _)| (m.path.to_string(), m.kind.clone(), m.mode))
        .collect();
    let long = format!("usr/{}", long_path());
    assert_eq!(
        summary,
        [
            ("usr".to_string(), MemberKind::Dir, 0o755),
            ("usr/bin".to_string(), MemberKind::Dir, 0o755),
            ("usr/bin/tool".to_string(), MemberKind::File, 0o4755),
            (
                "usr/bin/alias".to_string(),
                MemberKind::Symlink("tool".to_string()),
                0o777
            ),
            (long, MemberKind::File, 0o644),
            ("usr/empty".to_string(), MemberKind::File, 0o644),
        ]
    );
    assert_eq!(members[2].1, b"#!/bin/sh\necho hi\n");
    assert_eq!(members[2].0.size, 18);
    assert_eq!(members[2].0.mtime, EPOCH as i64);
    assert_eq!(members[4].1, b"long");
    assert!(members[5].1.is_empty());
}

#[test]
fn reads_a_deb_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let tar = data_tar(&no_extra);
    let pure_xz = {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
        w.write_all(&tar).unwrap();
        w.finish().unwrap()
    };
    let variants: [(&str, Vec<u8>); 5] = [
        ("data.tar", tar.clone()),
        ("data.tar.gz", gzip::gzip_bytes(&tar, 6)),
        ("data.tar.xz", xz_cli(&tar)),
        ("data.tar.xz", pure_xz),
        (
            "data.tar.zst",
            ruzstd::encoding::compress_to_vec(
                &tar[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        ),
    ];
    for (i, (name, data)) in variants.iter().enumerate() {
        let path = write_deb(dir.path(), &format!("v{i}.deb"), &standard_deb(name, data));
        let control = deb::read_control(&path).unwrap();
        assert_eq!(
            (
                control.package.as_str(),
                control.version.as_str(),
                control.architecture.as_str()
            ),
            ("pimg-fixture", "1.2-3", "arm64")
        );
        check_standard_members(&scan(&path).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
}

#[test]
fn reads_pax_and_hardlinks_written_by_gnu_tar() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let long = long_path();
    fs::create_dir_all(root.join(Path::new(&long).parent().unwrap())).unwrap();
    fs::write(root.join(&long), b"pax").unwrap();
    fs::write(root.join("a"), b"hard").unwrap();
    fs::hard_link(root.join("a"), root.join("b")).unwrap();
    let tar = run(
        &root,
        "tar",
        &[
            "--format=pax",
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--mtime=@1700000000",
            "-cf",
            "-",
            ".",
        ],
        &[],
    );
    let path = write_deb(dir.path(), "pax.deb", &standard_deb("data.tar", &tar));
    let members = scan(&path).unwrap();
    let find = |p: &str| {
        members
            .iter()
            .find(|(m, _)| m.path.as_str() == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert_eq!(find(&long).1, b"pax");
    assert_eq!(find("a").1, b"hard");
    assert_eq!(
        find("b").0.kind,
        MemberKind::Hardlink(TreePath::new("a").unwrap())
    );
}

#[test]
fn garbage_gives_the_right_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = standard_deb("data.tar.gz", &gzip::gzip_bytes(&data_tar(&no_extra), 6));

    // Deterministic pseudo-random bytes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let p = write_deb(dir.path(), "random.deb", &random);
    assert!(matches!(
        deb::read_control(&p),
        Err(DebError::NotADeb { .. })
    ));
    assert!(matches!(scan(&p), Err(DebError::NotADeb { .. })));
    let p = write_deb(dir.path(), "empty.deb", b"");
    assert!(matches!(scan(&p), Err(DebError::NotADeb { .. })));

    let mut bad_header = b"!<arch>\n".to_vec();
    bad_header.extend_from_slice(&random[..200]);
    let p = write_deb(dir.path(), "badhdr.deb", &bad_header);
    assert!(
        matches!(scan(&p), Err(DebError::BadArHeader { .. })),
        "{:?}",
        scan(&p)
    );

    // Cut inside the data member, inside a member header, inside the gzip stream's trailer.
    for cut in [good.len() - 30, 8 + 60 + 4 + 30, good.len() - 3] {
        let p = write_deb(dir.path(), "cut.deb", &good[..cut]);
        let err = scan(&p).unwrap_err();
        assert!(
            matches!(err, DebError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    let xz_data = xz_cli(&data_tar(&no_extra));
    let xz_deb = standard_deb("data.tar.xz", &xz_data);
    let p = write_deb(
        dir.path(),
        "cut.deb",
        &xz_deb[..xz_deb.len() - xz_data.len() / 2],
    );
    assert!(
        matches!(scan(&p), Err(DebError::Truncated { .. })),
        "{:?}",
        scan(&p)
    );

    // Damage in the middle of the compressed data (the data member is the last one).
    let mut damaged = xz_deb.clone();
    let at = damaged.len() - xz_data.len() / 2;
    damaged[at] ^= 0x55;
    let p = write_deb(dir.path(), "damaged.deb", &damaged);
    assert!(
        matches!(scan(&p), Err(DebError::Corrupt { .. })),
        "{:?}",
        scan(&p)
    );

    let escape = data_tar(&|w: &mut TarWriter<Vec<u8>>| {
        w.append_file("../etc/passwd", &meta(0o644), b"root::0:0::/:/bin/sh\n")
            .unwrap();
    });
    let p = write_deb(dir.path(), "escape.deb", &standard_deb("data.tar", &escape));
    let err = scan(&p).unwrap_err();
    assert!(
        matches!(&err, DebError::BadMemberPath { path, .. } if path == "../etc/passwd"),
        "{err}"
    );

    let p = write_deb(
        dir.path(),
        "bz2.deb",
        &standard_deb("data.tar.bz2", b"BZh9"),
    );
    assert!(matches!(scan(&p), Err(DebError::UnknownCompression { .. })));

    // The member a package's scan says is missing.
    let missing = |p: &Path| match scan(p) {
        Err(DebError::MissingMember { member, .. }) => Some(member),
        _ => None,
    };
    let control = control_tar_gz(CONTROL);
    let members = [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &control),
    ];
    let p = write_deb(dir.path(), "nodata.deb", &deb_bytes(&members));
    assert_eq!(missing(&p), Some("data.tar"));
    assert!(deb::read_control(&p).is_ok());

    let p = write_deb(dir.path(), "nobinary.deb", &deb_bytes(&members[1..]));
    assert_eq!(missing(&p), Some("debian-binary"));

    let p = write_deb(
        dir.path(),
        "v3.deb",
        &deb_bytes(&[("debian-binary", b"3.0\n")]),
    );
    assert!(matches!(scan(&p), Err(DebError::UnsupportedFormat { .. })));

    let p = write_deb(
        dir.path(),
        "noarch.deb",
        &deb_bytes(&[
            ("debian-binary", b"2.0\n"),
            (
                "control.tar.gz",
                &control_tar_gz("Package: a\nVersion: 1\n"),
            ),
        ]),
    );
    assert!(matches!(
        deb::read_control(&p),
        Err(DebError::MissingField {
            field: "Architecture",
            ..
        })
    ));

    // A GNU long-name header claiming 1 MiB of name: refused before it is read into memory.
    let mut bomb = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(1 << 20);
    h.set_cksum();
    bomb.extend_from_slice(h.as_bytes());
    bomb.resize(512 + (1 << 20) + 1024, b'a');
    let p = write_deb(
        dir.path(),
        "bomb.deb",
        &standard_deb("data.tar.gz", &gzip::gzip_bytes(&bomb, 1)),
    );
    assert!(
        matches!(scan(&p), Err(DebError::TooLarge { .. })),
        "{:?}",
        scan(&p)
    );

    // A visitor's refusal comes back unchanged.
    let p = write_deb(dir.path(), "good.deb", &good);
    let err = deb::scan_data(&p, &mut |_, _| Err(DebError::Aborted("stop".into()))).unwrap_err();
    assert!(matches!(&err, DebError::Aborted(m) if m == "stop"));
}

#[test]
fn damaged_debs_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let tar = data_tar(&no_extra);
    for (name, data) in [
        ("data.tar", tar.clone()),
        ("data.tar.gz", gzip::gzip_bytes(&tar, 6)),
        ("data.tar.xz", xz_cli(&tar)),
    ] {
        let good = standard_deb(name, &data);
        let path = dir.path().join("x.deb");
        // Stop before the last byte, which may be the ar padding after an odd-sized member.
        for cut in (0..good.len() - 1).step_by(97) {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(scan(&path).is_err(), "{name} cut at {cut} was accepted");
            let _ = deb::read_control(&path);
        }
        for at in (8..good.len()).step_by(61) {
            let mut bad = good.clone();
            bad[at] ^= 0xa5;
            fs::write(&path, &bad).unwrap();
            let _ = scan(&path);
            let _ = deb::read_control(&path);
        }
    }
}
