//! `pimg build` end to end on fixture inputs the tests generate: golden hashes, builds that
//! must be identical under varied environments, independent tools as referees, and bad
//! input that must fail clearly without leaving outputs behind.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Artifacts whose hashes are pinned. The buildinfo and SHA256SUMS record the pimg version
/// and Cargo.lock digest, so they are checked by rebuilding instead of by a golden hash.
const GOLDEN_ARTIFACTS: &[&str] = &[
    "pimg.apkovl.tar.gz",
    "rpi3b.img",
    "rpi3b.initramfs.cpio.gz",
    "rpi3b.tar.gz",
];

#[test]
fn golden_hashes() {
    assert_golden_build(fixture_build, GOLDEN_ARTIFACTS, "rpi3b-fixture.sha256");
}

/// Debian 13's layout: busybox under usr/bin, modules under usr/lib/modules, compressed as
/// .ko.xz, .ko.gz and .ko.zst next to plain .ko. The same profile builds it; the modules are
/// installed decompressed with a modules.dep naming the .ko files, GNU cpio reads the
/// initramfs, the buildinfo names every member and both digests, and a build in another time
/// zone, locale, umask and folder from inputs written in the other order is identical.
#[test]
fn golden_hashes_merged_usr_and_compressed_modules() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture_in(&tmp.path().join("inputs"), false, Layout::MergedUsr);
    let out = build_in(tmp.path()).epoch(EPOCH).built();
    assert_golden(&out, GOLDEN_ARTIFACTS, "rpi3b-usrmerge-fixture.sha256");
    // Decompressed modules and the same busybox make the same initramfs and apkovl as Debian
    // 12's layout; the image and tarball differ only by the modloop, which keeps the
    // package's own compressed module files.
    let golden = |name: &str| fs::read_to_string(repo().join("tests/golden").join(name)).unwrap();
    let same = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| l.ends_with(".initramfs.cpio.gz") || l.ends_with(".apkovl.tar.gz"))
            .map(str::to_string)
            .collect()
    };
    let merged = same(golden("rpi3b-usrmerge-fixture.sha256"));
    assert_eq!(merged.len(), 2);
    assert_eq!(merged, same(golden("rpi3b-fixture.sha256")));

    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    assert_eq!(info["matched"]["initramfs.busybox.path"], "usr/bin/busybox");
    let km = &info["kernel_modules"];
    assert_eq!(km["tree"], format!("usr/lib/modules/{KVER}"));
    let files = km["files"].as_array().unwrap();
    for (installed, suffix) in [
        ("kernel/drivers/mmc/host/sdhci-iproc.ko", ".zst"),
        ("kernel/drivers/mmc/host/sdhci-pltfm.ko", ".gz"),
        ("kernel/drivers/mmc/host/sdhci.ko", ".xz"),
        ("kernel/drivers/mmc/core/mmc_core.ko", ""),
    ] {
        let f = element(&km["files"], "installed", installed);
        assert_eq!(
            f["member"],
            format!("usr/lib/modules/{KVER}/{installed}{suffix}")
        );
        assert_eq!(f["member_sha256"] == f["sha256"], suffix.is_empty(), "{f}");
    }

    need_tool("cpio", "cpio");
    let dir = out.join("ir");
    fs::create_dir_all(&dir).unwrap();
    let gz = fs::read(out.join("rpi3b.initramfs.cpio.gz")).unwrap();
    let mut cpio = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut cpio).unwrap();
    let mut child = std::process::Command::new("cpio")
        .args(["-id", "--quiet"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &cpio).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "GNU cpio refused the initramfs"
    );
    let moddir = dir.join(format!("lib/modules/{KVER}"));
    let dep = fs::read_to_string(moddir.join("modules.dep")).unwrap();
    assert!(
        dep.contains("kernel/drivers/mmc/host/sdhci-iproc.ko: kernel/drivers/mmc/host/sdhci-pltfm.ko kernel/drivers/mmc/host/sdhci.ko kernel/drivers/mmc/core/mmc_core.ko"),
        "{dep}"
    );
    assert!(
        !dep.contains(".xz") && !dep.contains(".gz") && !dep.contains(".zst"),
        "{dep}"
    );
    for f in files {
        let installed = fs::read(moddir.join(f["installed"].as_str().unwrap())).unwrap();
        assert!(installed.starts_with(b"\x7fELF"), "{f} is not an ELF");
        assert_eq!(sha256_hex(&installed), f["sha256"].as_str().unwrap());
    }
    assert!(dir.join("bin/busybox").is_file());

    let b = tempfile::tempdir().unwrap();
    let deep = b.path().join("x/y z");
    write_fixture_in(&deep.join("in"), true, Layout::MergedUsr);
    touch_all(&deep.join("in"), "2031-05-06 07:08:09");
    let again = Build::new()
        .cwd(&deep)
        .inputs("in")
        .out("o u t")
        .epoch(EPOCH)
        .umask("077")
        .env("TZ", "Asia/Kathmandu")
        .env("LANG", "tr_TR.UTF-8")
        .built();
    fs::remove_dir_all(&dir).unwrap();
    assert_same_outputs(&out, &again);
}

