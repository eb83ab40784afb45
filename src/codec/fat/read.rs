//! FAT12/16/32 reader: boot sector, FSInfo, allocation tables, directories with long names,
//! cluster chains and file content, for volumes from untrusted images.
//!
//! The volume's geometry is checked against its real size before anything else is read; the
//! FAT is loaded once (bounded by the cluster count, which the size bounds); every chain walk
//! stops at a repeated cluster; the directory walk visits each directory cluster at most once
//! and stops at `MAX_DEPTH` levels and `MAX_ENTRIES` entries.

use super::layout::decode_time;
pub use super::layout::{
    FatType, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_HIDDEN, ATTR_LONG_NAME, ATTR_READ_ONLY,
    ATTR_SYSTEM, ATTR_VOLUME_ID, DIR_ENTRY_SIZE as DIR_ENTRY_LEN,
};
use crate::codec::reader::{le16, le32, printable, Device, Field, ReadError};
use crate::epoch::iso8601;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, Write};

/// Deepest directory nesting the reader follows.
pub const MAX_DEPTH: usize = 64;
/// Most entries (files and directories) the reader lists on one volume.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Most slots in one directory (FAT's own limit: 65536 entries of 32 bytes).
pub const MAX_DIR_SLOTS: u64 = 65536;

/// The boot sector (BPB and extended BPB) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootSector {
    pub jump: [u8; 3],
    pub oem_name: String,
    pub bytes_per_sector: u16,
    pub sectors_per_cluster: u8,
    pub reserved_sectors: u16,
    pub fat_count: u8,
    pub root_entries: u16,
    pub total_sectors_16: u16,
    pub media: u8,
    pub fat_size_16: u16,
    pub sectors_per_track: u16,
    pub heads: u16,
    pub hidden_sectors: u32,
    pub total_sectors_32: u32,
    /// FAT32 only (zero otherwise).
    pub fat_size_32: u32,
    pub ext_flags: u16,
    pub fs_version: u16,
    pub root_cluster: u32,
    pub fsinfo_sector: u16,
    pub backup_boot_sector: u16,
    pub drive_number: u8,
    /// 0x29 when volume id, label and type follow.
    pub ext_boot_signature: u8,
    pub volume_id: u32,
    pub volume_label: String,
    pub fs_type: String,
    /// 0xAA55 when valid.
    pub signature: u16,
    /// True when the extended BPB is the FAT32 layout (fat_size_16 == 0).
    pub fat32_layout: bool,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl BootSector {
    /// Parses sector 0 of a volume (512 bytes).
    pub fn parse(s: &[u8; 512]) -> BootSector {
        let fat32_layout = le16(s, 22) == 0;
        let e = if fat32_layout { 64 } else { 36 };
        let text = |a: usize, b: usize| printable(&s[a..b]).trim_end().to_string();
        BootSector {
            jump: [s[0], s[1], s[2]],
            oem_name: text(3, 11),
            bytes_per_sector: le16(s, 11),
            sectors_per_cluster: s[13],
            reserved_sectors: le16(s, 14),
            fat_count: s[16],
            root_entries: le16(s, 17),
            total_sectors_16: le16(s, 19),
            media: s[21],
            fat_size_16: le16(s, 22),
            sectors_per_track: le16(s, 24),
            heads: le16(s, 26),
            hidden_sectors: le32(s, 28),
            total_sectors_32: le32(s, 32),
            fat_size_32: if fat32_layout { le32(s, 36) } else { 0 },
            ext_flags: if fat32_layout { le16(s, 40) } else { 0 },
            fs_version: if fat32_layout { le16(s, 42) } else { 0 },
            root_cluster: if fat32_layout { le32(s, 44) } else { 0 },
            fsinfo_sector: if fat32_layout { le16(s, 48) } else { 0 },
            backup_boot_sector: if fat32_layout { le16(s, 50) } else { 0 },
            drive_number: s[e],
            ext_boot_signature: s[e + 2],
            volume_id: le32(s, e + 3),
            volume_label: text(e + 7, e + 18),
            fs_type: text(e + 18, e + 26),
            signature: le16(s, 510),
            fat32_layout,
            raw: s.to_vec(),
        }
    }

    /// Total sectors from whichever field holds them.
    pub fn total_sectors(&self) -> u64 {
        if self.total_sectors_16 != 0 {
            u64::from(self.total_sectors_16)
        } else {
            u64::from(self.total_sectors_32)
        }
    }

    /// Sectors per FAT from whichever field holds them.
    pub fn fat_sectors(&self) -> u64 {
        if self.fat_size_16 != 0 {
            u64::from(self.fat_size_16)
        } else {
            u64::from(self.fat_size_32)
        }
    }

    /// Every field with its byte range (relative to the sector), in on-disk order.
    pub fn fields(&self) -> Vec<Field> {
        let r = &self.raw;
        let mut f = vec![
            Field::new("jump instruction", 0, 3, hex(&self.jump)),
            Field::new(
                "OEM name",
                3,
                8,
                format!("{:?}", printable(r.get(3..11).unwrap_or(&[]))),
            ),
            Field::new("bytes per sector", 11, 2, self.bytes_per_sector),
            Field::new("sectors per cluster", 13, 1, self.sectors_per_cluster),
            Field::new("reserved sectors", 14, 2, self.reserved_sectors),
            Field::new("number of FATs", 16, 1, self.fat_count),
            Field::new("root directory entries", 17, 2, self.root_entries),
            Field::new("total sectors (16-bit)", 19, 2, self.total_sectors_16),
            Field::hex("media descriptor", 21, 1, self.media),
            Field::new("sectors per FAT (16-bit)", 22, 2, self.fat_size_16),
            Field::new("sectors per track", 24, 2, self.sectors_per_track),
            Field::new("number of heads", 26, 2, self.heads),
            Field::new("hidden sectors", 28, 4, self.hidden_sectors),
            Field::new("total sectors (32-bit)", 32, 4, self.total_sectors_32),
        ];
        let e: u64 = if self.fat32_layout {
            f.extend([
                Field::new("sectors per FAT (32-bit)", 36, 4, self.fat_size_32),
                Field::hex("extended flags", 40, 2, self.ext_flags),
                Field::hex("file system version", 42, 2, self.fs_version),
                Field::new("root directory cluster", 44, 4, self.root_cluster),
                Field::new("FSInfo sector", 48, 2, self.fsinfo_sector),
                Field::new("backup boot sector", 50, 2, self.backup_boot_sector),
                Field::new("reserved bytes 52-63", 52, 12, block(r, 52, 64)),
            ]);
            64
        } else {
            36
        };
        let eu = e as usize;
        f.extend([
            Field::hex("drive number", e, 1, self.drive_number),
            Field::new(
                "reserved byte",
                e + 1,
                1,
                format!("0x{:02x}", r.get(eu + 1).copied().unwrap_or(0)),
            ),
            Field::hex("extended boot signature", e + 2, 1, self.ext_boot_signature),
            Field::bare_hex("volume ID", e + 3, self.volume_id),
            Field::new(
                "volume label",
                e + 7,
                11,
                format!("{:?}", printable(r.get(eu + 7..eu + 18).unwrap_or(&[]))),
            ),
            Field::new(
                "file system type",
                e + 18,
                8,
                format!("{:?}", printable(r.get(eu + 18..eu + 26).unwrap_or(&[]))),
            ),
            Field::new("boot code", e + 26, 510 - (e + 26), block(r, eu + 26, 510)),
            Field::hex("boot signature", 510, 2, self.signature),
        ]);
        f
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn block(r: &[u8], a: usize, b: usize) -> String {
    crate::codec::partition::mbr::digest_or_zero(r.get(a..b).unwrap_or(&[]))
}

/// True when a 512-byte sector carries a plausible FAT BPB (used to tell a bare volume from
/// an MBR, which has no BPB).
pub fn looks_like_boot_sector(s: &[u8]) -> bool {
    let Ok(s) = <&[u8; 512]>::try_from(s) else {
        return false;
    };
    let b = BootSector::parse(s);
    matches!(b.jump[0], 0xEB | 0xE9)
        && matches!(b.bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && b.sectors_per_cluster.is_power_of_two()
        && b.reserved_sectors >= 1
        && b.fat_count >= 1
        && b.total_sectors() > 0
        && b.fat_sectors() > 0
}

/// The FSInfo sector of a FAT32 volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsInfo {
    /// Byte offset in the volume.
    pub offset: u64,
    pub lead_signature: u32,
    pub struct_signature: u32,
    pub free_count: u32,
    pub next_free: u32,
    pub trail_signature: u32,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl FsInfo {
    /// Every field with its byte range (relative to the volume).
    pub fn fields(&self) -> Vec<Field> {
        let o = self.offset;
        vec![
            Field::hex("lead signature", o, 4, self.lead_signature),
            Field::new("reserved bytes 4-483", o + 4, 480, block(&self.raw, 4, 484)),
            Field::hex("structure signature", o + 484, 4, self.struct_signature),
            Field::new("free cluster count", o + 488, 4, self.free_count),
            Field::new("next free cluster", o + 492, 4, self.next_free),
            Field::new(
                "reserved bytes 496-507",
                o + 496,
                12,
                block(&self.raw, 496, 508),
            ),
            Field::hex("trail signature", o + 508, 4, self.trail_signature),
        ]
    }
}

/// Where everything is on the volume, in bytes from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub kind: FatType,
    pub bytes_per_sector: u64,
    pub cluster_size: u64,
    /// Data clusters (numbered 2..cluster_count+2).
    pub cluster_count: u32,
    pub fat_offset: u64,
    /// Bytes per FAT copy.
    pub fat_len: u64,
    pub fat_count: u8,
    /// FAT12/16 fixed root directory (zero length on FAT32).
    pub root_dir_offset: u64,
    pub root_dir_len: u64,
    pub data_offset: u64,
    /// total_sectors * bytes_per_sector.
    pub volume_len: u64,
}

impl Geometry {
    /// Byte offset of a data cluster (2-based).
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster.saturating_sub(2)) * self.cluster_size
    }

    /// The data cluster holding a volume byte offset, if it is in the data region.
    pub fn cluster_at(&self, offset: u64) -> Option<u32> {
        if offset < self.data_offset {
            return None;
        }
        let c = (offset - self.data_offset) / self.cluster_size;
        (c < u64::from(self.cluster_count)).then_some(c as u32 + 2)
    }

    /// Byte offset and length of cluster `cluster`'s entry in FAT copy `copy`.
    pub fn fat_entry_range(&self, copy: u8, cluster: u32) -> (u64, u64) {
        let base = self.fat_offset + u64::from(copy) * self.fat_len;
        let c = u64::from(cluster);
        match self.kind {
            FatType::Fat12 => (base + c * 3 / 2, 2),
            FatType::Fat16 => (base + c * 2, 2),
            FatType::Fat32 => (base + c * 4, 4),
        }
    }

    /// Smallest entry value that marks the end of a chain.
    pub fn end_of_chain(&self) -> u32 {
        match self.kind {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    /// The bad-cluster mark.
    pub fn bad_cluster(&self) -> u32 {
        self.end_of_chain() - 1
    }
}

/// A FAT date and time as stored, and the instant it means when read as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FatTime {
    pub date: u16,
    pub time: u16,
    /// Creation time's 10 ms units (0..=199); 0 for other stamps.
    pub tenths: u8,
    /// Seconds since 1970 (UTC), `None` when the fields are not a valid date and time.
    pub unix: Option<i64>,
}

impl FatTime {
    fn new(date: u16, time: u16, tenths: u8) -> FatTime {
        FatTime {
            date,
            time,
            tenths,
            unix: decode_time(date, time, tenths),
        }
    }
}

impl std::fmt::Display for FatTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unix {
            Some(t) => write!(f, "{} ({t})", iso8601(t)),
            None => write!(
                f,
                "invalid (date 0x{:04x}, time 0x{:04x})",
                self.date, self.time
            ),
        }
    }
}

