//! `pimg check`: what the Raspberry Pi firmware reads before Linux, checked statically.
//!
//! QEMU starts the kernel itself and never runs the GPU firmware, so nothing else checks
//! `config.txt`. For every board model the media is meant for, this evaluates `config.txt`
//! the way the firmware does (conditional sections, `include`, `os_prefix`) and checks that
//! the boot ROM's `bootcode.bin`, the start/fixup pair, the kernel, the initramfs and the
//! device tree it would load are in the partition and look like what they claim to be, that
//! every file `config.txt` names anywhere exists, and that `cmdline.txt` is one line.

use serde::Serialize;

pub use crate::profile::models::{model_by_id, model_ids, Firmware, Kernel, Model, MODELS};

/// Read access to a boot partition's files (FAT names ignore case).
pub trait BootFiles {
    /// The file's size, when it exists.
    fn size(&mut self, path: &str) -> Option<u64>;
    /// The first `max` bytes of the file, when it exists.
    fn head(&mut self, path: &str, max: usize) -> Option<Vec<u8>>;
}

/// One thing the firmware would trip over.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The model it concerns, or none for every model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `config.txt:7`, `cmdline.txt`, ...
    pub place: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match &self.model {
            Some(m) => write!(f, "{} (Pi {m}): {}", self.place, self.message),
            None => write!(f, "{}: {}", self.place, self.message),
        }
    }
}

/// What the firmware would load on one model.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BootSet {
    pub model: String,
    pub bootcode: Option<String>,
    /// The start/fixup pair; none where the firmware is in the EEPROM (Pi 5).
    pub start: Option<String>,
    pub fixup: Option<String>,
    pub kernel: String,
    pub arm_64bit: bool,
    pub initramfs: Option<String>,
    pub device_tree: String,
    pub cmdline: String,
}

/// The verdict of a check.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub models: Vec<BootSet>,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Text files the firmware reads are small; anything bigger is not a config file.
const MAX_TEXT: usize = 1 << 20;
const MAX_INCLUDE_DEPTH: usize = 8;

/// A `config.txt` line with where it came from and under which model filter.
#[derive(Debug, Clone)]
struct Line {
    place: String,
    /// The filters active where the line stands.
    when: Cond,
    key: String,
    value: String,
}

/// The active conditional filters. Filters of one kind replace each other (`[pi3]` then
/// `[pi4]`); filters of different kinds all have to hold; `[all]` clears them all.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cond {
    /// `[pi3]`, `[pi4]`, ...
    model: Option<String>,
    /// `[board-type=0x11]`.
    board_type: Option<u32>,
    /// `[none]`, or a filter pimg cannot decide statically (EDID, GPIO, serial number,
    /// tryboot): the lines are checked for the files they name but are no model's settings.
    undecidable: bool,
}

fn applies(cond: &Cond, m: &Model) -> bool {
    !cond.undecidable
        && cond.model.as_deref().is_none_or(|f| m.filters.contains(&f))
        && cond.board_type.is_none_or(|t| t == m.board_type)
}

/// Applies one `[filter]` line to the state.
fn apply_filter(cond: &mut Cond, filter: &str) {
    let f = filter.trim().to_ascii_lowercase();
    if f == "all" {
        *cond = Cond::default();
    } else if f == "none" {
        cond.undecidable = true;
    } else if let Some(t) = f.strip_prefix("board-type=") {
        let t = t.trim();
        let n = match t.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => t.parse().ok(),
        };
        match n {
            Some(n) => cond.board_type = Some(n),
            None => cond.undecidable = true,
        }
    } else if MODELS.iter().any(|m| m.filters.contains(&f.as_str())) {
        cond.model = Some(f);
    } else {
        cond.undecidable = true;
    }
}

