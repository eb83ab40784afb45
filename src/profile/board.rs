//! Board profiles: data, not code. One TOML file per board in `boards/`, embedded in the binary.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and every
//! error names the file plus line and column.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// A parsed, checked board profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    pub board: BoardInfo,
    pub image: ImageSpec,
    pub boot: BootSpec,
    pub initramfs: InitramfsSpec,
    /// The modloop (`[modloop]`): every module of the kernel input and the firmware, as a
    /// squashfs the init mounts; none without the section.
    #[serde(default)]
    pub modloop: Option<ModloopSpec>,
    #[serde(default)]
    pub overlay: OverlaySpec,
    /// How QEMU boots this board, one entry per emulated machine (`[[qemu]]`); empty when
    /// no QEMU machine emulates it. The first is `pimg boot`'s default.
    #[serde(default)]
    pub qemu: Vec<QemuSpec>,
}

/// What board this is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    pub name: String,
    pub description: String,
    /// CPU architecture the kernel and userland run in: `aarch64` (Pi 3, Zero 2 W, Pi 4),
    /// `armv7` (Pi 2, 32-bit), `armv6` (Pi 1, Zero). It decides which packages of a mixed
    /// inputs folder the board takes (see [`BoardInfo::package_arches`]) and which QEMU runs it.
    pub arch: String,
    /// The models the media is for (ids from `pimg check --help`, e.g. `pi3b`, `pi4b`):
    /// every build checks that the firmware would find its files on each.
    #[serde(default)]
    pub models: Vec<String>,
}

/// The board architectures pimg knows: (name, Debian architectures, Alpine architectures).
pub const ARCHES: &[(&str, &[&str], &[&str])] = &[
    ("aarch64", &["arm64"], &["aarch64"]),
    ("armv7", &["armhf"], &["armv7"]),
    // Debian's armhf needs ARMv7; the ARMv6 boards run armel. Alpine's armhf is ARMv6.
    ("armv6", &["armel"], &["armhf"]),
];

impl BoardInfo {
    /// The package architectures that run on this board: (Debian's, Alpine's).
    pub fn package_arches(&self) -> (&'static [&'static str], &'static [&'static str]) {
        ARCHES
            .iter()
            .find(|(n, _, _)| *n == self.arch)
            .map_or((&[], &[]), |(_, deb, apk)| (*deb, *apk))
    }
}

pub use crate::codec::fat::layout::FatType;
pub use crate::codec::partition::TableKind;

/// `fat = 12 | 16 | 32`, typed when the profile is parsed.
fn fat_type<'de, D: Deserializer<'de>>(d: D) -> Result<FatType, D::Error> {
    match u8::deserialize(d)? {
        12 => Ok(FatType::Fat12),
        16 => Ok(FatType::Fat16),
        32 => Ok(FatType::Fat32),
        n => Err(de::Error::custom(format!(
            "boot.fat: {n} is not a FAT type: use 12, 16 or 32"
        ))),
    }
}

/// The disk image as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Whole image size; a power of two by default so QEMU takes it as an SD card.
    pub size: ByteSize,
    pub table: TableKind,
    /// Fixed MBR disk signature; derived from the content when absent.
    pub disk_signature: Option<u32>,
    /// Fixed GPT disk GUID (canonical text form); derived when absent.
    pub disk_guid: Option<String>,
}

