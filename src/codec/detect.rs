//! What a file is, judged by its content alone: disk image, FAT volume, squashfs, gzip, cpio
//! or tar.

use crate::codec::reader::ReadError;
use crate::codec::{cpio::read as cpio, fat::read as fat, gzip::read as gzip, tar::read as tar};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};

/// What a file is, judged by its content alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A disk image with an MBR or GPT partition table.
    DiskImage,
    /// A bare FAT volume (boot sector at byte 0).
    FatVolume,
    /// A squashfs image (magic "hsqs" at byte 0), such as a modloop.
    Squashfs,
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
            ArtifactKind::Squashfs => "squashfs image",
            ArtifactKind::GzipCpio => "gzip-compressed cpio archive",
            ArtifactKind::GzipTar => "gzip-compressed tar archive",
            ArtifactKind::Gzip => "gzip stream",
            ArtifactKind::Cpio => "cpio archive",
            ArtifactKind::Tar => "tar archive",
            ArtifactKind::Unknown => "file of unknown format",
        })
    }
}

/// Judges an artifact by its first bytes: MBR/GPT signature, FAT boot sector, squashfs
/// magic, gzip magic (then cpio or tar inside), cpio or tar magic.
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
    if head.starts_with(&crate::codec::squashfs::MAGIC) {
        return Ok(ArtifactKind::Squashfs);
    }
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