/// A file or directory on the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatEntry {
    /// Full path `a/b/c` (long names when present and valid, else the 8.3 names).
    pub path: String,
    /// The 8.3 name as displayed (`VMLINU~1.RPI`), with the case bits applied.
    pub short_name: String,
    /// The 11 raw name bytes.
    #[serde(skip)]
    pub short_name_raw: [u8; 11],
    /// The long name, when LFN entries precede the short entry and their checksum matches.
    pub long_name: Option<String>,
    /// Why LFN entries before this entry were ignored, if any were.
    pub long_name_problem: Option<String>,
    pub attributes: u8,
    pub is_dir: bool,
    /// The NT reserved byte (case bits 0x08 base, 0x10 extension).
    pub nt_flags: u8,
    pub size: u32,
    pub first_cluster: u32,
    pub created: FatTime,
    pub modified: FatTime,
    /// Access date only (the time field is zero).
    pub accessed: FatTime,
    /// Byte offset of the 32-byte short entry in the volume.
    pub entry_offset: u64,
    /// Byte offsets of the LFN slots that precede it (in on-disk order).
    pub lfn_offsets: Vec<u64>,
}

impl FatEntry {
    /// Parses a raw 32-byte short entry found at volume offset `offset` (no long name).
    pub fn from_slot(b: &[u8; 32], offset: u64) -> FatEntry {
        short_entry(b, offset, "")
    }