/// The FAT boot partition and what goes into it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSpec {
    /// Partition start; 4 MiB keeps it aligned to SD erase blocks.
    pub offset: ByteSize,
    /// Partition size; the rest of the disk when absent (less GPT's backup table).
    pub size: Option<ByteSize>,
    /// 12, 16 or 32 in the profile.
    #[serde(deserialize_with = "fat_type")]
    pub fat: FatType,
    pub cluster_size: ByteSize,
    pub label: String,
    /// MBR partition type, e.g. 0x0c (FAT32 LBA).
    pub mbr_type: u8,
    /// Fixed FAT volume ID; derived from the content when absent.
    pub volume_id: Option<u32>,
    /// Fixed GPT partition GUID; derived when absent.
    pub part_guid: Option<String>,
    /// Files taken from inputs.
    #[serde(default)]
    pub files: Vec<FileRule>,
    /// Generated text files (config.txt, cmdline.txt, ...).
    #[serde(default)]
    pub text: Vec<TextFile>,
    /// Alpine's boot repository: `.apk` inputs copied to `apks/<arch>/`, with the
    /// `apks/.boot_repository` marker the Alpine initramfs looks for.
    pub apks: Option<ApkRepository>,
    /// Written as `.alpine-release` at the top of the boot tree (e.g. "3.19.1").
    pub alpine_release: Option<String>,
}

/// Which `.apk` inputs go into the boot repository, and for which architecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApkRepository {
    /// Alpine architecture name, the folder under `apks/` (e.g. `aarch64`).
    pub arch: String,
    /// Globs over input names; each must match at least one `.apk` input.
    pub inputs: Vec<String>,
}

/// Copy the members of one input that match a glob to a place in the boot tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// Input name (package name or directory name); may be a glob matching exactly one input.
    pub input: String,
    /// Glob over member paths (`*` stays within one directory, `{a,b}` alternatives).
    pub glob: String,
    /// A directory ending in `/` (files keep their names; `/` is the top) or a file path
    /// (then the glob must match exactly one file).
    pub to: String,
}

/// A text file the profile writes itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub path: String,
    pub content: String,
    /// Must be exactly one line (cmdline.txt); checked at load.
    #[serde(default)]
    pub single_line: bool,
}

/// One file taken from one input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    pub input: String,
    /// The member's path, or the places it may be in, first match wins: releases move files
    /// (`path = ["usr/bin/busybox", "bin/busybox"]` serves Debian 13's merged /usr and 12).
    pub path: Alternatives,
}

/// One value, or a list of alternatives tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternatives(pub Vec<String>);

impl<'de> Deserialize<'de> for Alternatives {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if list.is_empty() {
            return Err(de::Error::custom(
                "an empty list names no place: give at least one path",
            ));
        }
        Ok(Alternatives(list))
    }
}

impl fmt::Display for Alternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|p| format!("'{p}'")).collect();
        f.write_str(&quoted.join(" or "))
    }
}

/// What the initramfs holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitramfsSpec {
    /// Where it goes in the boot tree.
    pub path: String,
    pub busybox: InputFile,
    /// Applet links created in /bin next to busybox.
    pub applets: Vec<String>,
    /// The kernel package whose modules are used.
    pub kernel_input: String,
    /// Module names (either `-` or `_`); their dependencies are added.
    #[serde(default)]
    pub modules: Vec<String>,
    /// gzip level 0..=9.
    #[serde(default = "default_level")]
    pub compression_level: u32,
}

fn default_level() -> u32 {
    9
}

/// The modloop: a squashfs on the boot partition holding the kernel input's whole module
/// tree and the firmware files, mounted read-only by the init as Alpine's is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModloopSpec {
    /// Where it goes in the boot tree (Alpine's name is `boot/modloop-rpi`).
    pub path: String,
    /// Firmware files from inputs, installed under `modules/firmware/` by their path below
    /// `lib/firmware/` or `usr/lib/firmware/`.
    #[serde(default)]
    pub firmware: Vec<FirmwareRule>,
    /// A module not in the initramfs that `pimg boot`'s self-check loads from the modloop.
    pub check_module: Option<String>,
    /// gzip level 1..=9 of the squashfs blocks.
    #[serde(default = "default_level")]
    pub compression_level: u32,
}

/// Firmware members of one input that go into the modloop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareRule {
    /// Input name; may be a glob matching exactly one input.
    pub input: String,
    /// Glob over member paths, each under `lib/firmware/` or `usr/lib/firmware/`.
    pub glob: String,
}

