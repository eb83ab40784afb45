//! Partition tables (MBR, GPT): the writer and the readers.

pub mod gpt;
pub mod mbr;
pub mod write;

use crate::codec::reader::{Device, ReadError, SECTOR_SIZE};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
pub use write::TableKind;

/// One partition found in the table, in bytes from the start of the disk.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based entry number in the table.
    pub index: u32,
    /// MBR type byte (MBR tables).
    pub mbr_type: Option<u8>,
    /// MBR active flag.
    pub bootable: bool,
    /// GPT partition type GUID, canonical string (GPT tables).
    pub type_guid: Option<String>,
    /// GPT unique partition GUID, canonical string (GPT tables).
    pub part_guid: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT attribute bits.
    pub attributes: Option<u64>,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// The partition table of a disk image.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// MBR or GPT.
    #[serde(serialize_with = "kind_str")]
    pub kind: TableKind,
    /// MBR disk signature (MBR tables; GPT's protective MBR keeps its own).
    pub disk_signature: Option<u32>,
    /// GPT disk GUID, canonical string.
    pub disk_guid: Option<String>,
    /// Used entries only, in table order.
    pub partitions: Vec<Partition>,
    /// The disk's size in bytes.
    pub disk_size: u64,
    /// Damage that did not stop the table from being read: a GPT copy that is broken or
    /// disagrees with the other (and which copy was used). Empty for a sound table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

fn kind_str<S: serde::Serializer>(k: &TableKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// Reads the partition table at the start of `reader`: GPT when the MBR is protective (type
/// 0xEE) and a valid GPT header follows, else the MBR's primary entries.
pub fn partitions<R: Read + Seek>(reader: R) -> Result<PartitionTable, ReadError> {
    let mut dev = Device::new(reader, 0, 0, "the disk image")?;
    let disk_size = dev
        .inner
        .seek(SeekFrom::End(0))
        .map_err(|source| ReadError::Io {
            what: "the disk image".into(),
            offset: 0,
            source,
        })?;
    dev.len = disk_size;
    let m = mbr::read(&mut dev)?;
    if !m.has_signature() {
        return Err(ReadError::invalid(
            "MBR boot signature",
            510,
            format!(
                "is 0x{:04x}, not 0xaa55: no partition table",
                m.boot_signature
            ),
        ));
    }
    if m.is_protective() {
        let g = gpt::read(&mut dev)?;
        // A damaged primary table is replaced by an intact backup, as the kernel does; the
        // damage is reported either way.
        let mut problems = Vec::new();
        let backup_at = g.backup_lba;
        let (header, entries) = match (&g.primary, &g.primary_error, &g.backup, &g.backup_error) {
            (Some(h), None, _, backup_error) => {
                if let Some(e) = backup_error {
                    problems.push(format!(
                        "the backup GPT (LBA {backup_at}) is damaged: {e}; the primary was used"
                    ));
                } else {
                    problems.extend(g.disagreements().into_iter().map(|d| {
                        format!(
                            "the primary and backup GPT disagree on the {d}; the primary was used"
                        )
                    }));
                }
                (h, &g.entries)
            }
            (_, primary_error, Some(h), None) => {
                problems.push(format!(
                    "the primary GPT (LBA 1) is damaged: {}; the backup at LBA {backup_at} was used",
                    primary_error.as_deref().unwrap_or("missing")
                ));
                (h, &g.backup_entries)
            }
            _ => {
                return Err(ReadError::invalid(
                    "GPT header",
                    SECTOR_SIZE,
                    format!(
                        "{}; and the backup: {}",
                        g.primary_error.as_deref().unwrap_or("missing"),
                        g.backup_error.as_deref().unwrap_or("missing")
                    ),
                ))
            }
        };
        let primary = header;
        if let Some(e) = entries
            .iter()
            .find(|e| e.is_used() && e.last_lba < e.first_lba)
        {
            return Err(ReadError::invalid(
                format!("GPT partition entry {}", e.index),
                e.offset + 32,
                format!(
                    "its last LBA {} is before its first LBA {}",
                    e.last_lba, e.first_lba
                ),
            ));
        }
        let partitions = entries
            .iter()
            .filter(|e| e.is_used())
            .map(|e| Partition {
                index: e.index,
                mbr_type: None,
                bootable: false,
                type_guid: Some(write::guid_string(&e.type_guid)),
                part_guid: Some(write::guid_string(&e.unique_guid)),
                name: Some(e.name.clone()),
                attributes: Some(e.attributes),
                start: e.first_lba.saturating_mul(SECTOR_SIZE),
                size: e
                    .last_lba
                    .saturating_sub(e.first_lba)
                    .saturating_add(1)
                    .saturating_mul(SECTOR_SIZE),
            })
            .collect();
        let table = PartitionTable {
            kind: TableKind::Gpt,
            disk_signature: None,
            disk_guid: Some(write::guid_string(&primary.disk_guid)),
            partitions,
            disk_size,
            problems,
        };
        let usable = (
            primary.first_usable_lba.saturating_mul(SECTOR_SIZE),
            primary
                .last_usable_lba
                .saturating_add(1)
                .saturating_mul(SECTOR_SIZE),
        );
        let entries_at = (
            primary.entries_lba.saturating_mul(SECTOR_SIZE),
            primary.entry_size,
        );
        check_extents(&table, usable, "GPT partition entry", entries_at)?;
        return Ok(table);
    }
    let partitions = m
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_used())
        .map(|(i, e)| Partition {
            index: i as u32 + 1,
            mbr_type: Some(e.part_type),
            bootable: e.status == 0x80,
            type_guid: None,
            part_guid: None,
            name: None,
            attributes: None,
            start: u64::from(e.start_lba) * SECTOR_SIZE,
            size: u64::from(e.sectors) * SECTOR_SIZE,
        })
        .collect();
    let table = PartitionTable {
        kind: TableKind::Mbr,
        disk_signature: Some(m.disk_signature),
        disk_guid: None,
        partitions,
        disk_size,
        problems: Vec::new(),
    };
    check_extents(
        &table,
        (SECTOR_SIZE, disk_size),
        "MBR partition entry",
        (446, 16),
    )?;
    Ok(table)
}

