//! cpio "newc" reader (magic 070701, and 070702 with checksums): headers of 13 hex fields,
//! NUL-terminated names, 4-byte padding, ending at `TRAILER!!!`. Streams from any `Read`;
//! names are capped at `MAX_NAME`, data is handed to the caller, never buffered here.

use crate::codec::reader::{Counted, Field, ReadError};
use std::io::Read;

/// The newc magic.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// The newc-with-checksum magic.
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// Header bytes before the name.
pub const HEADER_LEN: u64 = 110;
/// Longest name (including its NUL) the reader accepts.
pub const MAX_NAME: u32 = 64 * 1024;
/// The last entry's name.
pub const TRAILER: &str = "TRAILER!!!";

const FIELD_NAMES: [&str; 13] = [
    "inode",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "file size",
    "dev major",
    "dev minor",
    "rdev major",
    "rdev minor",
    "name size",
    "check",
];

/// One entry's header, as stored, with where its parts are in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioHeader {
    /// Byte offset of the header in the (uncompressed) archive.
    pub offset: u64,
    pub magic: [u8; 6],
    /// inode, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    /// rdevminor, namesize, check.
    pub values: [u32; 13],
    /// The name without its NUL (lossy UTF-8 in `name`).
    pub name_bytes: Vec<u8>,
    pub name: String,
    /// Byte offset of the data.
    pub data_offset: u64,
}

impl CpioHeader {
    pub fn ino(&self) -> u32 {
        self.values[0]
    }
    pub fn mode(&self) -> u32 {
        self.values[1]
    }
    pub fn uid(&self) -> u32 {
        self.values[2]
    }
    pub fn gid(&self) -> u32 {
        self.values[3]
    }
    pub fn nlink(&self) -> u32 {
        self.values[4]
    }
    pub fn mtime(&self) -> u32 {
        self.values[5]
    }
    pub fn file_size(&self) -> u32 {
        self.values[6]
    }
    /// (rdev major, rdev minor).
    pub fn rdev(&self) -> (u32, u32) {
        (self.values[9], self.values[10])
    }
    /// True for the `TRAILER!!!` entry.
    pub fn is_trailer(&self) -> bool {
        self.name_bytes == TRAILER.as_bytes()
    }

    /// Where the data ends and its padding ends.
    pub fn data_end(&self) -> (u64, u64) {
        let end = self.data_offset + u64::from(self.file_size());
        (end, end.div_ceil(4) * 4)
    }

    /// Every header field with its byte range, plus the name.
    pub fn fields(&self) -> Vec<Field> {
        let mut f = vec![Field::new(
            "magic",
            self.offset,
            6,
            crate::codec::reader::printable(&self.magic),
        )];
        for (i, name) in FIELD_NAMES.iter().enumerate() {
            let v = self.values[i];
            let value = match i {
                1 => format!("0{v:o}"),
                12 => format!("{v:08x}"),
                _ => v.to_string(),
            };
            f.push(Field::new(*name, self.offset + 6 + 8 * i as u64, 8, value));
        }
        f.push(Field::new(
            "name",
            self.offset + HEADER_LEN,
            self.name_bytes.len() as u64 + 1,
            format!("{:?}", self.name),
        ));
        f
    }
}

/// What follows the last entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEnd {
    /// Entries before the trailer.
    pub entries: u64,
    /// The trailer's own header.
    pub trailer: CpioHeader,
    /// Byte offset of the trailer header.
    pub trailer_offset: u64,
    /// Byte offset just after the trailer and its padding.
    pub end: u64,
    /// Bytes after that, and whether any is nonzero.
    pub trailing: u64,
    pub trailing_nonzero: bool,
}

fn hex_field(b: &[u8], field: &str, offset: u64) -> Result<u32, ReadError> {
    let s = std::str::from_utf8(b)
        .ok()
        .filter(|s| s.bytes().all(|c| c.is_ascii_hexdigit()));
    s.and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| {
            ReadError::invalid(
                format!("cpio header field '{field}'"),
                offset,
                format!(
                    "\"{}\" is not 8 hexadecimal digits",
                    crate::codec::reader::printable(b)
                ),
            )
        })
}

