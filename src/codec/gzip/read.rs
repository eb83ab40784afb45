//! gzip reader (RFC 1952): header fields, the deflate stream through flate2, and the trailer
//! checked against what was decompressed. Output is streamed and capped by the caller's
//! limit, so a small hostile stream cannot expand without bound.

use crate::codec::deflate::RawInflate as DeflateDecoder;
use crate::codec::reader::{crc32, Field, ReadError};
use std::io::{self, BufRead, BufReader, Read};

/// The two magic bytes.
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Longest file name or comment accepted in a header.
pub const MAX_HEADER_STRING: usize = 64 * 1024;
/// deflate cannot expand input by more than this factor (a 258-byte match per ~2 bits).
pub const MAX_RATIO: u64 = 1032;

// Bit 0, FTEXT, is only a hint that the data is text: nothing here depends on it.
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// A gzip member header as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipHeader {
    pub method: u8,
    pub flags: u8,
    pub mtime: u32,
    pub xfl: u8,
    pub os: u8,
    pub extra: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
    pub comment: Option<Vec<u8>>,
    pub header_crc16: Option<u16>,
    /// Bytes the header takes; the deflate data starts here.
    pub len: u64,
}

impl GzipHeader {
    /// Every field with its byte range.
    pub fn fields(&self) -> Vec<Field> {
        let mut f = vec![
            Field::new("magic", 0, 2, "1f 8b"),
            Field::new("compression method", 2, 1, self.method),
            Field::hex("flags", 3, 1, self.flags),
            Field::new("mtime", 4, 4, self.mtime),
            Field::new("extra flags", 8, 1, self.xfl),
            Field::new("OS", 9, 1, self.os),
        ];
        let mut at = 10u64;
        if let Some(x) = &self.extra {
            f.push(Field::new(
                "extra field",
                at,
                2 + x.len() as u64,
                crate::codec::reader::printable(x),
            ));
            at += 2 + x.len() as u64;
        }
        // The name and the comment are zero-terminated.
        for (what, text) in [("file name", &self.name), ("comment", &self.comment)] {
            if let Some(t) = text {
                let len = t.len() as u64 + 1;
                f.push(Field::new(
                    what,
                    at,
                    len,
                    crate::codec::reader::printable(t),
                ));
                at += len;
            }
        }
        if let Some(h) = self.header_crc16 {
            f.push(Field::new("header CRC16", at, 2, format!("{h:04x}")));
        }
        f
    }
}

/// The trailer and what the stream held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipTrailer {
    /// Byte offset of the trailer.
    pub offset: u64,
    pub crc32: u32,
    pub isize: u32,
    /// CRC-32 of the decompressed data.
    pub computed_crc32: u32,
    /// Decompressed bytes.
    pub data_len: u64,
    /// Bytes after the trailer (pimg writes none).
    pub trailing: u64,
}

impl GzipTrailer {
    /// Both fields with their byte ranges.
    pub fn fields(&self) -> Vec<Field> {
        vec![
            Field::bare_hex("trailer CRC32", self.offset, self.crc32),
            Field::new("trailer size", self.offset + 4, 4, self.isize),
        ]
    }
}

fn io_err(what: &str, offset: u64, source: io::Error) -> ReadError {
    ReadError::Io {
        what: what.to_string(),
        offset,
        source,
    }
}

fn read_byte<R: Read>(r: &mut R, at: u64, what: &str) -> Result<u8, ReadError> {
    let mut b = [0u8];
    r.read_exact(&mut b).map_err(|e| io_err(what, at, e))?;
    Ok(b[0])
}

fn read_cstring<R: Read>(r: &mut R, at: &mut u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let start = *at;
    let mut s = Vec::new();
    loop {
        let b = read_byte(r, *at, what)?;
        *at += 1;
        if b == 0 {
            return Ok(s);
        }
        if s.len() >= MAX_HEADER_STRING {
            return Err(ReadError::Limit {
                what: format!("gzip {what}"),
                offset: start,
                value: s.len() as u64 + 1,
                max: MAX_HEADER_STRING as u64,
            });
        }
        s.push(b);
    }
}