#[test]
fn identical_under_varied_environment() {
    // Build A: plain. Build B: other TZ (with DST and a 45-minute offset), locale, umask,
    // deeper working directory, inputs written in the other order with other mtimes.
    // The epoch is derived from the inputs in both, so that path is exercised too.
    let a = tempfile::tempdir().unwrap();
    let out_a = fixture_build(a.path()).env("TZ", "UTC").built();

    let b = tempfile::tempdir().unwrap();
    let deep = b.path().join("x/y/z w");
    let inputs = deep.join("in");
    write_fixture(&inputs, true);
    touch_all(&inputs, "2031-05-06 07:08:09");
    let out_b = Build::new()
        .cwd(&deep)
        .inputs("in")
        .out("o u t")
        .umask("077")
        .env("TZ", "Asia/Kathmandu")
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "tr_TR.UTF-8")
        .env("HOME", deep.join("home"))
        .built();
    assert_eq!(out_b, deep.join("o u t"));
    // The variations really took effect.
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(out_b.join("SHA256SUMS"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "umask 077 did not apply to the second build");
    let mtime = fs::metadata(inputs.join(fixture_debs()[0].0.as_str()))
        .unwrap()
        .modified()
        .unwrap();
    assert!(
        mtime > std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000)
    );

    assert_same_outputs(&out_a, &out_b);
    let info = read_json(&out_a.join("rpi3b.buildinfo.json"));
    assert_eq!(info["source_date_epoch"], FIXTURE_NEWEST_MTIME);
    assert!(info["epoch_source"]
        .as_str()
        .unwrap()
        .contains("linux-image-6.1.0-99-arm64-unsigned"));
}