/// Reads every entry of a newc archive, handing each header and its data to `visit`, until
/// the trailer. Fails on a bad magic, a malformed field, a truncated entry or a missing trailer.
pub fn read<R: Read>(
    reader: R,
    mut visit: impl FnMut(&CpioHeader, &mut dyn Read) -> Result<(), ReadError>,
) -> Result<CpioEnd, ReadError> {
    let mut r = Counted::new(reader);
    let mut entries = 0u64;
    loop {
        let offset = r.pos;
        let mut h = [0u8; HEADER_LEN as usize];
        r.fill(&mut h, "cpio header (no TRAILER!!! entry before the end)")?;
        let mut magic = [0u8; 6];
        magic.copy_from_slice(&h[..6]);
        if &magic != MAGIC_NEWC && &magic != MAGIC_CRC {
            return Err(ReadError::invalid(
                "cpio header magic",
                offset,
                format!(
                    "is \"{}\", not \"070701\" (newc)",
                    crate::codec::reader::printable(&magic)
                ),
            ));
        }
        let mut values = [0u32; 13];
        for (i, v) in values.iter_mut().enumerate() {
            let at = 6 + 8 * i;
            *v = hex_field(&h[at..at + 8], FIELD_NAMES[i], offset + at as u64)?;
        }
        let namesize = values[11];
        if namesize == 0 || namesize > MAX_NAME {
            return Err(ReadError::invalid(
                "cpio header field 'name size'",
                offset + 94,
                format!("is {namesize}; names take 1 to {MAX_NAME} bytes with their NUL"),
            ));
        }
        // Grown as bytes arrive: the name size claim alone allocates nothing.
        let mut name = Vec::new();
        let got = r
            .by_ref()
            .take(u64::from(namesize))
            .read_to_end(&mut name)
            .map_err(|source| ReadError::Io {
                what: "cpio entry name".into(),
                offset: offset + HEADER_LEN,
                source,
            })?;
        if got < namesize as usize {
            return Err(ReadError::Truncated {
                what: "cpio entry name".into(),
                offset: offset + HEADER_LEN,
                needed: u64::from(namesize),
                end: r.pos,
            });
        }
        if name.pop() != Some(0) {
            return Err(ReadError::invalid(
                "cpio entry name",
                offset + HEADER_LEN,
                "does not end with a NUL byte",
            ));
        }
        let mut pad = [0u8; 3];
        let name_end = offset + HEADER_LEN + u64::from(namesize);
        let pad_len = (name_end.div_ceil(4) * 4 - name_end) as usize;
        r.fill(&mut pad[..pad_len], "cpio header padding")?;
        let header = CpioHeader {
            offset,
            magic,
            values,
            name: String::from_utf8_lossy(&name).into_owned(),
            name_bytes: name,
            data_offset: r.pos,
        };
        if header.is_trailer() {
            let size = u64::from(header.file_size());
            r.section(size, "cpio trailer data", |_| Ok(()))?;
            let (data_end, padded) = header.data_end();
            let mut pad = [0u8; 3];
            let n = r.fill_upto(&mut pad[..(padded - data_end) as usize], "cpio padding")?;
            let end = data_end + n as u64;
            let (trailing, trailing_nonzero) = r.rest("bytes after the cpio trailer")?;
            return Ok(CpioEnd {
                entries,
                trailer: header,
                trailer_offset: offset,
                end,
                trailing,
                trailing_nonzero,
            });
        }
        let size = u64::from(header.file_size());
        let what = format!("cpio entry '{}' data", header.name);
        r.section(size, &what, |data| visit(&header, data))?;
        let (data_end, padded) = header.data_end();
        let mut pad = [0u8; 3];
        r.fill(
            &mut pad[..(padded - data_end) as usize],
            "cpio data padding",
        )?;
        entries += 1;
    }
}