/// Refuses partitions that are empty, lie outside `usable` (byte range: the disk for an MBR,
/// the usable LBAs for a GPT) or overlap each other. `what` and `entries` (the first entry's
/// offset, the entry size) locate the entry in the message.
fn check_extents(
    table: &PartitionTable,
    usable: (u64, u64),
    what: &str,
    entries: (u64, u32),
) -> Result<(), ReadError> {
    let entry_offset = |i: u32| {
        entries
            .0
            .saturating_add(u64::from(entries.1) * u64::from(i.saturating_sub(1)))
    };
    let (lo, hi) = (usable.0, usable.1.min(table.disk_size));
    for p in &table.partitions {
        let end = p.start.saturating_add(p.size);
        if p.size == 0 || p.start < lo || end > hi {
            return Err(ReadError::invalid(
                format!("{what} {}", p.index),
                entry_offset(p.index),
                format!(
                    "bytes {}..{} are not inside the usable {}..{} of the {}-byte disk",
                    p.start, end, lo, hi, table.disk_size
                ),
            ));
        }
    }
    let mut sorted: Vec<&Partition> = table.partitions.iter().collect();
    sorted.sort_by_key(|p| p.start);
    for w in sorted.windows(2) {
        if w[1].start < w[0].start + w[0].size {
            return Err(ReadError::invalid(
                format!("{what} {}", w[1].index),
                entry_offset(w[1].index),
                format!(
                    "bytes {}..{} overlap partition {} (bytes {}..{})",
                    w[1].start,
                    w[1].start + w[1].size,
                    w[0].index,
                    w[0].start,
                    w[0].start + w[0].size
                ),
            ));
        }
    }
    Ok(())
}
