//! `pimg check`: the static check of what the firmware reads first. Deliberately broken
//! profiles must stop the build (nothing written), and an image whose config.txt was edited
//! afterwards (with mtools, as a user would) must fail `pimg check` naming the file.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Builds with a broken profile: exit 2, the problem named, no output file published.
fn broken_build(tmp: &Path, from: &str, to: &str, want: &[&str]) {
    broken_build_of(tmp, &profile_variant(tmp, from, to), want);
}

/// Builds `profile` (a board name or file, broken as `to` says): exit 2, the problem named,
/// nothing published.
fn broken_build_of(tmp: &Path, profile: &str, want: &[&str]) {
    let o = Build::new()
        .cwd(tmp)
        .board(profile)
        .out("out")
        .epoch(EPOCH)
        .expect_refused(want);
    o.expect_stderr(&["nothing was written"]);
}

#[test]
fn broken_profiles_stop_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_fixture(&t.join("inputs"), false);
    // config.txt names a kernel, a DTB or an initramfs the partition does not hold.
    broken_build(
        t,
        "kernel=boot/vmlinuz-rpi",
        "kernel=boot/vmlinuz-lts",
        &[
            "config.txt:4: kernel=boot/vmlinuz-lts names the kernel boot/vmlinuz-lts, which is not in the partition",
            "(Pi 3 B): the kernel boot/vmlinuz-lts is not in the partition",
        ],
    );
    broken_build(
        t,
        "device_tree=bcm2837-rpi-3-b.dtb",
        "device_tree=bcm2710-rpi-3-b.dtb",
        &["device_tree=bcm2710-rpi-3-b.dtb names the device tree bcm2710-rpi-3-b.dtb, which is not in the partition"],
    );
    broken_build(
        t,
        "initramfs boot/initramfs-rpi followkernel",
        "initramfs boot/initrd.img followkernel",
        &["names the initramfs boot/initrd.img, which is not in the partition"],
    );
    // No device_tree= at all: the firmware's own name is not what the Debian kernel ships.
    broken_build(
        t,
        "device_tree=bcm2837-rpi-3-b.dtb\n",
        "",
        &["no device_tree= applies to the Pi 3 B, and the firmware's default bcm2710-rpi-3-b.dtb is not in the partition"],
    );
    // A 64-bit kernel without arm_64bit=1 would be started in 32-bit mode.
    broken_build(
        t,
        "arm_64bit=1\n",
        "",
        &["is an arm64 kernel, but arm_64bit=1 does not apply to the Pi 3 B"],
    );
    // The firmware files: without bootcode.bin the Pi 3's boot ROM stops.
    broken_build(
        t,
        "{bootcode.bin,start.elf,",
        "{start.elf,",
        &["the Pi 3 B's boot ROM loads bootcode.bin from the card, and it is not in the partition"],
    );
    // An include that is not there.
    broken_build(
        t,
        "include usercfg.txt",
        "include extra.txt",
        &["include names extra.txt, which is not in the partition"],
    );
}

