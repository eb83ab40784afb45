//! `<board>.buildinfo.json`: everything that decided a build's bytes, and every output. One
//! type: the build writes it, and verify, boot and check read it back.

use crate::digest::FileSum;
use crate::profile::lock::{LockRecord, PinnedInput};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format name; a reader refuses other families.
pub const FORMAT: &str = "pimg-buildinfo/1";

/// The whole buildinfo, field order as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildinfo {
    pub format: String,
    pub pimg_version: String,
    pub cargo_lock_sha256: String,
    pub board: BuildinfoBoard,
    pub overlay: BuildinfoOverlay,
    pub source_date_epoch: i64,
    pub epoch_source: String,
    /// The lock file the build was checked against (`--locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRecord>,
    pub identifiers: BuildinfoIds,
    pub inputs: Vec<PinnedInput>,
    /// For each profile field that names alternatives, the one that matched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matched: BTreeMap<String, String>,
    #[serde(default)]
    pub kernel_modules: BuildinfoModules,
    pub boot_partition: Vec<BuildinfoFile>,
    /// The compressed images and the bmap (`--compress`); absent when none was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<BuildinfoRelease>,
    /// The boot repository's index, when the profile has `[boot.apks]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apk_index: Option<BuildinfoApkIndex>,
    /// The modloop, when the profile has `[modloop]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modloop: Option<BuildinfoModloop>,
    /// The OpenPGP signature over SHA256SUMS (`--sign-key`); absent when unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<BuildinfoSignature>,
    pub outputs: Vec<FileSum>,
}

/// The modloop squashfs: where it is, how it was made and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoModloop {
    /// Its path in the boot partition.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// The squashfs settings that made the bytes (`gzip level 9, block 131072`).
    pub settings: String,
    /// Module files, as the kernel input stores them, under `modules/<kernel version>/`.
    pub modules: u64,
    /// The module the self-check loads from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_module: Option<String>,
    /// Each firmware file or link under `modules/firmware/`, with where it came from.
    pub firmware: Vec<BuildinfoFile>,
}

/// Which key signed SHA256SUMS, and how. The signature's own SHA-256 cannot be here: it
/// signs SHA256SUMS, which lists this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoSignature {
    /// The signature's file name (`SHA256SUMS.asc`).
    pub file: String,
    /// The file it signs (`SHA256SUMS`).
    pub signs: String,
    /// The signing key's fingerprint (uppercase hex, as gpg prints it).
    pub key_fingerprint: String,
    /// The public-key algorithm (`EdDSALegacy`, `Ed25519`, `RSA`, …).
    pub algorithm: String,
    /// The signature's digest algorithm.
    pub hash: String,
    /// The signature's creation time: the epoch, or the key's creation when that is later.
    pub created: u32,
}

/// What `--compress` asked for, so a rebuild repeats it, and the fixed settings that made
/// the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoRelease {
    /// The codecs, by their `--compress` names, in the order written.
    pub compress: Vec<String>,
    /// For each codec, its fixed settings (level, block size, library version).
    pub settings: BTreeMap<String, String>,
    /// The bmap file's block size in bytes.
    pub bmap_block_size: u64,
}

/// The boot repository's `APKINDEX.tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoApkIndex {
    /// Its path in the boot partition.
    pub path: String,
    pub sha256: String,
    /// The key name it is signed as (`<name>.rsa.pub`), or none when unsigned.
    pub signing_key: Option<String>,
}

/// The board profile the build used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoBoard {
    pub name: String,
    pub profile: String,
    pub profile_sha256: String,
    /// The partition table when `--table` overrode the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The profile's text, so that a rebuild needs nothing but the published folder and the
    /// inputs (absent from buildinfos of earlier pimg versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The overlay the apkovl was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoOverlay {
    pub name: String,
    pub hostname: String,
    pub sha256: String,
}

/// The identifiers written into the image, in lowercase hex or canonical GUID form.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoIds {
    #[serde(default)]
    pub fat_volume_id: Option<String>,
    #[serde(default)]
    pub mbr_disk_signature: Option<String>,
    #[serde(default)]
    pub gpt_disk_guid: Option<String>,
    #[serde(default)]
    pub gpt_boot_partition_guid: Option<String>,
}

/// The initramfs's kernel modules: what the profile asked for and what that closed over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoModules {
    pub kernel_version: String,
    /// Where the module tree is in the kernel input (`lib/modules/<v>` or `usr/lib/modules/<v>`).
    #[serde(default)]
    pub tree: String,
    pub requested: Vec<String>,
    pub load_order: Vec<String>,
    pub builtin: Vec<String>,
    /// Each module the initramfs holds: the member it came from (maybe compressed) and the
    /// file installed (decompressed), with both SHA-256s.
    #[serde(default)]
    pub files: Vec<BuildinfoModuleFile>,
}

/// One installed module and the package member it was decompressed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoModuleFile {
    pub member: String,
    pub member_sha256: String,
    pub installed: String,
    pub sha256: String,
}

/// One file of the boot partition, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildinfoFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub from: String,
}

