//! `pimg build --compress`: the compressed images and the bmap, judged by xz, zstd, gzip and
//! bmaptool, byte-identical across environments and thread counts, and refused cleanly for a
//! codec pimg does not know.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

const XZ: &str = "xz-utils";
const ZSTD: &str = "zstd";
const BMAP: &str = "bmap-tools";

/// The fixture build in `dir` at the tests' epoch, with `args`.
fn fixture_with(dir: &Path, args: &[&str]) -> Build {
    let mut b = fixture_build(dir);
    b.epoch(EPOCH).args(args);
    b
}

/// A fixture build with every codec, into `dir/out`.
fn release_build(dir: &Path) -> std::path::PathBuf {
    let every = ["--compress", "xz", "--compress", "zstd", "--compress", "gz"];
    fixture_with(dir, &every).built()
}

/// `bmaptool copy --bmap BMAP IMAGE COPY`, for the caller to run or judge.
fn bmaptool_copy(bmap: &Path, image: &Path, copy: &Path) -> Referee {
    let mut r = referee("bmaptool", BMAP);
    r.arg("copy").arg("--bmap").arg(bmap).arg(image).arg(copy);
    r
}

/// The `(first, last)` block ranges a bmap maps, read with plain string handling so the test
/// does not lean on pimg's parser.
fn bmap_ranges(bmap: &str) -> Vec<(u64, u64)> {
    bmap.split("<Range ")
        .skip(1)
        .map(|r| {
            let span = r
                .split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .trim();
            match span.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => (span.parse().unwrap(), span.parse().unwrap()),
            }
        })
        .collect()
}

#[test]
fn compressed_images_pass_their_referees_and_decompress_to_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = release_build(tmp.path());
    // The bytes are pinned across machines, not only across this machine's runs.
    let release = [
        "rpi3b.img.xz",
        "rpi3b.img.zst",
        "rpi3b.img.gz",
        "rpi3b.img.bmap",
    ];
    assert_golden(&out, &release, "rpi3b-release-fixture.sha256");
    let img = fs::read(out.join("rpi3b.img")).unwrap();
    let img_sha = sha256_hex(&img);
    let listed = sums(&out);
    for name in [
        "rpi3b.img.xz",
        "rpi3b.img.zst",
        "rpi3b.img.gz",
        "rpi3b.img.bmap",
    ] {
        let got = listed.iter().find(|(n, _)| n == name);
        let (_, sha) = got.unwrap_or_else(|| panic!("{name} is not in SHA256SUMS: {listed:?}"));
        assert_eq!(
            *sha,
            sha256_hex(&fs::read(out.join(name)).unwrap()),
            "{name}"
        );
    }
    referee("xz", XZ)
        .args(["-t", "rpi3b.img.xz"])
        .cwd(&out)
        .run();
    referee("zstd", ZSTD)
        .args(["-t", "-q", "rpi3b.img.zst"])
        .cwd(&out)
        .run();
    referee("gzip", "gzip")
        .args(["-t", "rpi3b.img.gz"])
        .cwd(&out)
        .run();
    // Several independent blocks, each with its sizes in its header (xz -T's layout).
    let list = referee("xz", XZ)
        .args(["-l", "--robot", "rpi3b.img.xz"])
        .cwd(&out)
        .run();
    let totals = list
        .stdout
        .lines()
        .find(|l| l.starts_with("totals\t"))
        .unwrap_or_else(|| panic!("no totals line: {}", list.stdout));
    let blocks: u64 = totals.split('\t').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        blocks,
        (img.len() as u64).div_ceil(8 << 20),
        "one block per 8 MiB: {totals}"
    );
    let detail = referee("xz", XZ)
        .args(["-lvv", "rpi3b.img.xz"])
        .cwd(&out)
        .run();
    assert!(
        !detail.stdout.contains("Unknown"),
        "a block header without its sizes:\n{}",
        detail.stdout
    );
    for (tool, package, file) in [
        ("xz", XZ, "rpi3b.img.xz"),
        ("zstd", ZSTD, "rpi3b.img.zst"),
        ("gzip", "gzip", "rpi3b.img.gz"),
    ] {
        let back = referee(tool, package).args(["-dc", file]).cwd(&out).bytes();
        assert_eq!(back.len(), img.len(), "{file}");
        assert_eq!(sha256_hex(&back), img_sha, "{file} does not hold the image");
    }
    // The buildinfo records the choices, so a rebuild can repeat them.
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    assert_eq!(
        info["release"]["compress"],
        serde_json::json!(["gz", "xz", "zstd"]),
        "{:#}",
        info["release"]
    );
    run(tmp.path(), &["verify", "out"], &[]).expect_success();
    // A valid zstd file of something else, with SHA256SUMS and the buildinfo rewritten to
    // match it: only decompressing it shows it does not hold the image.
    let fake = referee("zstd", ZSTD)
        .args(["-c", "-q", "rpi3b.tar.gz"])
        .cwd(&out)
        .bytes();
    fs::write(out.join("rpi3b.img.zst"), &fake).unwrap();
    let mut info = info;
    for o in info["outputs"].as_array_mut().unwrap() {
        if o["name"] == "rpi3b.img.zst" {
            o["sha256"] = sha256_hex(&fake).into();
            o["size"] = fake.len().into();
        }
    }
    let info_text = serde_json::to_string_pretty(&info).unwrap() + "\n";
    fs::write(out.join("rpi3b.buildinfo.json"), &info_text).unwrap();
    let sums_text: String = sums(&out)
        .iter()
        .map(|(name, sha)| {
            let sha = match name.as_str() {
                "rpi3b.img.zst" => sha256_hex(&fake),
                "rpi3b.buildinfo.json" => sha256_hex(info_text.as_bytes()),
                _ => sha.clone(),
            };
            format!("{sha}  {name}\n")
        })
        .collect();
    fs::write(out.join("SHA256SUMS"), sums_text).unwrap();
    let v = run(tmp.path(), &["verify", "out"], &[]);
    assert!(
        !v.success(),
        "verify accepted a .img.zst that is not the image"
    );
    assert!(
        v.stdout.contains("rpi3b.img.zst › decompressed"),
        "{}",
        v.report()
    );
}