#[test]
fn referees_accept_the_outputs() {
    for (tool, pkg) in [
        ("fsck.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("sfdisk", "fdisk"),
        ("cpio", "cpio"),
        ("busybox", "busybox"),
        ("gzip", "gzip"),
        ("sha256sum", "coreutils"),
    ] {
        need_tool(tool, pkg);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = fixture_build(tmp.path()).epoch(EPOCH).built();
    let sh = |cmd: &str| shell(&out, cmd).expect_success().text();
    sh("sha256sum -c SHA256SUMS");

    // Partition table: one FAT32 LBA partition at 4 MiB filling the rest of 256 MiB.
    let dump = sh("sfdisk -J rpi3b.img");
    let j: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let t = &j["partitiontable"];
    assert_eq!(t["label"], "dos");
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["start"], 8192);
    assert_eq!(parts[0]["size"], (256 - 4) * 2048);
    assert_eq!(parts[0]["type"], "c");

    // FAT: fsck on a copy of the partition must be clean and change nothing.
    sh("dd if=rpi3b.img of=part.img bs=1M skip=4 status=none && cp part.img part.orig");
    let fsck = sh("fsck.vfat -a -v part.img");
    assert!(
        !fsck.contains("Warning") && !fsck.contains("differ"),
        "fsck.vfat complained:\n{fsck}"
    );
    sh("cmp part.img part.orig");

    // mtools extracts every file of the buildinfo's listing byte-identical.
    sh("mkdir x && mcopy -s -n -i part.img ::/ x/");
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    let files = info["boot_partition"].as_array().unwrap();
    let extracted = list_files(&out.join("x"));
    assert_eq!(extracted.len(), files.len(), "mtools found {extracted:?}");
    for f in files {
        let path = f["path"].as_str().unwrap();
        let line = sh(&format!("sha256sum 'x/{path}'"));
        assert_eq!(
            &line[..64],
            f["sha256"].as_str().unwrap(),
            "{path} differs inside the FAT"
        );
    }
    assert!(extracted.contains(&"pimg.apkovl.tar.gz".to_string()));
    assert!(extracted.contains(&"boot/initramfs-rpi".to_string()));
    let lines = sh("mdir -i part.img -a ::/");
    assert!(lines.contains("PIBOOT"), "volume label missing:\n{lines}");

    // initramfs: gzip and both cpio implementations accept it; owners, modes, devices.
    sh("gzip -t rpi3b.initramfs.cpio.gz");
    let list = sh("gzip -dc rpi3b.initramfs.cpio.gz | cpio -itv --quiet --numeric-uid-gid");
    assert!(
        list.contains("-rwxr-xr-x   1 0        0") && list.contains(" init"),
        "{list}"
    );
    assert!(
        list.contains("crw-------   1 0        0          5,   1") && list.contains("dev/console"),
        "{list}"
    );
    assert!(list.contains("bin/sh -> busybox"), "{list}");
    assert!(
        list.contains(&format!(
            "lib/modules/{KVER}/kernel/drivers/mmc/host/sdhci-iproc.ko"
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "lib/modules/{KVER}/kernel/drivers/mmc/core/mmc_core.ko"
        )),
        "dependency missing:\n{list}"
    );
    assert!(
        !list.contains("sdhci-tegra"),
        "unrequested module included:\n{list}"
    );
    sh("gzip -dc rpi3b.initramfs.cpio.gz | busybox cpio -t >/dev/null");
    sh(&format!("mkdir ir && cd ir && gzip -dc ../rpi3b.initramfs.cpio.gz | cpio -id --quiet && test -x init && cat lib/modules/{KVER}/modules.dep >/dev/null"));
    let dep = fs::read_to_string(out.join(format!("ir/lib/modules/{KVER}/modules.dep"))).unwrap();
    assert!(
        dep.contains("kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko"),
        "{dep}"
    );
    let order = fs::read_to_string(out.join("ir/etc/pimg/modules")).unwrap();
    let pos = |m: &str| {
        order
            .lines()
            .position(|l| l.ends_with(m))
            .unwrap_or_else(|| panic!("{m} not in {order}"))
    };
    assert!(pos("/mmc_core.ko") < pos("/sdhci.ko") && pos("/sdhci.ko") < pos("/sdhci-pltfm.ko"));
    assert!(pos("/sdhci-pltfm.ko") < pos("/sdhci-iproc.ko") && pos("/fat.ko") < pos("/vfat.ko"));

    // apkovl: busybox tar reads it; modes and owners from the attributes file; links kept.
    sh("gzip -t pimg.apkovl.tar.gz");
    let list = sh("busybox tar -tzvf pimg.apkovl.tar.gz");
    let line = |name: &str| {
        list.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{list}"))
            .to_string()
    };
    assert!(line("etc/shadow").starts_with("-rw-r----- 0/42"), "{list}");
    assert!(line("root/").starts_with("drwx------ 0/0"), "{list}");
    assert!(line("etc/hostname").starts_with("-rw-r--r-- 0/0"), "{list}");
    assert!(
        list.contains("etc/runlevels/boot/hostname -> /etc/init.d/hostname"),
        "{list}"
    );
    let gnu = sh("tar -tvzf pimg.apkovl.tar.gz --numeric-owner --utc");
    assert!(
        gnu.contains("2023-11-14 22:13"),
        "mtime is not the epoch:\n{gnu}"
    );

    // rpi tarball: the boot tree again.
    let list = sh("busybox tar -tzf rpi3b.tar.gz");
    for f in files {
        assert!(
            list.lines().any(|l| l == f["path"].as_str().unwrap()),
            "{f} missing from rpi3b.tar.gz"
        );
    }
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_fixture(&t.join("inputs"), false);
    // Each build must fail with exit 2 and the message, and publish nothing at `out`.
    let build = || {
        let mut b = Build::new();
        b.cwd(t).out("out").epoch(EPOCH);
        b
    };

    build()
        .board("rpi9")
        .expect_refused(&["unknown board 'rpi9'"]);

    let p = profile_variant(t, "[image]\n", "[image]\nsise = 1\n");
    build().board(&p).expect_refused(&["unknown field `sise`"]);
    let line = fs::read_to_string(&p)
        .unwrap()
        .lines()
        .position(|l| l == "sise = 1")
        .unwrap()
        + 1;
    build()
        .board(&p)
        .expect_refused(&[&format!("line {line}, column 1")]);

    let p = profile_variant(t, "fat = 32", "fat = \"thirty-two\"");
    build().board(&p).expect_refused(&["invalid type"]);

    fs::create_dir_all(t.join("empty")).unwrap();
    build()
        .inputs("empty")
        .expect_refused(&["no input matches 'raspi-firmware'"]);
    build()
        .inputs("missing-folder")
        .expect_refused(&["run qemu/setup.sh"]);

    let p = profile_variant(
        t,
        "broadcom/bcm2837-rpi-3-b.dtb",
        "broadcom/bcm2837-rpi-9-z.dtb",
    );
    build()
        .board(&p)
        .expect_refused(&["matches no file in input"]);

    let p = profile_variant(t, "size = \"256MiB\"", "size = \"64MiB\"");
    let p2 = fs::read_to_string(&p)
        .unwrap()
        .replace("cluster_size = \"2KiB\"", "cluster_size = \"512\"");
    fs::write(&p, p2).unwrap();
    let big = t.join("bigin");
    write_fixture(&big, false);
    fs::create_dir_all(big.join("extra")).unwrap();
    // Two files that fit one by one but not together.
    fs::write(big.join("extra/blob1.bin"), pattern("blob1", 35 << 20)).unwrap();
    fs::write(big.join("extra/blob2.bin"), pattern("blob2", 35 << 20)).unwrap();
    let p3 = fs::read_to_string(&p).unwrap().replacen(
        "[[boot.text]]",
        "[[boot.files]]\ninput = \"extra\"\nglob = \"blob*.bin\"\nto = \"/\"\n\n[[boot.text]]",
        1,
    );
    fs::write(&p, p3).unwrap();
    build()
        .board(&p)
        .inputs("bigin")
        .expect_refused(&["the boot content needs", "raise image.size"]);
    // One file larger than the whole partition is refused by its size, before it is read.
    fs::remove_file(big.join("extra/blob2.bin")).unwrap();
    fs::write(big.join("extra/blob1.bin"), pattern("blob1", 70 << 20)).unwrap();
    build().board(&p).inputs("bigin").expect_refused(&[
        "blob1.bin",
        "is 73400320 bytes but the whole boot partition holds",
        "is not read; raise image.size",
    ]);

    let p = profile_variant(
        t,
        "[[boot.text]]\npath = \"usercfg.txt\"",
        "[[boot.text]]\npath = \"CONFIG.TXT\"\ncontent = \"x\"\n\n[[boot.text]]\npath = \"usercfg.txt\"",
    );
    build().board(&p).expect_refused(&["CONFIG.TXT"]);

    // The fixture in `name` with raspi-firmware replaced by a package of these entries.
    let firmware_as = |name: &str, entries: &[Entry]| {
        let dir = t.join(name);
        write_fixture(&dir, false);
        let bytes = deb("raspi-firmware", "1", "all", entries, 1_600_000_000);
        fs::write(dir.join("raspi-firmware_1.20220830+ds-1_all.deb"), bytes).unwrap();
    };
    // A package whose data.tar climbs out of the tree.
    firmware_as("evil", &[Entry::RawName("../../etc/passwd", b"x".to_vec())]);
    build().inputs("evil").expect_refused(&[".."]);

    // A member the profile selects that is a link: named in words.
    let link = Entry::Symlink("usr/lib/raspi-firmware/bootcode.bin", "/etc");
    firmware_as("linked", &[link]);
    build().inputs("linked").expect_refused(&[
        "usr/lib/raspi-firmware/bootcode.bin",
        "is a symlink to /etc, not a regular file",
    ]);

    // An input the build cannot read (a dangling link in the inputs folder).
    let dang = t.join("dangling");
    write_fixture(&dang, false);
    std::os::unix::fs::symlink("/nonexistent/pimg-input", dang.join("gone.deb")).unwrap();
    build().inputs("dangling").expect_refused(&["gone.deb"]);

    build().epoch("-1").expect_refused(&["out of range"]);
    build()
        .epoch("99999999999")
        .expect_refused(&["out of range"]);
    build()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["--source-date-epoch", "yesterday"])
        .expect_refused(&["not a whole number"]);

    build()
        .overlay("nonexistent-overlay")
        .expect_refused(&["unknown overlay"]);
    let ov = t.join("ov");
    fs::create_dir_all(ov.join("etc")).unwrap();
    fs::write(ov.join("etc/hostname"), "box\n").unwrap();
    fs::write(ov.join(".attributes"), "etc/missing 0600 0 0\n").unwrap();
    build()
        .overlay(&ov)
        .expect_refused(&["'etc/missing' is not in the overlay"]);
}