/// Reads `file` and its includes into lines, checking every include exists.
fn read_config(
    fs: &mut dyn BootFiles,
    file: &str,
    depth: usize,
    cond: &mut Cond,
    out: &mut Vec<Line>,
    problems: &mut Vec<Problem>,
) {
    let Some(bytes) = fs.head(file, MAX_TEXT + 1) else {
        return;
    };
    if bytes.len() > MAX_TEXT {
        problems.push(problem(
            None,
            file,
            format!("is larger than {MAX_TEXT} bytes; the firmware reads small text files"),
        ));
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    for (n, raw) in text.lines().enumerate() {
        let place = format!("{file}:{}", n + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(f) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            apply_filter(cond, f);
            continue;
        }
        if let Some(target) = line.strip_prefix("include ") {
            let target = target.trim();
            if fs.size(target).is_none() {
                problems.push(problem(
                    None,
                    &place,
                    format!("include names {target}, which is not in the partition"),
                ));
            } else if depth >= MAX_INCLUDE_DEPTH {
                problems.push(problem(
                    None,
                    &place,
                    format!("include {target}: includes nest deeper than {MAX_INCLUDE_DEPTH}"),
                ));
            } else {
                // The firmware keeps the current filter across an include.
                read_config(fs, target, depth + 1, cond, out, problems);
            }
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            // `initramfs FILE [followkernel|ADDRESS]` is the one directive with spaces.
            None => match line.split_once(char::is_whitespace) {
                Some((k, v)) if k.eq_ignore_ascii_case("initramfs") => {
                    ("initramfs".to_string(), v.trim().to_string())
                }
                _ => {
                    problems.push(problem(
                        None,
                        &place,
                        format!("'{line}' is neither key=value, include, initramfs nor a [filter]"),
                    ));
                    continue;
                }
            },
        };
        out.push(Line {
            place,
            when: cond.clone(),
            key,
            value,
        });
    }
}

fn problem(model: Option<&Model>, place: &str, message: String) -> Problem {
    Problem {
        model: model.map(|m| m.name.to_string()),
        place: place.to_string(),
        message,
    }
}

/// Checks the boot partition for every model in `models` (`config.txt` at the top).
pub fn check(fs: &mut dyn BootFiles, models: &[&Model]) -> Report {
    let mut report = Report::default();
    if fs.size("config.txt").is_none() {
        report.problems.push(problem(None, "config.txt", "is not in the partition; the firmware then boots its defaults, which never name pimg's kernel or initramfs".into()));
        return report;
    }
    let mut lines = Vec::new();
    let mut cond = Cond::default();
    read_config(
        fs,
        "config.txt",
        0,
        &mut cond,
        &mut lines,
        &mut report.problems,
    );

    // Every file named anywhere must exist, whichever model the line is for.
    for (at, l) in lines.iter().enumerate() {
        let prefix = setting_before(&lines, "os_prefix", at).unwrap_or_default();
        let named: Option<(String, &str)> = match l.key.as_str() {
            "kernel" => Some((format!("{prefix}{}", l.value), "kernel")),
            "initramfs" => l
                .value
                .split_whitespace()
                .next()
                .map(|f| (format!("{prefix}{f}"), "initramfs")),
            "ramfsfile" => Some((format!("{prefix}{}", l.value), "initramfs")),
            "device_tree" if !l.value.is_empty() => {
                Some((format!("{prefix}{}", l.value), "device tree"))
            }
            "dtoverlay" if !l.value.is_empty() => {
                let name = l.value.split([',', ':']).next().unwrap_or_default();
                let dir = setting_before(&lines, "overlay_prefix", at)
                    .unwrap_or_else(|| "overlays/".into());
                Some((format!("{prefix}{dir}{name}.dtbo"), "overlay"))
            }
            "start_file" => Some((l.value.clone(), "start file")),
            "fixup_file" => Some((l.value.clone(), "fixup file")),
            "cmdline" => Some((format!("{prefix}{}", l.value), "command line")),
            _ => None,
        };
        if let Some((path, what)) = named {
            if fs.size(&path).is_none() {
                report.problems.push(problem(
                    None,
                    &l.place,
                    format!(
                        "{}={} names the {what} {path}, which is not in the partition",
                        l.key, l.value
                    ),
                ));
            }
        }
    }

    for m in models {
        check_model(fs, m, &lines, &mut report);
    }
    report
}

/// The last value of `key` set before `lines[at]`, under no filter or under the same
/// filters as that line.
fn setting_before(lines: &[Line], key: &str, at: usize) -> Option<String> {
    let when = &lines[at].when;
    lines[..at]
        .iter()
        .rev()
        .find(|l| l.key == key && (l.when == Cond::default() || l.when == *when))
        .map(|l| l.value.clone())
}

/// The last value of `key` that applies to model `m`, with the line that set it.
fn setting<'a>(lines: &'a [Line], key: &str, m: &Model) -> Option<&'a Line> {
    lines
        .iter()
        .rev()
        .find(|l| l.key == key && applies(&l.when, m))
}

