//! `pimg boot` on the image built from the real Debian inputs: the Linux kernel under QEMU is
//! the referee. A good image reaches every milestone and the guest's hashes match; a
//! corrupted one is caught; a boot partition without its kernel, DTB or initramfs is refused
//! before QEMU starts.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One real build shared by every test here. Boots run as parallel as the test threads allow
/// (each is one emulator thread); a stalled guest is told apart by QEMU's idle CPU, which a
/// busy machine does not fake.
fn built() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        Build::real("rpi3b")
            .cwd(tempfile::tempdir().unwrap().keep())
            .out("out")
            .built()
    })
}

/// A copy of the built image, as `name` in a new folder (kept while the folder is).
fn copy_of_image(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join(name);
    fs::copy(built().join("rpi3b.img"), &img).unwrap();
    (dir, img)
}

/// `pimg boot IMAGE` with `args`.
fn pimg_boot(image: &Path, args: &[&str]) -> Ran {
    let mut argv = vec!["boot", image.to_str().unwrap()];
    argv.extend_from_slice(args);
    run(Path::new("."), &argv, &[])
}

fn boot(image: &Path, extra: &[&str]) -> (Ran, serde_json::Value) {
    need_tool("qemu-system-aarch64", "qemu-system-arm");
    let started = std::time::Instant::now();
    let o = pimg_boot(image, &[&["--json", "--timeout", "300"], extra].concat());
    eprintln!(
        "pimg boot {} took {:.1} s",
        image.display(),
        started.elapsed().as_secs_f64()
    );
    let report: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); {}", o.report()));
    (o, report)
}

#[test]
fn real_image_boots_and_the_guest_sees_what_was_hashed() {
    let out = built();
    let console = boots_as_built(out, "rpi3b");
    assert!(
        console.contains("pimg: apkovl applied pimg.apkovl.tar.gz hostname=pimg"),
        "{console}"
    );
}

/// The Alpine layout from real components (see `common::repack`): Debian 13's kernel,
/// firmware and busybox packed the abuild way, signed, checked against the test key, and
/// booted with the modloop and the boot repository's index.
#[test]
fn alpine_layout_from_repackaged_debian_packages_boots() {
    let tmp = tempfile::tempdir().unwrap();
    let apks = repack::repackaged_debian_apks(&tmp.path().join("unpacked"));
    let inputs = tmp.path().join("inputs");
    fs::create_dir_all(&inputs).unwrap();
    for (name, bytes) in &apks {
        fs::write(inputs.join(name), bytes).unwrap();
    }
    let out = Build::new()
        .cwd(tmp.path())
        .board(ALPINE_BOARD)
        .inputs(&inputs)
        .arg("--apk-keys")
        .arg(write_apk_keys(&tmp.path().join("apk-keys")))
        .out("out")
        .built();
    let console = boots_as_built(&out, ALPINE_BOARD);
    // The guest read the boot repository's index with the rest of the boot media.
    let info = read_json(&out.join(format!("{ALPINE_BOARD}.buildinfo.json")));
    let index = info["boot_partition"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "apks/aarch64/APKINDEX.tar.gz")
        .expect("the boot repository's index in the buildinfo");
    assert!(
        console.contains(&format!(
            "pimg: sha256 {} apks/aarch64/APKINDEX.tar.gz",
            index["sha256"].as_str().unwrap()
        )),
        "{console}"
    );
    // Every package was verified against the test key.
    let verdicts = string_pairs(&info["inputs"], "file", "apk_signature");
    assert_eq!(verdicts.len(), apks.len());
    for (file, verdict) in verdicts {
        assert_eq!(verdict, format!("{APK_TEST_KEY}.pub"), "{file}");
    }
}

