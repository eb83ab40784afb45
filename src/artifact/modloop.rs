//! The modloop: a squashfs of every module of the kernel input and the firmware files, which
//! the init mounts read-only at `/.modloop` and links as `/lib/modules` and `/lib/firmware`
//! of the booted system (Alpine's layout: `modules/<kernel version>/…`, `modules/firmware/…`).
//!
//! Modules keep the kernel package's own files and compression (`.ko`, `.ko.xz`, …), so the
//! modloop holds exactly what the package shipped; `modules.dep` is generated over the whole
//! tree and names those files. Every entry is owned by root and stamped with the epoch.

use super::FieldError;
use crate::codec::squashfs::write::{
    write_squashfs, SquashfsEntry, SquashfsError, SquashfsKind, SquashfsOptions, SquashfsStats,
};
use crate::codec::squashfs::{Compression, DEFAULT_BLOCK_SIZE};
use crate::epoch::SourceDateEpoch;
use crate::profile::board::BoardProfile;
use crate::tree::TreePath;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Modules the init needs to mount the modloop, added to the initramfs's request.
pub const MOUNT_MODULES: [&str; 2] = ["loop", "squashfs"];

/// Where the modloop goes and how it is compressed; none without `[modloop]`.
#[derive(Debug, Clone)]
pub struct ModloopPlan {
    pub path: TreePath,
    pub compression: Compression,
    pub check_module: Option<String>,
}

/// The modloop's place from the profile.
pub fn plan(p: &BoardProfile) -> Result<Option<ModloopPlan>, FieldError> {
    let Some(m) = &p.modloop else {
        return Ok(None);
    };
    let path =
        TreePath::new(&m.path).map_err(|e| FieldError::new("modloop.path", e.to_string()))?;
    if path.as_str() == p.initramfs.path.trim_matches('/') {
        return Err(FieldError::new(
            "modloop.path",
            format!(
                "'{}' is the initramfs's path; give the modloop its own",
                m.path
            ),
        ));
    }
    Ok(Some(ModloopPlan {
        path,
        compression: Compression::Gzip {
            level: m.compression_level,
        },
        check_module: m.check_module.clone(),
    }))
}

/// A file or a symbolic link of the firmware tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareNode {
    File(Arc<Vec<u8>>),
    Symlink(String),
}

/// What goes into the modloop, resolved from the inputs.
#[derive(Debug, Clone, Default)]
pub struct ModloopContent {
    pub kernel_version: String,
    /// Module files as the package stores them: path below `<kernel version>/`, bytes.
    pub modules: Vec<(String, Arc<Vec<u8>>)>,
    /// Generated `modules.dep` over every module, naming the files in `modules`.
    pub modules_dep: String,
    /// Other files of the package's module tree kept as they are (`modules.builtin`, …).
    pub metadata: Vec<(String, Arc<Vec<u8>>)>,
    /// Firmware files and links below `firmware/`.
    pub firmware: Vec<FirmwareFile>,
}

/// One firmware file or link of the modloop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareFile {
    /// Below `modules/firmware/`.
    pub path: String,
    pub node: FirmwareNode,
    /// The input and member it came from.
    pub origin: String,
}

/// The squashfs bytes of the modloop, and what went into them.
pub fn write(
    content: &ModloopContent,
    plan: &ModloopPlan,
    epoch: SourceDateEpoch,
    threads: usize,
) -> Result<(Vec<u8>, SquashfsStats), SquashfsError> {
    let kver = &content.kernel_version;
    let modules_dep = content.modules_dep.as_bytes();
    let mut files: Vec<(String, SquashfsKind)> = Vec::new();
    for (rel, data) in content.modules.iter().chain(&content.metadata) {
        files.push((format!("modules/{kver}/{rel}"), SquashfsKind::File(data)));
    }
    files.push((
        format!("modules/{kver}/modules.dep"),
        SquashfsKind::File(modules_dep),
    ));
    for FirmwareFile {
        path: rel, node, ..
    } in &content.firmware
    {
        let kind = match node {
            FirmwareNode::File(data) => SquashfsKind::File(data),
            FirmwareNode::Symlink(target) => SquashfsKind::Symlink(target),
        };
        files.push((format!("modules/firmware/{rel}"), kind));
    }
    // Every parent directory, once; the writer refuses a path whose parent is missing.
    let mut dirs = BTreeSet::new();
    for (path, _) in &files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if !dirs.insert(parent.to_string()) {
                break;
            }
            at = parent;
        }
    }
    let mut entries: Vec<SquashfsEntry> = dirs
        .iter()
        .map(|d| SquashfsEntry {
            path: d,
            kind: SquashfsKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        })
        .collect();
    for (path, kind) in &files {
        entries.push(SquashfsEntry {
            path,
            kind: *kind,
            mode: if matches!(kind, SquashfsKind::Symlink(_)) {
                0o777
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
        });
    }
    let opts = SquashfsOptions {
        mtime: squashfs_time(epoch),
        block_size: DEFAULT_BLOCK_SIZE,
        compression: plan.compression,
        threads,
    };
    let mut out = Vec::new();
    let stats = write_squashfs(&mut out, &entries, 0o755, &opts)?;
    Ok((out, stats))
}

