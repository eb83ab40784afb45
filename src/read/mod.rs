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
    pub(crate) fn invalid(what: impl Into<String>, offset: u64, message: impl Into<String>) -> Self {
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
        let real = inner.seek(SeekFrom::End(0)).map_err(|source| ReadError::Io {
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
    let disk_size = dev.inner.seek(SeekFrom::End(0)).map_err(|source| ReadError::Io {
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
            format!("is 0x{:04x}, not 0xaa55: no partition table", m.boot_signature),
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
                    g.primary_error.clone().unwrap_or_else(|| "missing".to_string()),
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
    pub(crate) fn new(name: impl Into<String>, offset: u64, len: u64, value: impl ToString) -> Self {
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
