//! GPT reader: primary header at LBA 1, its partition entry array, and the backup header and
//! array it points to. Headers are parsed field by field even when damaged; `problems` says
//! what is wrong (signature, CRCs, sizes) so callers can refuse or compare.

use crate::codec::partition::write::guid_string;
use crate::codec::reader::{crc32, le32, le64, Device, Field, ReadError, SECTOR_SIZE};
use std::io::{Read, Seek};

/// "EFI PART".
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Largest entry array the reader accepts (the spec's minimum is 16 KiB; 128 entries of 128 bytes).
pub const MAX_ENTRY_ARRAY: u64 = 8 << 20;

/// A GPT header as stored at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    /// Byte offset of the header on the disk.
    pub offset: u64,
    pub signature: [u8; 8],
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    /// CRC-32 computed over the header (with its CRC field zeroed).
    pub computed_crc32: Option<u32>,
    pub reserved: u32,
    pub current_lba: u64,
    pub backup_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// Canonical byte order (as `disk::DiskLayout` holds GUIDs).
    pub disk_guid: [u8; 16],
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
    /// Bytes from `header_size` to the end of the sector (zero in a clean header).
    pub tail_nonzero: bool,
}

impl GptHeader {
    /// What is wrong with the header, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if &self.signature != SIGNATURE {
            p.push(format!(
                "signature is \"{}\", not \"EFI PART\"",
                crate::codec::reader::printable(&self.signature)
            ));
        }
        if !(92..=512).contains(&self.header_size) {
            p.push(format!(
                "header size {} is outside 92..=512",
                self.header_size
            ));
        }
        if self.computed_crc32.is_some_and(|c| c != self.header_crc32) {
            p.push(format!(
                "header CRC32 is {:08x} but the header hashes to {:08x}",
                self.header_crc32,
                self.computed_crc32.unwrap_or(0)
            ));
        }
        if self.entry_size < 128 || !self.entry_size.is_multiple_of(8) {
            p.push(format!(
                "entry size {} is not a multiple of 8 of at least 128",
                self.entry_size
            ));
        }
        p
    }

    /// Bytes of the entry array, if the size fields make sense.
    pub fn entry_array_len(&self) -> Option<u64> {
        u64::from(self.entry_count).checked_mul(u64::from(self.entry_size))
    }

    /// Every field with its byte range on the disk.
    pub fn fields(&self) -> Vec<Field> {
        let o = self.offset;
        vec![
            Field::new(
                "signature",
                o,
                8,
                crate::codec::reader::printable(&self.signature),
            ),
            Field::hex("revision", o + 8, 4, self.revision),
            Field::new("header size", o + 12, 4, self.header_size),
            Field::bare_hex("header CRC32", o + 16, self.header_crc32),
            Field::new("reserved", o + 20, 4, self.reserved),
            Field::new("current LBA", o + 24, 8, self.current_lba),
            Field::new("backup LBA", o + 32, 8, self.backup_lba),
            Field::new("first usable LBA", o + 40, 8, self.first_usable_lba),
            Field::new("last usable LBA", o + 48, 8, self.last_usable_lba),
            Field::new("disk GUID", o + 56, 16, guid_string(&self.disk_guid)),
            Field::new("partition entries LBA", o + 72, 8, self.entries_lba),
            Field::new("number of partition entries", o + 80, 4, self.entry_count),
            Field::new("partition entry size", o + 84, 4, self.entry_size),
            Field::bare_hex("partition entries CRC32", o + 88, self.entries_crc32),
            Field::new(
                "bytes after the header",
                o + 92,
                SECTOR_SIZE - 92,
                if self.tail_nonzero {
                    "not all zero"
                } else {
                    "all zero"
                },
            ),
        ]
    }
}

/// One partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptEntry {
    /// 1-based position in the array.
    pub index: u32,
    /// Byte offset of the entry on the disk.
    pub offset: u64,
    pub type_guid: [u8; 16],
    pub unique_guid: [u8; 16],
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    /// UTF-16LE name up to the first NUL (lossy).
    pub name: String,
    /// Bytes past the 128-byte entry (entry sizes above 128), all zero or not.
    pub tail_nonzero: bool,
}

impl GptEntry {
    /// An entry whose type GUID is not all zeros.
    pub fn is_used(&self) -> bool {
        self.type_guid != [0; 16]
    }