/// The default overlay for this board.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlaySpec {
    pub default: String,
}

impl Default for OverlaySpec {
    fn default() -> Self {
        OverlaySpec {
            default: "default".into(),
        }
    }
}

/// How `pimg boot` starts this board under QEMU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    /// Names this entry for `pimg boot --machine`; the machine name when absent.
    pub name: Option<String>,
    pub machine: String,
    pub memory: String,
    /// Paths inside the boot partition.
    pub kernel: String,
    pub dtb: String,
    pub initrd: String,
    /// Appended to cmdline.txt for the emulated serial console.
    pub console: String,
    /// Fix-ups for devices QEMU does not emulate, applied to the copy of the DTB that QEMU
    /// gets (the image keeps the board's own): `delete /NODE`, `delete /NODE:PROPERTY`,
    /// `keep /NODE:PROPERTY CELLS`.
    #[serde(default)]
    pub dtb_fixups: Vec<String>,
}

impl QemuSpec {
    /// What `pimg boot --machine` calls this entry.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.machine)
    }

    /// The parsed DTB fix-ups (checked when the profile loads).
    pub fn fixups(&self) -> Vec<crate::codec::fdt::Fixup> {
        self.dtb_fixups
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect()
    }
}

impl BoardProfile {
    /// The QEMU entry `pimg boot --machine NAME` means (by label, then by machine), or the
    /// first when no name is given.
    pub fn qemu_entry(&self, name: Option<&str>) -> Option<&QemuSpec> {
        match name {
            None => self.qemu.first(),
            Some(n) => self
                .qemu
                .iter()
                .find(|q| q.label() == n)
                .or_else(|| self.qemu.iter().find(|q| q.machine == n)),
        }
    }
}

/// A byte count written as an integer or with a binary suffix (`4MiB`, `256MiB`, `1GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count: an integer or a string like \"4MiB\" (B, KiB, MiB, GiB)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `123`, `4KiB`, `4MiB`, `1GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size like \"256MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{text}': use B, KiB, MiB or GiB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// A profile that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("unknown board '{name}': known boards are {known}; or pass a path to a .toml profile")]
    Unknown { name: String, known: String },
    #[error("cannot read board profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("board profile {path}: {message}")]
    Parse { path: String, message: String },
    #[error("board profile {path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

/// The profiles shipped in `boards/`, embedded at compile time: (name, TOML text).
pub fn embedded() -> &'static [(&'static str, &'static str)] {
    crate::profile::embedded::BOARDS
}

/// A profile plus its exact source text and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: BoardProfile,
    pub text: String,
    /// `boards/<name>.toml` for shipped profiles, else the path given.
    pub origin: String,
    /// Set when the command line chose the partition table (`--table`).
    pub table_override: Option<TableKind>,
}

/// The profile with another partition table, checked again (GPT needs models with an EEPROM).
pub fn with_table(
    mut loaded: LoadedProfile,
    table: TableKind,
) -> Result<LoadedProfile, BoardError> {
    if loaded.profile.image.table != table {
        loaded.profile.image.table = table;
        loaded.table_override = Some(table);
        check(&loaded.profile, &loaded.origin).map_err(|e| match e {
            BoardError::Invalid {
                path,
                field,
                message,
            } if field == "image.table" => BoardError::Invalid {
                path,
                field: "--table".into(),
                message,
            },
            other => other,
        })?;
    }
    Ok(loaded)
}