/// squashfs stores unsigned 32-bit seconds: epochs outside 1970..2106 are clamped.
pub fn squashfs_time(epoch: SourceDateEpoch) -> u32 {
    epoch.seconds().clamp(0, u32::MAX as i64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::squashfs::read;
    use std::io::Cursor;

    fn content() -> ModloopContent {
        ModloopContent {
            kernel_version: "6.1.0-9-arm64".into(),
            modules: vec![
                ("kernel/fs/fat/vfat.ko.xz".into(), Arc::new(vec![1; 3000])),
                ("kernel/fs/fat/fat.ko.xz".into(), Arc::new(vec![2; 200_000])),
            ],
            modules_dep:
                "kernel/fs/fat/fat.ko.xz:\nkernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz\n"
                    .into(),
            metadata: vec![(
                "modules.builtin".into(),
                Arc::new(b"kernel/x.ko\n".to_vec()),
            )],
            firmware: vec![
                FirmwareFile {
                    path: "brcm/a.bin".into(),
                    node: FirmwareNode::File(Arc::new(vec![3; 10])),
                    origin: "t".into(),
                },
                FirmwareFile {
                    path: "brcm/b.txt".into(),
                    node: FirmwareNode::Symlink("a.bin".into()),
                    origin: "t".into(),
                },
            ],
        }
    }

    fn plan() -> ModloopPlan {
        ModloopPlan {
            path: TreePath::new("boot/modloop-rpi").unwrap(),
            compression: Compression::Gzip { level: 9 },
            check_module: None,
        }
    }

    #[test]
    fn the_layout_is_alpines_and_every_entry_is_roots_at_the_epoch() {
        let epoch = SourceDateEpoch::new(1_700_000_000).unwrap();
        let (bytes, stats) = write(&content(), &plan(), epoch, 1).unwrap();
        assert_eq!(stats.files, 5);
        let len = bytes.len() as u64;
        let mut fs = read::open(Cursor::new(bytes), len).unwrap();
        let entries = fs.entries().unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"modules/6.1.0-9-arm64/kernel/fs/fat/vfat.ko.xz"));
        assert!(paths.contains(&"modules/6.1.0-9-arm64/modules.dep"));
        assert!(paths.contains(&"modules/firmware/brcm/b.txt"));
        for e in &entries {
            assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 1_700_000_000), "{}", e.path);
        }
        let dep = fs
            .read_path("modules/6.1.0-9-arm64/modules.dep", 1 << 20)
            .unwrap();
        assert_eq!(dep, content().modules_dep.as_bytes());
        let fat = fs
            .read_path("modules/6.1.0-9-arm64/kernel/fs/fat/fat.ko.xz", 1 << 20)
            .unwrap();
        assert_eq!(fat, vec![2; 200_000]);
    }

    #[test]
    fn the_same_content_gives_the_same_bytes_for_any_thread_count() {
        let epoch = SourceDateEpoch::new(1_700_000_000).unwrap();
        let one = write(&content(), &plan(), epoch, 1).unwrap().0;
        let four = write(&content(), &plan(), epoch, 4).unwrap().0;
        assert_eq!(one, four);
        let later = SourceDateEpoch::new(1_700_000_001).unwrap();
        assert_ne!(one, write(&content(), &plan(), later, 1).unwrap().0);
    }
}
