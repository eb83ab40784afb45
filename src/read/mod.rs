//! Readers for everything pimg writes. Images come from strangers: no panic, no allocation
//! beyond what the input's real size allows, no unbounded loop, whatever the bytes.
//!
//! Each reader takes a `Read + Seek` (images) or a `Read` (archives) and checks every length,
//! offset and count it takes from the input against the real size before using it. Errors
//! name what is wrong and the byte offset where it was found.

pub mod cpio;
pub mod fat;
pub mod gpt;
pub mod gzip;
pub mod mbr;
pub mod tar;

use serde::Serialize;
use std::io::{self, Read, Seek, SeekFrom};

pub use crate::disk::TableKind;

/// Sector size of every partition table and volume the readers accept.
pub const SECTOR_SIZE: u64 = 512;

/// Why an image or archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A structure holds a value that breaks its format's rules.
    #[error("{what} at byte {offset}: {message}")]
    Invalid {
        what: String,
        offset: u64,
        message: String,
    },
    /// A structure reaches past the end of the input.
    #[error("{what} at byte {offset}: needs {needed} bytes but the input ends at byte {end}")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        end: u64,
    },
    /// A count or size exceeds what the reader accepts from untrusted input.
    #[error("{what} at byte {offset}: {value} exceeds the limit of {max}")]
    Limit {
        what: String,
        offset: u64,
        value: u64,
        max: u64,
    },
    /// The file (by path) is not on the volume.
    #[error("'{path}' is not on the FAT volume")]
    NotFound { path: String },
    /// The underlying reader failed.
    #[error("reading {what} at byte {offset}: {source}")]
    Io {
        what: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    pub(crate) fn invalid(
        what: impl Into<String>,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        ReadError::Invalid {
            what: what.into(),
            offset,
            message: message.into(),
        }
    }
}

/// A `Read + Seek` seen as `len` bytes starting at `base`, read only at checked offsets.
#[derive(Debug)]
pub struct Device<R> {
    inner: R,
    base: u64,
    len: u64,
}