/// Loads a shipped board by name, or a profile file when `spec` ends in `.toml` or names a file.
pub fn load(spec: &str) -> Result<LoadedProfile, BoardError> {
    if spec.ends_with(".toml") || spec.contains('/') {
        let text = std::fs::read_to_string(spec).map_err(|source| BoardError::Read {
            path: spec.to_string(),
            source,
        })?;
        return parse(&text, spec);
    }
    match embedded().iter().find(|(n, _)| *n == spec) {
        Some((name, text)) => parse(text, &format!("boards/{name}.toml")),
        None => Err(BoardError::Unknown {
            name: spec.to_string(),
            known: embedded()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Parses and checks a profile; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<LoadedProfile, BoardError> {
    let profile: BoardProfile = toml::from_str(text).map_err(|e| BoardError::Parse {
        path: origin.to_string(),
        message: describe_toml_error(text, &e),
    })?;
    check(&profile, origin)?;
    Ok(LoadedProfile {
        profile,
        text: text.to_string(),
        origin: origin.to_string(),
        table_override: None,
    })
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before
                .rfind('\n')
                .map(|i| before.len() - i)
                .unwrap_or(before.len() + 1);
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

fn check(p: &BoardProfile, origin: &str) -> Result<(), BoardError> {
    let bad = |field: &str, message: String| BoardError::Invalid {
        path: origin.to_string(),
        field: field.to_string(),
        message,
    };
    let size = p.image.size.0;
    if size == 0 || !size.is_multiple_of(512) {
        return Err(bad(
            "image.size",
            format!("{size} is not a positive multiple of 512 bytes"),
        ));
    }
    if !p.boot.offset.0.is_multiple_of(512) || p.boot.offset.0 == 0 {
        return Err(bad(
            "boot.offset",
            "must be a positive multiple of 512 bytes".into(),
        ));
    }
    if let Some(s) = p.boot.size {
        if s.0 % 512 != 0 || s.0 == 0 {
            return Err(bad(
                "boot.size",
                "must be a positive multiple of 512 bytes".into(),
            ));
        }
    }
    let cs = p.boot.cluster_size.0;
    if !(512..=65536).contains(&cs) || !cs.is_power_of_two() {
        return Err(bad(
            "boot.cluster_size",
            format!("{cs} must be a power of two from 512 to 64KiB"),
        ));
    }
    if p.initramfs.compression_level > 9 {
        return Err(bad("initramfs.compression_level", "must be 0..=9".into()));
    }
    if let Some(m) = &p.modloop {
        if !(1..=9).contains(&m.compression_level) {
            return Err(bad("modloop.compression_level", "must be 1..=9".into()));
        }
        // Both reach the init's shell configuration: plain names only.
        let plain = |t: &str, extra: &[u8]| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b) || extra.contains(&b))
        };
        if !plain(&m.path, b"./") {
            return Err(bad(
                "modloop.path",
                format!(
                    "'{}' must be a path of letters, digits and '-_./' (e.g. \"boot/modloop-rpi\")",
                    m.path
                ),
            ));
        }
        if let Some(c) = &m.check_module {
            if !plain(c, b"") {
                return Err(bad(
                    "modloop.check_module",
                    format!("'{c}' is not a module name (e.g. \"brcmfmac\")"),
                ));
            }
        }
    }
    for t in &p.boot.text {
        if t.single_line && t.content.trim_end_matches('\n').contains('\n') {
            return Err(bad(
                &format!("boot.text '{}'", t.path),
                "must be a single line (the firmware reads only the first line)".into(),
            ));
        }
    }
    for a in &p.initramfs.applets {
        if a.is_empty() || a.contains('/') || a == "busybox" {
            return Err(bad(
                "initramfs.applets",
                format!("'{a}' is not an applet name"),
            ));
        }
    }
    if let Some(repo) = &p.boot.apks {
        if repo.arch.is_empty()
            || !repo
                .arch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad(
                "boot.apks.arch",
                format!(
                    "'{}' is not an Alpine architecture name (e.g. aarch64)",
                    repo.arch
                ),
            ));
        }
        if repo.inputs.is_empty() {
            return Err(bad(
                "boot.apks.inputs",
                "list at least one input name or glob (\"*\" for every .apk input)".into(),
            ));
        }
    }
    if let Some(r) = &p.boot.alpine_release {
        if r.trim().is_empty() || r.trim_end_matches('\n').contains('\n') {
            return Err(bad(
                "boot.alpine_release",
                "must be one non-empty line (e.g. \"3.19.1\")".into(),
            ));
        }
    }
    if !ARCHES.iter().any(|(n, _, _)| *n == p.board.arch) {
        return Err(bad(
            "board.arch",
            format!(
                "'{}' is not a board architecture: use {}",
                p.board.arch,
                ARCHES.iter().map(|a| a.0).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for (i, q) in p.qemu.iter().enumerate() {
        for (j, f) in q.dtb_fixups.iter().enumerate() {
            if let Err(e) = f.parse::<crate::codec::fdt::Fixup>() {
                return Err(bad(&format!("qemu[{i}].dtb_fixups[{j}]"), e));
            }
        }
    }
    for (i, m) in p.board.models.iter().enumerate() {
        let Some(model) = crate::profile::models::model_by_id(m) else {
            return Err(bad(
                &format!("board.models[{i}]"),
                format!(
                    "'{m}' is not a board model: use {}",
                    crate::profile::models::model_ids()
                ),
            ));
        };
        if !model.firmware.reads_gpt() && p.image.table == TableKind::Gpt {
            return Err(bad(
                "image.table",
                format!(
                    "the Pi {}'s boot ROM reads only an MBR; use \"mbr\" (the EEPROM of the Pi 4 family and the Pi 5 boots GPT)",
                    model.name
                ),
            ));
        }
    }
    // Checked here as well as where they are used, so that the message names the profile.
    if let Err(e) = crate::codec::fat::write::label_bytes(&p.boot.label) {
        return Err(bad("boot.label", e.to_string()));
    }
    let mut globs: Vec<(String, &str)> = vec![
        ("initramfs.busybox.input".into(), &p.initramfs.busybox.input),
        ("initramfs.kernel_input".into(), &p.initramfs.kernel_input),
    ];
    for (i, rule) in p.boot.files.iter().enumerate() {
        globs.push((format!("boot.files[{i}].input"), &rule.input));
        globs.push((format!("boot.files[{i}].glob"), &rule.glob));
    }
    for (i, rule) in p.modloop.iter().flat_map(|m| &m.firmware).enumerate() {
        globs.push((format!("modloop.firmware[{i}].input"), &rule.input));
        globs.push((format!("modloop.firmware[{i}].glob"), &rule.glob));
    }
    for (i, pattern) in p.boot.apks.iter().flat_map(|r| &r.inputs).enumerate() {
        globs.push((format!("boot.apks.inputs[{i}]"), pattern));
    }
    for (field, pattern) in globs {
        if let Err(e) = globset::Glob::new(pattern) {
            return Err(bad(
                &field,
                format!("'{pattern}' is not a valid glob: {}", e.kind()),
            ));
        }
    }
    if p.board.name.is_empty()
        || !p
            .board
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad(
            "board.name",
            "use letters, digits, '-' and '_' only (it names output files)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("4MB").unwrap_err().contains("unknown size unit"));
    }

    #[test]
    fn shipped_profiles_parse() {
        assert!(!embedded().is_empty());
        for (name, _) in embedded() {
            let p = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.profile.board.name, name);
        }
    }

    #[test]
    fn bad_labels_and_globs_name_the_profile_and_field() {
        let (_, text) = embedded().iter().find(|(n, _)| *n == "rpi3b").unwrap();
        let p = parse(text, "x.toml").unwrap().profile;
        let label = format!("label = \"{}\"", p.boot.label);
        let broken = text.replacen(&label, "label = \"boot.fs\"", 1);
        assert_ne!(&broken, text);
        let err = parse(&broken, "x.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("board profile x.toml: boot.label: FAT volume label \"boot.fs\""),
            "{err}"
        );
        let glob = format!("glob = \"{}\"", p.boot.files[0].glob);
        let broken = text.replacen(&glob, "glob = \"boot/{a,b\"", 1);
        assert_ne!(&broken, text);
        let err = parse(&broken, "x.toml").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "board profile x.toml: boot.files[0].glob: 'boot/{a,b' is not a valid glob"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let (_, text) = embedded().iter().find(|(n, _)| *n == "rpi3b").unwrap();
        let broken = text.replacen("[image]\n", "[image]\nsizee = 1\n", 1);
        let err = parse(&broken, "x.toml").unwrap_err().to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("unknown field `sizee`"), "{err}");
        let line = broken.lines().position(|l| l.starts_with("sizee")).unwrap() + 1;
        assert!(err.contains(&format!("line {line}, column 1")), "{err}");
    }

    #[test]
    fn apk_repository_keys_are_checked() {
        let (_, text) = embedded()
            .iter()
            .find(|(n, _)| *n == "alpine-rpi-aarch64")
            .unwrap();
        let p = parse(text, "a.toml").unwrap().profile;
        assert_eq!(p.boot.apks.as_ref().unwrap().arch, "aarch64");
        assert!(p.boot.alpine_release.is_some());
        let broken = text.replacen(
            "arch = \"aarch64\"\ninputs",
            "arch = \"aarch/64\"\ninputs",
            1,
        );
        let err = parse(&broken, "a.toml").unwrap_err().to_string();
        assert!(err.contains("boot.apks.arch"), "{err}");
        let broken = text.replacen("[boot.apks]\n", "[boot.apks]\nmirror = 1\n", 1);
        let err = parse(&broken, "a.toml").unwrap_err().to_string();
        assert!(err.contains("unknown field `mirror`"), "{err}");
        // Profiles without the keys still parse (rpi3b has neither).
        let rpi = load("rpi3b").unwrap().profile;
        assert!(rpi.boot.apks.is_none() && rpi.boot.alpine_release.is_none());
    }

    #[test]
    fn family_keys_are_checked() {
        let (_, text) = embedded().iter().find(|(n, _)| *n == "rpi3b").unwrap();
        let err = |from: &str, to: &str| {
            assert!(text.contains(from), "rpi3b.toml lacks {from:?}");
            parse(&text.replacen(from, to, 1), "b.toml")
                .unwrap_err()
                .to_string()
        };
        let e = err("arch = \"aarch64\"", "arch = \"arm64\"");
        assert!(
            e.contains(
                "board.arch: 'arm64' is not a board architecture: use aarch64, armv7, armv6"
            ),
            "{e}"
        );
        let e = err("models = [\"pi3b\"]", "models = [\"pi3\"]");
        assert!(
            e.contains("board.models[0]: 'pi3' is not a board model: use pi0, "),
            "{e}"
        );
        let e = err("table = \"mbr\"", "table = \"gpt\"");
        assert!(
            e.contains("image.table: the Pi 3 B's boot ROM reads only an MBR"),
            "{e}"
        );
        let e = err(
            "console = \"console=ttyAMA0,115200\"",
            "console = \"console=ttyAMA0,115200\"\ndtb_fixups = [\"remove /soc\"]",
        );
        assert!(
            e.contains("qemu[0].dtb_fixups[0]: 'remove /soc' is not a device tree fix-up"),
            "{e}"
        );
        // --table on the command line names the flag, and Pi 4 profiles take GPT.
        let e = with_table(load("rpi3b").unwrap(), TableKind::Gpt)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--table: the Pi 3 B's boot ROM reads only an MBR"),
            "{e}"
        );
        let gpt = with_table(load("rpi4b").unwrap(), TableKind::Gpt).unwrap();
        assert_eq!(gpt.table_override, Some(TableKind::Gpt));
    }

    #[test]
    fn unknown_board_lists_known() {
        let err = load("rpi9").unwrap_err().to_string();
        assert!(
            err.contains("unknown board 'rpi9'") && err.contains("rpi3b"),
            "{err}"
        );
    }
}