/// Parses a gzip header from the start of `r`.
pub fn read_header<R: Read>(r: &mut R) -> Result<GzipHeader, ReadError> {
    let mut h = [0u8; 10];
    r.read_exact(&mut h)
        .map_err(|e| io_err("the gzip header", 0, e))?;
    if h[..2] != MAGIC {
        return Err(ReadError::invalid(
            "gzip magic",
            0,
            format!("is {:02x} {:02x}, not 1f 8b", h[0], h[1]),
        ));
    }
    if h[2] != 8 {
        return Err(ReadError::invalid(
            "gzip compression method",
            2,
            format!("is {}, not 8 (deflate)", h[2]),
        ));
    }
    let flags = h[3];
    if flags & 0xE0 != 0 {
        return Err(ReadError::invalid(
            "gzip flags",
            3,
            format!("0x{flags:02x} sets reserved bits"),
        ));
    }
    let mut at = 10u64;
    let extra = if flags & FEXTRA != 0 {
        let lo = read_byte(r, at, "gzip extra length")?;
        let hi = read_byte(r, at + 1, "gzip extra length")?;
        let n = u16::from_le_bytes([lo, hi]) as usize;
        at += 2;
        let mut x = Vec::new();
        let got = r
            .by_ref()
            .take(n as u64)
            .read_to_end(&mut x)
            .map_err(|e| io_err("the gzip extra field", at, e))?;
        if got < n {
            return Err(ReadError::Truncated {
                what: "gzip extra field".into(),
                offset: at,
                needed: n as u64,
                end: at + got as u64,
            });
        }
        at += n as u64;
        Some(x)
    } else {
        None
    };
    let name = if flags & FNAME != 0 {
        Some(read_cstring(r, &mut at, "file name")?)
    } else {
        None
    };
    let comment = if flags & FCOMMENT != 0 {
        Some(read_cstring(r, &mut at, "comment")?)
    } else {
        None
    };
    let header_crc16 = if flags & FHCRC != 0 {
        let lo = read_byte(r, at, "gzip header CRC")?;
        let hi = read_byte(r, at + 1, "gzip header CRC")?;
        at += 2;
        Some(u16::from_le_bytes([lo, hi]))
    } else {
        None
    };
    Ok(GzipHeader {
        method: h[2],
        flags,
        mtime: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        xfl: h[8],
        os: h[9],
        extra,
        name,
        comment,
        header_crc16,
        len: at,
    })
}

/// Streams the decompressed data of one gzip member; checks the trailer at the end.
///
/// Reading past `limit` decompressed bytes, corrupt deflate data and a trailer that does not
/// match all surface as `io::Error`s (kind `InvalidData`) naming the byte offset.
pub struct GzipReader<R: Read> {
    header: GzipHeader,
    decoder: DeflateDecoder<BufReader<R>>,
    crc: flate2::Crc,
    out: u64,
    limit: u64,
    trailer: Option<GzipTrailer>,
    failed: Option<String>,
    /// The stream went on past `limit`.
    hit_limit: bool,
}

impl<R: Read> GzipReader<R> {
    /// Whether reading stopped because the stream decompresses to more than the limit.
    pub fn hit_limit(&self) -> bool {
        self.hit_limit
    }

    /// Reads the header; `limit` caps the decompressed size.
    pub fn new(inner: R, limit: u64) -> Result<Self, ReadError> {
        let mut br = BufReader::with_capacity(64 * 1024, inner);
        let header = read_header(&mut br)?;
        Ok(GzipReader {
            header,
            decoder: DeflateDecoder::new(br),
            crc: flate2::Crc::new(),
            out: 0,
            limit,
            trailer: None,
            failed: None,
            hit_limit: false,
        })
    }

