//! Every shipped board profile, built from the real Debian inputs of its architecture: the
//! build's own firmware check and `pimg check` pass for every model the profile lists, and
//! every QEMU machine the profile names boots the image to userspace with the in-guest
//! self-check matching. A board QEMU does not emulate (`NO_QEMU`) has only the static check,
//! and `pimg boot` must refuse it saying so. One build per board. Boards run as parallel as
//! the test threads allow: a boot is one emulator thread, so two boots (or a boot and a build)
//! keep two cores busy, where one boot at a time left a core idle for most of the suite.
//!
//! Each boot prints a row of the README's board table to stderr (`--nocapture` shows them).
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// Boards built here. alpine-rpi-aarch64 needs Alpine's .apk packages, which Debian's
/// registries do not serve: tests/apk.rs builds it from fixture packages instead, and
/// tests/boot.rs boots it from Debian's packages packed again the abuild way.
const BOARDS: &[&str] = &[
    "cm4",
    "rpi-arm64",
    "rpi-armel",
    "rpi0",
    "rpi1",
    "rpi2b",
    "rpi3ap",
    "rpi3b",
    "rpi3bp",
    "rpi400",
    "rpi4b",
    // Debian 13 inputs only: Debian 12's arm64 kernel has no BCM2712 device tree.
    "rpi5",
    "rpizero2w",
];
const NOT_HERE: &[&str] = &["alpine-rpi-aarch64"];
/// Boards whose profile names no QEMU machine because QEMU emulates no such board.
const NO_QEMU: &[&str] = &["rpi5"];

/// pimg with `args`; its JSON report (stdout).
fn pimg_json(what: &str, args: &[&str]) -> (Ran, serde_json::Value) {
    let o = run(Path::new("."), args, &[]);
    let json = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: no JSON report ({e}); stderr:\n{}", o.stderr));
    (o, json)
}

/// Every shipped board profile as `pimg boards --json` lists them.
fn boards() -> serde_json::Value {
    pimg_json("pimg boards", &["boards", "--json"]).1
}

fn profile(board: &str) -> serde_json::Value {
    boards()
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == board)
        .unwrap_or_else(|| panic!("pimg boards does not list {board}"))
        .clone()
}

fn build(board: &str, release: Release) -> PathBuf {
    let started = std::time::Instant::now();
    let out = Build::release(board, release)
        .cwd(tempfile::tempdir().unwrap().keep())
        .out("out")
        .built();
    eprintln!(
        "{board} ({}): built in {:.1} s",
        release.name(),
        started.elapsed().as_secs_f64()
    );
    out
}

fn check(board: &str, image: &Path, models: &[String]) {
    let what = format!("{board}: pimg check");
    let (o, r) = pimg_json(&what, &["check", "--json", image.to_str().unwrap()]);
    assert!(o.success(), "{board}: pimg check failed: {r:#}");
    assert_eq!(
        strings(&r["models"], "model"),
        models,
        "{board}: models checked"
    );
}

fn boot(board: &str, image: &Path, label: &str, release: Release) {
    need_tool(
        "qemu-system-aarch64",
        "qemu-system-arm (9 or later, from backports)",
    );
    need_tool(
        "qemu-system-arm",
        "qemu-system-arm (9 or later, from backports)",
    );
    let started = std::time::Instant::now();
    let (o, r) = pimg_json(
        &format!("{board} on {label}"),
        &[
            "boot",
            image.to_str().unwrap(),
            "--json",
            "--timeout",
            "300",
            "--machine",
            label,
        ],
    );
    assert!(o.success(), "{board} on {label}: boot failed: {r:#}");
    let milestones = r["milestones"].as_array().unwrap();
    let missing: Vec<&str> = milestones
        .iter()
        .filter(|m| m["at_ms"].is_null())
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "{board} on {label}: not reached {missing:?}"
    );
    assert!(
        r["selfcheck"]["mismatches"]
            .as_array()
            .is_some_and(|m| m.is_empty()),
        "{board} on {label}: self-check {:#}",
        r["selfcheck"]
    );
    let at = |name: &str| {
        milestones
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["at_ms"].as_u64())
            .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
            .unwrap_or_default()
    };
    let info = read_json(&image.with_extension("buildinfo.json"));
    eprintln!(
        "| {board} | {} | {} {} | {label} ({}) | yes: all {} milestones, self-check matched{} | {} s (kernel {} s, init {} s, card mounted {} s) |",
        profile(board.split(' ').next().unwrap_or(board))["arch"]
            .as_str()
            .unwrap_or(""),
        release.name(),
        info["kernel_modules"]["kernel_version"].as_str().unwrap_or(""),
        r["machine"].as_str().unwrap_or(""),
        milestones.len(),
        r["retried_after"]
            .as_str()
            .map(|w| format!(" (booted twice: {w})"))
            .unwrap_or_default(),
        format_args!("{:.1}", started.elapsed().as_secs_f64()),
        at("kernel started"),
        at("init started"),
        at("boot media mounted"),
    );
}