/// The start/fixup pair a model with its firmware on the card loads: start_file/fixup_file,
/// else the variant the flags choose.
fn start_fixup(lines: &[Line], m: &Model) -> (String, String) {
    let flag = |key: &str| setting(lines, key, m).is_some_and(|l| l.value.trim() == "1");
    let variant = if flag("start_x") {
        "x"
    } else if flag("start_debug") {
        "db"
    } else if setting(lines, "gpu_mem", m).is_some_and(|l| l.value.trim() == "16") {
        "cd"
    } else {
        ""
    };
    let start4 = m.firmware == Firmware::Start4;
    let sep = if variant.is_empty() || start4 {
        ""
    } else {
        "_"
    };
    let four = if start4 { "4" } else { "" };
    let start = setting(lines, "start_file", m)
        .map(|l| l.value.clone())
        .unwrap_or_else(|| format!("start{four}{sep}{variant}.elf"));
    let fixup = setting(lines, "fixup_file", m)
        .map(|l| l.value.clone())
        .unwrap_or_else(|| format!("fixup{four}{sep}{variant}.dat"));
    (start, fixup)
}

fn check_model(fs: &mut dyn BootFiles, m: &Model, lines: &[Line], report: &mut Report) {
    let mut bad =
        |place: &str, message: String| report.problems.push(problem(Some(m), place, message));
    let prefix = setting(lines, "os_prefix", m)
        .map(|l| l.value.clone())
        .unwrap_or_default();

    let bootcode = m.firmware.bootcode().then(|| "bootcode.bin".to_string());
    if let Some(b) = &bootcode {
        if fs.size(b).is_none() {
            bad("bootcode.bin", format!("the Pi {}'s boot ROM loads bootcode.bin from the card, and it is not in the partition", m.name));
        }
    }

    // The Pi 5 runs the firmware in its EEPROM and reads no start/fixup pair.
    let (start, fixup) = match m.firmware {
        Firmware::Eeprom => (None, None),
        Firmware::Bootcode | Firmware::Start4 => {
            let (start, fixup) = start_fixup(lines, m);
            for (file, what) in [
                (&start, "GPU firmware"),
                (&fixup, "firmware memory split (fixup)"),
            ] {
                if fs.size(file).is_none() {
                    bad(
                        "config.txt",
                        format!("the {what} {file} is not in the partition"),
                    );
                }
            }
            (Some(start), Some(fixup))
        }
    };

    // The kernel and its mode.
    let arm_64bit_line = setting(lines, "arm_64bit", m);
    let arm_64bit = match m.kernel {
        Kernel::Only64(_) => {
            if let Some(l) = arm_64bit_line.filter(|l| l.value.trim() == "0") {
                bad(&l.place, format!("arm_64bit=0 asks for a 32-bit kernel, but the Pi {} starts only 64-bit kernels (its firmware ignores arm_64bit)", m.name));
            }
            true
        }
        Kernel::Only32(_) | Kernel::Either(_) => {
            arm_64bit_line.is_some_and(|l| l.value.trim() == "1")
        }
    };
    if arm_64bit && !m.kernel.arm64() {
        let place = arm_64bit_line.map(|l| l.place.clone()).unwrap_or_default();
        bad(
            &place,
            format!("arm_64bit=1, but the Pi {} has a 32-bit CPU", m.name),
        );
    }
    let (kernel, kernel_place) = match setting(lines, "kernel", m) {
        Some(l) => (format!("{prefix}{}", l.value), l.place.clone()),
        None => {
            let path = |n: &str| format!("{prefix}{n}");
            let kernel = match m.kernel {
                Kernel::Only32(k) | Kernel::Either(k) => {
                    path(if arm_64bit { "kernel8.img" } else { k })
                }
                // The first default that exists; when none does, all of them are named.
                Kernel::Only64(names) => {
                    let paths: Vec<String> = names.iter().map(|n| path(n)).collect();
                    match paths.iter().find(|p| fs.size(p).is_some()) {
                        Some(p) => p.clone(),
                        None => paths.join(" or "),
                    }
                }
            };
            (kernel, "config.txt".to_string())
        }
    };
    match fs.head(&kernel, 64) {
        None => bad(
            &kernel_place,
            format!("the kernel {kernel} is not in the partition"),
        ),
        Some(h) => {
            let arm64_image = h.len() >= 0x3c && &h[0x38..0x3c] == b"ARM\x64";
            let zimage = h.len() >= 0x28 && h[0x24..0x28] == [0x18, 0x28, 0x6f, 0x01];
            if matches!(m.kernel, Kernel::Only64(_)) && !arm64_image {
                let what = if zimage {
                    "is a 32-bit ARM zImage"
                } else {
                    "is not an arm64 kernel Image (no ARM\\x64 magic at offset 0x38)"
                };
                bad(
                    &kernel_place,
                    format!(
                        "{kernel} {what}, but the Pi {} starts only 64-bit kernels",
                        m.name
                    ),
                );
            } else if arm_64bit && !arm64_image {
                bad(&kernel_place, format!("arm_64bit=1, but {kernel} is not an arm64 kernel Image (no ARM\\x64 magic at offset 0x38)"));
            } else if !arm_64bit && arm64_image {
                bad(&kernel_place, format!("{kernel} is an arm64 kernel, but arm_64bit=1 does not apply to the Pi {}: the firmware would start it in 32-bit mode", m.name));
            } else if !arm_64bit && !zimage {
                bad(
                    &kernel_place,
                    format!("{kernel} is not a 32-bit ARM zImage (no magic at offset 0x24)"),
                );
            }
        }
    }

    let initramfs = setting(lines, "initramfs", m)
        .and_then(|l| {
            l.value
                .split_whitespace()
                .next()
                .map(|f| format!("{prefix}{f}"))
        })
        .or_else(|| setting(lines, "ramfsfile", m).map(|l| format!("{prefix}{}", l.value)));

    let (device_tree, dt_explicit) = match setting(lines, "device_tree", m) {
        Some(l) if !l.value.is_empty() => (format!("{prefix}{}", l.value), Some(l.place.clone())),
        _ => (format!("{prefix}{}", m.default_dtb), None),
    };
    match (fs.head(&device_tree, 4), &dt_explicit) {
        (None, None) => bad("config.txt", format!("no device_tree= applies to the Pi {}, and the firmware's default {device_tree} is not in the partition (mainline device trees are often named otherwise: set device_tree=)", m.name)),
        (None, Some(_)) => {} // reported with the line that names it
        (Some(h), _) if h != [0xd0, 0x0d, 0xfe, 0xed] => {
            bad(dt_explicit.as_deref().unwrap_or("config.txt"), format!("{device_tree} is not a flattened device tree (no d00dfeed magic)"))
        }
        _ => {}
    }

    let cmdline = format!(
        "{prefix}{}",
        setting(lines, "cmdline", m)
            .map(|l| l.value.clone())
            .unwrap_or_else(|| "cmdline.txt".into())
    );
    match fs.head(&cmdline, MAX_TEXT + 1) {
        None => bad(
            &cmdline,
            "the kernel command line file is not in the partition".into(),
        ),
        Some(b) => {
            let text = String::from_utf8_lossy(&b);
            let body = text.trim_end_matches(['\n', '\r']);
            if body.contains('\n') {
                bad(
                    &cmdline,
                    "must be a single line: the firmware passes only the first line to the kernel"
                        .into(),
                );
            } else if body.trim().is_empty() {
                bad(
                    &cmdline,
                    "is empty: the kernel would get no console and no root".into(),
                );
            }
        }
    }

    report.models.push(BootSet {
        model: m.id.to_string(),
        bootcode,
        start,
        fixup,
        kernel,
        arm_64bit,
        initramfs,
        device_tree,
        cmdline,
    });
}

