//! Independent tools as referees for the FAT and partition-table writers: the bytes we write
//! must satisfy dosfstools (`fsck.vfat`), mtools (`mdir`, `mcopy`) and util-linux (`sfdisk`).
//! A missing tool fails the test with the install command; nothing is skipped.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pimg::codec::fat::write::{self as fat, FatParams, FatReport, FatType, Window};
use pimg::codec::partition::write::{self as disk, DiskLayout, TableKind};
use pimg::tree::{Node, Tree, TreePath};

const MIB: u64 = 1024 * 1024;
const IMAGE_SIZE: u64 = 64 * MIB;
const PART_OFFSET: u64 = 4 * MIB;
const PART_SIZE: u64 = 56 * MIB;
const CLUSTER: u32 = 512;
const EPOCH: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const DISK_GUID: [u8; 16] = [
    0x3a, 0x9f, 0x1c, 0x27, 0x5e, 0x44, 0x4b, 0x10, 0x9d, 0x8e, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
];
const PART_GUID: [u8; 16] = [
    0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x45, 0x67, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0,
];

fn mtools(tool: &str) -> Referee {
    referee(tool, "mtools")
}

/// Reproducible filler bytes (xorshift), so file contents are not all alike.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn boot_tree() -> Tree {
    let mut t = Tree::new();
    let mut add = |path: &str, data: Vec<u8>| {
        t.insert(
            TreePath::new(path).unwrap(),
            Node::file(data, 0o644),
            "referee",
        )
        .unwrap();
    };
    add(
        "config.txt",
        b"arm_64bit=1\nkernel=boot/vmlinuz-rpi\ninclude usercfg.txt\n".to_vec(),
    );
    add(
        "cmdline.txt",
        b"modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1\n".to_vec(),
    );
    add(".alpine-release", b"alpine-3.20.0 240522\n".to_vec());
    add("overlays/vc4-kms-v3d-pi4.dtbo", noise(2345, 1));
    add("overlays/README", b"overlays live here\n".to_vec());
    // Enough long names that the overlays directory spans several clusters.
    for i in 0..40 {
        add(
            &format!("overlays/some-hat-overlay-number-{i:02}.dtbo"),
            noise(100 + i * 37, i as u64),
        );
    }
    add("boot/vmlinuz-rpi", noise(3_000_000, 7));
    add("boot/empty", Vec::new());
    add("boot/one-cluster.bin", noise(CLUSTER as usize, 9));
    add("apks/aarch64/APKINDEX.tar.gz", noise(4321, 11));
    add("apks/.boot_repository", Vec::new());
    add("a/b/c/deeply/nested.txt", b"nested\n".to_vec());
    t.insert(
        TreePath::new("empty-dir").unwrap(),
        Node::dir(0o755),
        "referee",
    )
    .unwrap();
    t
}

fn fat_params(epoch: i64) -> FatParams {
    FatParams {
        fat_type: FatType::Fat32,
        bytes_per_cluster: CLUSTER,
        volume_id: 0x5EED_B007,
        label: "PIBOOT".into(),
        epoch,
    }
}

fn layout(table: TableKind) -> DiskLayout {
    DiskLayout {
        size: IMAGE_SIZE,
        table,
        part_offset: PART_OFFSET,
        part_size: PART_SIZE,
        mbr_type: 0x0c,
        bootable: true,
        disk_signature: 0x1234_5678,
        disk_guid: DISK_GUID,
        part_guid: PART_GUID,
        part_name: "boot".into(),
    }
}

/// A sparse 64 MiB image: partition table, then the FAT written straight in through a Window.
fn build_image(
    dir: &Path,
    name: &str,
    table: TableKind,
    tree: &Tree,
    epoch: i64,
) -> (PathBuf, FatReport) {
    let path = dir.join(name);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len(IMAGE_SIZE).unwrap();
    disk::write_table(&mut file, &layout(table)).unwrap();
    let window = Window::new(&mut file, PART_OFFSET, PART_SIZE);
    let report = fat::write_fat(window, PART_SIZE, tree, &fat_params(epoch)).unwrap();
    assert_eq!(report.clamped_epoch, None);
    assert!(
        report.clusters_used > 5900 && report.clusters_used < report.clusters_total,
        "{report:?}"
    );
    file.sync_all().unwrap();
    (path, report)
}