    /// The attribute bits as letters (`RHSVDA`, `-` for unset).
    pub fn attribute_letters(&self) -> String {
        [
            (ATTR_READ_ONLY, 'R'),
            (ATTR_HIDDEN, 'H'),
            (ATTR_SYSTEM, 'S'),
            (ATTR_VOLUME_ID, 'V'),
            (ATTR_DIRECTORY, 'D'),
            (ATTR_ARCHIVE, 'A'),
        ]
        .iter()
        .map(|&(bit, c)| if self.attributes & bit != 0 { c } else { '-' })
        .collect()
    }

    /// Every field of the short entry with its byte range in the volume.
    pub fn fields(&self) -> Vec<Field> {
        let o = self.entry_offset;
        vec![
            Field::new(
                "short name",
                o,
                11,
                format!("{:?}", printable(&self.short_name_raw)),
            ),
            Field::new(
                "attributes",
                o + 11,
                1,
                format!("0x{:02x} ({})", self.attributes, self.attribute_letters()),
            ),
            Field::hex("case flags", o + 12, 1, self.nt_flags),
            Field::new(
                "create time",
                o + 13,
                5,
                format!("{} [tenths {}]", self.created, self.created.tenths),
            ),
            Field::new("access date", o + 18, 2, self.accessed),
            Field::new(
                "first cluster (high word)",
                o + 20,
                2,
                self.first_cluster >> 16,
            ),
            Field::new("modify time", o + 22, 4, self.modified),
            Field::new("first cluster", o + 26, 2, self.first_cluster & 0xFFFF),
            Field::new("size", o + 28, 4, self.size),
        ]
    }
}