impl<R: Read + Seek> Device<R> {
    /// Bounds `inner` to [base, base+len) after checking that the real input holds all of it.
    pub fn new(mut inner: R, base: u64, len: u64, what: &str) -> Result<Self, ReadError> {
        let real = inner
            .seek(SeekFrom::End(0))
            .map_err(|source| ReadError::Io {
                what: format!("the size of {what}"),
                offset: 0,
                source,
            })?;
        let end = base.checked_add(len).ok_or_else(|| {
            ReadError::invalid(what, base, format!("length {len} overflows the offset"))
        })?;
        if end > real {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset: base,
                needed: len,
                end: real,
            });
        }
        Ok(Device { inner, base, len })
    }

    /// Bytes in the window.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the window starts in the underlying reader.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Fills `buf` from window offset `offset`, or fails naming `what` when out of bounds.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
        let need = buf.len() as u64;
        if offset.checked_add(need).is_none_or(|end| end > self.len) {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset,
                needed: need,
                end: self.len,
            });
        }
        let io_err = |source| ReadError::Io {
            what: what.to_string(),
            offset,
            source,
        };
        self.inner
            .seek(SeekFrom::Start(self.base + offset))
            .map_err(io_err)?;
        self.inner.read_exact(buf).map_err(io_err)
    }

    /// Reads `len` bytes at `offset` into a new buffer (bounded by the window).
    pub fn read_vec(&mut self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, ReadError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset,
                needed: len,
                end: self.len,
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.read_at(offset, &mut buf, what)?;
        Ok(buf)
    }

    /// Gives the underlying reader back.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// One partition found in the table, in bytes from the start of the disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based entry number in the table.
    pub index: u32,
    /// MBR type byte (MBR tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbr_type: Option<u8>,
    /// MBR active flag.
    pub bootable: bool,
    /// GPT partition type GUID, canonical string (GPT tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_guid: Option<String>,
    /// GPT unique partition GUID, canonical string (GPT tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_guid: Option<String>,
    /// GPT partition name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GPT attribute bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<u64>,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// The partition table of a disk image.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// MBR or GPT.
    #[serde(serialize_with = "kind_str")]
    pub kind: TableKind,
    /// MBR disk signature (MBR tables; GPT's protective MBR keeps its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_signature: Option<u32>,
    /// GPT disk GUID, canonical string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_guid: Option<String>,
    /// Used entries only, in table order.
    pub partitions: Vec<Partition>,
    /// The disk's size in bytes.
    pub disk_size: u64,
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
        // A damaged primary table is replaced by an intact backup, as the kernel does.
        let (header, entries) = match (&g.primary, &g.primary_error, &g.backup, &g.backup_error) {
            (Some(h), None, _, _) => (h, &g.entries),
            (_, _, Some(h), None) => (h, &g.backup_entries),
            _ => {
                return Err(ReadError::invalid(
                    "GPT header",
                    SECTOR_SIZE,
                    g.primary_error
                        .clone()
                        .unwrap_or_else(|| "missing".to_string()),
                ))
            }
        };
        let primary = header;
        let partitions = entries
            .iter()
            .filter(|e| e.is_used())
            .map(|e| Partition {
                index: e.index,
                mbr_type: None,
                bootable: false,
                type_guid: Some(crate::disk::guid_string(&e.type_guid)),
                part_guid: Some(crate::disk::guid_string(&e.unique_guid)),
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
        return Ok(PartitionTable {
            kind: TableKind::Gpt,
            disk_signature: None,
            disk_guid: Some(crate::disk::guid_string(&primary.disk_guid)),
            partitions,
            disk_size,
        });
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
    Ok(PartitionTable {
        kind: TableKind::Mbr,
        disk_signature: Some(m.disk_signature),
        disk_guid: None,
        partitions,
        disk_size,
    })
}

/// What a file is, judged by its content alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A disk image with an MBR or GPT partition table.
    DiskImage,
    /// A bare FAT volume (boot sector at byte 0).
    FatVolume,
    /// gzip around a cpio newc archive.
    GzipCpio,
    /// gzip around a tar archive.
    GzipTar,
    /// gzip around something else.
    Gzip,
    /// An uncompressed cpio newc archive.
    Cpio,
    /// An uncompressed tar archive.
    Tar,
    /// None of the above.
    Unknown,
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::DiskImage => "disk image",
            ArtifactKind::FatVolume => "FAT volume",
            ArtifactKind::GzipCpio => "gzip-compressed cpio archive",
            ArtifactKind::GzipTar => "gzip-compressed tar archive",
            ArtifactKind::Gzip => "gzip stream",
            ArtifactKind::Cpio => "cpio archive",
            ArtifactKind::Tar => "tar archive",
            ArtifactKind::Unknown => "file of unknown format",
        })
    }
}

/// Judges an artifact by its first bytes: MBR/GPT signature, FAT boot sector, gzip magic
/// (then cpio or tar inside), cpio or tar magic.
pub fn detect<R: Read + Seek>(reader: &mut R) -> Result<ArtifactKind, ReadError> {
    let io_err = |source| ReadError::Io {
        what: "the start of the file".into(),
        offset: 0,
        source,
    };
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut head = Vec::with_capacity(1024);
    reader
        .by_ref()
        .take(1024)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    if head.starts_with(&gzip::MAGIC) {
        reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut inner = Vec::with_capacity(512);
        // A damaged stream still counts as gzip; its first decompressed bytes decide the rest.
        if let Ok(mut gz) = gzip::GzipReader::new(&mut *reader, u64::MAX) {
            let _ = gz.by_ref().take(512).read_to_end(&mut inner);
        }
        return Ok(match payload_kind(&inner) {
            ArtifactKind::Cpio => ArtifactKind::GzipCpio,
            ArtifactKind::Tar => ArtifactKind::GzipTar,
            _ => ArtifactKind::Gzip,
        });
    }
    if head.len() >= 512 {
        let sector: &[u8] = &head[..512];
        if fat::looks_like_boot_sector(sector) {
            return Ok(ArtifactKind::FatVolume);
        }
        if sector[510..512] == [0x55, 0xAA] {
            return Ok(ArtifactKind::DiskImage);
        }
    }
    Ok(payload_kind(&head))
}

