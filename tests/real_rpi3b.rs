//! rpi3b from the real Debian inputs (qemu/setup.sh fetches them into inputs/): two builds
//! under different environments must be identical, and the referees must accept the image.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;

#[test]
fn real_rpi3b_is_reproducible_and_refereed() {
    let inputs = real_inputs();
    for (tool, pkg) in [
        ("fsck.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("sfdisk", "fdisk"),
        ("cpio", "cpio"),
    ] {
        need_tool(tool, pkg);
    }
    let tmp = tempfile::tempdir().unwrap();

    // Build A straight from the inputs folder, epoch derived from the packages.
    let out_a = Build::real("rpi3b")
        .cwd(tmp.path())
        .out(tmp.path().join("a"))
        .env("TZ", "UTC")
        .built();

    // Build B from a copy with new mtimes, under another TZ, locale, umask and directory.
    let copy = tmp.path().join("deep/er/in puts");
    fs::create_dir_all(&copy).unwrap();
    // The packages only: Debian 12's set sits in a folder of its own inside Debian 13's.
    let mut debs: Vec<_> = fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    debs.sort();
    debs.reverse();
    for d in &debs {
        let dest = copy.join(d.file_name().unwrap());
        fs::copy(d, &dest).unwrap();
        touch(&dest, "", "2001-02-03 04:05:06");
    }
    let out_b = Build::new()
        .cwd(copy.parent().unwrap())
        .inputs("in puts")
        .out("../b")
        .umask("027")
        .env("TZ", "America/St_Johns")
        .env("LC_ALL", "de_DE.UTF-8")
        .built();
    assert_eq!(
        out_b.canonicalize().unwrap(),
        tmp.path().join("deep/b").canonicalize().unwrap()
    );
    assert_same_outputs(&out_a, &out_b);

    let sh = |cmd: &str| shell(&out_a, cmd).expect_success().text();
    sh("sha256sum -c SHA256SUMS");
    let j: serde_json::Value = serde_json::from_str(&sh("sfdisk -J rpi3b.img")).unwrap();
    assert_eq!(j["partitiontable"]["partitions"][0]["start"], 8192);
    sh("dd if=rpi3b.img of=part.img bs=1M skip=4 status=none && cp part.img part.orig");
    let fsck = sh("fsck.vfat -a -v part.img");
    assert!(!fsck.contains("Warning"), "{fsck}");
    sh("cmp part.img part.orig");
    sh("mkdir x && mcopy -s -n -i part.img ::/ x/");
    let info = read_json(&out_a.join("rpi3b.buildinfo.json"));
    for f in info["boot_partition"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let line = sh(&format!("sha256sum 'x/{path}'"));
        assert_eq!(&line[..64], f["sha256"].as_str().unwrap(), "{path}");
    }
    for want in [
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "bcm2837-rpi-3-b.dtb",
        "boot/vmlinuz-rpi",
        "config.txt",
        "cmdline.txt",
    ] {
        assert!(
            x_has(&out_a, want),
            "{want} missing from the boot partition"
        );
    }
    let list = sh("gzip -dc rpi3b.initramfs.cpio.gz | cpio -it --quiet");
    for m in [
        "sdhci-iproc.ko",
        "sdhci-pltfm.ko",
        "sdhci.ko",
        "bcm2835.ko",
        "vfat.ko",
        "fat.ko",
        "nls_iso8859-1.ko",
        "bcm2835_wdt.ko",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!("/{m}"))),
            "{m} not in the initramfs:\n{list}"
        );
    }
    assert!(
        info["epoch_source"]
            .as_str()
            .unwrap()
            .contains("linux-image-"),
        "{}",
        info["epoch_source"]
    );
}

fn x_has(out: &std::path::Path, path: &str) -> bool {
    out.join("x").join(path).is_file()
}
