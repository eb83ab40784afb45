//! Real components in Alpine's packaging. Debian 13's arm64 kernel, the Raspberry Pi
//! firmware, the Broadcom Wi-Fi firmware and busybox are unpacked with `dpkg-deb` and packed
//! again the way abuild packs `linux-rpi`, `raspberrypi-bootloader`, `linux-firmware-brcm`
//! and `busybox-static` (signed with the test key), at the paths Alpine's packages use. The
//! Alpine-layout profile built from them boots under QEMU like the Debian profiles do.
//!
//! Two things are trimmed so that the guest's self-check, which reads every byte of the
//! boot repository from the emulated card, stays within a boot of the Debian profiles:
//! - `linux-rpi` carries the modules of the file systems, the SD card, block devices,
//!   watchdogs and Broadcom Wi-Fi, with every module they depend on, not all 4000;
//! - `raspberrypi-bootloader` carries the firmware files the Pi 3 and 4 boot with
//!   (`bootcode.bin`, `start.elf`, `fixup.dat`, `start4.elf`, `fixup4.dat`), not the variants.
//!
//! Debian's mainline device trees are named `bcm2837-*` where Alpine's downstream kernel names
//! the same boards `bcm2710-*`; they are packed under Alpine's names. Mainline has no
//! overlays, so `overlays/` holds one stand-in blob (nothing under QEMU reads it).

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The module folders (under `kernel/`) whose every module goes into `linux-rpi`, with
/// what they depend on.
const MODULE_ROOTS: &[&str] = &[
    "fs/",
    "drivers/mmc/",
    "drivers/block/",
    "drivers/watchdog/",
    "drivers/net/wireless/broadcom/",
    "net/wireless/",
];

/// The firmware files `raspberrypi-bootloader` carries.
const BOOT_FIRMWARE: &[&str] = &[
    "bootcode.bin",
    "start.elf",
    "fixup.dat",
    "start4.elf",
    "fixup4.dat",
];

/// The repackaged packages as (file name, bytes), from the real Debian 13 inputs; `work` is
/// where the Debian packages are unpacked.
pub fn repackaged_debian_apks(work: &Path) -> Vec<(String, Vec<u8>)> {
    need_tool("dpkg-deb", "dpkg");
    let inputs = real_inputs();
    let kernel = unpack(&inputs, "linux-image-", "-arm64-unsigned", work);
    let firmware = unpack(&inputs, "raspi-firmware_", "_all.deb", work);
    let wifi = unpack(&inputs, "firmware-brcm80211_", "_all.deb", work);
    let busybox = unpack(&inputs, "busybox-static_", "_arm64.deb", work);

    let kver = only_entry(&kernel.join("usr/lib/modules"));
    let date = builddate(&kernel.join(format!("boot/vmlinuz-{kver}")));
    // Statically linked or data only: no package depends on another.
    let apk = |name: &str, version: &str, license: &str, entries: Vec<Entry>| {
        let data = gzip9(&apk_data_tar(&entries, date));
        let info = pkginfo_depending(
            name,
            version,
            "aarch64",
            license,
            date,
            &sha256_hex(&data),
            &[],
        );
        let bytes = apk_of(info, data, date, true).bytes();
        (format!("{name}-{version}.apk"), bytes)
    };
    vec![
        apk(
            "busybox-static",
            "1.37.0-r0",
            "GPL-2.0-only",
            vec![
                dir("bin"),
                file(
                    "bin/busybox.static",
                    &busybox.join("usr/bin/busybox"),
                    0o755,
                ),
            ],
        ),
        apk(
            "linux-firmware-brcm",
            "20250410-r0",
            "custom:multiple",
            firmware_entries(&wifi.join("usr/lib/firmware")),
        ),
        apk(
            "linux-rpi",
            &format!("{}-r0", kver.split('+').next().unwrap()),
            "GPL-2.0-only",
            kernel_entries(&kernel, &kver),
        ),
        apk(
            "raspberrypi-bootloader",
            "1.20240424-r0",
            "custom",
            [dir("boot")]
                .into_iter()
                .chain(BOOT_FIRMWARE.iter().map(|f| {
                    file(
                        &format!("boot/{f}"),
                        &firmware.join("usr/lib/raspi-firmware").join(f),
                        0o644,
                    )
                }))
                .collect(),
        ),
    ]
}

/// `dpkg-deb -x` of the one input named `<start>…<end>` into a folder of `work`.
fn unpack(inputs: &Path, start: &str, end: &str, work: &Path) -> PathBuf {
    let deb = std::fs::read_dir(inputs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(start) && n.contains(end) && n.ends_with(".deb")
        })
        .unwrap_or_else(|| panic!("no {start}…{end} package in {}", inputs.display()));
    let to = work.join(start.trim_end_matches(['-', '_']));
    std::fs::create_dir_all(&to).unwrap();
    let o = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&to)
        .output()
        .unwrap();
    assert!(o.status.success(), "dpkg-deb -x {}: {o:?}", deb.display());
    to
}

fn only_entry(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{}: {names:?}", dir.display());
    names[0].clone()
}

