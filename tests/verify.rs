//! `pimg inspect`, `pimg diff` and `pimg verify` on fixture builds: single-byte flips in every
//! region of every artifact must make verify fail and diff name the partition, file, entry or
//! field; builds with different epochs must diff as timestamps; rebuilds must reproduce the
//! outputs and name a swapped input. The expected names come from the tests' own walk of the
//! bytes (FAT spec offsets, cpio/tar headers), not from pimg's readers.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One fixture build shared by the tests of this binary (kept for the process lifetime).
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap().keep();
        fixture_build(&tmp)
            .arg("--json")
            .epoch(EPOCH)
            .expect_success();
        tmp
    })
}

fn out() -> PathBuf {
    fixture().join("out")
}

/// pimg with `args` in the fixture's folder.
fn pimg_at_fixture(args: &[&str]) -> Ran {
    run(fixture(), args, &[])
}

/// A path as an argument.
fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pimg verify --rebuild BUILDINFO --inputs INPUTS` in `cwd`.
fn rebuild(cwd: &Path, info: &Path, inputs: &Path) -> Ran {
    let args = ["verify", "--rebuild", arg(info), "--inputs", arg(inputs)];
    run(cwd, &args, &[])
}

/// A copy of the output folder to damage.
fn copy_out(to: &Path) -> PathBuf {
    let dst = to.join("b");
    fs::create_dir_all(&dst).unwrap();
    for (name, _) in sums(&out()) {
        fs::copy(out().join(&name), dst.join(&name)).unwrap();
    }
    fs::copy(out().join("SHA256SUMS"), dst.join("SHA256SUMS")).unwrap();
    dst
}

/// Deterministic xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn flip(&mut self) -> u8 {
        (self.next() % 255 + 1) as u8
    }
}

fn xor_at(path: &Path, offset: u64, x: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ x]).unwrap();
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Flips one byte of `artifact` in the damaged folder, runs diff and verify, restores it.
/// `expect` lists words that must all appear in the diff output.
fn flip_and_check(dir_b: &Path, artifact: &str, offset: u64, x: u8, expect: &[String]) {
    let b = dir_b.join(artifact);
    xor_at(&b, offset, x);
    let a = out().join(artifact);
    let d = pimg_at_fixture(&["diff", arg(&a), arg(&b)]);
    let text = &d.stdout;
    let ctx = format!(
        "{artifact}: byte {offset} ^ 0x{x:02x}: diff exit {:?}\nstdout:\n{text}\nstderr:\n{}",
        d.code(),
        d.stderr
    );
    assert_eq!(d.code(), Some(1), "{ctx}");
    for e in expect {
        assert!(text.contains(e.as_str()), "diff does not name {e:?}\n{ctx}");
    }
    let v = pimg_at_fixture(&["verify", arg(dir_b)]);
    assert_eq!(
        v.code(),
        Some(1),
        "verify must fail after {ctx}\nverify:\n{}",
        v.text()
    );
    assert!(v.stdout.contains(&format!("FAIL  {artifact}")));
    xor_at(&b, offset, x);
}

/// The field of a FAT32 boot sector at byte `i`, per the FAT specification.
fn boot_sector_field(i: u64) -> &'static str {
    const F: &[(u64, u64, &str)] = &[
        (0, 3, "jump instruction"),
        (3, 11, "OEM name"),
        (11, 13, "bytes per sector"),
        (13, 14, "sectors per cluster"),
        (14, 16, "reserved sectors"),
        (16, 17, "number of FATs"),
        (17, 19, "root directory entries"),
        (19, 21, "total sectors (16-bit)"),
        (21, 22, "media descriptor"),
        (22, 24, "sectors per FAT (16-bit)"),
        (24, 26, "sectors per track"),
        (26, 28, "number of heads"),
        (28, 32, "hidden sectors"),
        (32, 36, "total sectors (32-bit)"),
        (36, 40, "sectors per FAT (32-bit)"),
        (40, 42, "extended flags"),
        (42, 44, "file system version"),
        (44, 48, "root directory cluster"),
        (48, 50, "FSInfo sector"),
        (50, 52, "backup boot sector"),
        (52, 64, "reserved bytes 52-63"),
        (64, 65, "drive number"),
        (65, 66, "reserved byte"),
        (66, 67, "extended boot signature"),
        (67, 71, "volume ID"),
        (71, 82, "volume label"),
        (82, 90, "file system type"),
        (90, 510, "boot code"),
        (510, 512, "boot signature"),
    ];
    F.iter()
        .find(|(a, b, _)| i >= *a && i < *b)
        .map(|f| f.2)
        .unwrap()
}

fn mbr_field(i: u64) -> String {
    match i {
        0..440 => "bootstrap code".into(),
        440..444 => "disk signature".into(),
        444..446 => "reserved bytes".into(),
        446..510 => {
            let n = (i - 446) / 16 + 1;
            let f = match (i - 446) % 16 {
                0 => "status",
                1..=3 => "first CHS",
                4 => "type",
                5..=7 => "last CHS",
                8..=11 => "start LBA",
                _ => "sectors",
            };
            format!("partition {n} › {f}")
        }
        _ => "boot signature".into(),
    }
}

/// The fixture image's layout, read with the FAT specification's arithmetic.
struct Layout {
    part: u64,
    fat: u64,
    fat_len: u64,
    clusters: u64,
    data: u64,
    cluster: u64,
    root: u64,
}

fn layout(img: &[u8]) -> Layout {
    let part = le32(img, 446 + 8) * 512;
    let bs = &img[part as usize..part as usize + 512];
    let bps = le16(bs, 11);
    let spc = u64::from(bs[13]);
    let reserved = le16(bs, 14);
    let fats = u64::from(bs[16]);
    let fat_sectors = le32(bs, 36);
    let total = le32(bs, 32);
    let data_sector = reserved + fats * fat_sectors;
    Layout {
        part,
        fat: part + reserved * bps,
        fat_len: fat_sectors * bps,
        clusters: (total - data_sector) / spc,
        data: part + data_sector * bps,
        cluster: spc * bps,
        root: le32(bs, 44),
    }
}

/// Root directory slots: (image offset, long name of the entry it belongs to, is LFN).
fn root_slots(img: &[u8], l: &Layout) -> Vec<(u64, String, bool)> {
    let start = l.data + (l.root - 2) * l.cluster;
    let mut out = Vec::new();
    let mut pending: Vec<(u64, Vec<u16>)> = Vec::new();
    for i in 0..(l.cluster / 32) {
        let off = start + i * 32;
        let s = &img[off as usize..off as usize + 32];
        if s[0] == 0 {
            break;
        }
        if s[11] == 0x0F {
            let mut units = Vec::new();
            for at in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30] {
                units.push(le16(s, at) as u16);
            }
            pending.push((off, units));
            continue;
        }
        if s[11] & 0x08 != 0 {
            continue;
        }
        let mut units: Vec<u16> = pending.iter().rev().flat_map(|p| p.1.clone()).collect();
        if let Some(e) = units.iter().position(|&u| u == 0) {
            units.truncate(e);
        }
        let name = String::from_utf16(&units).unwrap();
        for (o, _) in pending.drain(..) {
            out.push((o, name.clone(), true));
        }
        out.push((off, name, false));
    }
    out
}

fn short_entry_field(i: u64) -> &'static str {
    match i {
        0..11 => "short name",
        11 => "attributes",
        12 => "case flags",
        13..18 => "create time",
        18..20 => "access date",
        20..22 => "first cluster (high word)",
        22..26 => "modify time",
        26..28 => "first cluster",
        _ => "size",
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn byte_flips_in_the_image_are_named_by_diff_and_fail_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir_b = copy_out(tmp.path());
    let img = fs::read(out().join("rpi3b.img")).unwrap();
    let l = layout(&img);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let name = "rpi3b.img";
    let per_region = 20;

    // MBR: every field of sector 0.
    for _ in 0..per_region {
        let off = rng.below(512);
        flip_and_check(
            &dir_b,
            name,
            off,
            rng.flip(),
            &["partition table › MBR".into(), mbr_field(off)],
        );
    }
    // FAT boot sector fields.
    for _ in 0..per_region {
        let i = rng.below(512);
        let expect = vec![
            "partition 1 › FAT › boot sector".to_string(),
            boot_sector_field(i).to_string(),
        ];
        flip_and_check(&dir_b, name, l.part + i, rng.flip(), &expect);
    }
    // FAT tables: entries of used and free clusters, both copies.
    for k in 0..per_region {
        let copy = k % 2;
        let cluster = 2 + rng.below(l.clusters);
        let off = l.fat + copy * l.fat_len + cluster * 4 + rng.below(3);
        let expect = vec![
            format!("FAT {}", copy + 1),
            format!("entry for cluster {cluster}"),
        ];
        flip_and_check(&dir_b, name, off, rng.flip() & 0x7f | 1, &expect);
    }
    // Directory entries in the root: short-entry fields and long-name slots.
    let slots = root_slots(&img, &l);
    for _ in 0..per_region {
        let (off, entry, lfn) = slots[rng.below(slots.len() as u64) as usize].clone();
        let i = rng.below(32);
        let mut expect = vec![format!("directory entry {entry}")];
        if lfn {
            expect.push("long".into());
        } else {
            expect.push(short_entry_field(i).into());
        }
        flip_and_check(&dir_b, name, off + i, rng.flip(), &expect);
    }
    // File data: firmware files (contiguous on a fresh volume), found by their content.
    let debs = fixture_debs();
    let _ = debs;
    for k in 0..per_region {
        let (file, len) = [
            ("bootcode.bin", 52_460usize),
            ("start.elf", 297_353),
            ("fixup.dat", 7_262),
            ("bcm2837-rpi-3-b.dtb", 14_993),
        ][(k % 4) as usize];
        let content = if file.ends_with(".dtb") {
            fdt_blob("dtb3b", len)
        } else {
            pattern(&format!("usr/lib/raspi-firmware/{file}"), len)
        };
        let start = find(&img[l.data as usize..], &content[..256])
            .expect("file content on the image") as u64
            + l.data;
        assert_eq!(
            &img[start as usize..start as usize + len],
            &content[..],
            "{file} is not contiguous"
        );
        if k % 5 == 4 {
            // Slack after the end of the file in its last cluster.
            let slack = (l.cluster - len as u64 % l.cluster) % l.cluster;
            if slack > 0 {
                let off = start + len as u64 + rng.below(slack);
                flip_and_check(
                    &dir_b,
                    name,
                    off,
                    rng.flip(),
                    &[format!("slack after the end of {file}")],
                );
                continue;
            }
        }
        let at = rng.below(len as u64);
        flip_and_check(
            &dir_b,
            name,
            start + at,
            rng.flip(),
            &[format!("FAT › {file} › content at offset {at}")],
        );
    }
    // Unallocated space between the MBR and the partition.
    for _ in 0..3 {
        let off = 512 + rng.below(l.part - 512);
        flip_and_check(
            &dir_b,
            name,
            off,
            rng.flip(),
            &["unallocated region".into()],
        );
    }
}

/// cpio newc entries of a decompressed payload: (name, header offset, end of padded data).
fn cpio_walk(d: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 110 <= d.len() {
        let field = |i: usize| {
            usize::from_str_radix(
                std::str::from_utf8(&d[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap(),
                16,
            )
            .unwrap()
        };
        let (size, namesize) = (field(6), field(11));
        let name = String::from_utf8_lossy(&d[at + 110..at + 110 + namesize - 1]).into_owned();
        let data = (at + 110 + namesize).div_ceil(4) * 4;
        let end = (data + size).div_ceil(4) * 4;
        out.push((name.clone(), at, end));
        if name == "TRAILER!!!" {
            break;
        }
        at = end;
    }
    out
}

/// tar entries: (name, header offset, end of padded data).
fn tar_walk(d: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 512 <= d.len() && d[at..at + 512].iter().any(|&b| b != 0) {
        let h = &d[at..at + 512];
        let name =
            String::from_utf8_lossy(&h[..h[..100].iter().position(|&b| b == 0).unwrap_or(100)])
                .into_owned();
        let size = usize::from_str_radix(
            std::str::from_utf8(&h[124..135])
                .unwrap()
                .trim_matches(char::from(0)),
            8,
        )
        .unwrap();
        let end = at + 512 + size.div_ceil(512) * 512;
        out.push((name, at, end));
        at = end;
    }
    out
}

/// What a gzip stream (pimg's fixed 10-byte header) decodes to before any damage, by
/// miniz_oxide called directly: flate2's backend is the build's choice (rPGP switches it to
/// zlib-rs), and zlib-rs hands out nothing of a damaged stream.
fn gunzip_partial(b: &[u8]) -> Vec<u8> {
    let body = &b[10.min(b.len())..];
    match miniz_oxide::inflate::decompress_to_vec(body) {
        Ok(out) => out,
        Err(e) => e.output,
    }
}

/// Flips in a gzip artifact: header and trailer fields by name, deflate data by the entry
/// whose decompressed bytes first differ.
type Walk = fn(&[u8]) -> Vec<(String, usize, usize)>;

fn gzip_flips(artifact: &str, walk: Walk) {
    let tmp = tempfile::tempdir().unwrap();
    let dir_b = copy_out(tmp.path());
    let a = fs::read(out().join(artifact)).unwrap();
    let payload = gunzip_partial(&a);
    let entries = walk(&payload);
    let mut rng = Rng(0xdead_beef_1234_5678 ^ a.len() as u64);
    let n = a.len() as u64;
    for k in 0..24 {
        let off = match k % 8 {
            0 => rng.below(10),
            1 => n - 8 + rng.below(8),
            _ => 10 + rng.below(n - 18),
        };
        let x = rng.flip();
        let expect: Vec<String> = if off < 10 {
            let f = match off {
                0 | 1 => "magic",
                2 => "compression method",
                3 => "flags",
                4..=7 => "mtime",
                8 => "extra flags",
                _ => "OS",
            };
            vec![format!("gzip header › {f}")]
        } else if off >= n - 8 {
            vec![if off < n - 4 {
                "trailer CRC32"
            } else {
                "trailer size"
            }
            .to_string()]
        } else {
            let mut b = a.clone();
            b[off as usize] ^= x;
            let pb = gunzip_partial(&b);
            let m = payload.len().min(pb.len());
            match (0..m).find(|&i| payload[i] != pb[i]) {
                Some(d) => {
                    let e = entries
                        .iter()
                        .find(|e| d >= e.1 && d < e.2)
                        .map(|e| e.0.clone())
                        .unwrap_or_default();
                    vec![format!("{artifact} › {e}")]
                }
                // The stream breaks without a wrong byte first: the diff names the offset.
                None => vec![format!("compressed data at offset {off}")],
            }
        };
        flip_and_check(&dir_b, artifact, off, x, &expect);
    }
}

#[test]
fn byte_flips_in_the_initramfs_are_named() {
    gzip_flips("rpi3b.initramfs.cpio.gz", cpio_walk);
}

#[test]
fn byte_flips_in_the_apkovl_are_named() {
    gzip_flips("pimg.apkovl.tar.gz", tar_walk);
}

#[test]
fn identical_files_diff_silently_and_verify_passes() {
    let img = out().join("rpi3b.img");
    let d = pimg_at_fixture(&["diff", arg(&img), arg(&img)]);
    assert_eq!(d.code(), Some(0));
    assert!(d.stdout.is_empty());
    let text = pimg_at_fixture(&["verify", arg(&out())])
        .expect_success()
        .stdout;
    assert!(
        text.contains("OK    rpi3b.img › partition 1 › boot/vmlinuz-rpi"),
        "{text}"
    );
    assert!(text.contains("0 failed: OK"), "{text}");
    let sums = out().join("SHA256SUMS");
    pimg_at_fixture(&["verify", "--sums", arg(&sums), arg(&img)]).expect_success();
    let v = pimg_at_fixture(&["verify", "--sums", arg(&sums), "nonexistent.img"]);
    assert_eq!(v.code(), Some(2));
}

#[test]
fn verify_names_the_boot_file_that_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir_b = copy_out(tmp.path());
    let img = fs::read(out().join("rpi3b.img")).unwrap();
    let content = pattern("usr/lib/raspi-firmware/start.elf", 297_353);
    let at = find(&img, &content[..256]).unwrap() as u64 + 1000;
    xor_at(&dir_b.join("rpi3b.img"), at, 0x40);
    let v = pimg_at_fixture(&["verify", arg(&dir_b)]);
    let text = &v.stdout;
    assert_eq!(v.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  rpi3b.img › partition 1 › start.elf: expected sha256"),
        "{text}"
    );
    // The initramfs differs: the copy in the image is the reference for a structural diff.
    let initramfs = dir_b.join("rpi3b.initramfs.cpio.gz");
    let n = fs::metadata(&initramfs).unwrap().len();
    xor_at(&initramfs, n - 3, 0x01);
    let v = pimg_at_fixture(&["verify", "--json", arg(&dir_b)]);
    let j: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert!(
        j["diffs"][0]["differences"][0]["field"]
            .as_str()
            .unwrap()
            .contains("trailer size"),
        "{j}"
    );
}

#[test]
fn inspect_lists_table_file_system_files_and_archive_entries() {
    let img = out().join("rpi3b.img");
    let o = pimg_at_fixture(&["inspect", "--json", arg(&img)]).expect_success();
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let info = read_json(&out().join("rpi3b.buildinfo.json"));
    assert_eq!(j["kind"], "disk-image");
    assert_eq!(j["partition_table"]["kind"], "MBR");
    let fs_ = &j["partitions"][0]["filesystem"];
    assert_eq!(fs_["fat_type"], "FAT32");
    assert_eq!(fs_["label"], "PIBOOT");
    assert_eq!(fs_["volume_id"], info["identifiers"]["fat_volume_id"]);
    let files = fs_["files"].as_array().unwrap();
    for b in info["boot_partition"].as_array().unwrap() {
        let f = files
            .iter()
            .find(|f| f["path"] == b["path"])
            .unwrap_or_else(|| panic!("{} missing", b["path"]));
        assert_eq!(f["sha256"], b["sha256"]);
        assert_eq!(f["size"], b["size"]);
    }
    let initramfs = files
        .iter()
        .find(|f| f["path"] == "boot/initramfs-rpi")
        .unwrap();
    let entries = initramfs["archive"]["entries"].as_array().unwrap();
    let bb = entries.iter().find(|e| e["path"] == "bin/busybox").unwrap();
    assert_eq!(bb["mode"], "0100755");
    assert_eq!(bb["mtime"], EPOCH.parse::<i64>().unwrap());
    let text = pimg_at_fixture(&["inspect", arg(&out().join("pimg.apkovl.tar.gz"))])
        .expect_success()
        .stdout;
    assert!(
        text.contains("0640     0/42") && text.contains("etc/shadow"),
        "{text}"
    );
}

#[test]
fn different_epochs_diff_as_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let later = Build::new()
        .cwd(fixture())
        .inputs("inputs")
        .out(tmp.path().join("later"))
        .epoch("1700086400")
        .built();
    let (a, b) = (out().join("rpi3b.img"), later.join("rpi3b.img"));
    let d = pimg_at_fixture(&["diff", arg(&a), arg(&b)]);
    assert_eq!(d.code(), Some(1));
    let text = &d.stdout;
    assert!(
        text.contains("modify time") && text.contains("mtime"),
        "{text}"
    );
    let j = pimg_at_fixture(&["diff", "--json", arg(&a), arg(&b)]);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let diffs = j["differences"].as_array().unwrap();
    let has = |path_end: &[&str], field: &str, a: &str| {
        diffs.iter().any(|d| {
            let p: Vec<&str> = d["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            p.ends_with(path_end)
                && d["field"] == field
                && d["a"].as_str().unwrap_or("").contains(a)
        })
    };
    assert!(
        has(
            &["directory entry config.txt"],
            "modify time",
            "2023-11-14T22:13:20Z"
        ),
        "{j}"
    );
    assert!(
        has(
            &["directory entry boot/vmlinuz-rpi"],
            "create time",
            "2023-11-14T22:13:20Z"
        ),
        "{j}"
    );
    assert!(
        has(&["boot/initramfs-rpi", "init"], "mtime", "1700000000"),
        "{j}"
    );
    assert!(
        has(
            &["pimg.apkovl.tar.gz", "etc/hostname"],
            "mtime",
            "1700000000"
        ),
        "{j}"
    );
    let j = pimg_at_fixture(&[
        "diff",
        "--json",
        arg(&out().join("pimg.apkovl.tar.gz")),
        arg(&later.join("pimg.apkovl.tar.gz")),
    ]);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let diffs = j["differences"].as_array().unwrap();
    assert!(!diffs.is_empty());
    assert!(diffs.iter().all(|d| d["field"] == "mtime"), "{j}");
}

#[test]
fn rebuild_reproduces_the_fixture_and_names_a_swapped_input() {
    let info = out().join("rpi3b.buildinfo.json");
    let text = rebuild(fixture(), &info, Path::new("inputs"))
        .expect_success()
        .stdout;
    assert!(text.contains("OK    rpi3b.img (rebuilt)"), "{text}");

    // Another version of busybox-static in place of the recorded one.
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    write_fixture(&inputs, false);
    let old = fixture_debs()[0].0.clone();
    fs::remove_file(inputs.join(&old)).unwrap();
    let entries = [
        Entry::Dir("bin"),
        Entry::File("bin/busybox", pattern("busybox 1.36", 400_000), 0o755),
    ];
    let bb = busybox_deb("1:1.36.1-1", &entries, FIXTURE_NEWEST_MTIME);
    fs::write(inputs.join("busybox-static_1%3a1.36.1-1_arm64.deb"), bb).unwrap();
    let v = rebuild(fixture(), &info, &inputs);
    let text = &v.stdout;
    assert_eq!(v.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  input busybox-static 1:1.35.0-4+deb12u1+b1"),
        "{text}"
    );
    assert!(
        text.contains("busybox-static_1%3a1.36.1-1_arm64.deb (version 1:1.36.1-1)"),
        "{text}"
    );

    // The same file name with other bytes.
    fs::remove_file(inputs.join("busybox-static_1%3a1.36.1-1_arm64.deb")).unwrap();
    let entries = [Entry::File("bin/busybox", pattern("other", 400_000), 0o755)];
    let bb = busybox_deb("1:1.35.0-4+deb12u1+b1", &entries, FIXTURE_NEWEST_MTIME);
    fs::write(inputs.join(&old), bb).unwrap();
    let v = rebuild(fixture(), &info, &inputs);
    let text = &v.stdout;
    assert_eq!(v.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "FAIL  input busybox-static 1:1.35.0-4+deb12u1+b1 ({old}): expected sha256"
        )),
        "{text}"
    );

    // A missing input is an error naming it.
    fs::remove_file(inputs.join(&old)).unwrap();
    let v = rebuild(fixture(), &info, &inputs);
    assert_eq!(v.code(), Some(2));
    assert!(v.stderr.contains("input busybox-static"));
}

/// A publisher's own profile file and overlay directory, deleted after the build: the
/// published folder and the inputs are all `verify --rebuild` needs (the profile from the
/// buildinfo, the overlay from the apkovl). A published apkovl with other bytes, or a
/// buildinfo naming its profile with a path, is refused.
#[test]
fn rebuild_from_the_published_folder_alone_with_a_custom_profile_and_overlay() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let inputs = fixture_inputs(t);
    let profile = t.join("mine.toml");
    board_variant("rpi3b", &profile, "label = \"PIBOOT\"", "label = \"MINE\"");
    let ov = t.join("my-overlay");
    shell(
        t,
        &format!(
            "cp -r {} my-overlay && echo mine > my-overlay/etc/hostname \
             && echo secret > my-overlay/etc/mine.conf \
             && printf '#!/bin/sh\\necho hi\\n' > my-overlay/etc/hi.sh && chmod 755 my-overlay/etc/hi.sh \
             && ln -s mine.conf my-overlay/etc/mine.link \
             && echo 'etc/mine.conf 0600 1000 1001' >> my-overlay/.attributes",
            repo().join("overlays/default").display()
        ),
    )
    .expect_success();
    let published = Build::new()
        .cwd(t)
        .board(&profile)
        .overlay(&ov)
        .inputs(&inputs)
        .out(t.join("pub"))
        .epoch(EPOCH)
        .built();
    assert!(published.join("mine.apkovl.tar.gz").is_file());
    fs::remove_file(&profile).unwrap();
    fs::remove_dir_all(&ov).unwrap();

    let info = published.join("rpi3b.buildinfo.json");
    let text = rebuild(t, &info, &inputs).expect_success().stdout;
    assert!(text.contains("OK    rpi3b.img (rebuilt)"), "{text}");
    assert!(
        text.contains("OK    mine.apkovl.tar.gz (rebuilt)"),
        "{text}"
    );
    assert!(text.contains("0 failed: OK"), "{text}");

    // A buildinfo naming its profile with a path is not a rebuild recipe.
    let json = fs::read_to_string(&info).unwrap();
    let forged = t.join("forged/rpi3b.buildinfo.json");
    fs::create_dir_all(forged.parent().unwrap()).unwrap();
    fs::write(
        &forged,
        json.replace("\"file mine.toml\"", "\"file ../mine.toml\""),
    )
    .unwrap();
    let v = rebuild(t, &forged, &inputs);
    assert_eq!(v.code(), Some(2), "{}", v.report());
    assert!(
        v.stderr.contains("profile name \"../mine.toml\""),
        "{}",
        v.stderr
    );

    // An apkovl with other bytes than the buildinfo records is not taken.
    let apkovl = published.join("mine.apkovl.tar.gz");
    let mut bytes = fs::read(&apkovl).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&apkovl, bytes).unwrap();
    let v = rebuild(t, &info, &inputs);
    assert_eq!(v.code(), Some(2), "{}", v.report());
    assert!(
        v.stderr.contains("mine.apkovl.tar.gz has sha256") && v.stderr.contains("--overlay DIR"),
        "{}",
        v.stderr
    );
}

#[test]
fn rebuild_reproduces_the_real_rpi3b_build() {
    let inputs = real_inputs();
    let tmp = tempfile::tempdir().unwrap();
    let out = Build::real("rpi3b").cwd(tmp.path()).out("out").built();
    let info = out.join("rpi3b.buildinfo.json");
    let text = rebuild(tmp.path(), &info, &inputs).expect_success().stdout;
    assert!(text.contains("0 failed: OK"), "{text}");
    run(tmp.path(), &["verify", "out"], &[]).expect_success();
}

/// A short deterministic mutation run of every reader on the fixture's artifacts (the
/// cargo-fuzz targets in fuzz/ run the same readers for longer): no panic, no hang.
#[test]
fn readers_survive_mutated_artifacts() {
    let img = fs::read(out().join("rpi3b.img")).unwrap();
    let l = layout(&img);
    // A small FAT volume: the first 1.5 MiB of the partition, with the BPB's sizes shrunk.
    let mut vol = img[l.part as usize..l.part as usize + (1 << 20)].to_vec();
    let initramfs = fs::read(out().join("rpi3b.initramfs.cpio.gz")).unwrap();
    let apkovl = fs::read(out().join("pimg.apkovl.tar.gz")).unwrap();
    let cpio_payload = gunzip_partial(&initramfs);
    let tar_payload = gunzip_partial(&apkovl);
    vol[32..36].copy_from_slice(&2048u32.to_le_bytes());
    let mut rng = Rng(42);
    let mutate = |rng: &mut Rng, d: &[u8], window: usize| -> Vec<u8> {
        let mut m = d.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(window.min(m.len()) as u64) as usize;
            m[i] ^= rng.flip();
        }
        m
    };
    let sink = |r: &mut dyn Read| {
        let _ = std::io::copy(r, &mut std::io::sink());
        Ok(())
    };
    for _ in 0..300 {
        let m = mutate(&mut rng, &img[..8192], 8192);
        let _ = pimg::codec::partition::partitions(std::io::Cursor::new(&m));
        let m = mutate(&mut rng, &vol, 1 << 20);
        if let Ok(mut v) =
            pimg::codec::fat::read::FatVolume::open(std::io::Cursor::new(&m), 0, m.len() as u64)
        {
            if let Ok(es) = v.entries() {
                for e in es.iter().take(5) {
                    let _ = v.sha256_file(e);
                }
            }
        }
        let m = mutate(&mut rng, &initramfs[..4096.min(initramfs.len())], 4096);
        let _ = pimg::codec::gzip::read::decompress(&m);
        let m = mutate(&mut rng, &cpio_payload[..8192], 8192);
        let _ = pimg::codec::cpio::read::read(&m[..], |_, d| sink(d));
        let m = mutate(&mut rng, &tar_payload, tar_payload.len());
        let _ = pimg::codec::tar::read::read(&m[..], |_, d| sink(d));
    }
}

/// `cmd` under `timeout 60`: a reader that blocks on a FIFO or reads a device for ever is a
/// failure of this test, not a hang of the suite.
fn bounded(cwd: &Path, args: &[&str]) -> Ran {
    let mut c = std::process::Command::new(need_tool("timeout", "coreutils"));
    c.arg("60")
        .arg(env!("CARGO_BIN_EXE_pimg"))
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    let r = Ran::of(&mut c, PathBuf::new());
    assert_ne!(
        r.code(),
        Some(124),
        "pimg {args:?} was still running after 60 s"
    );
    r
}

/// A published folder names only its own files: a buildinfo or SHA256SUMS that names a host
/// file by an absolute path or `..`, or a symbolic link out of the folder, is a failed check
/// that says why, and the host file is never hashed; a FIFO in the folder is not read.
#[test]
fn hostile_folders_cannot_reach_host_files_or_hang_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_out(tmp.path());
    let host = tmp.path().join("host-secret.txt");
    fs::write(&host, b"not for strangers\n").unwrap();
    let host_sha = sha256_hex(b"not for strangers\n");
    let info_path = dir.join("rpi3b.buildinfo.json");
    let mut info = read_json(&info_path);
    let outputs = info["outputs"].as_array_mut().unwrap();
    let spdx = outputs
        .iter()
        .position(|o| o["name"] == "rpi3b.spdx.json")
        .unwrap();
    let mut forged = outputs[spdx].clone();
    forged["name"] = host.display().to_string().into();
    outputs.push(forged.clone());
    forged["name"] = "../host-secret.txt".into();
    outputs.push(forged);
    fs::write(&info_path, serde_json::to_vec_pretty(&info).unwrap()).unwrap();
    // The SBOM replaced by a FIFO, and the apkovl by a link to the host file.
    fs::remove_file(dir.join("rpi3b.spdx.json")).unwrap();
    referee("mkfifo", "coreutils")
        .arg(dir.join("rpi3b.spdx.json"))
        .run();
    fs::remove_file(dir.join("pimg.apkovl.tar.gz")).unwrap();
    std::os::unix::fs::symlink(&host, dir.join("pimg.apkovl.tar.gz")).unwrap();

    let v = bounded(tmp.path(), &["verify", arg(&dir)]);
    let text = format!("{}{}", v.stdout, v.stderr);
    assert_eq!(v.code(), Some(1), "{text}");
    assert!(!text.contains(&host_sha), "a host file was hashed:\n{text}");
    for words in [
        "is an absolute path; a published folder may name only its own files",
        "has '..', '.' or empty parts",
        "rpi3b.spdx.json is not a regular file",
        "pimg.apkovl.tar.gz is a symbolic link",
    ] {
        assert!(text.contains(words), "expected {words:?} in:\n{text}");
    }

    // Under strace: verify never opens the host file, by any name.
    let trace = tmp.path().join("verify.strace");
    let st = std::process::Command::new(need_tool("strace", "strace"))
        .args(["-f", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(need_tool("timeout", "coreutils"))
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_pimg"))
        .args(["verify", arg(&dir)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
    let calls = fs::read_to_string(&trace).unwrap();
    assert!(
        calls.contains("SHA256SUMS"),
        "strace saw the opens:\n{calls}"
    );
    let reached: Vec<&str> = calls
        .lines()
        .filter(|l| l.contains("host-secret") && !l.contains("= -1"))
        .collect();
    assert!(
        reached.is_empty(),
        "verify opened the host file: {reached:#?}"
    );

    // SHA256SUMS naming a host file is refused as a bad line.
    let sums_path = dir.join("SHA256SUMS");
    fs::write(
        &sums_path,
        format!("{}  {}\n", "0".repeat(64), host.display()),
    )
    .unwrap();
    let v = bounded(tmp.path(), &["verify", "--sums", arg(&sums_path)]);
    assert_eq!(v.code(), Some(2), "{}", v.report());
    assert!(v.stderr.contains("is an absolute path"), "{}", v.stderr);
    assert!(!v.stdout.contains(&host_sha));

    // A buildinfo whose input file leaves the inputs folder is not a rebuild recipe.
    let mut info = read_json(&out().join("rpi3b.buildinfo.json"));
    info["inputs"][0]["file"] = "../../../../etc/passwd".into();
    let forged = tmp.path().join("forged.buildinfo.json");
    fs::write(&forged, serde_json::to_vec_pretty(&info).unwrap()).unwrap();
    let v = rebuild(fixture(), &forged, Path::new("inputs"));
    assert_eq!(v.code(), Some(2), "{}", v.report());
    v.expect_stderr(&["has '..', '.' or empty parts"]);
}

/// Files that are not regular, named on the command line, are refused at once.
#[test]
fn readers_refuse_fifos_and_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("image.img");
    referee("mkfifo", "coreutils").arg(&fifo).run();
    let img = out().join("rpi3b.img");
    for args in [
        vec!["inspect", arg(&fifo)],
        vec!["inspect", "/dev/zero"],
        vec!["diff", "/dev/zero", arg(&img)],
        vec!["diff", arg(&img), arg(&fifo)],
        vec!["check", "--model", "pi3b", arg(&fifo)],
        vec!["verify", "--sums", "/dev/zero"],
    ] {
        let r = bounded(tmp.path(), &args);
        assert_eq!(r.code(), Some(2), "pimg {args:?}: {}", r.report());
        r.expect_stderr(&["is not a regular file"]);
    }
}

/// Damage that a reader could read past is reported, not accepted: an MBR partition that
/// overlaps the boot partition, a FAT file whose cluster chain goes on past its size, and
/// bytes of no known format.
#[test]
fn damaged_tables_chains_and_unknown_bytes_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fs::read(out().join("rpi3b.img")).unwrap();

    // A second MBR entry over the boot partition's sectors.
    let mut bad = good.clone();
    let boot_start = u32::from_le_bytes(bad[454..458].try_into().unwrap());
    bad[462 + 4] = 0x83;
    bad[462 + 8..462 + 12].copy_from_slice(&(boot_start + 8).to_le_bytes());
    bad[462 + 12..462 + 16].copy_from_slice(&64u32.to_le_bytes());
    let img = tmp.path().join("overlap.img");
    fs::write(&img, &bad).unwrap();
    for args in [
        vec!["inspect", arg(&img)],
        vec!["check", "--model", "pi3b", arg(&img)],
    ] {
        let r = bounded(tmp.path(), &args);
        assert_ne!(r.code(), Some(0), "pimg {args:?}: {}", r.report());
        r.expect_stderr(&["MBR partition entry 2", "overlap partition 1"]);
    }

    // config.txt's one cluster linked on to another cluster instead of ending the chain,
    // in both FATs. fsck.vfat, the referee, finds the same damage.
    let offset = u64::from(boot_start) as usize * 512;
    let le16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let bps = le16(&good, offset + 11);
    let fat_at = offset + le16(&good, offset + 14) * bps;
    let fats = good[offset + 16] as usize;
    let fat_len =
        u32::from_le_bytes(good[offset + 36..offset + 40].try_into().unwrap()) as usize * bps;
    let insp = pimg_at_fixture(&["inspect", "--json", arg(&out().join("rpi3b.img"))]);
    let j: serde_json::Value = serde_json::from_str(&insp.stdout).unwrap();
    let files = &j["partitions"][0]["filesystem"]["files"];
    let config = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "config.txt")
        .unwrap_or_else(|| panic!("config.txt in {files}"));
    let first = config["first_cluster"].as_u64().unwrap() as usize;
    let mut bad = good.clone();
    for copy in 0..fats {
        let at = fat_at + copy * fat_len + 4 * first;
        bad[at..at + 4].copy_from_slice(&(first as u32 + 1).to_le_bytes());
    }
    let img = tmp.path().join("chain.img");
    fs::write(&img, &bad).unwrap();
    let part = tmp.path().join("part.img");
    fs::write(&part, &bad[offset..]).unwrap();
    let fsck = referee("fsck.vfat", "dosfstools")
        .args(["-n"])
        .arg(&part)
        .output();
    assert_ne!(
        fsck.code(),
        Some(0),
        "fsck.vfat sees the damage: {}",
        fsck.report()
    );
    let r = bounded(tmp.path(), &["inspect", arg(&img)]);
    assert_eq!(r.code(), Some(1), "{}", r.report());
    assert!(
        r.stdout.contains("config.txt") && r.stdout.contains("the chain goes on"),
        "{}",
        r.report()
    );

    // Bytes that are no image or archive.
    let junk = tmp.path().join("junk.bin");
    fs::write(&junk, pattern("junk", 4096)).unwrap();
    let r = bounded(tmp.path(), &["inspect", arg(&junk)]);
    assert_eq!(r.code(), Some(1), "{}", r.report());
    assert!(r.stdout.contains("no known format"), "{}", r.report());
}

/// Two small gzip files that inflate to 320 MiB each, differing in one byte at 300 MiB:
/// `pimg diff` names that byte, in bounded memory, instead of holding both streams (it took
/// 2.4 GB for two 4 GiB bombs) or cutting both at a cap and calling the cut a difference.
#[test]
fn diff_of_gzip_bombs_stays_in_bounded_memory_and_names_the_byte() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let bomb = |name: &str, poke: u8| {
        let path = tmp.path().join(name);
        let f = fs::File::create(&path).unwrap();
        let mut z = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for i in 0..320 {
            if i == 300 {
                let mut c = chunk.clone();
                c[7] = poke;
                z.write_all(&c).unwrap();
            } else {
                z.write_all(&chunk).unwrap();
            }
        }
        z.finish().unwrap();
        assert!(fs::metadata(&path).unwrap().len() < 4 << 20);
        path
    };
    let (a, b) = (bomb("a.gz", 0), bomb("b.gz", 1));
    let (kib, r) = peak_kib(tmp.path(), &["diff", arg(&a), arg(&b)]);
    assert_eq!(r.code(), Some(1), "{}", r.report());
    let at = (300u64 << 20) + 7;
    assert!(
        r.stdout
            .contains(&format!("decompressed data at offset {at}: 0x00 vs 0x01")),
        "{}",
        r.report()
    );
    assert!(
        r.stdout.contains("compared as byte streams"),
        "{}",
        r.report()
    );
    assert!(kib <= 256 << 10, "pimg diff peaked at {kib} KiB");
    eprintln!(
        "pimg diff of two 320 MiB gzip streams: peak {} MiB",
        kib >> 10
    );
    // The same with trailers that lie about the size (1000 bytes): found while decompressing.
    for p in [&a, &b] {
        let mut bytes = fs::read(p).unwrap();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&1000u32.to_le_bytes());
        fs::write(p, &bytes).unwrap();
    }
    let (kib, r) = peak_kib(tmp.path(), &["diff", arg(&a), arg(&b)]);
    assert_eq!(r.code(), Some(1), "{}", r.report());
    assert!(
        r.stdout
            .contains(&format!("decompressed data at offset {at}: 0x00 vs 0x01")),
        "{}",
        r.report()
    );
    assert!(kib <= 256 << 10, "pimg diff peaked at {kib} KiB");
    eprintln!("… with lying trailers: peak {} MiB", kib >> 10);

    // Identical streams (different bytes only in the gzip header) are not called different
    // in their content.
    let c = bomb("c.gz", 1);
    let mut bytes = fs::read(&c).unwrap();
    bytes[4] ^= 1; // mtime
    fs::write(&c, &bytes).unwrap();
    let (_, r) = peak_kib(tmp.path(), &["diff", arg(&b), arg(&c)]);
    assert_eq!(r.code(), Some(1), "{}", r.report());
    assert!(r.stdout.contains("mtime"), "{}", r.report());
    assert!(!r.stdout.contains("decompressed data at"), "{}", r.report());
}