#[test]
fn overlay_directory_matches_embedded_overlay() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixture_build(tmp.path()).epoch(EPOCH).built();
    let b = Build::new()
        .cwd(tmp.path())
        .inputs("inputs")
        .out("out2")
        .overlay(repo().join("overlays/default"))
        .epoch(EPOCH)
        .built();
    assert_eq!(
        fs::read(a.join("pimg.apkovl.tar.gz")).unwrap(),
        fs::read(b.join("pimg.apkovl.tar.gz")).unwrap()
    );
}

#[test]
fn help_teaches_and_boards_lists() {
    let help = run(Path::new("."), &["build", "--help"], &[]).stdout;
    assert!(
        help.contains("SOURCE_DATE_EPOCH") && help.contains("Examples:"),
        "{help}"
    );
    let boards = run(Path::new("."), &["boards"], &[]).stdout;
    assert!(boards.contains("rpi3b"));
}

/// A profile that is wrong on its own (FAT label, FAT type, a GUID) is refused naming the
/// profile and the field before the inputs folder is even opened: here it does not exist.
#[test]
fn profile_errors_come_before_any_input_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let build = |p: &str| {
        let mut b = Build::new();
        b.cwd(t)
            .board(p)
            .inputs("no-such-folder")
            .out("out")
            .epoch(EPOCH);
        b
    };
    let p = profile_variant(t, "label = \"PIBOOT\"", "label = \"pi boot\"");
    build(&p).expect_refused(&[&p, "boot.label", "volume label", "pi boot"]);
    let p = profile_variant(t, "glob = \"boot/vmlinuz-*\"", "glob = \"boot/[vmlinuz\"");
    build(&p).expect_refused(&[
        &p,
        "boot.files[1].glob",
        "'boot/[vmlinuz' is not a valid glob",
    ]);
    let p = profile_variant(t, "fat = 32", "fat = 31");
    build(&p).expect_refused(&["boot.fat: 31 is not a FAT type: use 12, 16 or 32"]);
    let p = profile_variant(t, "[image]\n", "[image]\ndisk_guid = \"nope\"\n");
    build(&p).expect_refused(&[&p, "image.disk_guid", "'nope' is not a GUID"]);
    // The same profiles with a real folder would have got this far: the folder is the next error.
    let p = profile_variant(t, "label = \"PIBOOT\"", "label = \"PIBOOT2\"");
    build(&p).expect_refused(&["no-such-folder"]);
    // An --out that can never be a folder is refused before anything else is read.
    fs::write(t.join("a-file"), "x").unwrap();
    let o = build(&p).out("a-file").run();
    assert_eq!(o.code(), Some(1), "{}", o.report());
    o.expect_stderr(&["a-file", "exists and is not a folder"]);
    assert_eq!(fs::read_to_string(t.join("a-file")).unwrap(), "x");
}

