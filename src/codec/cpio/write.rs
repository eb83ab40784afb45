//! cpio "newc" (SVR4 without checksum, magic `070701`) writer, the format the Linux kernel
//! unpacks as an initramfs.
//!
//! Header: the 6-byte magic, then 13 fields of 8 hexadecimal digits, then the NUL-terminated
//! name; header plus name are padded with NULs to a multiple of 4, and so is the data.
//! Hex digits are uppercase, as written by the kernel's `gen_init_cpio`, GNU cpio and busybox
//! (the kernel, GNU cpio and busybox all accept either case when reading).
//! Nothing here flushes the underlying writer: under a gzip encoder a flush changes the bytes.

use std::io::{self, Write};

use crate::codec::archive::ArchiveError;

const FORMAT: &str = "cpio";
/// The newc magic.
pub const MAGIC: &[u8; 6] = b"070701";
/// Bytes in a header before the name: magic plus 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 6 + 13 * 8;
/// Header+name and data are each padded to this alignment.
pub const ALIGN: usize = 4;
/// Name of the entry that ends the archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";
/// The kernel's initramfs unpacker skips names (including the NUL) and symlink targets
/// longer than PATH_MAX.
pub const MAX_NAME_LEN: usize = 4096;
const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// One entry's header fields and data, exactly as they are written. `Default` is an empty
/// entry with every number 0, for filling in the fields that matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpioEntry<'a> {
    /// Path inside the archive, without a leading `/` (the caller decides `./` or not).
    pub name: &'a str,
    pub ino: u32,
    /// File-type bits included (`0o100644` for a regular file, `0o120777` for a symlink).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    /// Device holding the file (usually 0 in a reproducible archive).
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Device number of a device node; 0 for anything else.
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// File content; for a symlink, the link target; empty for directories and devices.
    pub data: &'a [u8],
}

/// Streams newc entries into `W` in the order they are appended.
pub struct CpioWriter<W: Write> {
    inner: W,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive; nothing is written until the first entry.
    pub fn new(inner: W) -> Self {
        CpioWriter { inner }
    }

    /// Writes one entry: header, name, padding, data, padding.
    pub fn append(&mut self, entry: &CpioEntry) -> Result<(), ArchiveError> {
        let header = encode_header(entry)?;
        self.write_all(&header)?;
        self.write_all(entry.data)?;
        self.write_all(padding(entry.data.len()))
    }

    /// Writes the `TRAILER!!!` entry and returns the underlying writer (not flushed).
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        let trailer = CpioEntry {
            name: TRAILER_NAME,
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            // As written by the kernel's gen_init_cpio and GNU cpio.
            nlink: 1,
            mtime: 0,
            dev_major: 0,
            dev_minor: 0,
            rdev_major: 0,
            rdev_minor: 0,
            data: &[],
        };
        self.append(&trailer)?;
        Ok(self.inner)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.inner.write_all(bytes).map_err(io_error)
    }
}

fn io_error(source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        format: FORMAT,
        source,
    }
}

/// Zero bytes that bring `len` up to the next multiple of [`ALIGN`].
fn padding(len: usize) -> &'static [u8] {
    const ZEROS: [u8; ALIGN] = [0; ALIGN];
    &ZEROS[..(ALIGN - len % ALIGN) % ALIGN]
}

