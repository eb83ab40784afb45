//! Readers for everything pimg writes. Images come from strangers: no panic, no allocation
//! beyond what the input's real size allows, no unbounded loop, whatever the bytes.
//!
//! Each reader takes a `Read + Seek` (images) or a `Read` (archives) and checks every length,
//! offset and count it takes from the input against the real size before using it. Errors
//! name what is wrong and the byte offset where it was found.

use serde::Serialize;
use std::io::{self, Read, Seek, SeekFrom};

pub use crate::codec::SECTOR_SIZE;

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
    pub(crate) inner: R,
    base: u64,
    pub(crate) len: u64,
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

    /// `len` bytes at `offset` lie inside the window; else `Truncated`, naming `what`.
    fn check_within(&self, offset: u64, len: u64, what: &str) -> Result<(), ReadError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset,
                needed: len,
                end: self.len,
            });
        }
        Ok(())
    }

    /// Fills `buf` from window offset `offset`, or fails naming `what` when out of bounds.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
        self.check_within(offset, buf.len() as u64, what)?;
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
        self.check_within(offset, len, what)?;
        let mut buf = vec![0u8; len as usize];
        self.read_at(offset, &mut buf, what)?;
        Ok(buf)
    }

    /// Gives the underlying reader back.
    pub fn into_inner(self) -> R {
        self.inner
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

    /// A number in hex: `0x` and two digits for each of the field's bytes.
    pub(crate) fn hex(
        name: impl Into<String>,
        offset: u64,
        len: u64,
        value: impl Into<u64>,
    ) -> Self {
        let digits = 2 * len as usize;
        Field::new(name, offset, len, format!("0x{:0digits$x}", value.into()))
    }

    /// Four bytes as eight hex digits without `0x`, as CRC-32s and volume IDs are printed.
    pub(crate) fn bare_hex(name: impl Into<String>, offset: u64, value: u32) -> Self {
        Field::new(name, offset, 4, format!("{value:08x}"))
    }
}

/// A `Read` that knows how many bytes it has handed out (for offsets in error messages).
pub(crate) struct Counted<R> {
    pub(crate) inner: R,
    pub(crate) pos: u64,
}

/// Reads into `buf` until it is full, the input ends or a read fails (retrying interrupted
/// reads): how many bytes it holds, and the error that stopped it.
pub fn fill_until_error<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

impl<R: Read> Counted<R> {
    pub(crate) fn new(inner: R) -> Self {
        Counted { inner, pos: 0 }
    }

    /// Fills `buf` exactly; a short input is `Truncated` at the current offset.
    pub(crate) fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
        let start = self.pos;
        let got = self.fill_upto(buf, what)?;
        if got < buf.len() {
            return Err(ReadError::Truncated {
                what: what.to_string(),
                offset: start,
                needed: buf.len() as u64,
                end: self.pos,
            });
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes, fewer only at the end of the input.
    pub(crate) fn fill_upto(&mut self, buf: &mut [u8], what: &str) -> Result<usize, ReadError> {
        match fill_until_error(self, buf) {
            (got, None) => Ok(got),
            (_, Some(source)) => Err(ReadError::Io {
                what: what.to_string(),
                offset: self.pos,
                source,
            }),
        }
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