/// The packages' build date: the kernel image's mtime as the Debian package stores it.
fn builddate(path: &Path) -> u64 {
    let m = std::fs::metadata(path).unwrap().modified().unwrap();
    m.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn dir(path: &str) -> Entry {
    Entry::Dir(leak(path.to_string()))
}

fn file(path: &str, from: &Path, mode: u32) -> Entry {
    let data = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    Entry::Owned(path.to_string(), data, mode)
}

/// Every file, link and folder under `root`, sorted, as `(path below root, path)`.
fn walk(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push((rel, p));
        }
    }
    out.sort();
    out
}

/// Entries at `prefix/<rel>` for the tree under `root` (folders, files and links).
fn tree_entries(root: &Path, prefix: &str, keep: impl Fn(&str) -> bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for (rel, p) in walk(root) {
        if !keep(&rel) {
            continue;
        }
        let at = format!("{prefix}/{rel}");
        if p.is_symlink() {
            let target = std::fs::read_link(&p).unwrap();
            out.push(Entry::Symlink(
                leak(at),
                leak(target.to_string_lossy().into_owned()),
            ));
        } else if p.is_dir() {
            out.push(dir(&at));
        } else {
            out.push(file(&at, &p, 0o644));
        }
    }
    out
}

/// `lib/firmware/{brcm,cypress}/…`, where Alpine's firmware packages put them.
fn firmware_entries(firmware: &Path) -> Vec<Entry> {
    [dir("lib"), dir("lib/firmware")]
        .into_iter()
        .chain(tree_entries(firmware, "lib/firmware", |_| true))
        .collect()
}

/// `boot/vmlinuz-rpi`, `boot/config-rpi`, `boot/dtbs-rpi/` and `lib/modules/<kver>/`.
fn kernel_entries(kernel: &Path, kver: &str) -> Vec<Entry> {
    let dtbs = kernel.join(format!("usr/lib/linux-image-{kver}/broadcom"));
    let mut out = vec![
        dir("boot"),
        file(
            "boot/vmlinuz-rpi",
            &kernel.join(format!("boot/vmlinuz-{kver}")),
            0o644,
        ),
        file(
            "boot/config-rpi",
            &kernel.join(format!("boot/config-{kver}")),
            0o644,
        ),
        dir("boot/dtbs-rpi"),
    ];
    for (name, path) in walk(&dtbs) {
        let alpine = if let Some(board) = name.strip_prefix("bcm2837-") {
            format!("bcm2710-{board}")
        } else if name.starts_with("bcm2711-") {
            name.clone()
        } else {
            continue;
        };
        out.push(file(&format!("boot/dtbs-rpi/{alpine}"), &path, 0o644));
    }
    out.push(dir("boot/dtbs-rpi/overlays"));
    out.push(Entry::Owned(
        "boot/dtbs-rpi/overlays/disable-bt.dtbo".into(),
        fdt_blob("disable-bt", 1_200),
        0o644,
    ));

    let modules = kernel.join("usr/lib/modules").join(kver);
    let wanted = module_closure(&modules.join("kernel"));
    out.push(dir("lib"));
    out.push(dir("lib/modules"));
    out.push(dir(&format!("lib/modules/{kver}")));
    out.extend(tree_entries(
        &modules,
        &format!("lib/modules/{kver}"),
        |rel| match rel.strip_prefix("kernel/") {
            None => true,
            Some(inner) => {
                if rel.contains(".ko") {
                    wanted.contains(inner)
                } else {
                    // A folder, kept when a wanted module is below it.
                    wanted.iter().any(|w| w.starts_with(&format!("{inner}/")))
                }
            }
        },
    ));
    out
}

/// The modules (paths below `kernel/`) under [`MODULE_ROOTS`] and every module they depend
/// on, by the `depends=` of each module's `.modinfo`.
fn module_closure(kernel: &Path) -> BTreeSet<String> {
    let by_name: BTreeMap<String, String> = walk(kernel)
        .into_iter()
        .filter(|(rel, _)| rel.contains(".ko"))
        .map(|(rel, _)| {
            let file = rel.rsplit('/').next().unwrap();
            let name = file.split(".ko").next().unwrap().replace('-', "_");
            (name, rel)
        })
        .collect();
    let mut wanted = BTreeSet::new();
    let mut todo: Vec<String> = by_name
        .values()
        .filter(|rel| MODULE_ROOTS.iter().any(|r| rel.starts_with(r)))
        .cloned()
        .collect();
    while let Some(rel) = todo.pop() {
        if !wanted.insert(rel.clone()) {
            continue;
        }
        for dep in depends(&std::fs::read(kernel.join(&rel)).unwrap(), &rel) {
            let dep = dep.replace('-', "_");
            let path = by_name
                .get(&dep)
                .unwrap_or_else(|| panic!("{rel} depends on {dep}, which is not a module here"));
            todo.push(path.clone());
        }
    }
    wanted
}

/// The `depends=` names in a module's `.modinfo` strings, the module stored as Debian 13
/// stores it (`.ko.xz`) or plain.
fn depends(stored: &[u8], rel: &str) -> Vec<String> {
    let elf = if rel.ends_with(".xz") {
        let mut out = Vec::new();
        lzma_rust2::XzReader::new(stored, false)
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        out
    } else {
        stored.to_vec()
    };
    let key = b"\0depends=";
    let Some(at) = elf.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let value = &elf[at + key.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}