#[test]
fn bmaptool_copies_the_image_and_refuses_a_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let out = release_build(tmp.path());
    let img = fs::read(out.join("rpi3b.img")).unwrap();
    let bmap = fs::read_to_string(out.join("rpi3b.img.bmap")).unwrap();
    let ranges = bmap_ranges(&bmap);
    assert!(!ranges.is_empty(), "{bmap}");
    // Every block with data is mapped (the map comes from the writes, not from the bytes,
    // so some mapped blocks may be zeros written on purpose).
    for (i, block) in img.chunks(4096).enumerate() {
        let i = i as u64;
        if block.iter().any(|&b| b != 0) {
            assert!(
                ranges.iter().any(|&(a, b)| a <= i && i <= b),
                "block {i} holds data but is not mapped"
            );
        }
    }
    let mapped: u64 = ranges.iter().map(|(a, b)| b - a + 1).sum();
    assert!(
        mapped * 4096 < img.len() as u64 / 2,
        "{mapped} blocks mapped of {}",
        img.len() / 4096
    );
    for file in ["rpi3b.img.xz", "rpi3b.img.zst", "rpi3b.img.gz"] {
        let copy = tmp.path().join(format!("copy-{file}.img"));
        bmaptool_copy(&out.join("rpi3b.img.bmap"), &out.join(file), &copy).run();
        assert_eq!(
            sha256_hex(&fs::read(&copy).unwrap()),
            sha256_hex(&img),
            "bmaptool's copy of {file} is not the image"
        );
    }
    // A byte flipped inside a mapped range of the decompressed data: bmaptool must refuse.
    let mut back = referee("xz", XZ)
        .args(["-dc", "rpi3b.img.xz"])
        .cwd(&out)
        .bytes();
    let (first, last) = ranges[ranges.len() / 2];
    let at = ((first + last) / 2 * 4096 + 100) as usize;
    back[at] ^= 0x01;
    let bad = tmp.path().join("flipped.img");
    fs::write(&bad, &back).unwrap();
    let copy = tmp.path().join("flipped-copy.img");
    let ran = bmaptool_copy(&out.join("rpi3b.img.bmap"), &bad, &copy).output();
    let why = ran.text();
    assert!(
        !ran.success(),
        "bmaptool accepted an image with a flipped byte at {at}: {why}"
    );
    // An edited bmap fails its own checksum.
    let edited = bmap.replacen("<ImageSize> ", "<ImageSize>  ", 1);
    let edited_path = tmp.path().join("edited.bmap");
    fs::write(&edited_path, edited).unwrap();
    let copy = tmp.path().join("edited-copy.img");
    let ran = bmaptool_copy(&edited_path, &out.join("rpi3b.img"), &copy).output();
    assert!(
        !ran.success(),
        "bmaptool accepted an edited bmap: {}",
        ran.text()
    );
}

