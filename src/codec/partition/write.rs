//! Partition tables for a disk image holding one FAT partition: MBR or GPT, no randomness.
//!
//! Pure: every identifier comes from the `DiskLayout` (derived from the content upstream),
//! the layout is checked before anything is written, and the device starts zero-filled.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::str::FromStr;

pub use crate::codec::SECTOR_SIZE;
/// GPT: protective MBR, header and 128 entries of 128 bytes (32 sectors) precede the first partition.
pub const GPT_FIRST_USABLE_SECTOR: u64 = 34;
/// GPT: the backup entry array (32 sectors) and backup header (1 sector) close the disk.
pub const GPT_BACKUP_SECTORS: u64 = 33;
const MBR_MAX_SECTORS: u64 = u32::MAX as u64;
const GPT_MAX_NAME_UNITS: usize = 36;

/// Which partition table the image carries (`mbr` or `gpt` in profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// DOS/MBR table with one primary entry.
    Mbr,
    /// GPT with protective MBR, primary and backup tables.
    Gpt,
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableKind::Mbr => "MBR",
            TableKind::Gpt => "GPT",
        })
    }
}

impl TableKind {
    /// The name used in profiles, on the command line and in the buildinfo.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Mbr => "mbr",
            TableKind::Gpt => "gpt",
        }
    }
}

impl std::str::FromStr for TableKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mbr" => Ok(TableKind::Mbr),
            "gpt" => Ok(TableKind::Gpt),
            other => Err(format!(
                "'{other}' is not a partition table: use mbr or gpt"
            )),
        }
    }
}

/// The whole disk image: its size, its table and its one partition.
///
/// GUIDs are 16 bytes in the order of their canonical string: `EBD0A0A2-B9E5-…` is
/// `[0xEB, 0xD0, 0xA0, 0xA2, 0xB9, 0xE5, …]` (RFC 4122 / `uuid::Uuid::from_bytes` order). On
/// disk GPT stores the first three fields little-endian (`A2 A0 D0 EB E5 B9 …`); the writer
/// does that swap, so `sfdisk` and `blkid` print exactly `guid_string(&bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLayout {
    /// Whole image in bytes, a multiple of 512.
    pub size: u64,
    /// MBR or GPT.
    pub table: TableKind,
    /// Partition start in bytes, a multiple of 512.
    pub part_offset: u64,
    /// Partition length in bytes, a multiple of 512.
    pub part_size: u64,
    /// MBR partition type, e.g. 0x0c (FAT32 LBA), 0x0e (FAT16 LBA), 0x06 (FAT16).
    pub mbr_type: u8,
    /// MBR active flag.
    pub bootable: bool,
    /// MBR disk signature (bytes 440..444, little-endian).
    pub disk_signature: u32,
    /// GPT disk GUID, canonical string order.
    pub disk_guid: [u8; 16],
    /// GPT partition unique GUID, canonical string order.
    pub part_guid: [u8; 16],
    /// GPT partition name, at most 36 UTF-16 units.
    pub part_name: String,
}

impl DiskLayout {
    fn part_end(&self) -> u64 {
        self.part_offset.saturating_add(self.part_size)
    }
}