/// One raw 32-byte slot of a directory, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A long-name part: sequence byte, checksum, 13 UTF-16 units.
    LongName {
        ord: u8,
        checksum: u8,
        units: [u16; 13],
    },
    /// A short entry (file, directory, `.`/`..`, or the volume label).
    Short,
    /// A deleted entry (first byte 0xE5).
    Deleted,
    /// The end marker (first byte 0x00) and everything after it.
    Free,
}

/// A directory's slots with their volume offsets and raw bytes.
#[derive(Debug, Clone)]
pub struct DirListing {
    /// The directory's path ("" for the root).
    pub path: String,
    /// (volume offset, kind, raw bytes) for every slot, including those after the end marker.
    pub slots: Vec<(u64, Slot, [u8; 32])>,
}

/// An open FAT volume.
pub struct FatVolume<R> {
    dev: Device<R>,
    /// The boot sector as read.
    pub boot: BootSector,
    /// Derived layout.
    pub geometry: Geometry,
    /// FAT32 FSInfo, when the boot sector points at one inside the reserved area.
    pub fsinfo: Option<FsInfo>,
    /// The active FAT, entry per cluster (index = cluster number).
    fat: Vec<u32>,
}

impl<R: Read + Seek> FatVolume<R> {
    /// Opens the volume found at byte `offset` of `reader`, `len` bytes long.
    pub fn open(reader: R, offset: u64, len: u64) -> Result<Self, ReadError> {
        let mut dev = Device::new(reader, offset, len, "the FAT volume")?;
        let mut s = [0u8; 512];
        dev.read_at(0, &mut s, "FAT boot sector")?;
        let boot = BootSector::parse(&s);
        let geometry = geometry(&boot, len)?;
        let mut v = FatVolume {
            dev,
            boot,
            geometry,
            fsinfo: None,
            fat: Vec::new(),
        };
        let active = if v.geometry.kind == FatType::Fat32 && v.boot.ext_flags & 0x80 != 0 {
            (v.boot.ext_flags & 0x0F) as u8
        } else {
            0
        };
        if active >= v.geometry.fat_count {
            return Err(ReadError::invalid(
                "FAT32 extended flags",
                40,
                format!(
                    "name FAT {active} as active but there are {}",
                    v.geometry.fat_count
                ),
            ));
        }
        v.fat = v.read_fat(active)?;
        if v.geometry.kind == FatType::Fat32 {
            let sector = u64::from(v.boot.fsinfo_sector);
            if sector >= 1 && sector < u64::from(v.boot.reserved_sectors) {
                let off = sector * v.geometry.bytes_per_sector;
                let raw = v.dev.read_vec(off, 512, "FAT32 FSInfo sector")?;
                v.fsinfo = Some(FsInfo {
                    offset: off,
                    lead_signature: le32(&raw, 0),
                    struct_signature: le32(&raw, 484),
                    free_count: le32(&raw, 488),
                    next_free: le32(&raw, 492),
                    trail_signature: le32(&raw, 508),
                    raw,
                });
            }
        }
        Ok(v)
    }

    /// Volume label from the boot sector.
    pub fn label(&self) -> &str {
        &self.boot.volume_label
    }

    /// Reads FAT copy `copy` as one value per cluster (index 0..cluster_count+2).
    pub fn read_fat(&mut self, copy: u8) -> Result<Vec<u32>, ReadError> {
        let g = self.geometry;
        if copy >= g.fat_count {
            return Err(ReadError::invalid(
                "FAT",
                g.fat_offset,
                format!("there is no FAT {copy}"),
            ));
        }
        let entries = u64::from(g.cluster_count) + 2;
        let needed = match g.kind {
            FatType::Fat12 => (entries * 3).div_ceil(2),
            FatType::Fat16 => entries * 2,
            FatType::Fat32 => entries * 4,
        };
        let base = g.fat_offset + u64::from(copy) * g.fat_len;
        let raw = self
            .dev
            .read_vec(base, needed, &format!("FAT {}", copy + 1))?;
        let mut fat = Vec::with_capacity(entries as usize);
        for c in 0..entries as usize {
            let v = match g.kind {
                FatType::Fat12 => {
                    let w = u32::from(le16(&raw, c * 3 / 2));
                    if c % 2 == 0 {
                        w & 0x0FFF
                    } else {
                        w >> 4
                    }
                }
                FatType::Fat16 => u32::from(le16(&raw, c * 2)),
                FatType::Fat32 => le32(&raw, c * 4) & 0x0FFF_FFFF,
            };
            fat.push(v);
        }
        Ok(fat)
    }

    /// The active FAT's value for `cluster` (0 when out of range).
    pub fn fat_value(&self, cluster: u32) -> u32 {
        self.fat.get(cluster as usize).copied().unwrap_or(0)
    }

    fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < u64::from(self.geometry.cluster_count) + 2
    }

    /// The cluster chain from `first`, for `what`: stops at end-of-chain, fails on a free,
    /// bad or out-of-range link and on a cluster seen twice. `limit` caps the clusters
    /// returned (the chain is not followed further).
    pub fn chain(&self, first: u32, limit: Option<u64>, what: &str) -> Result<Vec<u32>, ReadError> {
        let g = &self.geometry;
        let mut out = Vec::new();
        let mut seen = vec![0u64; (g.cluster_count as usize + 2).div_ceil(64)];
        let mut c = first;
        loop {
            if limit.is_some_and(|l| out.len() as u64 >= l) {
                return Ok(out);
            }
            if !self.valid_cluster(c) {
                return Err(ReadError::invalid(
                    what,
                    self.fat_link_offset(out.last().copied()),
                    format!(
                        "cluster chain {} cluster {c}, outside the data area (2..{})",
                        if out.is_empty() {
                            "starts at"
                        } else {
                            "links to"
                        },
                        u64::from(g.cluster_count) + 2
                    ),
                ));
            }
            let (w, bit) = (c as usize / 64, c % 64);
            if let Some(word) = seen.get_mut(w) {
                if *word & (1 << bit) != 0 {
                    return Err(ReadError::invalid(
                        what,
                        self.fat_link_offset(out.last().copied()),
                        format!("cluster chain loops: cluster {c} appears twice"),
                    ));
                }
                *word |= 1 << bit;
            }
            out.push(c);
            let next = self.fat_value(c);
            if next >= g.end_of_chain() {
                return Ok(out);
            }
            if next == 0 || next == g.bad_cluster() {
                return Err(ReadError::invalid(
                    what,
                    self.fat_link_offset(Some(c)),
                    format!(
                        "cluster {c} links to {} (a {} cluster) instead of the next cluster or end of chain",
                        next,
                        if next == 0 { "free" } else { "bad" }
                    ),
                ));
            }
            c = next;
        }
    }

    /// Volume offset of the active FAT's entry for `cluster` (or the FAT start).
    fn fat_link_offset(&self, cluster: Option<u32>) -> u64 {
        cluster.map_or(self.geometry.fat_offset, |c| {
            self.geometry.fat_entry_range(0, c).0
        })
    }

    /// Reads raw bytes of the volume (bounded by its length).
    pub fn read_raw(&mut self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, ReadError> {
        self.dev.read_vec(offset, len, what)
    }

    /// Fills `buf` from volume offset `offset`.
    pub fn read_raw_into(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), ReadError> {
        self.dev.read_at(offset, buf, what)
    }

    /// The byte ranges (volume offset, length) of a directory's storage: the fixed root
    /// region, or its clusters.
    pub fn dir_extents(
        &self,
        first_cluster: Option<u32>,
        what: &str,
    ) -> Result<Vec<(u64, u64)>, ReadError> {
        let g = self.geometry;
        let first = match first_cluster {
            None if g.kind != FatType::Fat32 => {
                return Ok(vec![(g.root_dir_offset, g.root_dir_len)])
            }
            None => self.boot.root_cluster,
            Some(c) => c,
        };
        let limit = MAX_DIR_SLOTS * DIR_ENTRY_LEN / g.cluster_size;
        let chain = self.chain(first, Some(limit.max(1)), what)?;
        Ok(chain
            .iter()
            .map(|&c| (g.cluster_offset(c), g.cluster_size))
            .collect())
    }

    /// Every slot of a directory (`None` = root), raw and classified.
    pub fn dir_listing(&mut self, dir: Option<&FatEntry>) -> Result<DirListing, ReadError> {
        let path = dir.map_or(String::new(), |d| d.path.clone());
        let what = if path.is_empty() {
            "root directory".to_string()
        } else {
            format!("directory {path}")
        };
        let extents = self.dir_extents(dir.map(|d| d.first_cluster), &what)?;
        let mut slots = Vec::new();
        let mut ended = false;
        for (off, len) in extents {
            let data = self.dev.read_vec(off, len, &what)?;
            for (i, raw) in data.chunks_exact(DIR_ENTRY_LEN as usize).enumerate() {
                let mut b = [0u8; 32];
                b.copy_from_slice(raw);
                let slot = if ended || b[0] == 0 {
                    ended = true;
                    Slot::Free
                } else if b[0] == 0xE5 {
                    Slot::Deleted
                } else if b[11] & 0x3F == ATTR_LONG_NAME {
                    let mut units = [0u16; 13];
                    for (k, at) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                        .iter()
                        .enumerate()
                    {
                        units[k] = le16(&b, *at);
                    }
                    Slot::LongName {
                        ord: b[0],
                        checksum: b[13],
                        units,
                    }
                } else {
                    Slot::Short
                };
                slots.push((off + i as u64 * DIR_ENTRY_LEN, slot, b));
            }
        }
        Ok(DirListing { path, slots })
    }

    /// The entries of one directory listing (no `.`/`..`, no volume label), with long names.
    pub fn entries_in(&self, listing: &DirListing) -> Vec<FatEntry> {
        let mut out = Vec::new();
        let mut lfn: Vec<(u64, u8, u8, [u16; 13])> = Vec::new();
        for (off, slot, b) in &listing.slots {
            match slot {
                Slot::LongName {
                    ord,
                    checksum,
                    units,
                } => lfn.push((*off, *ord, *checksum, *units)),
                Slot::Deleted => lfn.clear(),
                Slot::Free => break,
                Slot::Short => {
                    let parts = std::mem::take(&mut lfn);
                    let attr = b[11];
                    if attr & ATTR_VOLUME_ID != 0 || b[0] == b'.' {
                        continue;
                    }
                    let mut e = short_entry(b, *off, &listing.path);
                    if !parts.is_empty() {
                        match assemble_long_name(&parts, &e.short_name_raw) {
                            Ok(name) => e.long_name = Some(name),
                            Err(why) => e.long_name_problem = Some(why),
                        }
                        e.lfn_offsets = parts.iter().map(|p| p.0).collect();
                    }
                    let name = e.long_name.clone().unwrap_or_else(|| e.short_name.clone());
                    e.path = if listing.path.is_empty() {
                        name
                    } else {
                        format!("{}/{name}", listing.path)
                    };
                    out.push(e);
                }
            }
        }
        out
    }

    /// The volume label entry in the root directory, if there is one.
    pub fn label_entry(&mut self) -> Result<Option<FatEntry>, ReadError> {
        let root = self.dir_listing(None)?;
        Ok(root.slots.iter().find_map(|(off, slot, b)| {
            (*slot == Slot::Short && b[11] & 0x3F != ATTR_LONG_NAME && b[11] & ATTR_VOLUME_ID != 0)
                .then(|| short_entry(b, *off, ""))
        }))
    }

    /// Every file and directory on the volume, parents before children, in on-disk order.
    pub fn entries(&mut self) -> Result<Vec<FatEntry>, ReadError> {
        Ok(self.walk()?.into_iter().flat_map(|(_, e)| e).collect())
    }

    /// Every directory listing (root first) with its entries.
    pub fn walk(&mut self) -> Result<Vec<(DirListing, Vec<FatEntry>)>, ReadError> {
        let mut out: Vec<(DirListing, Vec<FatEntry>)> = Vec::new();
        let mut seen_dirs = vec![0u64; (self.geometry.cluster_count as usize + 2).div_ceil(64)];
        let mut total = 0usize;
        // (directory entry or root, depth)
        let mut stack: Vec<(Option<FatEntry>, usize)> = vec![(None, 0)];
        while let Some((dir, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                let d = dir.as_ref();
                return Err(ReadError::Limit {
                    what: format!("directory nesting at {}", d.map_or("", |d| d.path.as_str())),
                    offset: d.map_or(0, |d| d.entry_offset),
                    value: depth as u64,
                    max: MAX_DEPTH as u64,
                });
            }
            if let Some(d) = &dir {
                // A directory cluster reached twice means a cycle or shared storage.
                let what = format!("directory {}", d.path);
                for (off, _) in self.dir_extents(Some(d.first_cluster), &what)? {
                    let c = self.geometry.cluster_at(off).unwrap_or(0);
                    let (w, bit) = (c as usize / 64, c % 64);
                    if let Some(word) = seen_dirs.get_mut(w) {
                        if *word & (1 << bit) != 0 {
                            return Err(ReadError::invalid(
                                what,
                                d.entry_offset,
                                format!("uses cluster {c}, which another directory already uses (a loop in the directory tree)"),
                            ));
                        }
                        *word |= 1 << bit;
                    }
                }
            }
            let listing = self.dir_listing(dir.as_ref())?;
            let entries = self.entries_in(&listing);
            total += entries.len();
            if total > MAX_ENTRIES {
                return Err(ReadError::Limit {
                    what: "entries on the volume".into(),
                    offset: listing.slots.first().map_or(0, |s| s.0),
                    value: total as u64,
                    max: MAX_ENTRIES as u64,
                });
            }
            for e in entries.iter().rev() {
                if e.is_dir {
                    if e.first_cluster == 0 {
                        return Err(ReadError::invalid(
                            format!("directory entry {}", e.path),
                            e.entry_offset,
                            "is a directory with no first cluster",
                        ));
                    }
                    stack.push((Some(e.clone()), depth + 1));
                }
            }
            out.push((listing, entries));
        }
        Ok(out)
    }

    /// Finds a file or directory by path (exact first, then ignoring ASCII case).
    pub fn find(&mut self, path: &str) -> Result<FatEntry, ReadError> {
        let want = path.trim_matches('/');
        let all = self.entries()?;
        if let Some(e) = all.iter().find(|e| e.path == want) {
            return Ok(e.clone());
        }
        all.into_iter()
            .find(|e| e.path.eq_ignore_ascii_case(want))
            .ok_or_else(|| ReadError::NotFound {
                path: want.to_string(),
            })
    }

    /// The clusters holding a file's data: exactly as many as its size needs.
    pub fn file_clusters(&self, e: &FatEntry) -> Result<Vec<u32>, ReadError> {
        let g = &self.geometry;
        let what = format!("file {}", e.path);
        let needed = u64::from(e.size).div_ceil(g.cluster_size);
        if needed > u64::from(g.cluster_count) {
            return Err(ReadError::invalid(
                what,
                e.entry_offset + 28,
                format!(
                    "size {} needs {needed} clusters but the volume has {}",
                    e.size, g.cluster_count
                ),
            ));
        }
        if needed == 0 {
            return Ok(Vec::new());
        }
        let chain = self.chain(e.first_cluster, Some(needed), &what)?;
        if (chain.len() as u64) < needed {
            return Err(ReadError::invalid(
                what,
                e.entry_offset + 28,
                format!(
                    "size {} needs {needed} clusters but the chain from cluster {} ends after {}",
                    e.size,
                    e.first_cluster,
                    chain.len()
                ),
            ));
        }
        // The chain must end where the size does: a longer chain (or one that loops back
        // after the file's last cluster) is damage, as fsck.vfat says.
        let last = chain[chain.len() - 1];
        let next = self.fat_value(last);
        if next < g.end_of_chain() {
            return Err(ReadError::invalid(
                what,
                self.fat_link_offset(Some(last)),
                format!(
                    "size {} needs {needed} clusters but the chain goes on: its last cluster {last} links to {next} instead of ending",
                    e.size
                ),
            ));
        }
        Ok(chain)
    }

    /// Streams a file's content into `out`; returns the bytes written (its size).
    pub fn copy_file(&mut self, e: &FatEntry, out: &mut dyn Write) -> Result<u64, ReadError> {
        if e.is_dir {
            return Err(ReadError::invalid(
                format!("'{}'", e.path),
                e.entry_offset,
                "is a directory",
            ));
        }
        let chain = self.file_clusters(e)?;
        let cs = self.geometry.cluster_size;
        let mut left = u64::from(e.size);
        let mut buf = vec![0u8; cs as usize];
        let what = format!("file {}", e.path);
        for c in chain {
            let n = left.min(cs) as usize;
            let off = self.geometry.cluster_offset(c);
            self.dev.read_at(off, &mut buf[..n], &what)?;
            out.write_all(&buf[..n]).map_err(|source| ReadError::Io {
                what: format!("writing out {what}"),
                offset: off,
                source,
            })?;
            left -= n as u64;
        }
        Ok(u64::from(e.size))
    }

    /// A file's content (bounded by its size, which the volume size bounds).
    pub fn read_entry(&mut self, e: &FatEntry) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::with_capacity((e.size as usize).min(self.geometry.volume_len as usize));
        self.copy_file(e, &mut out)?;
        Ok(out)
    }

    /// A file's content by path.
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, ReadError> {
        let e = self.find(path)?;
        self.read_entry(&e)
    }

    /// SHA-256 of a file's content, streamed.
    pub fn sha256_file(&mut self, e: &FatEntry) -> Result<[u8; 32], ReadError> {
        let mut h = HashWriter(Sha256::new());
        self.copy_file(e, &mut h)?;
        Ok(h.0.finalize().into())
    }

    /// The volume's reader back.
    pub fn into_inner(self) -> R {
        self.dev.into_inner()
    }
}

