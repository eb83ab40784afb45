//! `pimg check`: the static check of what the firmware reads first. Deliberately broken
//! profiles must stop the build (nothing written), and an image whose config.txt was edited
//! afterwards (with mtools, as a user would) must fail `pimg check` naming the file.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

const EPOCH: &str = "1700000000";

/// Builds with a broken profile: exit 2, the problem named, no output file published.
fn broken_build(tmp: &Path, from: &str, to: &str, want: &[&str]) {
    let profile = profile_variant(tmp, from, to);
    let o = run(
        tmp,
        &["build", "--board", &profile, "--out", "out"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{to:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{to:?}: expected {w:?} in:\n{err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert_nothing_published(&tmp.join("out"), to);
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
    ok(&run(
        t,
        &["build", "--out", "out"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    ));
    let image = t.join("out/rpi3b.img");

    let o = run(t, &["check", image.to_str().unwrap()], &[]);
    let text = ok(&o);
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
        let o = Command::new("mcopy")
            .args(["-o", "-i", &target, f.to_str().unwrap(), "::/"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mcopy: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = run(t, &["check", "--json", image.to_str().unwrap()], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems: Vec<String> = r["problems"]
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
        .collect();
    let all = problems.join("\n");
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
    assert_eq!(problems.len(), 3, "{all}");

    // Models named on the command line; an unknown model is a usage error.
    let o = run(
        t,
        &["check", "--model", "pi4b", image.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("start4.elf is not in the partition"));
    let o = run(
        t,
        &["check", "--model", "pi500", image.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'pi500' is not a board model"));
}

#[test]
fn hostile_images_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.img");
    fs::write(&junk, pattern("junk", 1 << 20)).unwrap();
    let o = run(
        tmp.path(),
        &["check", "--model", "pi3b", junk.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.img"));
    let o = run(tmp.path(), &["check", junk.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pass --board NAME or --model ID"));
}