/// Header, name, NUL and padding for one entry, after checking every size limit.
fn encode_header(entry: &CpioEntry) -> Result<Vec<u8>, ArchiveError> {
    let name = entry.name;
    if name.is_empty() {
        return Err(bad_name(name, "the name is empty"));
    }
    if name.contains('\0') {
        return Err(bad_name(name, "the name contains a NUL byte"));
    }
    let name_size = name.len() + 1;
    if name_size > MAX_NAME_LEN {
        return Err(ArchiveError::NameTooLong {
            format: FORMAT,
            path: name.to_string(),
            len: name_size,
            max: MAX_NAME_LEN,
        });
    }
    let file_size = u32::try_from(entry.data.len()).map_err(|_| ArchiveError::FieldTooLarge {
        format: FORMAT,
        path: name.to_string(),
        field: "file size",
        value: entry.data.len() as u64,
        max: u64::from(u32::MAX),
    })?;
    // The kernel also skips symlinks whose target is longer than PATH_MAX.
    if entry.mode & S_IFMT == S_IFLNK && entry.data.len() > MAX_NAME_LEN {
        return Err(ArchiveError::FieldTooLarge {
            format: FORMAT,
            path: name.to_string(),
            field: "symlink target length",
            value: entry.data.len() as u64,
            max: MAX_NAME_LEN as u64,
        });
    }
    let fields = [
        entry.ino,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.nlink,
        entry.mtime,
        file_size,
        entry.dev_major,
        entry.dev_minor,
        entry.rdev_major,
        entry.rdev_minor,
        name_size as u32,
        // check: always 0 in "070701" archives.
        0,
    ];
    let mut out = Vec::with_capacity(HEADER_LEN + name_size + ALIGN);
    out.extend_from_slice(MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(padding(out.len()));
    Ok(out)
}

fn bad_name(name: &str, reason: &'static str) -> ArchiveError {
    ArchiveError::BadName {
        format: FORMAT,
        path: name.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(name: &'a str, data: &'a [u8]) -> CpioEntry<'a> {
        CpioEntry {
            name,
            ino: 0x1a,
            mode: 0o100640,
            uid: 0,
            gid: 42,
            nlink: 1,
            mtime: 0x5f5e_1000,
            data,
            ..CpioEntry::default()
        }
    }

    #[test]
    fn one_header_byte_for_byte() {
        let mut w = CpioWriter::new(Vec::new());
        w.append(&file("etc/shadow", b"root:*:1::::::\n")).unwrap();
        let out = w.finish().unwrap();
        let expected_header = concat!(
            "070701",   // magic
            "0000001A", // ino
            "000081A0", // mode 0o100640
            "00000000", // uid
            "0000002A", // gid 42
            "00000001", // nlink
            "5F5E1000", // mtime
            "0000000F", // filesize 15
            "00000000", // devmajor
            "00000000", // devminor
            "00000000", // rdevmajor
            "00000000", // rdevminor
            "0000000B", // namesize: "etc/shadow" + NUL
            "00000000", // check
        );
        assert_eq!(&out[..HEADER_LEN], expected_header.as_bytes());
        // 110 + 11 = 121 -> padded to 124.
        assert_eq!(&out[110..124], b"etc/shadow\0\0\0\0");
        // 15 data bytes padded to 16.
        assert_eq!(&out[124..140], b"root:*:1::::::\n\0");
        let trailer = &out[140..];
        let expected_trailer = concat!(
            "070701", "00000000", "00000000", "00000000",
            "00000000", // magic ino mode uid gid
            "00000001", "00000000", "00000000", // nlink mtime filesize
            "00000000", "00000000", "00000000", "00000000", // dev and rdev
            "0000000B", "00000000", // namesize check
        );
        assert_eq!(&trailer[..HEADER_LEN], expected_trailer.as_bytes());
        assert_eq!(&trailer[HEADER_LEN..], b"TRAILER!!!\0\0\0\0");
        assert_eq!(out.len() % ALIGN, 0);
    }

    #[test]
    fn name_padding_for_every_length_mod_4() {
        for name in ["a", "ab", "abc", "abcd"] {
            let header = encode_header(&file(name, b"")).unwrap();
            assert_eq!(header.len() % ALIGN, 0, "{name}");
            assert!(header.len() > HEADER_LEN + name.len());
            assert!(header.len() < HEADER_LEN + name.len() + 1 + ALIGN);
        }
    }

    #[test]
    fn refuses_bad_names() {
        let long = "x".repeat(MAX_NAME_LEN);
        let err = encode_header(&file(&long, b"")).unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::NameTooLong {
                    len: 4097,
                    max: 4096,
                    ..
                }
            ),
            "{err}"
        );
        assert!(encode_header(&file(&long[1..], b"")).is_ok());
        let target = vec![b'x'; MAX_NAME_LEN + 1];
        let link = CpioEntry {
            mode: 0o120777,
            ..file("l", &target)
        };
        assert!(matches!(
            encode_header(&link),
            Err(ArchiveError::FieldTooLarge { .. })
        ));
        assert!(matches!(
            encode_header(&file("", b"")),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            encode_header(&file("a\0b", b"")),
            Err(ArchiveError::BadName { .. })
        ));
    }

    #[test]
    fn never_flushes() {
        struct NoFlush(Vec<u8>);
        impl Write for NoFlush {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                panic!("flush changes the bytes of a gzip stream")
            }
        }
        let mut w = CpioWriter::new(NoFlush(Vec::new()));
        w.append(&file("a", b"x")).unwrap();
        assert!(!w.finish().unwrap().0.is_empty());
    }
}
