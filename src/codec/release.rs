//! The compressed forms of a release image (`.img.gz`, `.img.xz`, `.img.zst`): one name per
//! codec, one streaming encoder, one capped decoder.

use super::blocks::{BlockEncoder, Framing};
use super::{gzip, xz, zstd};
use std::io::{self, Read, Write};

/// A codec a release image can be compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    /// gzip at level 9 in independent 256 KiB pieces.
    Gz,
    /// xz: LZMA2 preset 6 in independent 8 MiB blocks.
    Xz,
    /// zstd: level 19, one frame per 8 MiB chunk.
    Zstd,
}

/// The deflate level of a release `.img.gz`.
pub const GZIP_LEVEL: u32 = 9;

/// Why a compressed image could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The compressed data is damaged or not of this codec.
    #[error("{what}: not a valid {codec} stream: {source}")]
    Invalid {
        what: String,
        codec: &'static str,
        source: io::Error,
    },
    /// It decompresses to more bytes than allowed.
    #[error(
        "{what}: decompresses to more than {limit} bytes, the size of the image it should hold"
    )]
    TooLong { what: String, limit: u64 },
}

impl Compression {
    /// Every codec, in the order outputs are written.
    pub const ALL: [Compression; 3] = [Compression::Gz, Compression::Xz, Compression::Zstd];

    /// The name on the command line and in the buildinfo.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gz => "gz",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec of a name as [`Compression::name`] gives it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The file name suffix after `.img`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gz => "gz",
            Compression::Xz => "xz",
            Compression::Zstd => "zst",
        }
    }

    /// The fixed settings, as the buildinfo records them.
    pub fn settings(self) -> String {
        match self {
            Compression::Gz => format!(
                "deflate level {GZIP_LEVEL}, independent pieces of {} bytes",
                gzip::write::CHUNK
            ),
            Compression::Xz => format!(
                "lzma2 preset {}, independent blocks of {} bytes, crc32",
                xz::PRESET,
                xz::BLOCK_SIZE
            ),
            Compression::Zstd => format!(
                "level {}, one frame per {} bytes, checksum, libzstd {}",
                zstd::LEVEL,
                zstd::CHUNK,
                zstd_version()
            ),
        }
    }

    /// Compresses all of `from` into `to` on up to `threads` threads; returns the input's
    /// length. The bytes do not depend on `threads`.
    pub fn compress<R: Read, W: Write>(self, from: R, to: W, threads: usize) -> io::Result<u64> {
        match self {
            Compression::Gz => encode(from, gzip::write::GzEncoder::new(to, GZIP_LEVEL, threads)),
            Compression::Xz => encode(from, xz::XzEncoder::new(to, threads)?),
            Compression::Zstd => encode(from, zstd::ZstdEncoder::new(to, threads)),
        }
    }

    /// Decompresses `from` into `to`, refusing more than `limit` bytes; returns the length.
    /// `what` names the input in errors.
    pub fn decompress_to<R: Read, W: Write>(
        self,
        from: R,
        to: W,
        limit: u64,
        what: &str,
    ) -> Result<u64, DecompressError> {
        let invalid = |source: io::Error| DecompressError::Invalid {
            what: what.to_string(),
            codec: self.name(),
            source,
        };
        let reader: Box<dyn Read + '_> = match self {
            Compression::Gz => Box::new(
                gzip::read::GzipReader::new(from, limit.saturating_add(1))
                    .map_err(|e| invalid(io::Error::new(io::ErrorKind::InvalidData, e)))?,
            ),
            Compression::Xz => Box::new(xz::decoder(from)),
            Compression::Zstd => Box::new(zstd::decoder(from).map_err(invalid)?),
        };
        let mut capped = reader.take(limit.saturating_add(1));
        let n = copy(&mut capped, to).map_err(invalid)?;
        if n > limit {
            return Err(DecompressError::TooLong {
                what: what.to_string(),
                limit,
            });
        }
        Ok(n)
    }
}

/// The libzstd version the zstd codec was built with.
pub fn zstd_version() -> String {
    let v = ::zstd::zstd_safe::version_number();
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// Compresses all of `from` with `encoder`; returns the input's length.
fn encode<R: Read, F: Framing, W: Write>(
    from: R,
    mut encoder: BlockEncoder<F, W>,
) -> io::Result<u64> {
    let n = copy(from, &mut encoder)?;
    encoder.finish()?;
    Ok(n)
}

/// Copies in 1 MiB pieces (the encoders cut their own blocks, so the piece size does not
/// matter to the bytes).
fn copy<R: Read, W: Write>(mut from: R, mut to: W) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..got])?;
        n += got as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_codec_reads_back_what_it_wrote() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        for c in Compression::ALL {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            let mut z = Vec::new();
            assert_eq!(c.compress(&data[..], &mut z, 2).unwrap(), data.len() as u64);
            let mut back = Vec::new();
            let n = c
                .decompress_to(&z[..], &mut back, data.len() as u64, "x")
                .unwrap();
            assert_eq!(n, data.len() as u64);
            assert!(back == data, "{}", c.name());
            let short = c.decompress_to(&z[..], io::sink(), 1000, "x").unwrap_err();
            assert!(matches!(short, DecompressError::TooLong { .. }), "{short}");
        }
        assert_eq!(Compression::from_name("bz2"), None);
    }

    #[test]
    fn every_codec_writes_the_same_bytes_on_any_thread_count() {
        let blocks = [
            (Compression::Gz, gzip::write::CHUNK),
            (Compression::Xz, xz::BLOCK_SIZE),
            (Compression::Zstd, zstd::CHUNK),
        ];
        for (c, block) in blocks {
            // More than two blocks, the last one short.
            let data =
                crate::codec::testdata::mixed(2 * block + 12_345, 0x2545_f491_4f6c_dd1d, 5000);
            let (mut one, mut four) = (Vec::new(), Vec::new());
            c.compress(&data[..], &mut one, 1).unwrap();
            c.compress(&data[..], &mut four, 4).unwrap();
            assert!(
                one == four,
                "{}: 1 and 4 threads wrote different bytes",
                c.name()
            );
            let mut back = Vec::new();
            c.decompress_to(&one[..], &mut back, data.len() as u64, "x")
                .unwrap();
            assert!(back == data, "{}", c.name());
        }
    }

    #[test]
    fn a_flipped_byte_is_refused_by_every_codec() {
        let data = crate::codec::testdata::mixed(100_000, 0x9e37_79b9_7f4a_7c15, 4096);
        for c in Compression::ALL {
            let mut z = Vec::new();
            c.compress(&data[..], &mut z, 1).unwrap();
            let mid = z.len() / 2;
            z[mid] ^= 0x40;
            let r = c.decompress_to(&z[..], io::sink(), 1 << 20, "x");
            assert!(r.is_err(), "{}: a flipped byte went unnoticed", c.name());
        }
    }

    #[test]
    fn garbage_is_refused_by_every_codec() {
        for c in Compression::ALL {
            let e = c
                .decompress_to(&b"not compressed at all"[..], io::sink(), 100, "x")
                .unwrap_err();
            assert!(matches!(e, DecompressError::Invalid { .. }), "{e}");
        }
    }
}