    /// The header.
    pub fn header(&self) -> &GzipHeader {
        &self.header
    }

    /// The trailer, once the stream has been read to its end.
    pub fn trailer(&self) -> Option<&GzipTrailer> {
        self.trailer.as_ref()
    }

    /// Byte offset in the compressed input up to which deflate data has been consumed.
    pub fn compressed_offset(&self) -> u64 {
        self.header.len + self.decoder.total_in()
    }

    /// Decompressed bytes so far.
    pub fn decompressed_len(&self) -> u64 {
        self.out
    }

    fn fail(&mut self, msg: String) -> io::Error {
        self.failed = Some(msg.clone());
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }

    fn read_trailer(&mut self) -> io::Result<()> {
        let offset = self.compressed_offset();
        let br = self.decoder.get_mut();
        let mut t = [0u8; 8];
        if let Err(e) = br.read_exact(&mut t) {
            return Err(self.fail(format!(
                "gzip trailer at byte {offset}: {e} (the stream is truncated)"
            )));
        }
        let mut trailing = 0u64;
        loop {
            let n = match br.fill_buf() {
                Ok(b) => b.len(),
                Err(e) => return Err(self.fail(format!("after the gzip trailer: {e}"))),
            };
            if n == 0 {
                break;
            }
            trailing += n as u64;
            br.consume(n);
        }
        let trailer = GzipTrailer {
            offset,
            crc32: u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
            isize: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
            computed_crc32: self.crc.sum(),
            data_len: self.out,
            trailing,
        };
        let (crc, isize) = (trailer.crc32, trailer.isize);
        self.trailer = Some(trailer);
        if crc != self.crc.sum() {
            return Err(self.fail(format!(
                "gzip trailer at byte {offset}: CRC32 is {crc:08x} but the data hashes to {:08x}",
                self.crc.sum()
            )));
        }
        if u64::from(isize) != self.out & 0xFFFF_FFFF {
            return Err(self.fail(format!(
                "gzip trailer at byte {}: size is {isize} but {} bytes were decompressed",
                offset + 4,
                self.out
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, f.clone()));
        }
        if buf.is_empty() || self.trailer.is_some() {
            return Ok(0);
        }
        let room = self.limit.saturating_sub(self.out);
        let want = buf
            .len()
            .min(usize::try_from(room.saturating_add(1)).unwrap_or(usize::MAX));
        let n = match self.decoder.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) => {
                let at = self.compressed_offset();
                return Err(self.fail(format!(
                    "corrupt deflate data near compressed byte {at} (after {} decompressed bytes): {e}",
                    self.out
                )));
            }
        };
        if n as u64 > room {
            self.hit_limit = true;
            return Err(self.fail(format!(
                "gzip stream decompresses to more than the limit of {} bytes",
                self.limit
            )));
        }
        if n == 0 {
            self.read_trailer()?;
            return Ok(0);
        }
        self.crc.update(&buf[..n]);
        self.out += n as u64;
        Ok(n)
    }
}

/// Decompresses a whole in-memory stream (output capped at `MAX_RATIO` times its size).
pub fn decompress(data: &[u8]) -> Result<(GzipHeader, Vec<u8>, GzipTrailer), ReadError> {
    let limit = (data.len() as u64).saturating_mul(MAX_RATIO);
    let mut r = GzipReader::new(data, limit)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|source| ReadError::Io {
        what: "the gzip stream".into(),
        offset: r.compressed_offset(),
        source,
    })?;
    let trailer = r.trailer.clone().ok_or_else(|| {
        ReadError::invalid(
            "gzip stream",
            r.compressed_offset(),
            "ended without a trailer",
        )
    })?;
    Ok((r.header, out, trailer))
}

/// The CRC-32 gzip stores for `data`.
pub fn data_crc32(data: &[u8]) -> u32 {
    crc32(data)
}