/// Boots `out/<board>.img` with its buildinfo and checks the whole verdict: every milestone,
/// the modloop's module and firmware counts, the self-check against the buildinfo, and the
/// kernel's hash on the console. Returns the console log.
fn boots_as_built(out: &Path, board: &str) -> String {
    let log = out.join("console.log");
    let (o, r) = boot(
        &out.join(format!("{board}.img")),
        &["--log", log.to_str().unwrap()],
    );
    assert!(o.success(), "boot failed: {r:#}\n{}", o.stderr);
    assert_eq!(
        strings(&r["milestones"], "name"),
        [
            "kernel started",
            "init started",
            "boot media mounted",
            "apkovl applied",
            "modloop mounted",
            "self-check",
            "module loaded from the modloop",
            "userspace ready",
            "machine stopped"
        ]
    );
    // The booted system found every module of the modloop and saw every firmware file.
    let info = read_json(&out.join(format!("{board}.buildinfo.json")));
    let line = |name: &str| {
        r["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["line"].as_str())
            .unwrap()
            .to_string()
    };
    assert!(
        line("modloop mounted").ends_with(&format!("modules={}", info["modloop"]["modules"])),
        "{r:#}"
    );
    let firmware = info["modloop"]["firmware"].as_array().unwrap().len();
    assert!(firmware > 0, "{:#}", info["modloop"]);
    assert!(
        line("module loaded from the modloop").contains(&format!("brcmfmac firmware={firmware}")),
        "{r:#}"
    );
    assert_eq!(r["selfcheck"]["modloop"], "boot/modloop-rpi");
    for m in r["milestones"].as_array().unwrap() {
        assert!(m["at_ms"].is_u64(), "milestone not reached: {m}");
    }
    let check = &r["selfcheck"];
    assert_eq!(check["mismatches"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["against_buildinfo"], true);
    // Every boot file but the modloop, which the guest mounts instead of hashing.
    assert_eq!(
        check["boot_files"].as_u64().unwrap() as usize,
        info["boot_partition"].as_array().unwrap().len() - 1
    );
    assert!(check["overlay_files"].as_u64().unwrap() >= 10, "{check}");
    let console = fs::read_to_string(&log).unwrap();
    // The guest printed the same hash for the kernel as SHA256SUMS' build recorded.
    let kernel = info["boot_partition"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "boot/vmlinuz-rpi")
        .unwrap();
    assert!(console.contains(&format!(
        "pimg: sha256 {} boot/vmlinuz-rpi",
        kernel["sha256"].as_str().unwrap()
    )));
    eprintln!("{board} boot wall time: {} ms", r["wall_ms"]);
    console
}

#[test]
fn image_of_odd_size_boots_from_a_padded_copy_and_is_not_modified() {
    let (_dir, img) = copy_of_image("odd.img");
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.set_len((256 + 3) << 20).unwrap();
    drop(f);
    let before = fs::read(&img).unwrap();
    let (o, r) = boot(&img, &["--board", "rpi3b"]);
    assert!(o.success(), "{r:#}");
    assert_eq!(r["selfcheck"]["against_buildinfo"], false);
    assert!(
        fs::read(&img).unwrap() == before,
        "pimg boot modified the image"
    );
}

/// A copy of the built image with its buildinfo, where byte `at + flip_at` of the boot file
/// `path` (found in the image by the 64 bytes from its offset `at`) is XORed with `xor`.
fn image_with_a_flipped_byte(
    path: &str,
    at: usize,
    flip_at: usize,
    xor: u8,
) -> (tempfile::TempDir, PathBuf) {
    let out = built();
    let (dir, img) = copy_of_image("rpi3b.img");
    fs::copy(
        out.join("rpi3b.buildinfo.json"),
        dir.path().join("rpi3b.buildinfo.json"),
    )
    .unwrap();
    let part = dir.path().join("part.img");
    referee("mcopy", "mtools")
        .args(["-n", "-i", &format!("{}@@4M", img.display())])
        .arg(format!("::/{path}"))
        .arg(&part)
        .run();
    let file = fs::read(&part).unwrap();
    let needle = &file[at..at + 64];
    let mut bytes = fs::read(&img).unwrap();
    let found = bytes
        .windows(64)
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{path} bytes in the image"));
    bytes[found + flip_at] ^= xor;
    fs::write(&img, &bytes).unwrap();
    (dir, img)
}

/// Boots `img`, which must fail: the reported failure.
fn failure_of(img: &Path, what: &str) -> String {
    let (o, r) = boot(img, &[]);
    assert!(!o.success(), "{what} passed: {r:#}");
    r["failure"].as_str().unwrap().to_string()
}

#[test]
fn corrupted_kernel_is_caught() {
    // A distinctive run of the kernel inside the image, one byte of it flipped.
    let (_dir, img) = image_with_a_flipped_byte("boot/vmlinuz-rpi", 20 << 20, 7, 0x40);
    let failure = failure_of(&img, "a corrupted kernel");
    assert!(
        failure.contains("boot/vmlinuz-rpi")
            || failure.contains("milestone not reached")
            || failure.contains("panic"),
        "{failure}"
    );
    eprintln!("corruption reported as: {failure}");
}

/// One byte of the modloop changed in the image: the boot fails naming the modloop.
#[test]
fn a_changed_modloop_is_caught() {
    let (_dir, img) = image_with_a_flipped_byte("boot/modloop-rpi", 1 << 20, 5, 0x10);
    let failure = failure_of(&img, "a changed modloop");
    assert!(failure.contains("modloop boot/modloop-rpi"), "{failure}");
}

#[test]
fn missing_boot_files_are_refused_before_qemu_starts() {
    need_tool("mdel", "mtools");
    for (path, what) in [
        ("bcm2837-rpi-3-b.dtb", "device tree"),
        ("boot/initramfs-rpi", "initramfs"),
        ("boot/vmlinuz-rpi", "kernel"),
    ] {
        let (_dir, img) = copy_of_image("x.img");
        referee("mdel", "mtools")
            .args(["-i", &format!("{}@@4M", img.display())])
            .arg(format!("::/{path}"))
            .run();
        let started = std::time::Instant::now();
        let o = pimg_boot(&img, &["--board", "rpi3b"]).expect_failure(2);
        let err = &o.stderr;
        assert!(err.contains(&format!("has no {path} (the {what}")), "{err}");
        assert!(
            started.elapsed().as_secs() < 10,
            "took too long: QEMU must not start"
        );
    }
}

#[test]
fn missing_qemu_says_how_to_install_it() {
    let out = built();
    let image = out.join("rpi3b.img");
    let o = run(
        Path::new("."),
        &["boot", image.to_str().unwrap()],
        &[("PATH", "/nonexistent")],
    )
    .expect_failure(2);
    o.expect_stderr(&[
        "qemu-system-aarch64 not found",
        "apt-get install qemu-system-arm",
    ]);
}

/// A guest that stops printing with QEMU idle is reported as stalled (not as a bad image and
/// not only at the timeout), and booted once more; the report says so. The kernel here waits
/// for an interrupt that never comes from its first instruction on, on the one-core raspi0
/// (on the four-core machines QEMU's own secondary-core loops keep it busy).
#[test]
fn a_stalled_guest_is_named_and_booted_once_more() {
    need_tool("mcopy", "mtools");
    let dir = tempfile::tempdir().unwrap();
    let out = Build::release("rpi0", Release::Debian12)
        .cwd(dir.path())
        .out("out")
        .built();
    let img = out.join("rpi0.img");
    let mut kernel = pattern("stall", 1 << 20);
    // mcr p15, 0, r0, c7, c0, 4 (wait for interrupt, ARMv6); b .-4. Then the zImage magic
    // and its start and end, as a real zImage has them.
    kernel[..8].copy_from_slice(&[0x90, 0x0f, 0x07, 0xee, 0xfd, 0xff, 0xff, 0xea]);
    kernel[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    kernel[0x28..0x2c].copy_from_slice(&0u32.to_le_bytes());
    kernel[0x2c..0x30].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let file = dir.path().join("vmlinuz-rpi");
    fs::write(&file, &kernel).unwrap();
    referee("mcopy", "mtools")
        .args(["-o", "-i", &format!("{}@@4M", img.display())])
        .arg(&file)
        .arg("::/boot/vmlinuz-rpi")
        .run();
    need_tool("qemu-system-arm", "qemu-system-arm");
    let o = pimg_boot(&img, &["--json", "--timeout", "300"]);
    let r: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); {}", o.report()));
    assert_eq!(o.code(), Some(1), "{r:#}");
    let failure = r["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("guest stalled at \"(no output)\": no console output and QEMU idle"),
        "{r:#}"
    );
    assert!(
        r["retried_after"]
            .as_str()
            .is_some_and(|w| w.starts_with("guest stalled at")),
        "{r:#}"
    );
    assert!(
        r["wall_ms"].as_u64().unwrap() < 300_000,
        "the stall was found before the timeout: {r:#}"
    );
}