/// Why a partition table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A size or offset is not a whole number of sectors.
    #[error("disk layout {field} = {value} bytes is not a multiple of 512; use whole sectors")]
    Misaligned { field: &'static str, value: u64 },
    /// The partition has no sectors.
    #[error("the partition size is 0 bytes; give the partition a size")]
    EmptyPartition,
    /// The partition starts inside the area the table itself uses.
    #[error(
        "the partition starts at byte {part_offset}, inside the first {reserved} bytes that the \
         {table} table uses; start it at byte {reserved} or later (1 MiB is customary)"
    )]
    OverlapsTable {
        table: TableKind,
        part_offset: u64,
        reserved: u64,
    },
    /// The partition reaches past the usable end of the disk.
    #[error(
        "the partition ends at byte {part_end}, but the usable part of the {size}-byte disk ends \
         at byte {usable_end}{}; shrink the partition or enlarge the disk",
        if *.table == TableKind::Gpt { " (the backup GPT needs the last 33 sectors)" } else { "" }
    )]
    PastEnd {
        table: TableKind,
        part_end: u64,
        usable_end: u64,
        size: u64,
    },
    /// An MBR entry cannot address the partition.
    #[error(
        "an MBR entry addresses at most 4294967295 sectors (2 TiB), but the partition {what} at \
         sector {sector}; use a GPT layout or a smaller partition"
    )]
    MbrLimit { what: &'static str, sector: u64 },
    /// The MBR type byte is empty or an extended-partition type.
    #[error("mbr_type 0x{0:02x} {1}; use a FAT type such as 0x0c (FAT32 LBA) or 0x0e (FAT16 LBA)")]
    MbrType(u8, &'static str),
    /// The GPT partition name is too long.
    #[error("GPT partition name {name:?} is {units} UTF-16 units long; GPT holds at most 36")]
    PartName { name: String, units: usize },
    /// A GPT GUID is all zeros.
    #[error("the GPT {which} GUID is all zeros, which GPT reserves for unused entries; derive one from the content")]
    NilGuid { which: &'static str },
    /// The device is not exactly `layout.size` bytes.
    #[error("the device holds {actual} bytes but the layout says {size}; create it with exactly that size")]
    DeviceSize { size: u64, actual: u64 },
    /// mbrman failed.
    #[error("writing the MBR failed: {0}")]
    Mbr(#[source] mbrman::Error),
    /// The gpt crate failed.
    #[error("writing the GPT failed: {0}")]
    Gpt(#[source] gpt::GptError),
    /// The gpt crate failed on the protective MBR.
    #[error("writing the protective MBR failed: {0}")]
    ProtectiveMbr(#[source] gpt::mbr::MBRError),
    /// The device failed outside the table crates.
    #[error("{what} failed: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// Checks the layout (alignment, partition inside the disk, GPT needs room for the backup table at the end: part_offset >= 34 sectors, part end <= size - 33 sectors) before anything is written.
pub fn validate(layout: &DiskLayout) -> Result<(), DiskError> {
    for (field, value) in [
        ("size", layout.size),
        ("part_offset", layout.part_offset),
        ("part_size", layout.part_size),
    ] {
        if value % SECTOR_SIZE != 0 {
            return Err(DiskError::Misaligned { field, value });
        }
    }
    if layout.part_size == 0 {
        return Err(DiskError::EmptyPartition);
    }
    let (reserved, usable_end) = match layout.table {
        TableKind::Mbr => (SECTOR_SIZE, layout.size),
        TableKind::Gpt => (
            GPT_FIRST_USABLE_SECTOR * SECTOR_SIZE,
            layout.size.saturating_sub(GPT_BACKUP_SECTORS * SECTOR_SIZE),
        ),
    };
    if layout.part_offset < reserved {
        return Err(DiskError::OverlapsTable {
            table: layout.table,
            part_offset: layout.part_offset,
            reserved,
        });
    }
    if layout.part_end() > usable_end {
        return Err(DiskError::PastEnd {
            table: layout.table,
            part_end: layout.part_end(),
            usable_end,
            size: layout.size,
        });
    }
    match layout.table {
        TableKind::Mbr => {
            let start = layout.part_offset / SECTOR_SIZE;
            let sectors = layout.part_size / SECTOR_SIZE;
            if start > MBR_MAX_SECTORS {
                return Err(DiskError::MbrLimit {
                    what: "starts",
                    sector: start,
                });
            }
            if sectors > MBR_MAX_SECTORS {
                return Err(DiskError::MbrLimit {
                    what: "is too long and ends",
                    sector: start + sectors,
                });
            }
            match layout.mbr_type {
                0x00 => return Err(DiskError::MbrType(0, "marks an unused entry")),
                t @ (0x05 | 0x0f | 0x85) => {
                    return Err(DiskError::MbrType(t, "is an extended-partition container"))
                }
                _ => {}
            }
        }
        TableKind::Gpt => {
            let units = layout.part_name.encode_utf16().count();
            if units > GPT_MAX_NAME_UNITS {
                return Err(DiskError::PartName {
                    name: layout.part_name.clone(),
                    units,
                });
            }
            if layout.disk_guid == [0; 16] {
                return Err(DiskError::NilGuid { which: "disk" });
            }
            if layout.part_guid == [0; 16] {
                return Err(DiskError::NilGuid { which: "partition" });
            }
        }
    }
    Ok(())
}

/// Writes the partition table(s) into `dev` (already `size` bytes, zero-filled). MBR: disk signature at 440, one entry, 0x55AA. GPT: protective MBR + primary and backup headers and entry arrays, partition type = Microsoft basic data (EBD0A0A2-B9E5-4433-87C0-68B6B72699C7), the given GUIDs, no randomness anywhere.
pub fn write_table<D: Read + Write + Seek>(
    dev: &mut D,
    layout: &DiskLayout,
) -> Result<(), DiskError> {
    validate(layout)?;
    let io_err = |what| move |source| DiskError::Io { what, source };
    let actual = dev
        .seek(SeekFrom::End(0))
        .map_err(io_err("probing the device size"))?;
    if actual != layout.size {
        return Err(DiskError::DeviceSize {
            size: layout.size,
            actual,
        });
    }
    match layout.table {
        TableKind::Mbr => write_mbr(dev, layout)?,
        TableKind::Gpt => write_gpt(dev, layout)?,
    }
    dev.flush().map_err(io_err("flushing the partition table"))
}

/// The canonical lowercase string of a GUID given in canonical byte order.
pub fn guid_string(guid: &[u8; 16]) -> String {
    let hex = |range: std::ops::Range<usize>| -> String {
        guid[range].iter().map(|b| format!("{b:02x}")).collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

fn write_mbr<D: Read + Write + Seek>(dev: &mut D, layout: &DiskLayout) -> Result<(), DiskError> {
    let mut mbr =
        mbrman::MBR::new_from(dev, SECTOR_SIZE as u32, layout.disk_signature.to_le_bytes())
            .map_err(DiskError::Mbr)?;
    // validate() bounds both values by u32::MAX. CHS stays empty: Linux and the Pi use the LBAs.
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: if layout.bootable {
            mbrman::BOOT_ACTIVE
        } else {
            mbrman::BOOT_INACTIVE
        },
        first_chs: mbrman::CHS::empty(),
        sys: layout.mbr_type,
        last_chs: mbrman::CHS::empty(),
        starting_lba: (layout.part_offset / SECTOR_SIZE) as u32,
        sectors: (layout.part_size / SECTOR_SIZE) as u32,
    };
    mbr.write_into(dev).map_err(DiskError::Mbr)
}

fn write_gpt<D: Read + Write + Seek>(dev: &mut D, layout: &DiskLayout) -> Result<(), DiskError> {
    let disk_guid = gpt_guid(&layout.disk_guid)?.guid;
    let partition = gpt::partition::Partition {
        part_type_guid: gpt::partition_types::BASIC,
        part_guid: gpt_guid(&layout.part_guid)?.guid,
        first_lba: layout.part_offset / SECTOR_SIZE,
        last_lba: layout.part_end() / SECTOR_SIZE - 1,
        flags: 0,
        name: layout.part_name.clone(),
    };
    // `create_from_device` with our disk GUID and `update_partitions` with our partition keep
    // the crate's random GUIDs out of the bytes (its HeaderBuilder still draws a v4 UUID and
    // then overwrites it). It writes both entry arrays and both headers with their CRCs.
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(DebugDevice(&mut *dev), Some(disk_guid))
        .map_err(DiskError::Gpt)?;
    disk.update_partitions(BTreeMap::from([(1, partition)]))
        .map_err(DiskError::Gpt)?;
    disk.write().map_err(DiskError::Gpt)?;
    let protected = (layout.size / SECTOR_SIZE - 1).min(MBR_MAX_SECTORS) as u32;
    gpt::mbr::ProtectiveMBR::with_lb_size(protected)
        .overwrite_lba0(&mut DebugDevice(dev))
        .map_err(DiskError::ProtectiveMbr)?;
    Ok(())
}

/// The gpt crate takes `uuid::Uuid` but does not re-export `uuid`; its `Type::from_str` parses a
/// canonical GUID string into one, which spares a direct dependency on `uuid`.
fn gpt_guid(guid: &[u8; 16]) -> Result<gpt::partition_types::Type, DiskError> {
    gpt::partition_types::Type::from_str(&guid_string(guid)).map_err(|e| DiskError::Io {
        what: "converting a GUID for the gpt crate",
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })
}

/// The gpt crate wants `Debug` on its device; this lends it one without asking callers for it.
struct DebugDevice<'a, D>(&'a mut D);

impl<D> fmt::Debug for DebugDevice<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk image")
    }
}

impl<D: Read> Read for DebugDevice<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<D: Write> Write for DebugDevice<'_, D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<D: Seek> Seek for DebugDevice<'_, D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const MIB: u64 = 1024 * 1024;
    const DISK_GUID: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc,
        0xfe,
    ];
    const PART_GUID: [u8; 16] = [
        0xa1, 0xa2, 0xa3, 0xa4, 0xb1, 0xb2, 0xc1, 0xc2, 0xd1, 0xd2, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5,
        0xe6,
    ];

    fn layout(table: TableKind) -> DiskLayout {
        DiskLayout {
            size: 8 * MIB,
            table,
            part_offset: MIB,
            part_size: 6 * MIB,
            mbr_type: 0x0c,
            bootable: true,
            disk_signature: 0xDEAD_BEEF,
            disk_guid: DISK_GUID,
            part_guid: PART_GUID,
            part_name: "boot".into(),
        }
    }

    fn write(l: &DiskLayout) -> Vec<u8> {
        let mut dev = Cursor::new(vec![0u8; l.size as usize]);
        write_table(&mut dev, l).unwrap();
        dev.into_inner()
    }

    /// A bmap maps only what was written: every sector a table reader checks (the whole GPT
    /// entry arrays, which the header CRCs cover, and both headers) must be written, zeros
    /// included, or a card with old data on it would fail those CRCs.
    #[test]
    fn every_table_sector_is_written_so_a_bmap_maps_it() {
        use crate::codec::bmap::{WrittenBlocks, BLOCK_SIZE};
        for table in [TableKind::Mbr, TableKind::Gpt] {
            let l = layout(table);
            let mut dev = WrittenBlocks::new(Cursor::new(vec![0u8; l.size as usize]), l.size);
            write_table(&mut dev, &l).unwrap();
            let (_, set) = dev.into_parts();
            assert!(set.contains(0), "{table:?}: sector 0");
            if table == TableKind::Gpt {
                // Primary header and 32 sectors of entries: bytes 512..17408.
                for b in 0..17408u64.div_ceil(BLOCK_SIZE) {
                    assert!(set.contains(b), "primary GPT block {b} not written");
                }
                // Backup entries and header: the last 33 sectors.
                let first = (l.size - 33 * 512) / BLOCK_SIZE;
                for b in first..l.size / BLOCK_SIZE {
                    assert!(set.contains(b), "backup GPT block {b} not written");
                }
            }
        }
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn le64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// CRC-32/ISO-HDLC, bit by bit: an independent check of the crate's header CRCs.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// GUID bytes as GPT stores them: first three fields little-endian.
    fn on_disk(guid: &[u8; 16]) -> [u8; 16] {
        let mut g = *guid;
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        g
    }

    #[test]
    fn mbr_bytes() {
        let img = write(&layout(TableKind::Mbr));
        assert!(img[..440].iter().all(|&b| b == 0), "no boot code");
        assert_eq!(&img[440..444], &[0xEF, 0xBE, 0xAD, 0xDE]);
        assert_eq!(&img[444..446], &[0, 0]);
        let e = &img[446..462];
        assert_eq!(e[0], 0x80, "active");
        assert_eq!(&e[1..4], &[0, 0, 0], "CHS start left empty");
        assert_eq!(e[4], 0x0c, "type");
        assert_eq!(le32(&img, 454), 2048, "first LBA");
        assert_eq!(le32(&img, 458), 12288, "sectors");
        assert!(img[462..510].iter().all(|&b| b == 0), "one entry only");
        assert_eq!(&img[510..512], &[0x55, 0xAA]);
        assert!(
            img[512..].iter().all(|&b| b == 0),
            "nothing but sector 0 is written"
        );

        let mut l = layout(TableKind::Mbr);
        l.bootable = false;
        assert_eq!(write(&l)[446], 0x00);
    }

    #[test]
    fn gpt_bytes() {
        let l = layout(TableKind::Gpt);
        let img = write(&l);
        let last = l.size / SECTOR_SIZE - 1;
        // Protective MBR: one 0xEE entry covering the disk from LBA 1.
        assert_eq!(img[446 + 4], 0xEE);
        assert_eq!(le32(&img, 454), 1);
        assert_eq!(u64::from(le32(&img, 458)), last);
        assert_eq!(&img[510..512], &[0x55, 0xAA]);

        for (lba, other, entries) in [(1u64, last, 2u64), (last, 1, last - 32)] {
            let h = &img[(lba * 512) as usize..(lba * 512 + 512) as usize];
            assert_eq!(&h[0..8], b"EFI PART");
            assert_eq!(le32(h, 8), 0x0001_0000, "revision 1.0");
            assert_eq!(le32(h, 12), 92, "header size");
            let mut copy = h[..92].to_vec();
            copy[16..20].fill(0);
            assert_eq!(le32(h, 16), crc32(&copy), "header CRC at LBA {lba}");
            assert_eq!(le64(h, 24), lba, "current LBA");
            assert_eq!(le64(h, 32), other, "other header LBA");
            assert_eq!(le64(h, 40), 34, "first usable");
            assert_eq!(le64(h, 48), last - 33, "last usable");
            assert_eq!(&h[56..72], &on_disk(&DISK_GUID));
            assert_eq!(&h[56..60], &[0x67, 0x45, 0x23, 0x01]);
            assert_eq!(le64(h, 72), entries, "entry array LBA");
            assert_eq!(le32(h, 80), 128);
            assert_eq!(le32(h, 84), 128);
            let array = &img[(entries * 512) as usize..(entries * 512 + 128 * 128) as usize];
            assert_eq!(le32(h, 88), crc32(array), "entry array CRC at LBA {lba}");
            assert!(h[92..].iter().all(|&b| b == 0));

            let e = &array[..128];
            let basic_data = [
                0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26,
                0x99, 0xC7,
            ];
            assert_eq!(&e[0..16], &basic_data);
            assert_eq!(&e[16..32], &on_disk(&PART_GUID));
            assert_eq!(le64(e, 32), 2048, "first LBA");
            assert_eq!(le64(e, 40), 2048 + 12288 - 1, "last LBA, inclusive");
            assert_eq!(le64(e, 48), 0, "attributes");
            assert_eq!(&e[56..64], &[b'b', 0, b'o', 0, b'o', 0, b't', 0]);
            assert!(e[64..].iter().all(|&b| b == 0));
            assert!(array[128..].iter().all(|&b| b == 0), "one entry only");
        }
    }

    #[test]
    fn writes_are_reproducible() {
        for table in [TableKind::Mbr, TableKind::Gpt] {
            let l = layout(table);
            assert!(write(&l) == write(&l), "{table}");
        }
        let mut other = layout(TableKind::Gpt);
        other.part_guid[15] ^= 1;
        assert!(write(&other) != write(&layout(TableKind::Gpt)));
    }

    #[test]
    fn guid_strings() {
        assert_eq!(
            guid_string(&DISK_GUID),
            "01234567-89ab-cdef-1032-547698badcfe"
        );
        assert_eq!(
            gpt_guid(&PART_GUID).unwrap().guid.to_string(),
            guid_string(&PART_GUID)
        );
    }

    #[test]
    fn bad_layouts_are_refused() {
        let check = |f: &dyn Fn(&mut DiskLayout), table, needle: &str| {
            let mut l = layout(table);
            f(&mut l);
            let err = validate(&l).expect_err(needle);
            assert!(err.to_string().contains(needle), "{err}");
            let mut dev = Cursor::new(vec![0u8; 8 * MIB as usize]);
            assert!(write_table(&mut dev, &l).is_err());
            assert!(
                dev.into_inner().iter().all(|&b| b == 0),
                "nothing written on error"
            );
        };
        use TableKind::*;
        check(
            &|l| l.part_offset = MIB + 100,
            Mbr,
            "part_offset = 1048676 bytes is not a multiple of 512",
        );
        check(&|l| l.size = 8 * MIB - 1, Mbr, "size = 8388607");
        check(&|l| l.part_size = 0, Mbr, "size is 0");
        check(
            &|l| l.part_offset = 0,
            Mbr,
            "inside the first 512 bytes that the MBR table uses",
        );
        check(
            &|l| l.part_offset = 33 * 512,
            Gpt,
            "inside the first 17408 bytes that the GPT",
        );
        check(
            &|l| l.part_size = 7 * MIB + 512,
            Mbr,
            "ends at byte 8389120",
        );
        check(
            &|l| l.part_size = 7 * MIB,
            Gpt,
            "the backup GPT needs the last 33 sectors",
        );
        check(&|l| l.mbr_type = 0, Mbr, "unused entry");
        check(&|l| l.mbr_type = 0x05, Mbr, "extended");
        check(&|l| l.part_name = "x".repeat(37), Gpt, "37 UTF-16 units");
        check(&|l| l.disk_guid = [0; 16], Gpt, "disk GUID is all zeros");
        check(
            &|l| l.part_guid = [0; 16],
            Gpt,
            "partition GUID is all zeros",
        );
        check(
            &|l| {
                l.size = 4 << 40;
                l.part_size = 3 << 40;
            },
            Mbr,
            "at most 4294967295 sectors",
        );
        // The exact GPT limits are accepted.
        let mut l = layout(Gpt);
        l.part_offset = 34 * 512;
        l.part_size = l.size - 34 * 512 - 33 * 512;
        validate(&l).unwrap();
        write(&l);
        // A device of the wrong size is refused.
        let mut dev = Cursor::new(vec![0u8; 4 * MIB as usize]);
        let err = write_table(&mut dev, &layout(Mbr)).unwrap_err();
        assert!(matches!(err, DiskError::DeviceSize { .. }), "{err}");
    }
}