/// Copies the partition out of the image into its own file.
fn extract_partition(image: &Path, out: &Path) {
    let mut file = File::open(image).unwrap();
    file.seek(SeekFrom::Start(PART_OFFSET)).unwrap();
    let mut part = vec![0u8; PART_SIZE as usize];
    file.read_exact(&mut part).unwrap();
    fs::write(out, part).unwrap();
}

fn sha256(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap())
}

/// `fsck.vfat -a` on a copy: exit 0, no warnings, no repair (the copy is unchanged), and the
/// same file and cluster counts as the writer reported.
fn assert_fsck_clean(part: &Path, tree: &Tree, report: &FatReport) {
    let copy = part.with_extension("fsck.img");
    fs::copy(part, &copy).unwrap();
    let out = referee("fsck.vfat", "dosfstools")
        .args(["-a", "-v"])
        .arg(&copy)
        .output();
    let log = out.text();
    assert!(
        out.success(),
        "fsck.vfat -a exited {:?}:\n{log}",
        out.status
    );
    for problem in [
        "Warning",
        "warning",
        "differ",
        "Free cluster summary",
        "Dirty bit",
        "Fixing",
    ] {
        assert!(
            !log.contains(problem),
            "fsck.vfat reported '{problem}':\n{log}"
        );
    }
    // fsck counts the root directory among the files; its cluster use must match our report.
    let summary = format!(
        "{} files, {}/{} clusters",
        tree.len() + 1,
        report.clusters_used,
        report.clusters_total
    );
    assert!(
        log.contains(&summary),
        "expected '{summary}' from fsck.vfat:\n{log}"
    );
    assert!(
        fs::read(&copy).unwrap() == fs::read(part).unwrap(),
        "fsck.vfat -a changed the volume:\n{log}"
    );
}

/// Every file of the tree, extracted by mcopy, matches byte for byte; nothing extra appears.
fn assert_mtools_extracts_tree(part: &Path, tree: &Tree, scratch: &Path) {
    let out_dir = scratch.join("mcopy-out");
    fs::create_dir(&out_dir).unwrap();
    let image = format!("{}@@0", part.display());
    let out = mtools("mcopy")
        .args(["-s", "-n", "-i", &image, "::/*"])
        .arg(&out_dir)
        .output();
    assert!(out.success(), "mcopy failed:\n{}", out.text());

    let mut found = BTreeMap::new();
    let mut stack = vec![out_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(&out_dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if path.is_dir() {
                found.insert(rel, None);
                stack.push(path);
            } else {
                found.insert(rel, Some(fs::read(&path).unwrap()));
            }
        }
    }
    let expected: BTreeMap<String, Option<Vec<u8>>> = tree
        .iter()
        .map(|(p, n)| {
            let data = match n.kind {
                pimg::tree::NodeKind::Dir => None,
                _ => Some(n.data().to_vec()),
            };
            (p.as_str().to_string(), data)
        })
        .collect();
    let names = |m: &BTreeMap<String, Option<Vec<u8>>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&found),
        names(&expected),
        "mcopy extracted a different set of paths"
    );
    for (path, data) in &expected {
        assert!(
            found[path] == *data,
            "{path} differs after extraction by mcopy"
        );
    }

    // mdir shows the long name, the 8.3 alias, the label and the UTC epoch as stored.
    let out = mtools("mdir").args(["-i", &image, "::/overlays"]).output();
    let listing = out.text();
    assert!(out.success(), "mdir failed:\n{listing}");
    assert!(listing.contains("vc4-kms-v3d-pi4.dtbo"), "{listing}");
    assert!(
        listing.contains("2023-11-14  22:13"),
        "timestamps are not the UTC epoch:\n{listing}"
    );
    let listing = mtools("mdir")
        .args(["-a", "-i", &image, "::/"])
        .output()
        .text();
    assert!(listing.contains("Volume in drive : is PIBOOT"), "{listing}");
    assert!(listing.contains("CONFIG   TXT"), "{listing}");
    assert!(
        listing.contains("Volume Serial Number is 5EED-B007"),
        "{listing}"
    );
}

