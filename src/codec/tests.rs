//! Readers against writers across formats: what one writes, the other reads back, and damage
//! is reported, never a panic.

use crate::codec::detect::{detect, ArtifactKind};
use crate::codec::partition::{gpt, partitions, TableKind};
use crate::codec::reader::*;
use crate::codec::{cpio::read as cpio, fat::read as fat, gzip::read as gzip, tar::read as tar};

use crate::codec::cpio::write::CpioEntry;
use crate::codec::fat::write::{FatParams, FatType};
use crate::codec::partition::write::{self as disk, DiskLayout};
use crate::codec::tar::write::TarMeta;
use crate::tree::{Node, Tree, TreePath};
use std::io::{Cursor, Read};

const EPOCH: i64 = 1_700_000_000;

fn tree() -> Tree {
    let mut t = Tree::new();
    let p = |s: &str| TreePath::new(s).unwrap();
    t.insert(p("boot"), Node::dir(0o755), "t").unwrap();
    t.insert(
        p("boot/vmlinuz-rpi"),
        Node::file(vec![7u8; 5000], 0o644),
        "t",
    )
    .unwrap();
    t.insert(
        p("config.txt"),
        Node::file(b"arm_64bit=1\n".to_vec(), 0o644),
        "t",
    )
    .unwrap();
    t.insert(
        p("a-rather-long-name-with-ünïcode.txt"),
        Node::file(vec![1u8; 700], 0o644),
        "t",
    )
    .unwrap();
    t
}

fn volume() -> Vec<u8> {
    let size = 256 * 1024;
    let mut v = Cursor::new(vec![0u8; size]);
    let params = FatParams {
        fat_type: FatType::Fat12,
        bytes_per_cluster: 512,
        volume_id: 0x1234_5678,
        label: "PIBOOT".into(),
        epoch: EPOCH,
    };
    crate::codec::fat::write::write_fat(&mut v, size as u64, &tree(), &params).unwrap();
    v.into_inner()
}

fn open(v: &[u8]) -> Result<fat::FatVolume<Cursor<&[u8]>>, ReadError> {
    fat::FatVolume::open(Cursor::new(v), 0, v.len() as u64)
}

/// Why reading the kernel out of this damaged volume fails.
fn kernel_read_error(v: &[u8]) -> String {
    let e = open(v).unwrap().read_file("boot/vmlinuz-rpi").unwrap_err();
    e.to_string()
}

#[test]
fn fat_reads_what_the_writer_wrote() {
    let v = volume();
    let mut vol = open(&v).unwrap();
    assert_eq!(vol.geometry.kind, fat::FatType::Fat12);
    assert_eq!(vol.boot.volume_id, 0x1234_5678);
    assert_eq!(vol.label(), "PIBOOT");
    let entries = vol.entries().unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "a-rather-long-name-with-ünïcode.txt",
            "boot",
            "config.txt",
            "boot/vmlinuz-rpi"
        ]
    );
    let k = &entries[3];
    assert_eq!((k.size, k.is_dir), (5000, false));
    assert_eq!(k.modified.unix, Some(EPOCH));
    assert_eq!(k.created.unix, Some(EPOCH));
    assert_eq!(vol.read_file("boot/vmlinuz-rpi").unwrap(), vec![7u8; 5000]);
    assert_eq!(vol.read_file("CONFIG.TXT").unwrap(), b"arm_64bit=1\n");
    assert!(matches!(
        vol.read_file("nope"),
        Err(ReadError::NotFound { .. })
    ));
    let label = vol.label_entry().unwrap().unwrap();
    assert_eq!(&label.short_name_raw, b"PIBOOT     ");
}