/// A `Write` that hashes what it is given.
pub struct HashWriter(pub Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn geometry(b: &BootSector, len: u64) -> Result<Geometry, ReadError> {
    let bad = |offset: u64, field: &str, message: String| {
        ReadError::invalid(format!("FAT boot sector field '{field}'"), offset, message)
    };
    let bps = u64::from(b.bytes_per_sector);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return Err(bad(
            11,
            "bytes per sector",
            format!("is {bps}, not 512, 1024, 2048 or 4096"),
        ));
    }
    let spc = u64::from(b.sectors_per_cluster);
    if spc == 0 || !spc.is_power_of_two() {
        return Err(bad(
            13,
            "sectors per cluster",
            format!("is {spc}, not a power of two"),
        ));
    }
    let cluster_size = spc * bps;
    if b.reserved_sectors == 0 {
        return Err(bad(14, "reserved sectors", "is 0".into()));
    }
    if b.fat_count == 0 {
        return Err(bad(16, "number of FATs", "is 0".into()));
    }
    let total = b.total_sectors();
    if total == 0 {
        return Err(bad(
            19,
            "total sectors",
            "both total-sector fields are 0".into(),
        ));
    }
    let volume_len = total * bps;
    if volume_len > len {
        return Err(ReadError::Truncated {
            what: format!("FAT volume of {total} sectors"),
            offset: 0,
            needed: volume_len,
            end: len,
        });
    }
    let fat_sectors = b.fat_sectors();
    if fat_sectors == 0 {
        return Err(bad(22, "sectors per FAT", "is 0".into()));
    }
    let root_dir_sectors = (u64::from(b.root_entries) * DIR_ENTRY_LEN).div_ceil(bps);
    let reserved = u64::from(b.reserved_sectors);
    let data_sector = reserved + u64::from(b.fat_count) * fat_sectors + root_dir_sectors;
    if data_sector >= total {
        return Err(bad(
            22,
            "sectors per FAT",
            format!("reserved, FAT and root directory sectors ({data_sector}) leave no data area in {total} sectors"),
        ));
    }
    let clusters = (total - data_sector) / spc;
    let kind = FatType::for_clusters(clusters);
    if clusters > 0x0FFF_FFF5 {
        return Err(bad(
            32,
            "total sectors",
            format!("give {clusters} clusters, more than FAT32 can address"),
        ));
    }
    if kind == FatType::Fat32 {
        if !b.fat32_layout {
            return Err(bad(
                22,
                "sectors per FAT (16-bit)",
                format!("is set, but {clusters} clusters make this FAT32"),
            ));
        }
        let rc = u64::from(b.root_cluster);
        if rc < 2 || rc >= clusters + 2 {
            return Err(bad(
                44,
                "root directory cluster",
                format!("is {rc}, outside 2..{}", clusters + 2),
            ));
        }
    } else if b.root_entries == 0 {
        return Err(bad(
            17,
            "root directory entries",
            format!("is 0 on a {kind} volume"),
        ));
    }
    let entry_bits = match kind {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    };
    let fat_len = fat_sectors * bps;
    if (clusters + 2) * entry_bits > fat_len * 8 {
        return Err(bad(
            22,
            "sectors per FAT",
            format!(
                "{fat_sectors} sectors cannot hold {} {kind} entries",
                clusters + 2
            ),
        ));
    }
    Ok(Geometry {
        kind,
        bytes_per_sector: bps,
        cluster_size,
        cluster_count: clusters as u32,
        fat_offset: reserved * bps,
        fat_len,
        fat_count: b.fat_count,
        root_dir_offset: (reserved + u64::from(b.fat_count) * fat_sectors) * bps,
        root_dir_len: root_dir_sectors * bps,
        data_offset: data_sector * bps,
        volume_len,
    })
}