/// cpio or tar by magic, for the first bytes of an (uncompressed) archive.
pub fn payload_kind(head: &[u8]) -> ArtifactKind {
    if head.starts_with(cpio::MAGIC_NEWC) || head.starts_with(cpio::MAGIC_CRC) {
        ArtifactKind::Cpio
    } else if head.len() >= 512 && tar::looks_like_header(&head[..512]) {
        ArtifactKind::Tar
    } else {
        ArtifactKind::Unknown
    }
}

/// Little-endian field helpers over slices whose length the caller has checked.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
        .unwrap_or(0)
}

/// Bytes as printable text: ASCII kept, everything else escaped.
pub fn printable(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// CRC-32 (IEEE), as gzip and GPT use it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

/// One named field of an on-disk structure: where it is and what it holds, for diff and
/// inspect. `offset` is relative to the artifact the structure was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub value: String,
}

impl Field {
    pub(crate) fn new(
        name: impl Into<String>,
        offset: u64,
        len: u64,
        value: impl ToString,
    ) -> Self {
        Field {
            name: name.into(),
            offset,
            len,
            value: value.to_string(),
        }
    }
}

/// A `Read` that knows how many bytes it has handed out (for offsets in error messages).
pub(crate) struct Counted<R> {
    inner: R,
    pub(crate) pos: u64,
}

impl<R: Read> Counted<R> {
    pub(crate) fn new(inner: R) -> Self {
        Counted { inner, pos: 0 }
    }