/// [`BootFiles`] over files in memory, by exact path (tests and the fuzz target).
pub struct MemFiles(pub std::collections::BTreeMap<String, Vec<u8>>);

impl BootFiles for MemFiles {
    fn size(&mut self, path: &str) -> Option<u64> {
        self.0.get(path).map(|d| d.len() as u64)
    }
    fn head(&mut self, path: &str, max: usize) -> Option<Vec<u8>> {
        self.0.get(path).map(|d| d[..d.len().min(max)].to_vec())
    }
}

/// [`BootFiles`] over an in-memory boot tree (the build checks its own tree).
pub struct TreeFiles<'a>(pub &'a crate::tree::Tree);

impl TreeFiles<'_> {
    fn find(&self, path: &str) -> Option<&crate::tree::Node> {
        // An exact match first; FAT itself refuses two names that differ only in case.
        let path = path.trim_start_matches('/');
        let file = |n: &&crate::tree::Node| matches!(n.kind, crate::tree::NodeKind::File(_));
        crate::tree::TreePath::new(path)
            .ok()
            .and_then(|p| self.0.get(&p))
            .filter(file)
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(p, n)| p.as_str().eq_ignore_ascii_case(path) && file(n))
                    .map(|(_, n)| n)
            })
    }
}

impl BootFiles for TreeFiles<'_> {
    fn size(&mut self, path: &str) -> Option<u64> {
        self.find(path).map(|n| n.data().len() as u64)
    }
    fn head(&mut self, path: &str, max: usize) -> Option<Vec<u8>> {
        self.find(path)
            .map(|n| n.data()[..n.data().len().min(max)].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Files = MemFiles;

    fn arm64_kernel() -> Vec<u8> {
        let mut k = vec![0u8; 64];
        k[0x38..0x3c].copy_from_slice(b"ARM\x64");
        k
    }

    fn zimage() -> Vec<u8> {
        let mut k = vec![0u8; 64];
        k[0x24..0x28].copy_from_slice(&[0x18, 0x28, 0x6f, 0x01]);
        k
    }

    fn fdt() -> Vec<u8> {
        vec![0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 0]
    }

    /// A Pi 3 + Pi 4 arm64 boot partition in Alpine's style.
    fn media(config: &str) -> Files {
        let mut f = BTreeMap::new();
        for n in [
            "bootcode.bin",
            "start.elf",
            "fixup.dat",
            "start4.elf",
            "fixup4.dat",
            "boot/initramfs-rpi",
        ] {
            f.insert(n.to_string(), b"x".to_vec());
        }
        f.insert("usercfg.txt".into(), b"# local settings\n".to_vec());
        f.insert("boot/vmlinuz-rpi".into(), arm64_kernel());
        f.insert("bcm2837-rpi-3-b.dtb".into(), fdt());
        f.insert("bcm2711-rpi-4-b.dtb".into(), fdt());
        f.insert(
            "cmdline.txt".into(),
            b"console=ttyS1,115200 quiet\n".to_vec(),
        );
        f.insert("config.txt".into(), config.as_bytes().to_vec());
        MemFiles(f)
    }

    const GOOD: &str = "arm_64bit=1\nkernel=boot/vmlinuz-rpi\ninitramfs boot/initramfs-rpi followkernel\n[pi3]\ndevice_tree=bcm2837-rpi-3-b.dtb\n[pi4]\ndevice_tree=bcm2711-rpi-4-b.dtb\n[all]\ninclude usercfg.txt\n";

    fn models(ids: &[&str]) -> Vec<&'static Model> {
        ids.iter().map(|i| model_by_id(i).unwrap()).collect()
    }

    #[test]
    fn a_good_multi_board_config_passes() {
        let r = check(&mut media(GOOD), &models(&["pi3b", "pi4b"]));
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.models[0].device_tree, "bcm2837-rpi-3-b.dtb");
        assert_eq!(r.models[0].bootcode.as_deref(), Some("bootcode.bin"));
        assert_eq!(r.models[1].device_tree, "bcm2711-rpi-4-b.dtb");
        assert_eq!(r.models[1].start.as_deref(), Some("start4.elf"));
        assert_eq!(r.models[1].bootcode, None);
        assert_eq!(r.models[1].initramfs.as_deref(), Some("boot/initramfs-rpi"));
    }

    #[test]
    fn missing_kernel_dtb_initramfs_and_include_are_named() {
        let cfg = GOOD
            .replace("boot/vmlinuz-rpi", "boot/vmlinuz-lts")
            .replace("boot/initramfs-rpi f", "boot/initramfs-lts f")
            .replace("bcm2711-rpi-4-b.dtb", "bcm2711-rpi-4b.dtb")
            .replace("usercfg.txt", "user.txt");
        let r = check(&mut media(&cfg), &models(&["pi3b", "pi4b"]));
        let all = problems(&r);
        assert!(all.contains("config.txt:2: kernel=boot/vmlinuz-lts names the kernel boot/vmlinuz-lts, which is not in the partition"), "{all}");
        assert!(
            all.contains("boot/initramfs-lts, which is not in the partition"),
            "{all}"
        );
        assert!(
            all.contains("config.txt:7: device_tree=bcm2711-rpi-4b.dtb names the device tree"),
            "{all}"
        );
        assert!(all.contains("include names user.txt"), "{all}");
        assert!(
            all.contains("(Pi 3 B): the kernel boot/vmlinuz-lts is not in the partition"),
            "{all}"
        );
    }

    #[test]
    fn a_section_for_one_model_does_not_serve_another() {
        // Only a [pi4] device tree: the Pi 3 falls back to the firmware's default name.
        let cfg = GOOD.replace("[pi3]\ndevice_tree=bcm2837-rpi-3-b.dtb\n", "");
        let r = check(&mut media(&cfg), &models(&["pi3b", "pi4b"]));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0]
                .to_string()
                .contains("(Pi 3 B): no device_tree= applies"),
            "{:?}",
            r.problems
        );
        // [pi3+] lines apply to the 3 B+ but not the 3 B; board-type filters by number.
        let cfg = GOOD.replace("[pi3]\n", "[pi3+]\n");
        let r = check(&mut media(&cfg), &models(&["pi3b+"]));
        assert!(r.ok(), "{:?}", r.problems);
        let r = check(&mut media(&cfg), &models(&["pi3b"]));
        assert!(!r.ok());
        let cfg = GOOD.replace(
            "[pi4]\ndevice_tree=bcm2711-rpi-4-b.dtb",
            "[all]\n[board-type=0x11]\ndevice_tree=bcm2837-rpi-3-b.dtb",
        );
        let r = check(&mut media(&cfg), &models(&["pi4b"]));
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.models[0].device_tree, "bcm2837-rpi-3-b.dtb");
        let r = check(&mut media(&cfg), &models(&["pi400"]));
        assert!(
            r.problems[0]
                .message
                .contains("default bcm2711-rpi-400.dtb"),
            "{:?}",
            r.problems
        );
        // Filters of different kinds must all hold: [pi3] and then a Pi 4 board type is no one.
        let cfg = GOOD.replace(
            "[pi4]\ndevice_tree=bcm2711-rpi-4-b.dtb",
            "[board-type=0x11]\ndevice_tree=bcm2837-rpi-3-b.dtb",
        );
        let r = check(&mut media(&cfg), &models(&["pi4b"]));
        assert_eq!(
            r.models[0].device_tree, "bcm2711-rpi-4-b.dtb",
            "{:?}",
            r.models
        );
    }

    #[test]
    fn firmware_files_and_kernel_mode_are_checked() {
        let mut m = media(GOOD);
        m.0.remove("bootcode.bin");
        m.0.remove("fixup4.dat");
        let r = check(&mut m, &models(&["pi3b", "pi4b"]));
        let all = problems(&r);
        assert!(
            all.contains("(Pi 3 B): the Pi 3 B's boot ROM loads bootcode.bin"),
            "{all}"
        );
        assert!(
            all.contains("(Pi 4 B): the firmware memory split (fixup) fixup4.dat"),
            "{all}"
        );
        assert_eq!(r.problems.len(), 2, "{all}");

        // A 32-bit kernel under arm_64bit=1, and arm_64bit on a Pi 2.
        let mut m = media(GOOD);
        m.0.insert("boot/vmlinuz-rpi".into(), zimage());
        let r = check(&mut m, &models(&["pi3b"]));
        assert!(
            r.problems[0]
                .message
                .contains("is not an arm64 kernel Image"),
            "{:?}",
            r.problems
        );
        let r = check(&mut media(GOOD), &models(&["pi2b"]));
        assert!(
            r.problems.iter().any(|p| p.message.contains("32-bit CPU")),
            "{:?}",
            r.problems
        );
    }

    /// A Pi 5 card: its firmware is in the EEPROM, so no bootcode.bin, start*.elf or fixup*.dat.
    fn pi5_media(config: &str) -> Files {
        let mut f = BTreeMap::new();
        f.insert("boot/initramfs-rpi".to_string(), b"x".to_vec());
        f.insert("usercfg.txt".into(), b"# local settings\n".to_vec());
        f.insert("boot/vmlinuz-rpi".into(), arm64_kernel());
        f.insert("bcm2712-rpi-5-b.dtb".into(), fdt());
        f.insert("cmdline.txt".into(), b"console=ttyAMA10,115200\n".to_vec());
        f.insert("config.txt".into(), config.as_bytes().to_vec());
        MemFiles(f)
    }

    const PI5: &str = "[pi5]\narm_64bit=1\nkernel=boot/vmlinuz-rpi\ninitramfs boot/initramfs-rpi followkernel\ndevice_tree=bcm2712-rpi-5-b.dtb\n[all]\ninclude usercfg.txt\n";

    fn problems(r: &Report) -> String {
        r.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_pi5_card_needs_no_firmware_files() {
        let r = check(&mut pi5_media(PI5), &models(&["pi5"]));
        assert!(r.ok(), "{}", problems(&r));
        let b = &r.models[0];
        assert_eq!(
            (b.bootcode.as_ref(), b.start.as_ref(), b.fixup.as_ref()),
            (None, None, None)
        );
        assert!(b.arm_64bit);
        assert_eq!(b.kernel, "boot/vmlinuz-rpi");
        assert_eq!(b.initramfs.as_deref(), Some("boot/initramfs-rpi"));
        assert_eq!(b.device_tree, "bcm2712-rpi-5-b.dtb");
        // The same card is no Pi 4 card: [pi5] is not [pi4], and start4.elf is missing.
        let all = problems(&check(&mut pi5_media(PI5), &models(&["pi4b"])));
        assert!(
            all.contains("(Pi 4 B): the GPU firmware start4.elf is not in the partition"),
            "{all}"
        );
        assert!(
            all.contains("(Pi 4 B): the kernel kernel7l.img is not in the partition"),
            "{all}"
        );
        // [board-type=0x17] is the Pi 5 too.
        let cfg = PI5.replace("[pi5]", "[board-type=0x17]");
        assert!(check(&mut pi5_media(&cfg), &models(&["pi5"])).ok());
    }

    #[test]
    fn a_pi5_card_still_needs_its_kernel_initramfs_and_device_tree() {
        let mut m = pi5_media(PI5);
        m.0.remove("bcm2712-rpi-5-b.dtb");
        m.0.remove("boot/initramfs-rpi");
        let all = problems(&check(&mut m, &models(&["pi5"])));
        assert!(all.contains("config.txt:5: device_tree=bcm2712-rpi-5-b.dtb names the device tree bcm2712-rpi-5-b.dtb, which is not in the partition"), "{all}");
        assert!(all.contains("config.txt:4: initramfs=boot/initramfs-rpi followkernel names the initramfs boot/initramfs-rpi"), "{all}");
        // Without device_tree= the firmware's own name is mainline's too, so it must be there.
        let cfg = PI5.replace("device_tree=bcm2712-rpi-5-b.dtb\n", "");
        assert!(check(&mut pi5_media(&cfg), &models(&["pi5"])).ok());
        let mut m = pi5_media(&cfg);
        m.0.remove("bcm2712-rpi-5-b.dtb");
        let all = problems(&check(&mut m, &models(&["pi5"])));
        assert!(all.contains("config.txt (Pi 5): no device_tree= applies to the Pi 5, and the firmware's default bcm2712-rpi-5-b.dtb is not in the partition"), "{all}");
        // Without kernel=: kernel_2712.img, else kernel8.img, else both are named.
        let cfg = PI5.replace("kernel=boot/vmlinuz-rpi\n", "");
        let all = problems(&check(&mut pi5_media(&cfg), &models(&["pi5"])));
        assert_eq!(
            all,
            "config.txt (Pi 5): the kernel kernel_2712.img or kernel8.img is not in the partition"
        );
        let mut m = pi5_media(&cfg);
        m.0.insert("kernel8.img".into(), arm64_kernel());
        let r = check(&mut m, &models(&["pi5"]));
        assert!(r.ok(), "{}", problems(&r));
        assert_eq!(r.models[0].kernel, "kernel8.img");
        m.0.insert("kernel_2712.img".into(), arm64_kernel());
        assert_eq!(
            check(&mut m, &models(&["pi5"])).models[0].kernel,
            "kernel_2712.img"
        );
    }

    #[test]
    fn a_pi5_starts_only_64_bit_kernels() {
        // arm_64bit=0 is refused; leaving it out is fine (the Pi 5 ignores it).
        let r = check(
            &mut pi5_media(&PI5.replace("arm_64bit=1", "arm_64bit=0")),
            &models(&["pi5"]),
        );
        assert_eq!(problems(&r), "config.txt:2 (Pi 5): arm_64bit=0 asks for a 32-bit kernel, but the Pi 5 starts only 64-bit kernels (its firmware ignores arm_64bit)");
        assert!(r.models[0].arm_64bit);
        let r = check(
            &mut pi5_media(&PI5.replace("arm_64bit=1\n", "")),
            &models(&["pi5"]),
        );
        assert!(r.ok(), "{}", problems(&r));
        // A 32-bit zImage, or anything that is not an arm64 Image, with or without arm_64bit.
        for cfg in [PI5.to_string(), PI5.replace("arm_64bit=1\n", "")] {
            let mut m = pi5_media(&cfg);
            m.0.insert("boot/vmlinuz-rpi".into(), zimage());
            let all = problems(&check(&mut m, &models(&["pi5"])));
            assert!(all.ends_with("(Pi 5): boot/vmlinuz-rpi is a 32-bit ARM zImage, but the Pi 5 starts only 64-bit kernels"), "{all}");
            m.0.insert("boot/vmlinuz-rpi".into(), vec![0; 64]);
            let all = problems(&check(&mut m, &models(&["pi5"])));
            assert!(all.ends_with("(Pi 5): boot/vmlinuz-rpi is not an arm64 kernel Image (no ARM\\x64 magic at offset 0x38), but the Pi 5 starts only 64-bit kernels"), "{all}");
        }
    }

    #[test]
    fn cmdline_must_be_one_line() {
        let mut m = media(GOOD);
        m.0.insert("cmdline.txt".into(), b"console=ttyS1\nquiet\n".to_vec());
        let r = check(&mut m, &models(&["pi3b"]));
        assert!(
            r.problems[0]
                .to_string()
                .starts_with("cmdline.txt (Pi 3 B): must be a single line"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn include_cycles_and_garbage_end() {
        let mut m = media("include config.txt\n\u{0}\u{1}garbage\n[pi4\nkernel=boot/vmlinuz-rpi\n");
        let r = check(&mut m, &models(&["pi4b"]));
        assert!(
            r.problems.iter().any(|p| p.message.contains("nest deeper")),
            "{:?}",
            r.problems
        );
    }
}