/// The checksum of an 8.3 name that LFN entries carry.
pub fn short_name_checksum(name: &[u8; 11]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &c| (sum >> 1 | (sum & 1) << 7).wrapping_add(c))
}

fn short_entry(b: &[u8; 32], offset: u64, _parent: &str) -> FatEntry {
    let mut raw = [0u8; 11];
    raw.copy_from_slice(&b[..11]);
    let nt = b[12];
    let mut base: Vec<u8> = raw[..8].to_vec();
    if base.first() == Some(&0x05) {
        base[0] = 0xE5;
    }
    let mut base = latin(&base).trim_end().to_string();
    let mut ext = latin(&raw[8..]).trim_end().to_string();
    if nt & 0x08 != 0 {
        base = base.to_lowercase();
    }
    if nt & 0x10 != 0 {
        ext = ext.to_lowercase();
    }
    let short_name = if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    };
    let first_cluster = u32::from(le16(b, 20)) << 16 | u32::from(le16(b, 26));
    let attributes = b[11];
    FatEntry {
        path: short_name.clone(),
        short_name,
        short_name_raw: raw,
        long_name: None,
        long_name_problem: None,
        attributes,
        is_dir: attributes & ATTR_DIRECTORY != 0,
        nt_flags: nt,
        size: le32(b, 28),
        first_cluster,
        created: FatTime::new(le16(b, 16), le16(b, 14), b[13]),
        modified: FatTime::new(le16(b, 24), le16(b, 22), 0),
        accessed: FatTime::new(le16(b, 18), 0, 0),
        entry_offset: offset,
        lfn_offsets: Vec::new(),
    }
}

