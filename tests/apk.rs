//! Alpine-native inputs: `.apk` packages built the way abuild builds them (three gzip
//! members, `.PKGINFO` with datahash), the Alpine-layout profile built from them (golden
//! hashes, layout, boot repository), the epoch taken from builddates, tampered, truncated and
//! non-gzip packages refused with clear errors, and plain tarball inputs.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

const BOARD: &str = ALPINE_BOARD;

/// Artifacts whose hashes are pinned (the buildinfo, SBOM and SHA256SUMS name the pimg
/// version, so they are checked by rebuilding instead).
const GOLDEN_ARTIFACTS: &[&str] = &[
    "alpine-rpi-aarch64.img",
    "alpine-rpi-aarch64.initramfs.cpio.gz",
    "alpine-rpi-aarch64.tar.gz",
    "pimg.apkovl.tar.gz",
];

/// A build of the Alpine board in `dir` from `inputs` into `out`.
fn alpine_from(dir: &Path, inputs: &str, out: &str) -> Build {
    let mut b = Build::new();
    b.cwd(dir).board(BOARD).inputs(inputs).out(out);
    b.arg("--apk-keys")
        .arg(write_apk_keys(&dir.join("apk-keys")));
    b
}

fn buildinfo(out: &Path) -> serde_json::Value {
    read_json(&out.join(format!("{BOARD}.buildinfo.json")))
}

#[test]
fn alpine_golden_hashes() {
    let golden = "alpine-rpi-aarch64-fixture.sha256";
    assert_golden_build(alpine_build, GOLDEN_ARTIFACTS, golden);
}

#[test]
fn alpine_layout_and_boot_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let out = alpine_build(tmp.path()).epoch(EPOCH).built();
    let info = buildinfo(&out);
    let files = string_pairs(&info["boot_partition"], "path", "sha256");
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let want = [
        ".alpine-release",
        "apks/.boot_repository",
        "apks/aarch64/APKINDEX.tar.gz",
        "apks/aarch64/alpine-keys-2.4-r1.apk",
        "apks/aarch64/busybox-static-1.36.1-r15.apk",
        "apks/aarch64/linux-firmware-brcm-20240312-r0.apk",
        "apks/aarch64/linux-rpi-6.6.31-r0.apk",
        "apks/aarch64/raspberrypi-bootloader-1.20240306-r0.apk",
        "bcm2710-rpi-3-b.dtb",
        "bcm2711-rpi-4-b.dtb",
        "bcm2837-rpi-3-b.dtb",
        "boot/initramfs-rpi",
        "boot/modloop-rpi",
        "boot/vmlinuz-rpi",
        "bootcode.bin",
        "cmdline.txt",
        "config.txt",
        "fixup.dat",
        "fixup4.dat",
        "overlays/disable-bt.dtbo",
        "overlays/vc4-kms-v3d.dtbo",
        "pimg.apkovl.tar.gz",
        "start.elf",
        "start4.elf",
        "usercfg.txt",
    ];
    assert_eq!(paths, want, "boot partition listing");

    // The repository holds the input files byte for byte, under Alpine's names.
    for (name, bytes) in fixture_apks() {
        let dest = format!("apks/aarch64/{name}");
        let (_, h) = files.iter().find(|(p, _)| *p == dest).unwrap();
        assert_eq!(*h, sha256_hex(&bytes), "{dest}");
    }
    let hash_of = |p: &str| files.iter().find(|(f, _)| f == p).unwrap().1.clone();
    assert_eq!(hash_of("apks/.boot_repository"), sha256_hex(b""));
    assert_eq!(hash_of(".alpine-release"), sha256_hex(b"3.19.1\n"));
    assert_eq!(
        hash_of("bootcode.bin"),
        sha256_hex(&pattern("boot/bootcode.bin", 52_476))
    );
    assert_eq!(
        hash_of("boot/vmlinuz-rpi"),
        sha256_hex(&arm64_kernel("vmlinuz-rpi", 1_200_000))
    );

    // The rpi tarball carries the same tree; config.txt as Alpine writes it.
    need_tool("busybox", "busybox");
    let sh = |cmd: &str| shell(&out, cmd).expect_success().stdout;
    let list = sh(&format!("busybox tar -tzf {BOARD}.tar.gz"));
    for p in want {
        assert!(list.lines().any(|l| l == p), "{p} missing from the tarball");
    }
    let config = sh(&format!("busybox tar -xzOf {BOARD}.tar.gz config.txt"));
    for line in [
        "kernel=boot/vmlinuz-rpi",
        "initramfs boot/initramfs-rpi",
        "arm_64bit=1",
        "include usercfg.txt",
    ] {
        assert!(config.lines().any(|l| l == line), "{line}:\n{config}");
    }

    // The initramfs is made from the apks: busybox.static as /bin/busybox, modules closed.
    need_tool("cpio", "cpio");
    let list = sh(&format!(
        "gzip -dc {BOARD}.initramfs.cpio.gz | cpio -itv --quiet --numeric-uid-gid"
    ));
    assert!(list.contains(" bin/busybox\n"), "{list}");
    for m in ["sdhci-iproc.ko", "mmc_core.ko", "vfat.ko", "fat.ko"] {
        assert!(
            list.contains(&format!("lib/modules/{ALPINE_KVER}/kernel/")) && list.contains(m),
            "{m} missing:\n{list}"
        );
    }
    assert_eq!(
        info["kernel_modules"]["builtin"],
        serde_json::json!(["nls_iso8859_1"])
    );

    // fsck.vfat on the partition at 1 MiB.
    need_tool("fsck.vfat", "dosfstools");
    sh(&format!(
        "dd if={BOARD}.img of=part.img bs=1M skip=1 status=none && fsck.vfat -n part.img"
    ));
    assert_eq!(
        strings(&info["inputs"], "name"),
        [
            "alpine-keys",
            "busybox-static",
            "linux-firmware-brcm",
            "linux-rpi",
            "raspberrypi-bootloader"
        ]
    );
    // Every apk was verified with the fixture key; the index is unsigned.
    let key = format!("{APK_TEST_KEY}.pub");
    assert_eq!(strings(&info["inputs"], "apk_signature"), [key.as_str(); 5]);
    assert_eq!(info["apk_index"]["path"], "apks/aarch64/APKINDEX.tar.gz");
    assert_eq!(info["apk_index"]["signing_key"], serde_json::Value::Null);
}