impl Buildinfo {
    /// Pretty JSON, newline-terminated: the bytes published.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("buildinfo serializes");
        json.push('\n');
        json
    }

    /// Parses a buildinfo someone published; says what is wrong when it is not one.
    pub fn parse(text: &str) -> Result<Buildinfo, String> {
        let b: Buildinfo = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !b.format.starts_with("pimg-buildinfo/") {
            return Err(format!("format is {:?}", b.format));
        }
        Ok(b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A buildinfo with every optional part present.
    pub(crate) fn sample() -> Buildinfo {
        Buildinfo {
            format: FORMAT.into(),
            pimg_version: "0.1.0".into(),
            cargo_lock_sha256: "1".repeat(64),
            board: BuildinfoBoard {
                name: "rpi3b".into(),
                profile: "boards/rpi3b.toml".into(),
                profile_sha256: "2".repeat(64),
                table: Some("gpt".into()),
                text: Some("[board]\nname = \"rpi3b\"\n".into()),
            },
            overlay: BuildinfoOverlay {
                name: "default".into(),
                hostname: "pimg".into(),
                sha256: "3".repeat(64),
            },
            source_date_epoch: 1_700_000_000,
            epoch_source: "given (SOURCE_DATE_EPOCH)".into(),
            lock: Some(LockRecord {
                file: "pimg.lock".into(),
                sha256: "4".repeat(64),
            }),
            identifiers: BuildinfoIds {
                fat_volume_id: Some("0a0b0c0d".into()),
                mbr_disk_signature: None,
                gpt_disk_guid: Some("0fc63daf-8483-4772-8e79-3d69d8477de4".into()),
                gpt_boot_partition_guid: Some("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7".into()),
            },
            inputs: vec![PinnedInput {
                name: "raspi-firmware".into(),
                version: Some("1.2".into()),
                arch: None,
                file: "raspi-firmware_1.2_all.deb".into(),
                sha256: "5".repeat(64),
                apk_signature: None,
            }],
            matched: BTreeMap::from([(
                "initramfs.busybox.path".to_string(),
                "usr/bin/busybox".to_string(),
            )]),
            kernel_modules: BuildinfoModules {
                kernel_version: "6.1.0".into(),
                tree: "usr/lib/modules/6.1.0".into(),
                requested: vec!["vfat".into()],
                load_order: vec!["kernel/fs/fat/fat.ko".into()],
                builtin: vec![],
                files: vec![BuildinfoModuleFile {
                    member: "usr/lib/modules/6.1.0/kernel/fs/fat/fat.ko.xz".into(),
                    member_sha256: "7".repeat(64),
                    installed: "kernel/fs/fat/fat.ko".into(),
                    sha256: "8".repeat(64),
                }],
            },
            boot_partition: vec![BuildinfoFile {
                path: "config.txt".into(),
                size: 3,
                sha256: "6".repeat(64),
                from: "board profile".into(),
            }],
            release: Some(BuildinfoRelease {
                compress: vec!["xz".into()],
                settings: BTreeMap::from([("xz".to_string(), "preset 6".to_string())]),
                bmap_block_size: 4096,
            }),
            apk_index: None,
            modloop: None,
            signature: Some(BuildinfoSignature {
                file: "SHA256SUMS.asc".into(),
                signs: "SHA256SUMS".into(),
                key_fingerprint: "A".repeat(40),
                algorithm: "EdDSALegacy".into(),
                hash: "SHA256".into(),
                created: 1_700_000_000,
            }),
            outputs: vec![FileSum::of("x.img", b"abc")],
        }
    }

    /// What the build writes, verify reads back unchanged, and writes again byte for byte.
    #[test]
    fn round_trips() {
        let b = sample();
        let json = b.to_json();
        let back = Buildinfo::parse(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.to_json(), json);
        // Absent options are left out, not written as null.
        let mut m = b.clone();
        m.lock = None;
        m.board.table = None;
        m.release = None;
        m.signature = None;
        let json = m.to_json();
        assert!(
            !json.contains("\"lock\"")
                && !json.contains("\"table\"")
                && !json.contains("\"release\"")
                && !json.contains("\"signature\""),
            "{json}"
        );
        assert!(!json.contains("mbr_disk_signature"), "{json}");
        assert_eq!(Buildinfo::parse(&json).unwrap(), m);
    }

    #[test]
    fn field_order_is_the_published_one() {
        let json = sample().to_json();
        let at = |k: &str| json.find(&format!("\"{k}\"")).unwrap();
        let order = [
            "format",
            "pimg_version",
            "cargo_lock_sha256",
            "board",
            "overlay",
            "source_date_epoch",
            "epoch_source",
            "lock",
            "identifiers",
            "inputs",
            "matched",
            "kernel_modules",
            "boot_partition",
            "release",
            "signature",
            "outputs",
        ];
        for w in order.windows(2) {
            assert!(at(w[0]) < at(w[1]), "{} before {}", w[0], w[1]);
        }
    }

    #[test]
    fn other_formats_and_garbage_are_refused() {
        let json = sample().to_json().replace(FORMAT, "other/1");
        assert_eq!(
            Buildinfo::parse(&json).unwrap_err(),
            "format is \"other/1\""
        );
        assert!(Buildinfo::parse("{").is_err());
        assert!(Buildinfo::parse("[]").is_err());
    }
}