#[test]
fn an_image_edited_afterwards_fails_the_check() {
    need_tool("mcopy", "mtools");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_fixture(&t.join("inputs"), false);
    let out = Build::new().cwd(t).out("out").epoch(EPOCH).built();
    let image = out.join("rpi3b.img");

    let text = run(t, &["check", image.to_str().unwrap()], &[])
        .expect_success()
        .stdout;
    assert!(
        text.contains("pimg check OK for pi3b") || text.contains("check OK for pi3b"),
        "{text}"
    );
    assert!(
        text.contains("kernel boot/vmlinuz-rpi (64-bit), initramfs boot/initramfs-rpi, device tree bcm2837-rpi-3-b.dtb, firmware start.elf+fixup.dat after bootcode.bin"),
        "{text}"
    );

    // Replace config.txt inside the FAT partition (at 4 MiB) with one naming a missing DTB
    // and a missing overlay, and make cmdline.txt two lines.
    let cfg = t.join("config.txt");
    fs::write(
        &cfg,
        "arm_64bit=1\nkernel=boot/vmlinuz-rpi\ninitramfs boot/initramfs-rpi followkernel\n[pi3]\ndevice_tree=bcm2837-rpi-3-bplus.dtb\ndtoverlay=disable-bt\n[all]\n",
    )
    .unwrap();
    let cmdline = t.join("cmdline.txt");
    fs::write(&cmdline, "console=ttyS1,115200\nquiet\n").unwrap();
    let target = format!("{}@@4194304", image.display());
    for f in [&cfg, &cmdline] {
        referee("mcopy", "mtools")
            .args(["-o", "-i", &target])
            .arg(f)
            .arg("::/")
            .run();
    }
    let all = check_problems(t, &image);
    assert!(
        all.contains("config.txt:5 device_tree=bcm2837-rpi-3-bplus.dtb names the device tree"),
        "{all}"
    );
    assert!(
        all.contains(
            "config.txt:6 dtoverlay=disable-bt names the overlay overlays/disable-bt.dtbo"
        ),
        "{all}"
    );
    assert!(all.contains("cmdline.txt must be a single line"), "{all}");
    assert_eq!(all.lines().count(), 3, "{all}");

    // Models named on the command line; an unknown model is a usage error.
    let check = |model: &str| {
        run(
            t,
            &["check", "--model", model, image.to_str().unwrap()],
            &[],
        )
    };
    let o = check("pi4b").expect_failure(1);
    assert!(o.stdout.contains("start4.elf is not in the partition"));
    let o = check("pi500").expect_failure(2);
    assert!(o.stderr.contains("'pi500' is not a board model"));
}

#[test]
fn hostile_images_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.img");
    fs::write(&junk, pattern("junk", 1 << 20)).unwrap();
    let junk = junk.to_str().unwrap();
    let o = run(tmp.path(), &["check", "--model", "pi3b", junk], &[]).expect_failure(2);
    assert!(o.stderr.contains("junk.img"));
    let o = run(tmp.path(), &["check", junk], &[]).expect_failure(2);
    assert!(o.stderr.contains("pass --board NAME or --model ID"));
}

/// The Pi 5 card's inputs as Debian 13 lays them out where it matters here: the arm64 kernel
/// with `bcm2712-rpi-5-b.dtb` (modules in the layout pimg reads today) and busybox under
/// merged /usr, with the modules and Wi-Fi firmware its modloop takes. No raspi-firmware: the
/// Pi 5's firmware is in its EEPROM. `kernel` is the
/// kernel image the package ships.
fn write_pi5_fixture(dir: &Path, kernel: Vec<u8>) {
    fs::create_dir_all(dir).unwrap();
    let m = |rel: &str, name: &str, deps: &[&str]| {
        Entry::Owned(
            format!("lib/modules/{KVER}/kernel/{rel}"),
            module_elf(name, deps),
            0o644,
        )
    };
    let linux = deb(
        &format!("linux-image-{KVER}-unsigned"),
        "6.1.999-1",
        "arm64",
        &[
            Entry::Dir("boot"),
            Entry::Owned(format!("boot/vmlinuz-{KVER}"), kernel, 0o644),
            Entry::Owned(
                format!("usr/lib/linux-image-{KVER}/broadcom/bcm2711-rpi-4-b.dtb"),
                fdt_blob("dtb4b", 27_386),
                0o644,
            ),
            Entry::Owned(
                format!("usr/lib/linux-image-{KVER}/broadcom/bcm2712-rpi-5-b.dtb"),
                fdt_blob("dtb5", 21_053),
                0o644,
            ),
            m("fs/fat/fat.ko", "fat", &[]),
            m("fs/fat/vfat.ko", "vfat", &["fat"]),
            m("fs/nls/nls_iso8859-1.ko", "nls_iso8859_1", &[]),
            m("fs/nls/nls_cp437.ko", "nls_cp437", &[]),
            m("drivers/block/loop.ko", "loop", &[]),
        ]
        .into_iter()
        .chain(modloop_modules(Layout::Split, KVER))
        .collect::<Vec<_>>(),
        FIXTURE_NEWEST_MTIME,
    );
    let busybox = busybox_deb(
        "1:1.37.0-6+b9",
        &[
            Entry::Dir("usr"),
            Entry::Dir("usr/bin"),
            Entry::File("usr/bin/busybox", pattern("busybox", 400_000), 0o755),
        ],
        FIXTURE_NEWEST_MTIME - 3600,
    );
    for (name, data) in [
        (
            format!("linux-image-{KVER}-unsigned_6.1.999-1_arm64.deb"),
            linux,
        ),
        (
            "busybox-static_1%3a1.37.0-6+b9_arm64.deb".to_string(),
            busybox,
        ),
        firmware_deb(Layout::MergedUsr),
    ] {
        fs::write(dir.join(name), data).unwrap();
    }
}