fn sfdisk_json(image: &Path) -> serde_json::Value {
    let sfdisk = || referee("sfdisk", "fdisk");
    let out = sfdisk().arg("--json").arg(image).output();
    assert!(out.success(), "sfdisk --json failed:\n{}", out.text());
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let verify = sfdisk().arg("--verify").arg(image).output();
    let log = verify.text();
    assert!(verify.success(), "sfdisk --verify failed:\n{log}");
    assert!(
        log.contains("No errors detected."),
        "sfdisk --verify found problems:\n{log}"
    );
    assert!(!log.to_lowercase().contains("mismatch"), "{log}");
    json["partitiontable"].clone()
}

/// Builds a `table` image of the boot tree and lets the referees judge it: sfdisk reads the
/// table, fsck.vfat finds the FAT clean, mtools extracts the tree. Returns sfdisk's view of
/// the table after checking its one partition's place.
fn refereed_image(table: TableKind) -> serde_json::Value {
    let scratch = tempfile::tempdir().unwrap();
    let tree = boot_tree();
    let name = format!("{table}.img");
    let (image, report) = build_image(scratch.path(), &name, table, &tree, EPOCH);

    let json = sfdisk_json(&image);
    let parts = json["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{json}");
    assert_eq!(parts[0]["start"], 8192, "{json}");
    assert_eq!(parts[0]["size"], PART_SIZE / 512, "{json}");

    let part = scratch.path().join("part.img");
    extract_partition(&image, &part);
    assert_fsck_clean(&part, &tree, &report);
    assert_mtools_extracts_tree(&part, &tree, scratch.path());
    json
}

#[test]
fn mbr_image_passes_fsck_mtools_and_sfdisk() {
    let table = refereed_image(TableKind::Mbr);
    assert_eq!(table["label"], "dos", "{table}");
    assert_eq!(table["id"], "0x12345678", "{table}");
    let part = &table["partitions"][0];
    assert_eq!(part["type"], "c", "{table}");
    assert_eq!(part["bootable"], true, "{table}");
}

#[test]
fn gpt_image_passes_fsck_mtools_and_sfdisk() {
    let table = refereed_image(TableKind::Gpt);
    assert_eq!(table["label"], "gpt", "{table}");
    let upper = |g: &[u8; 16]| disk::guid_string(g).to_uppercase();
    assert_eq!(table["id"], upper(&DISK_GUID), "{table}");
    assert_eq!(table["firstlba"], 34, "{table}");
    assert_eq!(table["lastlba"], IMAGE_SIZE / 512 - 34, "{table}");
    let part = &table["partitions"][0];
    assert_eq!(
        part["type"], "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "{table}"
    );
    assert_eq!(part["uuid"], upper(&PART_GUID), "{table}");
    assert_eq!(part["name"], "boot", "{table}");
}

#[test]
fn builds_are_byte_identical_and_follow_only_the_epoch() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = boot_tree();
    for table in [TableKind::Mbr, TableKind::Gpt] {
        let build = |name: &str, epoch| {
            let name = format!("{table}-{name}.img");
            sha256(&build_image(scratch.path(), &name, table, &tree, epoch).0)
        };
        let first = build("first", EPOCH);
        assert_eq!(
            first,
            build("second", EPOCH),
            "{table}: same input, different bytes"
        );
        let later = build("later", EPOCH + 3600);
        assert_ne!(first, later, "{table}: the epoch must reach the bytes");
        assert_eq!(
            first,
            build("reverted", EPOCH),
            "{table}: reverting the epoch must restore the bytes"
        );
    }
}
