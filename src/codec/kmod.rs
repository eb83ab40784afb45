//! Kernel module files as packages ship them: `.ko`, or compressed as `.ko.xz`, `.ko.gz` or
//! `.ko.zst`. busybox's `insmod` loads none of the compressed forms, so pimg installs them
//! decompressed. Pure-Rust decoders, bounded output: a module is untrusted input.

use std::io::{self, Read};

/// Largest module pimg decompresses; Debian's largest are a few MiB.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// How a module file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Gzip,
    Zstd,
}

impl Compression {
    /// The file suffix after `.ko`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Xz => ".xz",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// Why a module's bytes could not be recovered.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    #[error("'{suffix}' after .ko is not a module compression pimg reads; use .ko, .ko.xz, .ko.gz or .ko.zst")]
    UnknownCompression { suffix: String },
    #[error(
        "decompressing the module ({format}) failed: {source}; the file is truncated or corrupt"
    )]
    Corrupt {
        format: &'static str,
        source: io::Error,
    },
    #[error("the module decompresses to more than {MAX_MODULE_BYTES} bytes")]
    TooLarge,
}

/// `kernel/fs/fat/vfat.ko.xz` → (`kernel/fs/fat/vfat.ko`, Xz); `None` when the file is not
/// a module at all; an error for a module with an unknown compression suffix.
pub fn split(path: &str) -> Result<Option<(&str, Compression)>, KmodError> {
    if path.ends_with(".ko") {
        return Ok(Some((path, Compression::None)));
    }
    let Some(at) = path.rfind(".ko.") else {
        return Ok(None);
    };
    let (stem, suffix) = (&path[..at + 3], &path[at + 3..]);
    // `.ko.` inside a directory name is not a module suffix.
    if suffix.contains('/') {
        return Ok(None);
    }
    let c = match suffix {
        ".xz" => Compression::Xz,
        ".gz" => Compression::Gzip,
        ".zst" => Compression::Zstd,
        other => {
            return Err(KmodError::UnknownCompression {
                suffix: other.to_string(),
            })
        }
    };
    Ok(Some((stem, c)))
}

/// The module's ELF bytes.
pub fn decompress(data: &[u8], c: Compression) -> Result<Vec<u8>, KmodError> {
    let (format, reader): (&'static str, Box<dyn Read + '_>) = match c {
        Compression::None => return Ok(data.to_vec()),
        Compression::Xz => (
            "xz",
            Box::new(lzma_rust2::XzReader::new_mem_limit(data, false, 64 << 10)),
        ),
        Compression::Gzip => ("gzip", Box::new(flate2::read::GzDecoder::new(data))),
        Compression::Zstd => (
            "zstd",
            Box::new(ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| {
                KmodError::Corrupt {
                    format: "zstd",
                    source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                }
            })?),
        ),
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(3).min(16 << 20));
    let n = reader
        .take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| KmodError::Corrupt { format, source })?;
    if n as u64 > MAX_MODULE_BYTES {
        return Err(KmodError::TooLarge);
    }
    if n == 0 {
        return Err(KmodError::Corrupt {
            format,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "no data"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ELF: &[u8] = b"\x7fELF module bytes, repeated module bytes, repeated module bytes";

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    /// A zstd frame with one raw block, as the format specifies it (no encoder needed).
    fn zst(data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
        // Frame header: single segment, 1-byte content size.
        f.push(0x20);
        f.push(data.len() as u8);
        // Last block, raw, size in the upper 21 bits.
        let h = 1 | ((data.len() as u32) << 3);
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn suffixes() {
        for (name, compression) in [
            ("a/vfat.ko", Compression::None),
            ("a/vfat.ko.xz", Compression::Xz),
            ("a/vfat.ko.gz", Compression::Gzip),
            ("a/vfat.ko.zst", Compression::Zstd),
        ] {
            assert_eq!(split(name).unwrap(), Some(("a/vfat.ko", compression)));
        }
        assert_eq!(split("modules.dep").unwrap(), None);
        assert_eq!(split("x.ko.d/readme").unwrap(), None);
        let e = split("a/vfat.ko.lz4").unwrap_err().to_string();
        assert!(e.contains("'.lz4'") && e.contains(".ko.zst"), "{e}");
    }

    #[test]
    fn every_compression_gives_the_same_elf() {
        assert_eq!(decompress(ELF, Compression::None).unwrap(), ELF);
        assert_eq!(decompress(&xz(ELF), Compression::Xz).unwrap(), ELF);
        assert_eq!(decompress(&gz(ELF), Compression::Gzip).unwrap(), ELF);
        assert_eq!(decompress(&zst(ELF), Compression::Zstd).unwrap(), ELF);
    }

    #[test]
    fn truncated_or_corrupt_streams_are_errors() {
        for (c, data) in [
            (Compression::Xz, xz(ELF)),
            (Compression::Gzip, gz(ELF)),
            (Compression::Zstd, zst(ELF)),
        ] {
            for cut in [0, 3, data.len() / 2, data.len() - 1] {
                let e = decompress(&data[..cut], c);
                assert!(e.is_err(), "{c:?} cut at {cut} was accepted");
            }
            let mut flipped = data.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0xff;
            if let Ok(out) = decompress(&flipped, c) {
                // A raw zstd block carries no checksum: a flipped byte is a changed byte.
                assert_ne!(out, ELF, "{c:?} flip went unnoticed");
            }
        }
    }
}