/// A 32-bit ARM zImage stand-in: pattern bytes with the magic at 0x24 and no arm64 magic.
fn zimage(len: usize) -> Vec<u8> {
    let mut k = pattern("zimage", len);
    k[0x24..0x28].copy_from_slice(&[0x18, 0x28, 0x6f, 0x01]);
    k
}

/// The shipped profile of `board` with one edit, written as `variant.toml` in `tmp`; its path.
fn variant_of(tmp: &Path, board: &str, from: &str, to: &str) -> String {
    let path = tmp.join("variant.toml");
    board_variant(board, &path, from, to);
    path.display().to_string()
}

/// `pimg check IMAGE`'s problems as `place message` lines, asserting it found some (exit 1).
fn check_problems(tmp: &Path, image: &Path) -> String {
    let o = run(tmp, &["check", "--json", image.to_str().unwrap()], &[]).expect_failure(1);
    let r: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["place"].as_str().unwrap(),
                p["message"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Pi 5 card: no bootcode.bin or start/fixup files, and `pimg check` passes; with its
/// device tree deleted or arm_64bit=0 written into config.txt afterwards, it fails naming that.
/// QEMU has no Pi 5, so `pimg boot` and `build --boot` refuse it, saying so.
#[test]
fn the_pi5_card_is_checked_without_firmware_files() {
    need_tool("mcopy", "mtools");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_pi5_fixture(&t.join("inputs"), arm64_kernel("kernel", 1_500_000));
    Build::new()
        .cwd(t)
        .board("rpi5")
        .out("out")
        .epoch(EPOCH)
        .expect_success();
    let image = t.join("out/rpi5.img");

    let text = run(t, &["check", image.to_str().unwrap()], &[])
        .expect_success()
        .stdout;
    assert!(text.contains("pi5    kernel boot/vmlinuz-rpi (64-bit), initramfs boot/initramfs-rpi, device tree bcm2712-rpi-5-b.dtb, firmware in the EEPROM"), "{text}");
    assert!(text.contains("pimg: check OK for pi5"), "{text}");
    let o = run(t, &["check", "--json", image.to_str().unwrap()], &[]).expect_success();
    let r: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let set = &r["models"][0];
    assert_eq!(set["model"], "pi5");
    for absent in ["bootcode", "start", "fixup"] {
        assert!(set.get(absent).is_none(), "{absent} in {set:#}");
    }

    // The boot tree holds the DTB, the kernel and the initramfs, and no firmware file.
    let tarball = fs::read(t.join("out/rpi5.tar.gz")).unwrap();
    let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&tarball[..]))
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    for want in [
        "bcm2712-rpi-5-b.dtb",
        "boot/vmlinuz-rpi",
        "boot/initramfs-rpi",
        "config.txt",
    ] {
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == want),
            "{want} not in {names:?}"
        );
    }
    let firmware: Vec<&String> = names
        .iter()
        .filter(|n| n.contains("bootcode") || n.contains("start") || n.contains("fixup"))
        .collect();
    assert!(
        firmware.is_empty(),
        "firmware files on a Pi 5 card: {firmware:?}"
    );

    // QEMU has no Pi 5: pimg boot says so before anything starts, and build --boot before
    // anything is built.
    let o = run(t, &["boot", image.to_str().unwrap()], &[]).expect_failure(2);
    o.expect_stderr(&[
        "the board profile rpi5 names no QEMU machine: QEMU does not emulate this board",
    ]);
    Build::new()
        .cwd(t)
        .board("rpi5")
        .arg("--boot")
        .out("out-boot")
        .epoch(EPOCH)
        .expect_refused(&["--boot: the board profile rpi5 names no QEMU machine"]);
    assert_nothing_published(&t.join("out-boot"), "build --boot");

    // The device tree deleted from a copy's partition (at 4 MiB); the buildinfo beside it
    // names the board.
    let no_dtb = t.join("no-dtb.img");
    fs::copy(&image, &no_dtb).unwrap();
    fs::copy(
        t.join("out/rpi5.buildinfo.json"),
        t.join("no-dtb.buildinfo.json"),
    )
    .unwrap();
    referee("mdel", "mtools")
        .args([
            "-i",
            &format!("{}@@4194304", no_dtb.display()),
            "::/bcm2712-rpi-5-b.dtb",
        ])
        .run();
    let all = check_problems(t, &no_dtb);
    assert_eq!(all, "config.txt:6 device_tree=bcm2712-rpi-5-b.dtb names the device tree bcm2712-rpi-5-b.dtb, which is not in the partition");

    // arm_64bit=0 written into the image's config.txt.
    let target = format!("{}@@4194304", image.display());
    let cfg = t.join("config.txt");
    fs::write(
        &cfg,
        "[pi5]\narm_64bit=0\nkernel=boot/vmlinuz-rpi\ninitramfs boot/initramfs-rpi followkernel\ndevice_tree=bcm2712-rpi-5-b.dtb\n[all]\n",
    )
    .unwrap();
    referee("mcopy", "mtools")
        .args(["-o", "-i", &target, cfg.to_str().unwrap(), "::/"])
        .run();
    let all = check_problems(t, &image);
    assert_eq!(all, "config.txt:2 arm_64bit=0 asks for a 32-bit kernel, but the Pi 5 starts only 64-bit kernels (its firmware ignores arm_64bit)");
}