/// Module trees and module files that cannot be used: each is refused naming the member,
/// and nothing is published.
#[test]
fn bad_module_trees_and_files_name_the_member() {
    let kernel = |modules: Vec<Entry>| {
        let mut entries = vec![
            Entry::Dir("boot"),
            Entry::Owned(
                format!("boot/vmlinuz-{KVER}"),
                arm64_kernel("kernel", 1_500_000),
                0o644,
            ),
        ];
        entries.extend(fixture_dtbs());
        entries.extend(modules);
        deb(
            &format!("linux-image-{KVER}-unsigned"),
            "6.1.999-1",
            "arm64",
            &entries,
            FIXTURE_NEWEST_MTIME,
        )
    };
    let module = |path: String, name: &str, suffix: &str| {
        Entry::Owned(
            format!("{path}{suffix}"),
            compress_module(&module_elf(name, &[]), suffix),
            0o644,
        )
    };
    let vfat = |root: &str, suffix: &str| {
        module(
            format!("{root}/{KVER}/kernel/fs/fat/vfat.ko"),
            "vfat",
            suffix,
        )
    };
    let truncated = {
        let whole = compress_module(&module_elf("vfat", &[]), ".xz");
        Entry::Owned(
            format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.xz"),
            whole[..whole.len() / 2].to_vec(),
            0o644,
        )
    };
    let corrupt = {
        let mut gz = compress_module(&module_elf("vfat", &[]), ".gz");
        let n = gz.len();
        gz[n / 2] ^= 0x55;
        gz[n - 6] ^= 0x55; // the CRC too, so either check catches it
        Entry::Owned(
            format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.gz"),
            gz,
            0o644,
        )
    };
    let cases: Vec<(&str, Vec<Entry>, Vec<String>)> = vec![
        (
            "two trees",
            vec![vfat("lib/modules", ""), vfat("usr/lib/modules", ".xz")],
            vec![
                format!("lib/modules/{KVER}, usr/lib/modules/{KVER}"),
                "several kernels".into(),
            ],
        ),
        (
            "truncated xz",
            vec![truncated],
            vec![
                format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.xz"),
                "xz".into(),
            ],
        ),
        (
            "corrupt gzip",
            vec![corrupt],
            vec![
                format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.gz"),
                "gzip".into(),
            ],
        ),
        (
            "unknown suffix",
            vec![Entry::Owned(
                format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.lz4"),
                vec![4; 64],
                0o644,
            )],
            vec![
                format!("usr/lib/modules/{KVER}/kernel/fs/fat/vfat.ko.lz4"),
                "'.lz4'".into(),
            ],
        ),
    ];
    for (what, modules, words) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let inputs = tmp.path().join("inputs");
        write_fixture_in(&inputs, false, Layout::MergedUsr);
        let name = format!("linux-image-{KVER}-unsigned_6.1.999-1_arm64.deb");
        fs::write(inputs.join(&name), kernel(modules)).unwrap();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let r = Build::new()
            .cwd(tmp.path())
            .inputs("inputs")
            .out("out")
            .epoch(EPOCH)
            .expect_refused(&words);
        assert!(
            !tmp.path().join("out/rpi3b.img").exists(),
            "{what}: {}",
            r.stderr
        );
        assert_nothing_published(&tmp.path().join("out"), what);
    }
}