#[test]
fn epoch_is_the_newest_builddate_and_builds_are_identical() {
    let a = tempfile::tempdir().unwrap();
    let out_a = alpine_build(a.path()).env("TZ", "UTC").built();
    let info = buildinfo(&out_a);
    assert_eq!(info["source_date_epoch"], ALPINE_NEWEST_BUILDDATE);
    let source = info["epoch_source"].as_str().unwrap();
    assert!(
        source.contains("builddate") && source.contains("linux-rpi 6.6.31-r0"),
        "{source}"
    );

    // Other order, other mtimes, other TZ and directory: the same bytes.
    let b = tempfile::tempdir().unwrap();
    let deep = b.path().join("deeper/dir");
    write_alpine_fixture(&deep.join("in"), true);
    touch_all(&deep.join("in"), "2031-05-06 07:08:09");
    let out_b = alpine_from(&deep, "in", "o")
        .env("TZ", "America/St_Johns")
        .built();
    assert_same_outputs(&out_a, &out_b);
    assert!(sums(&out_a)
        .iter()
        .any(|(n, _)| n == "alpine-rpi-aarch64.spdx.json"));
}

/// Builds from `inputs` expecting a refusal: exit 2, the message, no panic and no outputs.
fn expect_failure(tmp: &Path, inputs: &str, message: &[&str]) {
    let o = alpine_from(tmp, inputs, "out")
        .epoch(EPOCH)
        .expect_refused(message);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}

/// A copy of the Alpine fixture with busybox-static replaced by `bytes`.
fn with_busybox(tmp: &Path, dir: &str, bytes: &[u8]) {
    let d = tmp.join(dir);
    write_alpine_fixture(&d, false);
    fs::write(d.join("busybox-static-1.36.1-r15.apk"), bytes).unwrap();
}