#[test]
fn broken_pi5_profiles_stop_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_pi5_fixture(&t.join("inputs"), arm64_kernel("kernel", 1_500_000));
    // No device tree copied: config.txt names one the partition does not hold.
    let to = "glob = \"usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb\"";
    broken_build_of(
        t,
        &variant_of(t, "rpi5", "glob = \"usr/lib/linux-image-*/broadcom/bcm2712-rpi-5-b.dtb\"", to),
        &["device_tree=bcm2712-rpi-5-b.dtb names the device tree bcm2712-rpi-5-b.dtb, which is not in the partition"],
    );
    // Neither copied nor named: the firmware's default name is missing.
    let profile = variant_of(t, "rpi5", "device_tree=bcm2712-rpi-5-b.dtb\n", "");
    let text = fs::read_to_string(&profile).unwrap().replacen(
        "broadcom/bcm2712-rpi-5-b.dtb",
        "broadcom/bcm2711-rpi-4-b.dtb",
        1,
    );
    fs::write(&profile, text).unwrap();
    broken_build_of(
        t,
        &profile,
        &["(Pi 5): no device_tree= applies to the Pi 5, and the firmware's default bcm2712-rpi-5-b.dtb is not in the partition"],
    );
    // A 32-bit kernel, asked for or shipped.
    broken_build_of(
        t,
        &variant_of(t, "rpi5", "arm_64bit=1", "arm_64bit=0"),
        &["(Pi 5): arm_64bit=0 asks for a 32-bit kernel, but the Pi 5 starts only 64-bit kernels"],
    );
    let zt = tempfile::tempdir().unwrap();
    let z = zt.path();
    write_pi5_fixture(&z.join("inputs"), zimage(1_500_000));
    broken_build_of(
        z,
        "rpi5",
        &["(Pi 5): boot/vmlinuz-rpi is a 32-bit ARM zImage, but the Pi 5 starts only 64-bit kernels"],
    );
}