    /// Fills `buf` exactly; a short input is `Truncated` at the current offset.
    pub(crate) fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
        let start = self.pos;
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(ReadError::Truncated {
                        what: what.to_string(),
                        offset: start,
                        needed: buf.len() as u64,
                        end: self.pos,
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        what: what.to_string(),
                        offset: self.pos,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes, fewer only at the end of the input.
    pub(crate) fn fill_upto(&mut self, buf: &mut [u8], what: &str) -> Result<usize, ReadError> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        what: what.to_string(),
                        offset: self.pos,
                        source,
                    })
                }
            }
        }
        Ok(got)
    }

    /// Hands exactly `len` bytes to `visit` (which may read any part of them), then skips
    /// whatever it left; a short input is `Truncated`.
    pub(crate) fn section(
        &mut self,
        len: u64,
        what: &str,
        visit: impl FnOnce(&mut dyn Read) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let start = self.pos;
        let mut take = self.by_ref().take(len);
        visit(&mut take)?;
        io::copy(&mut take, &mut io::sink()).map_err(|source| ReadError::Io {
            what: what.to_string(),
            offset: start,
            source,
        })?;
        if self.pos - start < len {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset: start,
                needed: len,
                end: self.pos,
            });
        }
        Ok(())
    }

    /// Counts the bytes left and whether any is nonzero.
    pub(crate) fn rest(&mut self, what: &str) -> Result<(u64, bool), ReadError> {
        let mut buf = [0u8; 8192];
        let (mut n, mut nonzero) = (0u64, false);
        loop {
            let got = self.fill_upto(&mut buf, what)?;
            if got == 0 {
                return Ok((n, nonzero));
            }
            nonzero |= buf[..got].iter().any(|&b| b != 0);
            n += got as u64;
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    //! Each reader against pimg's own writer, and against the hostile inputs it must refuse.
    use super::*;
    use crate::archive::{self, cpio::CpioEntry, tar::TarMeta};
    use crate::disk::{self, DiskLayout};
    use crate::fat::{FatParams, FatType};
    use crate::tree::{Node, Tree, TreePath};
    use std::io::Cursor;

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
        crate::fat::write_fat(&mut v, size as u64, &tree(), &params).unwrap();
        v.into_inner()
    }

    fn open(v: &[u8]) -> Result<fat::FatVolume<Cursor<&[u8]>>, ReadError> {
        fat::FatVolume::open(Cursor::new(v), 0, v.len() as u64)
    }

    #[test]
    fn fat_reads_what_the_writer_wrote() {
        let v = volume();
        let mut vol = open(&v).unwrap();
        assert_eq!(vol.geometry.kind, fat::FatKind::Fat12);
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
        let e = open(&bad)
            .unwrap()
            .read_file("boot/vmlinuz-rpi")
            .unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        // A chain that stops short of the size.
        let mut bad = v.clone();
        set_fat12(&mut bad, chain[1], 0xFFF);
        let e = open(&bad)
            .unwrap()
            .read_file("boot/vmlinuz-rpi")
            .unwrap_err();
        assert!(e.to_string().contains("ends after 2"), "{e}");
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
        let e = open(&bad)
            .unwrap()
            .read_file("boot/vmlinuz-rpi")
            .unwrap_err();
        assert!(e.to_string().contains("needs"), "{e}");
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
        // A damaged primary header falls back to the backup; both damaged is an error.
        let mut bad = d.into_inner();
        bad[512 + 60] ^= 1;
        let t = partitions(Cursor::new(&bad)).unwrap();
        assert_eq!(t.partitions[0].start, 65536);
        let n = bad.len();
        bad[n - 512 + 60] ^= 1;
        let e = partitions(Cursor::new(&bad)).unwrap_err();
        assert!(e.to_string().contains("CRC32"), "{e}");
        // A GPT header announcing a huge entry array is refused without allocating it.
        let mut s = [0u8; 512];
        s[..8].copy_from_slice(gpt::SIGNATURE);
        s[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
        s[84..88].copy_from_slice(&4096u32.to_le_bytes());
        let h = gpt::parse_header(&s, 512);
        assert_eq!(h.entry_array_len(), Some(u64::from(u32::MAX) * 4096));
    }

    #[test]
    fn gzip_roundtrip_corruption_and_bombs() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 7) as u8).collect();
        let gz = archive::gzip::gzip_bytes(&data, 9);
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

    #[test]
    fn cpio_roundtrip_and_hostile_headers() {
        let mut w = archive::cpio::CpioWriter::new(Vec::new());
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
                dev_major: 0,
                dev_minor: 0,
                rdev_major: 0,
                rdev_minor: 0,
                data,
            })
            .unwrap();
        }
        let a = w.finish().unwrap();
        let mut seen = Vec::new();
        let end = cpio::read(&a[..], |h, d| {
            let mut s = Vec::new();
            d.read_to_end(&mut s).unwrap();
            seen.push((h.name.clone(), h.mode(), s));
            Ok(())
        })
        .unwrap();
        assert_eq!(end.entries, 3);
        assert_eq!(
            seen[1],
            ("bin/sh".to_string(), 0o120777, b"busybox".to_vec())
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
        let mut w = archive::tar::TarWriter::new(Vec::new());
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
        let mut seen = Vec::new();
        let end = tar::read(&a[..], |e, d| {
            let mut s = Vec::new();
            d.read_to_end(&mut s).unwrap();
            seen.push((e.path.clone(), e.mode, e.gid, e.link_name.clone(), s));
            Ok(())
        })
        .unwrap();
        assert_eq!((end.entries, end.zero_blocks), (3, 2));
        assert_eq!(seen[0].0, "etc/");
        assert_eq!(
            seen[1],
            (long.clone(), 0o640, 42, String::new(), b"secret".to_vec())
        );
        assert_eq!(seen[2].3, "/etc/init.d/hostname");
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
        let tar_bytes = archive::tar::write_tree(Vec::new(), &tree(), 0).unwrap();
        let gz = archive::gzip::gzip_bytes(&tar_bytes, 6);
        assert_eq!(
            detect(&mut Cursor::new(&gz)).unwrap(),
            ArtifactKind::GzipTar
        );
        assert_eq!(
            detect(&mut Cursor::new(&tar_bytes)).unwrap(),
            ArtifactKind::Tar
        );
        assert_eq!(
            detect(&mut Cursor::new(b"hello")).unwrap(),
            ArtifactKind::Unknown
        );
    }
}