#[test]
fn tampered_apk_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Data replaced, .PKGINFO (and its datahash) kept: what an attacker without the key does.
    let good = alpine_busybox("busybox.static");
    let evil = alpine_busybox("evil busybox");
    let spliced = ApkParts {
        signature: good.signature.clone(),
        control: good.control.clone(),
        data: evil.data.clone(),
    };
    with_busybox(t, "spliced", &spliced.bytes());
    expect_failure(
        t,
        "spliced",
        &[
            "busybox-static-1.36.1-r15.apk",
            "datahash",
            &sha256_hex(&good.data),
            &sha256_hex(&evil.data),
            "changed after it was built",
        ],
    );

    // One byte flipped inside the data member (the deflate stream may still decode).
    let mut flipped = good.bytes();
    let at = good.signature.len() + good.control.len() + good.data.len() / 2;
    flipped[at] ^= 0x01;
    with_busybox(t, "flipped", &flipped);
    expect_failure(t, "flipped", &["busybox-static-1.36.1-r15.apk", "datahash"]);

    // The untouched package builds.
    with_busybox(t, "good", &good.bytes());
    alpine_from(t, "good", "ok").epoch(EPOCH).expect_success();
}

#[test]
fn truncated_or_non_gzip_apk_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let parts = alpine_busybox("busybox.static");
    let bytes = parts.bytes();
    let sig = parts.signature.len();
    let ctl = sig + parts.control.len();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("in-signature", bytes[..sig / 2].to_vec(), vec!["truncated"]),
        ("after-signature", bytes[..sig].to_vec(), vec!["truncated"]),
        ("in-control", bytes[..sig + 20].to_vec(), vec!["truncated"]),
        (
            "after-control",
            bytes[..ctl].to_vec(),
            vec!["no data segment"],
        ),
        (
            "in-data",
            bytes[..ctl + parts.data.len() / 3].to_vec(),
            vec!["truncated", "data segment"],
        ),
        (
            "not-gzip",
            b"just some text, not a package\n".to_vec(),
            vec!["not an Alpine package", "gzip"],
        ),
        ("empty", Vec::new(), vec!["not an Alpine package", "empty"]),
        (
            "apk-v3",
            b"ADBd\x00\x00\x00\x00rest".to_vec(),
            vec!["apk v3"],
        ),
        (
            "garbage-after-gzip-magic",
            [&[0x1f, 0x8b, 8, 0][..], &pattern("junk", 300)].concat(),
            vec!["busybox-static-1.36.1-r15.apk"],
        ),
    ];
    for (dir, data, words) in cases {
        with_busybox(t, dir, &data);
        let mut all = vec!["busybox-static-1.36.1-r15.apk"];
        all.extend(words);
        expect_failure(t, dir, &all);
    }
}

/// The reader on thousands of damaged packages: an error or a result, never a panic, and a
/// damaged package never passes the datahash check.
#[test]
fn damaged_apks_never_panic_or_pass() {
    use pimg::inputs::apk;
    let parts = alpine_busybox("small");
    // A small package with every kind of member: a folder, a file and a link.
    let members = [
        Entry::Dir("etc"),
        Entry::File("etc/motd", b"welcome\n".to_vec(), 0o644),
        Entry::Symlink("etc/link", "motd"),
    ];
    let small = apk_parts(
        "small",
        "1-r0",
        "aarch64",
        "MIT",
        1_600_000_000,
        &members,
        true,
    );
    let p = Path::new("fuzz.apk");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("fuzz.apk");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for base in [small.bytes(), parts.bytes()] {
        let info = apk::verify_bytes(p, &base).unwrap();
        assert_eq!(
            info.signature_key.as_deref(),
            Some("RSA.pimg-tests-65a1b2c3.rsa.pub")
        );
        let step = (base.len() / 400).max(1);
        for cut in (0..base.len()).step_by(step) {
            assert!(apk::verify_bytes(p, &base[..cut]).is_err(), "cut at {cut}");
        }
        for _ in 0..600 {
            let mut m = base.clone();
            let flips = 1 + next() % 3;
            for _ in 0..flips {
                let i = (next() % m.len() as u64) as usize;
                m[i] ^= (next() % 255 + 1) as u8;
            }
            if let Ok(got) = apk::verify_bytes(p, &m) {
                // Signature and control bytes are not covered by the datahash (only a verified
                // signature would cover them), but the data handed out must be the original.
                let off = got.data_offset as usize;
                assert_eq!(&m[off..], &base[info.data_offset as usize..]);
            }
            fs::write(&file, &m).unwrap();
            let _ = apk::scan_data::<apk::ApkError>(&file, &mut |_, r| {
                std::io::copy(r, &mut std::io::sink())
                    .map(|_| ())
                    .map_err(|source| apk::ApkError::Io {
                        apk: file.clone(),
                        source,
                    })
            });
        }
    }
}