/// Points the FAT entry of `cluster` (in every copy) at `to`.
fn set_fat12(v: &mut [u8], cluster: u32, to: u32) {
    let vol = open(v).unwrap();
    let g = vol.geometry;
    for copy in 0..g.fat_count {
        let (at, _) = g.fat_entry_range(copy, cluster);
        let at = at as usize;
        let w = u16::from_le_bytes([v[at], v[at + 1]]);
        let w = if cluster.is_multiple_of(2) {
            (w & 0xF000) | to as u16
        } else {
            (w & 0x000F) | ((to as u16) << 4)
        };
        v[at..at + 2].copy_from_slice(&w.to_le_bytes());
    }
}

#[test]
fn fat_refuses_loops_cycles_and_lies() {
    let v = volume();
    let mut vol = open(&v).unwrap();
    let k = vol.find("boot/vmlinuz-rpi").unwrap();
    let boot = vol.find("boot").unwrap();
    let chain = vol.file_clusters(&k).unwrap();
    // A chain that loops back to its start.
    let mut bad = v.clone();
    set_fat12(&mut bad, chain[2], chain[0]);
    let e = kernel_read_error(&bad);
    assert!(e.contains("appears twice"), "{e}");
    // A chain that stops short of the size.
    let mut bad = v.clone();
    set_fat12(&mut bad, chain[1], 0xFFF);
    let e = kernel_read_error(&bad);
    assert!(e.contains("ends after 2"), "{e}");
    // A chain that goes on after the size's last cluster, back to the start (fsck.vfat's
    // "cluster chain length" damage); the file's bytes alone would read fine.
    let mut bad = v.clone();
    set_fat12(&mut bad, chain[chain.len() - 1], chain[0]);
    let e = kernel_read_error(&bad);
    assert!(e.contains("the chain goes on"), "{e}");
    // A subdirectory whose first cluster is the directory holding it: a cycle.
    let mut bad = v.clone();
    let sub = vol.dir_listing(Some(&boot)).unwrap();
    let dot = sub
        .slots
        .iter()
        .find(|s| s.2[0] == b'.' && s.2[1] == b' ')
        .unwrap()
        .0 as usize;
    let child = vol.find("boot/vmlinuz-rpi").unwrap().entry_offset as usize;
    // Turn the kernel into a directory pointing back at boot's own cluster.
    bad[child + 11] = fat::ATTR_DIRECTORY;
    let own = bad[dot + 26..dot + 28].to_vec();
    bad[child + 26..child + 28].copy_from_slice(&own);
    let e = open(&bad).unwrap().entries().unwrap_err();
    assert!(e.to_string().contains("loop in the directory tree"), "{e}");
    // A size far beyond the volume.
    let mut bad = v.clone();
    bad[child + 28..child + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = kernel_read_error(&bad);
    assert!(e.contains("needs"), "{e}");
    // A boot sector claiming more sectors than the input holds.
    let e = fat::FatVolume::open(Cursor::new(&v[..]), 0, 128 * 1024)
        .err()
        .unwrap();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
    // Zero bytes per sector.
    let mut bad = v.clone();
    bad[11..13].fill(0);
    let e = open(&bad).err().unwrap();
    assert!(e.to_string().contains("bytes per sector"), "{e}");
}

fn layout(table: disk::TableKind) -> DiskLayout {
    DiskLayout {
        size: 1 << 20,
        table,
        part_offset: 64 * 1024,
        part_size: 512 * 1024,
        mbr_type: 0x0c,
        bootable: true,
        disk_signature: 0xdead_beef,
        disk_guid: [0x11; 16],
        part_guid: [
            0x0f, 0xc6, 0x3d, 0xaf, 0x84, 0x83, 0x47, 0x72, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
            0x7d, 0xe4,
        ],
        part_name: "PIBOOT".into(),
    }
}

#[test]
fn partition_tables_read_back() {
    let mut d = Cursor::new(vec![0u8; 1 << 20]);
    disk::write_table(&mut d, &layout(disk::TableKind::Mbr)).unwrap();
    let t = partitions(Cursor::new(d.get_ref())).unwrap();
    assert_eq!(t.kind, TableKind::Mbr);
    assert_eq!(t.disk_signature, Some(0xdead_beef));
    let p = &t.partitions[0];
    assert_eq!(
        (p.index, p.start, p.size, p.mbr_type, p.bootable),
        (1, 65536, 524288, Some(0x0c), true)
    );

    let mut d = Cursor::new(vec![0u8; 1 << 20]);
    disk::write_table(&mut d, &layout(disk::TableKind::Gpt)).unwrap();
    let t = partitions(Cursor::new(d.get_ref())).unwrap();
    assert_eq!(t.kind, TableKind::Gpt);
    assert_eq!(
        t.disk_guid.as_deref(),
        Some("11111111-1111-1111-1111-111111111111")
    );
    let p = &t.partitions[0];
    assert_eq!(
        p.part_guid.as_deref(),
        Some("0fc63daf-8483-4772-8e79-3d69d8477de4")
    );
    assert_eq!(
        p.type_guid.as_deref(),
        Some("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")
    );
    assert_eq!(
        (p.start, p.size, p.name.as_deref()),
        (65536, 524288, Some("PIBOOT"))
    );
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    // A damaged primary header falls back to the backup, and says so; both damaged is an
    // error.
    let good = d.into_inner();
    let mut bad = good.clone();
    bad[512 + 60] ^= 1;
    let t = partitions(Cursor::new(&bad)).unwrap();
    assert_eq!(t.partitions[0].start, 65536);
    assert!(
        t.problems[0].starts_with("the primary GPT (LBA 1) is damaged: header CRC32")
            && t.problems[0].ends_with("the backup at LBA 2047 was used"),
        "{:?}",
        t.problems
    );
    let n = bad.len();
    bad[n - 512 + 60] ^= 1;
    let e = partitions(Cursor::new(&bad)).unwrap_err();
    assert!(e.to_string().contains("CRC32"), "{e}");
    // The backup's entry array altered without fixing its CRC (a renamed partition): the
    // damage is reported beside the intact primary, and it is an error beside a broken one.
    let backup_array = n - 33 * 512;
    let mut bad = good.clone();
    bad[backup_array + 56] = b'X';
    let t = partitions(Cursor::new(&bad)).unwrap();
    assert_eq!(t.partitions[0].name.as_deref(), Some("PIBOOT"));
    assert!(
        t.problems[0].starts_with("the backup GPT (LBA 2047) is damaged: partition entries CRC32")
            && t.problems[0].ends_with("the primary was used"),
        "{:?}",
        t.problems
    );
    bad[512 + 16] ^= 1;
    let e = partitions(Cursor::new(&bad)).unwrap_err().to_string();
    assert!(
        e.contains("header CRC32") && e.contains("and the backup: partition entries CRC32"),
        "{e}"
    );
    // Two intact copies that disagree (the backup names another disk, CRCs fixed).
    let mut bad = good.clone();
    let h = n - 512;
    bad[h + 56] ^= 0xff;
    bad[h + 16..h + 20].fill(0);
    let crc = crate::codec::reader::crc32(&bad[h..h + 92]);
    bad[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    let t = partitions(Cursor::new(&bad)).unwrap();
    assert!(
        t.problems[0].starts_with("the primary and backup GPT disagree on the disk GUID"),
        "{:?}",
        t.problems
    );
    // A GPT header announcing a huge entry array is refused without allocating it.
    let mut s = [0u8; 512];
    s[..8].copy_from_slice(gpt::SIGNATURE);
    s[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
    s[84..88].copy_from_slice(&4096u32.to_le_bytes());
    let h = gpt::parse_header(&s, 512);
    assert_eq!(h.entry_array_len(), Some(u64::from(u32::MAX) * 4096));
}

#[test]
fn mbr_partitions_that_overlap_or_leave_the_disk_are_refused() {
    let mut d = Cursor::new(vec![0u8; 1 << 20]);
    disk::write_table(&mut d, &layout(disk::TableKind::Mbr)).unwrap();
    let good = d.into_inner();
    let entry = |start: u32, sectors: u32| {
        let mut e = [0u8; 16];
        e[4] = 0x83;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
        e
    };
    let mut bad = good.clone();
    bad[462..478].copy_from_slice(&entry(128 + 10, 100));
    let e = partitions(Cursor::new(&bad)).unwrap_err().to_string();
    assert!(
        e.contains("MBR partition entry 2") && e.contains("overlap partition 1"),
        "{e}"
    );
    let mut bad = good.clone();
    bad[462..478].copy_from_slice(&entry(1500, 1000));
    let e = partitions(Cursor::new(&bad)).unwrap_err().to_string();
    assert!(
        e.contains("MBR partition entry 2") && e.contains("not inside the usable 512..1048576"),
        "{e}"
    );
    let mut bad = good;
    bad[462..478].copy_from_slice(&entry(1500, 100));
    assert_eq!(partitions(Cursor::new(&bad)).unwrap().partitions.len(), 2);
}

#[test]
fn gzip_roundtrip_corruption_and_bombs() {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 7) as u8).collect();
    let gz = crate::codec::gzip::write::gzip_bytes(&data, 9);
    let (h, out, t) = gzip::decompress(&gz).unwrap();
    assert_eq!((h.mtime, h.os, out == data), (0, 255, true));
    assert_eq!(t.isize as usize, data.len());
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    let e = gzip::decompress(&bad).unwrap_err();
    assert!(e.to_string().contains("CRC32"), "{e}");
    let e = gzip::decompress(&gz[..gz.len() - 3]).unwrap_err();
    assert!(
        e.to_string().contains("truncated") || e.to_string().contains("trailer"),
        "{e}"
    );
    let mut r = gzip::GzipReader::new(&gz[..], 1000).unwrap();
    let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
    assert!(e.to_string().contains("limit of 1000"), "{e}");
    let e = gzip::decompress(b"\x1f\x8b\x09\x00").unwrap_err();
    assert!(
        e.to_string().contains("compression method") || e.to_string().contains("header"),
        "{e}"
    );
}

/// Every member an archive reader visits, with its content, and what it returned at the end.
fn members<H: Clone, End>(
    read: impl FnOnce(
        &mut dyn FnMut(&H, &mut dyn Read) -> Result<(), ReadError>,
    ) -> Result<End, ReadError>,
) -> (Vec<(H, Vec<u8>)>, End) {
    let mut seen = Vec::new();
    let end = read(&mut |h, d| {
        let mut data = Vec::new();
        d.read_to_end(&mut data).unwrap();
        seen.push((h.clone(), data));
        Ok(())
    })
    .unwrap();
    (seen, end)
}

#[test]
fn cpio_roundtrip_and_hostile_headers() {
    let mut w = crate::codec::cpio::write::CpioWriter::new(Vec::new());
    for (name, mode, data) in [
        ("bin", 0o040755, &b""[..]),
        ("bin/sh", 0o120777, b"busybox"),
        ("init", 0o100755, b"#!/bin/sh\n"),
    ] {
        w.append(&CpioEntry {
            name,
            ino: 1,
            mode,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 7,
            data,
            ..CpioEntry::default()
        })
        .unwrap();
    }
    let a = w.finish().unwrap();
    let (seen, end) = members(|visit| cpio::read(&a[..], visit));
    assert_eq!(end.entries, 3);
    let (h, data) = &seen[1];
    assert_eq!(
        (h.name.as_str(), h.mode(), &data[..]),
        ("bin/sh", 0o120777, &b"busybox"[..])
    );
    // A name size of 64 KiB on a short input: truncated, not allocated.
    let mut bad = a.clone();
    bad[94..102].copy_from_slice(b"00010000");
    assert!(cpio::read(&bad[..], |_, _| Ok(())).is_err());
    let mut bad = a.clone();
    bad[54..62].copy_from_slice(b"FFFFFFFF");
    let e = cpio::read(&bad[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
    let mut bad = a.clone();
    bad[20] = b'x';
    let e = cpio::read(&bad[..], |_, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains("'mode'"), "{e}");
    let e = cpio::read(&a[..a.len() - 120], |_, _| Ok(())).unwrap_err();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
}

#[test]
fn tar_roundtrip_long_names_pax_and_hostile_headers() {
    let long = format!("etc/{}", "x".repeat(150));
    let mut w = crate::codec::tar::write::TarWriter::new(Vec::new());
    let meta = |mode| TarMeta {
        mode,
        uid: 0,
        gid: 42,
        mtime: 1_700_000_000,
    };
    w.append_dir("etc", &meta(0o755)).unwrap();
    w.append_file(&long, &meta(0o640), b"secret").unwrap();
    w.append_symlink("etc/link", "/etc/init.d/hostname", &meta(0o777))
        .unwrap();
    let a = w.finish().unwrap();
    let (seen, end) = members(|visit| tar::read(&a[..], visit));
    assert_eq!((end.entries, end.zero_blocks), (3, 2));
    assert_eq!(seen[0].0.path, "etc/");
    let (e, data) = &seen[1];
    assert_eq!(
        (
            e.path.as_str(),
            e.mode,
            e.gid,
            e.link_name.as_str(),
            &data[..]
        ),
        (long.as_str(), 0o640, 42, "", &b"secret"[..])
    );
    assert_eq!(seen[2].0.link_name, "/etc/init.d/hostname");
    // Pax records override the header.
    assert_eq!(
        tar::pax_records(b"19 path=etc/shadow\n12 uid=1000\n", 0).unwrap(),
        vec![
            ("path".into(), "etc/shadow".into()),
            ("uid".into(), "1000".into())
        ]
    );
    assert!(tar::pax_records(b"99 path=x\n", 0).is_err());
    // GNU base-256 numbers.
    assert_eq!(
        tar::number(&[0x80, 0, 0, 0, 0, 0, 1, 0], "size", 0).unwrap(),
        256
    );
    // A flipped byte breaks the checksum; a huge long-name size is refused.
    let mut bad = a.clone();
    bad[600] ^= 1;
    let e = tar::read(&bad[..], |_, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    let mut h = tar_header_with_size(b'L', "77777777777");
    let e = tar::read(&h[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(e, ReadError::Limit { .. }), "{e}");
    h = tar_header_with_size(b'0', "77777777777");
    let e = tar::read(&h[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
}

fn tar_header_with_size(typeflag: u8, size: &str) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"file");
    h[100..107].copy_from_slice(b"0000644");
    h[124..124 + size.len()].copy_from_slice(size.as_bytes());
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn detect_by_content() {
    let v = volume();
    assert_eq!(
        detect(&mut Cursor::new(&v)).unwrap(),
        ArtifactKind::FatVolume
    );
    let mut d = Cursor::new(vec![0u8; 1 << 20]);
    disk::write_table(&mut d, &layout(disk::TableKind::Mbr)).unwrap();
    assert_eq!(detect(&mut d).unwrap(), ArtifactKind::DiskImage);
    let tar_bytes = crate::codec::tar::write::write_tree(Vec::new(), &tree(), 0).unwrap();
    let gz = crate::codec::gzip::write::gzip_bytes(&tar_bytes, 6);
    assert_eq!(
        detect(&mut Cursor::new(&gz)).unwrap(),
        ArtifactKind::GzipTar
    );
    assert_eq!(
        detect(&mut Cursor::new(&tar_bytes)).unwrap(),
        ArtifactKind::Tar
    );
    let mut sqfs = Vec::new();
    crate::codec::squashfs::write::write_squashfs(
        &mut sqfs,
        &[],
        0o755,
        &crate::codec::squashfs::write::SquashfsOptions::default(),
    )
    .unwrap();
    assert_eq!(
        detect(&mut Cursor::new(&sqfs)).unwrap(),
        ArtifactKind::Squashfs
    );
    assert_eq!(
        detect(&mut Cursor::new(b"hello")).unwrap(),
        ArtifactKind::Unknown
    );
}