    /// Every field with its byte range on the disk.
    pub fn fields(&self) -> Vec<Field> {
        let o = self.offset;
        vec![
            Field::new("type GUID", o, 16, guid_string(&self.type_guid)),
            Field::new("partition GUID", o + 16, 16, guid_string(&self.unique_guid)),
            Field::new("first LBA", o + 32, 8, self.first_lba),
            Field::new("last LBA", o + 40, 8, self.last_lba),
            Field::hex("attributes", o + 48, 8, self.attributes),
            Field::new("name", o + 56, 72, format!("{:?}", self.name)),
        ]
    }
}

/// Both headers and both entry arrays, as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// The primary header, when LBA 1 holds one (checked with `problems`).
    pub primary: Option<GptHeader>,
    /// Why the primary header is not usable, if it is not.
    pub primary_error: Option<String>,
    /// The primary entry array.
    pub entries: Vec<GptEntry>,
    /// CRC-32 computed over the primary entry array.
    pub entries_computed_crc32: Option<u32>,
    /// The backup header, read where the primary points (or at the last sector).
    pub backup: Option<GptHeader>,
    pub backup_error: Option<String>,
    pub backup_entries: Vec<GptEntry>,
    /// Where the backup header was looked for.
    pub backup_lba: u64,
}

/// Converts an on-disk mixed-endian GUID into canonical byte order.
pub fn guid_from_disk(b: &[u8]) -> [u8; 16] {
    let mut g = [0u8; 16];
    if b.len() >= 16 {
        g[0..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
        g[4..6].copy_from_slice(&[b[5], b[4]]);
        g[6..8].copy_from_slice(&[b[7], b[6]]);
        g[8..16].copy_from_slice(&b[8..16]);
    }
    g
}

/// Parses a header sector found at byte `offset`.
pub fn parse_header(sector: &[u8; 512], offset: u64) -> GptHeader {
    let header_size = le32(sector, 12);
    let computed_crc32 = (92..=512).contains(&header_size).then(|| {
        let mut h = sector[..header_size as usize].to_vec();
        h[16..20].fill(0);
        crc32(&h)
    });
    let mut signature = [0u8; 8];
    signature.copy_from_slice(&sector[..8]);
    GptHeader {
        offset,
        signature,
        revision: le32(sector, 8),
        header_size,
        header_crc32: le32(sector, 16),
        computed_crc32,
        reserved: le32(sector, 20),
        current_lba: le64(sector, 24),
        backup_lba: le64(sector, 32),
        first_usable_lba: le64(sector, 40),
        last_usable_lba: le64(sector, 48),
        disk_guid: guid_from_disk(&sector[56..72]),
        entries_lba: le64(sector, 72),
        entry_count: le32(sector, 80),
        entry_size: le32(sector, 84),
        entries_crc32: le32(sector, 88),
        tail_nonzero: sector[92..].iter().any(|&b| b != 0),
    }
}

/// Parses one entry of `size` bytes found at byte `offset`.
pub fn parse_entry(b: &[u8], index: u32, offset: u64) -> GptEntry {
    let units: Vec<u16> = b
        .get(56..128)
        .unwrap_or(&[])
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    GptEntry {
        index,
        offset,
        type_guid: guid_from_disk(b.get(0..16).unwrap_or(&[])),
        unique_guid: guid_from_disk(b.get(16..32).unwrap_or(&[])),
        first_lba: le64(b, 32),
        last_lba: le64(b, 40),
        attributes: le64(b, 48),
        name: String::from_utf16_lossy(&units),
        tail_nonzero: b.get(128..).is_some_and(|t| t.iter().any(|&x| x != 0)),
    }
}

/// What is wrong with one side: its header's fields, and its entry array against the
/// header's CRC32 (`crc` is the array's, `None` where it does not fit the disk).
fn side_problems(h: &GptHeader, crc: Option<u32>) -> Vec<String> {
    let mut problems = h.problems();
    if let Some(c) = crc.filter(|c| *c != h.entries_crc32) {
        problems.push(format!(
            "partition entries CRC32 is {:08x} but the array hashes to {c:08x}",
            h.entries_crc32
        ));
    }
    if crc.is_none() {
        problems.push("the partition entry array does not fit the disk".into());
    }
    problems
}

/// Reads the header at `lba` and its entry array (when its fields are sane and it fits).
fn read_side<R: Read + Seek>(
    dev: &mut Device<R>,
    lba: u64,
) -> Result<(GptHeader, Vec<GptEntry>, Option<u32>), String> {
    let offset = lba
        .checked_mul(SECTOR_SIZE)
        .ok_or_else(|| format!("LBA {lba} is past any disk"))?;
    let mut sector = [0u8; 512];
    dev.read_at(offset, &mut sector, "GPT header")
        .map_err(|e| e.to_string())?;
    let h = parse_header(&sector, offset);
    if &h.signature != SIGNATURE {
        return Err(format!(
            "no GPT header at LBA {lba} (signature \"{}\")",
            crate::codec::reader::printable(&h.signature)
        ));
    }
    let mut entries = Vec::new();
    let mut computed = None;
    let array_len = h.entry_array_len().unwrap_or(u64::MAX);
    let array_off = h.entries_lba.checked_mul(SECTOR_SIZE);
    if h.entry_size >= 128
        && h.entry_size.is_multiple_of(8)
        && array_len <= MAX_ENTRY_ARRAY
        && array_off.is_some_and(|o| o.checked_add(array_len).is_some_and(|e| e <= dev.len()))
    {
        let array_off = array_off.unwrap_or(0);
        let array = dev
            .read_vec(array_off, array_len, "GPT partition entry array")
            .map_err(|e| e.to_string())?;
        computed = Some(crc32(&array));
        for (i, chunk) in array.chunks_exact(h.entry_size as usize).enumerate() {
            let off = array_off + (i as u64) * u64::from(h.entry_size);
            entries.push(parse_entry(chunk, i as u32 + 1, off));
        }
    }
    Ok((h, entries, computed))
}

/// Reads both GPT headers and arrays; fails only when the disk cannot be read at all.
pub fn read<R: Read + Seek>(dev: &mut Device<R>) -> Result<Gpt, ReadError> {
    let mut g = Gpt {
        primary: None,
        primary_error: None,
        entries: Vec::new(),
        entries_computed_crc32: None,
        backup: None,
        backup_error: None,
        backup_entries: Vec::new(),
        backup_lba: 0,
    };
    let last_lba = (dev.len() / SECTOR_SIZE).saturating_sub(1);
    let mut backup_lba = last_lba;
    match read_side(dev, 1) {
        Ok((h, entries, crc)) => {
            let problems = side_problems(&h, crc);
            if !problems.is_empty() {
                g.primary_error = Some(problems.join("; "));
            }
            if h.backup_lba > 1 && h.backup_lba <= last_lba {
                backup_lba = h.backup_lba;
            }
            g.entries = entries;
            g.entries_computed_crc32 = crc;
            g.primary = Some(h);
        }
        Err(e) => g.primary_error = Some(e),
    }
    match read_side(dev, backup_lba) {
        Ok((h, entries, crc)) => {
            let mut p = side_problems(&h, crc);
            if h.current_lba != backup_lba {
                p.push(format!(
                    "it says it is at LBA {}, not {backup_lba}",
                    h.current_lba
                ));
            }
            if !p.is_empty() {
                g.backup_error = Some(p.join("; "));
            }
            g.backup = Some(h);
            g.backup_entries = entries;
        }
        Err(e) => g.backup_error = Some(e),
    }
    // A backup that is not on the disk's last sector is not damage: a grown image or a
    // larger card has it earlier, and it is read where the primary points.
    g.backup_lba = backup_lba;
    if let (Some(h), None) = (&g.primary, &g.primary_error) {
        if h.current_lba != 1 {
            g.primary_error = Some(format!("it says it is at LBA {}, not 1", h.current_lba));
        }
    }
    Ok(g)
}

impl Gpt {
    /// Where two intact copies differ in what they say about the disk (the fields that
    /// must agree; each copy's own position fields differ by design).
    pub fn disagreements(&self) -> Vec<String> {
        let (Some(a), Some(b)) = (&self.primary, &self.backup) else {
            return Vec::new();
        };
        let mut d = Vec::new();
        let mut field = |name: &str, x: String, y: String| {
            if x != y {
                d.push(format!("{name}: {x} in the primary, {y} in the backup"));
            }
        };
        field(
            "disk GUID",
            guid_string(&a.disk_guid),
            guid_string(&b.disk_guid),
        );
        field(
            "usable LBAs",
            format!("{}..={}", a.first_usable_lba, a.last_usable_lba),
            format!("{}..={}", b.first_usable_lba, b.last_usable_lba),
        );
        field(
            "entries",
            format!("{} of {} bytes", a.entry_count, a.entry_size),
            format!("{} of {} bytes", b.entry_count, b.entry_size),
        );
        field(
            "entry array CRC32",
            format!("{:08x}", a.entries_crc32),
            format!("{:08x}", b.entries_crc32),
        );
        field(
            "backup LBA",
            a.backup_lba.to_string(),
            b.current_lba.to_string(),
        );
        field(
            "primary LBA",
            a.current_lba.to_string(),
            b.backup_lba.to_string(),
        );
        d
    }
}