/// What a flasher given the bmap leaves on a card that held other data: the mapped blocks
/// from the image, the old bytes elsewhere. The FAT must still be clean and hold the same
/// files, which holds only if every sector the file system relies on was written and mapped.
#[test]
fn a_card_with_old_data_gets_a_clean_file_system_from_the_mapped_blocks_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fixture_with(tmp.path(), &["--compress", "gz"]).built();
    let img = fs::read(out.join("rpi3b.img")).unwrap();
    let ranges = bmap_ranges(&fs::read_to_string(out.join("rpi3b.img.bmap")).unwrap());
    let mut card = vec![0xa5u8; img.len()];
    for (first, last) in ranges {
        let (a, b) = (
            (first * 4096) as usize,
            (((last + 1) * 4096) as usize).min(img.len()),
        );
        card[a..b].copy_from_slice(&img[a..b]);
    }
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (start, sectors) = (le32(&card, 446 + 8) * 512, le32(&card, 446 + 12) * 512);
    assert_eq!(
        (start, sectors),
        (le32(&img, 446 + 8) * 512, le32(&img, 446 + 12) * 512),
        "the partition table did not survive"
    );
    let part = |bytes: &[u8], name: &str| {
        let p = tmp.path().join(name);
        fs::write(&p, &bytes[start..start + sectors]).unwrap();
        p
    };
    let (clean, dirty) = (part(&img, "clean.vfat"), part(&card, "card.vfat"));
    referee("fsck.vfat", "dosfstools")
        .arg("-a")
        .arg(&dirty)
        .run();
    let listing = |p: &Path| {
        referee("mdir", "mtools")
            .args(["-/", "-a", "-i"])
            .arg(p)
            .arg("::")
            .env("MTOOLS_SKIP_CHECK", "1")
            .run()
            .stdout
    };
    assert_eq!(listing(&dirty), listing(&clean));
    for file in ["boot/vmlinuz-rpi", "boot/initramfs-rpi", "config.txt"] {
        let get = |p: &Path| {
            referee("mtype", "mtools")
                .arg("-i")
                .arg(p)
                .arg(format!("::{file}"))
                .env("MTOOLS_SKIP_CHECK", "1")
                .bytes()
        };
        assert!(get(&dirty) == get(&clean), "{file} differs on the card");
    }
}

#[test]
fn identical_under_other_time_zones_umasks_and_thread_counts() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(&tmp.path().join("inputs"), false);
    let build = |out: &str, tz: &str, umask: &str, threads: &str| {
        Build::new()
            .cwd(tmp.path())
            .inputs("inputs")
            .out(out)
            .epoch(EPOCH)
            .env("TZ", tz)
            .umask(umask)
            .args([
                "--compress",
                "zstd",
                "--compress",
                "xz",
                "--threads",
                threads,
            ])
            .built()
    };
    let a = build("a", "UTC", "022", "1");
    let b = build("b", "Pacific/Kiritimati", "077", "4");
    for name in ["rpi3b.img.xz", "rpi3b.img.zst", "rpi3b.img.bmap"] {
        assert!(a.join(name).is_file(), "{name} missing");
    }
    assert!(!a.join("rpi3b.img.gz").exists(), "gz was not asked for");
    assert_same_outputs(&a, &b);
}

#[test]
fn without_the_flag_nothing_new_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fixture_with(tmp.path(), &[]).built();
    for name in list_files(&out) {
        assert!(!name.contains(".img."), "{name} written without --compress");
    }
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    assert!(info.get("release").is_none(), "{info:#}");
}

#[test]
fn an_unknown_codec_is_refused_naming_the_flag_and_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    let r = fixture_with(tmp.path(), &["--compress", "bz2"]).run();
    r.expect_refused(&["--compress", "bz2", "gz", "xz", "zstd"]);
    let r = fixture_with(tmp.path(), &["--compress", "xz", "--threads", "0"]).run();
    r.expect_refused(&["--threads"]);
}