/// Short names are OEM code page bytes; show ASCII as is and the rest as Latin-1.
fn latin(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Joins LFN parts (in on-disk order: last part first) into a name, checking order and checksum.
fn assemble_long_name(
    parts: &[(u64, u8, u8, [u16; 13])],
    short: &[u8; 11],
) -> Result<String, String> {
    let n = parts.len();
    let sum = short_name_checksum(short);
    for (i, (_, ord, checksum, _)) in parts.iter().enumerate() {
        let expect = (n - i) as u8 | if i == 0 { 0x40 } else { 0 };
        if *ord != expect {
            return Err(format!(
                "long-name entry {} has sequence byte 0x{ord:02x}, expected 0x{expect:02x}",
                i + 1
            ));
        }
        if *checksum != sum {
            return Err(format!(
                "long-name entry {} has checksum 0x{checksum:02x} but the short name's is 0x{sum:02x}",
                i + 1
            ));
        }
    }
    let mut units = Vec::with_capacity(n * 13);
    for (_, _, _, u) in parts.iter().rev() {
        units.extend_from_slice(u);
    }
    if let Some(end) = units.iter().position(|&u| u == 0) {
        units.truncate(end);
    }
    String::from_utf16(&units).map_err(|_| "long name is not valid UTF-16".to_string())
}
