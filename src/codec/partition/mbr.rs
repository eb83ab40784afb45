//! MBR reader: the boot sector's disk signature, four primary entries and the 0x55AA mark.
//!
//! Parsing never fails on content: every field is returned as found, and `has_signature` /
//! `is_protective` tell the caller what it is, so diff can compare damaged tables too.

use crate::codec::reader::{le16, le32, Device, Field, ReadError};
use std::io::{Read, Seek};

/// Byte offset of the disk signature.
pub const DISK_SIGNATURE_OFFSET: usize = 440;
/// Byte offset of the first partition entry.
pub const ENTRIES_OFFSET: usize = 446;
/// Bytes per partition entry.
pub const ENTRY_LEN: usize = 16;
/// The GPT protective partition type.
pub const PROTECTIVE_TYPE: u8 = 0xEE;

/// One primary partition entry, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrEntry {
    /// 0x80 active, 0x00 inactive.
    pub status: u8,
    pub first_chs: [u8; 3],
    pub part_type: u8,
    pub last_chs: [u8; 3],
    pub start_lba: u32,
    pub sectors: u32,
}

impl MbrEntry {
    /// An entry with a type and sectors.
    pub fn is_used(&self) -> bool {
        self.part_type != 0 && self.sectors != 0
    }
}

/// The whole first sector, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    /// Bytes 0..440: boot code (zero in pimg images).
    pub bootstrap: Vec<u8>,
    pub disk_signature: u32,
    /// Bytes 444..446 (0x0000, or 0x5A5A for copy-protected).
    pub reserved: u16,
    pub entries: [MbrEntry; 4],
    /// Bytes 510..512 as a little-endian word: 0xAA55 when valid.
    pub boot_signature: u16,
}

impl Mbr {
    /// True when the sector ends with 0x55 0xAA.
    pub fn has_signature(&self) -> bool {
        self.boot_signature == 0xAA55
    }

    /// True when an entry has type 0xEE (a GPT disk's protective MBR).
    pub fn is_protective(&self) -> bool {
        self.entries.iter().any(|e| e.part_type == PROTECTIVE_TYPE)
    }

    /// Every field with its byte range, in on-disk order.
    pub fn fields(&self) -> Vec<Field> {
        let mut f = vec![
            Field::new("bootstrap code", 0, 440, digest_or_zero(&self.bootstrap)),
            Field::bare_hex("disk signature", 440, self.disk_signature),
            Field::hex("reserved bytes 444-445", 444, 2, self.reserved),
        ];
        for (i, e) in self.entries.iter().enumerate() {
            let base = (ENTRIES_OFFSET + i * ENTRY_LEN) as u64;
            let p = format!("partition {}", i + 1);
            let entry: [(&str, u64, u64, String); 6] = [
                ("status", 0, 1, format!("0x{:02x}", e.status)),
                ("first CHS", 1, 3, hex3(e.first_chs)),
                ("type", 4, 1, format!("0x{:02x}", e.part_type)),
                ("last CHS", 5, 3, hex3(e.last_chs)),
                ("start LBA", 8, 4, e.start_lba.to_string()),
                ("sectors", 12, 4, e.sectors.to_string()),
            ];
            for (name, at, len, value) in entry {
                f.push(Field::new(format!("{p} › {name}"), base + at, len, value));
            }
        }
        f.push(Field::hex("boot signature", 510, 2, self.boot_signature));
        f
    }
}

fn hex3(b: [u8; 3]) -> String {
    format!("{:02x} {:02x} {:02x}", b[0], b[1], b[2])
}

/// "all zero" or a short fingerprint of a byte block, for comparing blocks in a report.
pub(crate) fn digest_or_zero(b: &[u8]) -> String {
    if b.iter().all(|&x| x == 0) {
        "all zero".to_string()
    } else {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(b);
        format!(
            "{} nonzero bytes, sha256 {}",
            b.iter().filter(|&&x| x != 0).count(),
            crate::digest::hex(&h[..8])
        )
    }
}

/// Parses a 512-byte sector (shorter input is zero-extended by the caller's bounds check).
pub fn parse(sector: &[u8; 512]) -> Mbr {
    let mut entries = [MbrEntry {
        status: 0,
        first_chs: [0; 3],
        part_type: 0,
        last_chs: [0; 3],
        start_lba: 0,
        sectors: 0,
    }; 4];
    for (i, e) in entries.iter_mut().enumerate() {
        let b = &sector[ENTRIES_OFFSET + i * ENTRY_LEN..ENTRIES_OFFSET + (i + 1) * ENTRY_LEN];
        *e = MbrEntry {
            status: b[0],
            first_chs: [b[1], b[2], b[3]],
            part_type: b[4],
            last_chs: [b[5], b[6], b[7]],
            start_lba: le32(b, 8),
            sectors: le32(b, 12),
        };
    }
    Mbr {
        bootstrap: sector[..DISK_SIGNATURE_OFFSET].to_vec(),
        disk_signature: le32(sector, DISK_SIGNATURE_OFFSET),
        reserved: le16(sector, 444),
        entries,
        boot_signature: le16(sector, 510),
    }
}

/// Reads and parses sector 0.
pub fn read<R: Read + Seek>(dev: &mut Device<R>) -> Result<Mbr, ReadError> {
    let mut sector = [0u8; 512];
    dev.read_at(0, &mut sector, "the MBR (sector 0)")?;
    Ok(parse(&sector))
}