/// A 1 MB package whose firmware member is declared (and is) 512 MiB, larger than the whole
/// boot partition: refused from its declared size before it is decoded, in bounded memory
/// (it took 1.1 GB to reach the same refusal after decoding it).
#[test]
fn a_member_too_large_for_the_partition_is_refused_unread() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let inputs = fixture_inputs(t);
    let size = 512u64 << 20;
    // Level 6: zeros shrink about a thousandfold with any deflate backend flate2 may get.
    let mut data = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    data.append_data(
        &mut h,
        "usr/lib/raspi-firmware/start.elf",
        std::io::repeat(0).take(size),
    )
    .unwrap();
    let data_tgz = data.into_inner().unwrap().finish().unwrap();
    let control = tar_gz(
        &[Entry::Owned(
            "control".into(),
            b"Package: raspi-firmware\nVersion: 1\nArchitecture: all\nDescription: x\n".to_vec(),
            0o644,
        )],
        1_600_000_000,
    );
    let mut ar = ar::Builder::new(Vec::new());
    for (name, d) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control),
        ("data.tar.gz", data_tgz),
    ] {
        ar.append(
            &ar::Header::new(name.as_bytes().to_vec(), d.len() as u64),
            d.as_slice(),
        )
        .unwrap();
    }
    let deb = ar.into_inner().unwrap();
    assert!(deb.len() < 4 << 20, "{} bytes", deb.len());
    let mut f = fs::File::create(inputs.join("raspi-firmware_1.20220830+ds-1_all.deb")).unwrap();
    f.write_all(&deb).unwrap();
    drop(f);
    let args = [
        "build",
        "--board",
        "rpi3b",
        "--inputs",
        "inputs",
        "--out",
        "out",
        "--no-cache",
        "--source-date-epoch",
        "1700000000",
    ];
    let (kib, r) = peak_kib(t, &args);
    assert_eq!(r.code(), Some(2), "{}", r.report());
    r.expect_stderr(&[
        "usr/lib/raspi-firmware/start.elf",
        "is 536870912 bytes but the whole boot partition holds",
    ]);
    assert!(!t.join("out").exists(), "nothing is published");
    assert!(kib <= 256 << 10, "the refused build peaked at {kib} KiB");
    eprintln!("refused in a peak of {} MiB", kib >> 10);
}