#[test]
fn apk_members_are_read_like_a_deb() {
    use pimg::inputs::{InputKind, InputSet};
    let tmp = tempfile::tempdir().unwrap();
    write_alpine_fixture(tmp.path(), false);
    // Unsigned packages (two members) are read too.
    let unsigned = apk_parts(
        "unsigned-thing",
        "0.1-r0",
        "aarch64",
        "MIT AND custom:multiple",
        1_500_000_000,
        &[
            Entry::Dir("usr"),
            Entry::File("usr/x", b"x".to_vec(), 0o4755),
            Entry::Symlink("usr/y", "x"),
        ],
        false,
    );
    fs::write(
        tmp.path().join("unsigned-thing-0.1-r0.apk"),
        unsigned.bytes(),
    )
    .unwrap();
    let set = InputSet::discover(tmp.path()).unwrap();
    let names: Vec<(&str, &str, &str)> = set
        .inputs
        .iter()
        .map(|i| {
            assert_eq!(i.kind, InputKind::Apk);
            (
                i.name.as_str(),
                i.version.as_deref().unwrap(),
                i.arch.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("alpine-keys", "2.4-r1", "noarch"),
            ("busybox-static", "1.36.1-r15", "aarch64"),
            ("linux-firmware-brcm", "20240312-r0", "aarch64"),
            ("linux-rpi", "6.6.31-r0", "aarch64"),
            ("raspberrypi-bootloader", "1.20240306-r0", "aarch64"),
            ("unsigned-thing", "0.1-r0", "aarch64"),
        ]
    );
    let input = set.select("unsigned-thing", "test").unwrap();
    assert_eq!(
        input.sha256().unwrap(),
        sha256_hex(&unsigned.bytes()),
        "an apk's digest is its file's"
    );
    let mut seen = Vec::new();
    input
        .scan(&mut |m, r| {
            let mut d = Vec::new();
            r.read_to_end(&mut d).unwrap();
            seen.push((
                m.path.to_string(),
                format!("{:?}", m.kind),
                m.mode,
                m.mtime,
                d,
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            ("usr".into(), "Dir".into(), 0o755, 1_500_000_000, vec![]),
            (
                "usr/x".into(),
                "File".into(),
                0o4755,
                1_500_000_000,
                b"x".to_vec()
            ),
            (
                "usr/y".into(),
                "Symlink(\"x\")".into(),
                0o777,
                1_500_000_000,
                vec![]
            ),
        ]
    );
}

#[test]
fn tarball_inputs_are_read_and_date_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let inputs = fixture_inputs(t);
    // An "existing rpi tarball" as .tar.gz, and a plain .tar, both newer than the debs.
    let newer = FIXTURE_NEWEST_MTIME + 1_000;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("./usercfg-extra.txt", &b"hdmi_safe=1\n"[..]),
        ("./notes/readme", b"r\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(newer);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    }
    let plain = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    fs::write(inputs.join("extra-rpi.tar.gz"), gz.finish().unwrap()).unwrap();
    fs::write(inputs.join("more.tar"), &plain).unwrap();

    board_variant(
        "rpi3b",
        &t.join("with-tarballs.toml"),
        "[[boot.text]]",
        "[[boot.files]]\ninput = \"extra-rpi\"\nglob = \"usercfg-extra.txt\"\nto = \"/\"\n\n\
         [[boot.files]]\ninput = \"more\"\nglob = \"notes/readme\"\nto = \"notes/\"\n\n[[boot.text]]",
    );
    let build = |out: &str| {
        let mut b = Build::new();
        b.cwd(t)
            .board("with-tarballs.toml")
            .inputs("inputs")
            .out(out);
        b
    };
    let out = build("out").built();
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    let find = |p: &str| {
        element(&info["boot_partition"], "path", p)["sha256"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(find("usercfg-extra.txt"), sha256_hex(b"hdmi_safe=1\n"));
    assert_eq!(find("notes/readme"), sha256_hex(b"r\n"));
    assert_eq!(info["source_date_epoch"], newer);
    assert!(
        info["epoch_source"].as_str().unwrap().contains("extra-rpi"),
        "{}",
        info["epoch_source"]
    );
    let names = strings(&info["inputs"], "name");
    assert!(
        names.contains(&"extra-rpi") && names.contains(&"more"),
        "{names:?}"
    );

    // A damaged tarball is named.
    fs::write(inputs.join("more.tar"), &plain[..700]).unwrap();
    build("out2").expect_refused(&["more.tar"]);
}