/// A board QEMU does not emulate: `pimg check` (run by `board`) is all there is, and
/// `pimg boot` refuses the image before starting anything, naming the reason.
fn no_machine(board: &str, image: &Path, models: &[String]) {
    let o = pimg().arg("boot").arg(image).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{board}: pimg boot: {err}");
    assert!(
        err.contains(&format!(
            "the board profile {board} names no QEMU machine: QEMU does not emulate this board"
        )),
        "{board}: pimg boot: {err}"
    );
    eprintln!(
        "| {board} | {} | none | not booted: QEMU has no such machine; pimg check passed for {} | – |",
        profile(board)["arch"].as_str().unwrap_or(""),
        models.join(", "),
    );
}

fn board(board: &str, release: Release) {
    let p = profile(board);
    let out = build(board, release);
    let image = out.join(format!("{board}.img"));
    let models: Vec<String> = p["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert!(!models.is_empty(), "{board}: the profile lists no models");
    check(board, &image, &models);
    let labels: Vec<String> = p["qemu_machine"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if NO_QEMU.contains(&board) {
        assert!(
            labels.is_empty(),
            "{board}: listed in NO_QEMU, but the profile names QEMU machines {labels:?}"
        );
        no_machine(board, &image, &models);
    } else {
        assert!(
            !labels.is_empty(),
            "{board}: the profile names no QEMU machine (list it in NO_QEMU if QEMU cannot emulate it)"
        );
        for label in &labels {
            boot(board, &image, label, release);
        }
    }
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

#[test]
fn every_shipped_board_is_covered() {
    let all = boards();
    let mut names: Vec<&str> = strings(&all, "name")
        .into_iter()
        .filter(|n| !NOT_HERE.contains(n))
        .collect();
    names.sort();
    assert_eq!(names, BOARDS, "add the new board to tests/boards.rs");
}

macro_rules! boards {
    ($($test:ident => $name:literal from $release:ident,)*) => {
        $(
            #[test]
            fn $test() {
                board($name, Release::$release);
            }
        )*
    };
}

// Every emulated board from Debian 13, and one board per architecture from Debian 12 too.
// The armel boards (Zero, Pi 1) are built from Debian 12 only: this network's mirror lists
// Debian 13's linux-image-*-rpi armel package but answers 404 for its file.
boards! {
    rpi0_debian12 => "rpi0" from Debian12,
    rpi1_debian12 => "rpi1" from Debian12,
    rpi_armel_debian12 => "rpi-armel" from Debian12,
    rpi2b_debian13 => "rpi2b" from Debian13,
    rpi2b_debian12 => "rpi2b" from Debian12,
    rpi3b_debian13 => "rpi3b" from Debian13,
    rpi3b_debian12 => "rpi3b" from Debian12,
    rpi3bp_debian13 => "rpi3bp" from Debian13,
    rpi3ap_debian13 => "rpi3ap" from Debian13,
    rpizero2w_debian13 => "rpizero2w" from Debian13,
    rpi4b_debian13 => "rpi4b" from Debian13,
    rpi5_debian13 => "rpi5" from Debian13,
    rpi400_debian13 => "rpi400" from Debian13,
    cm4_debian13 => "cm4" from Debian13,
    rpi_arm64_debian13 => "rpi-arm64" from Debian13,
}

/// The Pi 4 family's EEPROM boots GPT: `--table gpt` builds one, sfdisk reads it, the firmware
/// check passes, the kernel finds its card under raspi4b, and `verify --rebuild` repeats the
/// choice from the buildinfo. Boards whose boot ROM reads only an MBR refuse it.
#[test]
fn rpi4b_on_gpt() {
    need_tool("sfdisk", "fdisk");
    let inputs = real_inputs();
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let o = Build::real("rpi3b")
        .cwd(t)
        .table("gpt")
        .out("refused")
        .run()
        .expect_failure(2);
    assert!(
        o.stderr
            .contains("--table: the Pi 3 B's boot ROM reads only an MBR"),
        "{}",
        o.stderr
    );
    assert!(!t.join("refused/rpi3b.img").exists());

    let out = Build::real("rpi4b").cwd(t).table("gpt").out("out").built();
    let image = out.join("rpi4b.img");
    let o = referee("sfdisk", "fdisk")
        .arg("--json")
        .arg(&image)
        .output();
    let table: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(table["partitiontable"]["label"], "gpt", "{table}");
    let info = read_json(&out.join("rpi4b.buildinfo.json"));
    assert_eq!(info["board"]["table"], "gpt");
    check("rpi4b", &image, &["pi4b".to_string()]);
    boot("rpi4b --table gpt", &image, "raspi4b", Release::Debian13);
    let o = run(
        t,
        &[
            "verify",
            "--rebuild",
            "out/rpi4b.buildinfo.json",
            "--inputs",
            inputs.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.success(), "{}", o.text());
}
