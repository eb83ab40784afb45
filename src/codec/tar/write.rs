//! GNU tar writer where every header field is given by the caller.
//!
//! The `tar` crate's `Builder` helpers fill fields from the host or force modes
//! (`HeaderMode::Deterministic` turns 0640 into 0644 and drops setuid), so each header is
//! built here from `tar::Header::new_gnu()` with explicit values and written directly.
//! Numbers are always plain octal (values that would need GNU base-256 are refused), owner
//! names are empty, names longer than 100 bytes get a GNU `././@LongLink` entry with fixed
//! fields. Nothing here flushes the underlying writer.

use std::io::{self, Write};

use tar::{EntryType, Header};

use crate::codec::archive::ArchiveError;
use crate::tree::{NodeKind, Tree};

const FORMAT: &str = "tar";
/// Tar block size; headers and data are padded to it.
pub const BLOCK: usize = 512;
/// Bytes in the name and linkname fields of a GNU header.
pub const NAME_FIELD_LEN: usize = 100;
/// Largest value of an 8-byte octal field (mode, uid, gid, device numbers): 7 digits.
pub const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (size, mtime): 11 digits.
pub const MAX_OCTAL_12: u64 = 0o77777777777;
/// Name of the GNU extension entry that carries a long name or link target.
pub const LONG_LINK_NAME: &[u8] = b"././@LongLink";
/// A GNU long-name entry stores the path including its NUL; longer than this is refused.
pub const MAX_LONG_NAME: usize = 4096;

/// Header fields shared by every entry type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarMeta {
    /// Permission bits including setuid/setgid/sticky (`0o7777`), no file-type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the Unix epoch.
    pub mtime: u64,
}

/// Streams tar entries into `W` in the order they are appended.
pub struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive; nothing is written until the first entry.
    pub fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    /// A directory; the stored name gets a trailing `/`.
    pub fn append_dir(&mut self, path: &str, meta: &TarMeta) -> Result<(), ArchiveError> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(ArchiveError::BadName {
                format: FORMAT,
                path: path.to_string(),
                reason: "a directory needs a name (use \".\" for the archive root)",
            });
        }
        self.append(
            &format!("{trimmed}/"),
            EntryType::Directory,
            meta,
            None,
            (0, 0),
            &[],
        )
    }

    /// A regular file and its content.
    pub fn append_file(
        &mut self,
        path: &str,
        meta: &TarMeta,
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        self.append(path, EntryType::Regular, meta, None, (0, 0), data)
    }

    /// A symbolic link; `meta.mode` is stored as given (GNU tar writes 0777).
    pub fn append_symlink(
        &mut self,
        path: &str,
        target: &str,
        meta: &TarMeta,
    ) -> Result<(), ArchiveError> {
        self.append(path, EntryType::Symlink, meta, Some(target), (0, 0), &[])
    }

    /// A character device node.
    pub fn append_char_device(
        &mut self,
        path: &str,
        meta: &TarMeta,
        major: u32,
        minor: u32,
    ) -> Result<(), ArchiveError> {
        self.append(path, EntryType::Char, meta, None, (major, minor), &[])
    }

    /// Returns the writer without an end-of-archive marker, for a tar stream that another gzip
    /// member continues (apk's signature and control segments).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the writer, not flushed.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        self.write_all(&[0; 2 * BLOCK])?;
        Ok(self.inner)
    }

    fn append(
        &mut self,
        name: &str,
        kind: EntryType,
        meta: &TarMeta,
        link: Option<&str>,
        device: (u32, u32),
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        check_name(name, name)?;
        if let Some(target) = link {
            check_name(name, target)?;
        }
        check_field(name, "mode", u64::from(meta.mode), 0o7777)?;
        check_field(name, "uid", u64::from(meta.uid), MAX_OCTAL_8)?;
        check_field(name, "gid", u64::from(meta.gid), MAX_OCTAL_8)?;
        check_field(name, "mtime", meta.mtime, MAX_OCTAL_12)?;
        check_field(name, "size", data.len() as u64, MAX_OCTAL_12)?;
        check_field(name, "device major", u64::from(device.0), MAX_OCTAL_8)?;
        check_field(name, "device minor", u64::from(device.1), MAX_OCTAL_8)?;

        if name.len() > NAME_FIELD_LEN {
            self.write_long_link(EntryType::GNULongName, name.as_bytes())?;
        }
        if let Some(target) = link.filter(|t| t.len() > NAME_FIELD_LEN) {
            self.write_long_link(EntryType::GNULongLink, target.as_bytes())?;
        }

        let mut header = Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().expect("a GNU header");
            copy_truncated(&mut gnu.name, name.as_bytes());
            if let Some(target) = link {
                copy_truncated(&mut gnu.linkname, target.as_bytes());
            }
        }
        header.set_mode(meta.mode);
        header.set_uid(u64::from(meta.uid));
        header.set_gid(u64::from(meta.gid));
        header.set_size(data.len() as u64);
        header.set_mtime(meta.mtime);
        header.set_entry_type(kind);
        if kind == EntryType::Char {
            header.set_device_major(device.0).map_err(io_error)?;
            header.set_device_minor(device.1).map_err(io_error)?;
        }
        header.set_cksum();
        self.write_all(header.as_bytes())?;
        self.write_all(data)?;
        self.write_all(padding(data.len()))
    }

    /// A GNU `L` (long name) or `K` (long link target) entry; every field but the size fixed.
    fn write_long_link(&mut self, kind: EntryType, value: &[u8]) -> Result<(), ArchiveError> {
        let mut header = Header::new_gnu();
        copy_truncated(
            &mut header.as_gnu_mut().expect("a GNU header").name,
            LONG_LINK_NAME,
        );
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        // The stored string includes its NUL, as GNU tar writes it.
        header.set_size(value.len() as u64 + 1);
        header.set_entry_type(kind);
        header.set_cksum();
        self.write_all(header.as_bytes())?;
        self.write_all(value)?;
        self.write_all(&[0])?;
        self.write_all(padding(value.len() + 1))
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.inner.write_all(bytes).map_err(io_error)
    }
}

/// Writes every node of `tree` in tree order with its own mode and owner, all stamped `mtime`.
pub fn write_tree<W: Write>(w: W, tree: &Tree, mtime: u64) -> Result<W, ArchiveError> {
    let mut tar = TarWriter::new(w);
    for (path, node) in tree.iter() {
        let meta = TarMeta {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime,
        };
        let path = path.as_str();
        match &node.kind {
            NodeKind::Dir => tar.append_dir(path, &meta)?,
            NodeKind::File(data) => tar.append_file(path, &meta, data)?,
            NodeKind::Symlink(target) => tar.append_symlink(path, target, &meta)?,
            NodeKind::CharDevice { major, minor } => {
                tar.append_char_device(path, &meta, *major, *minor)?
            }
        }
    }
    tar.finish()
}

fn io_error(source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        format: FORMAT,
        source,
    }
}

fn check_name(path: &str, value: &str) -> Result<(), ArchiveError> {
    let bad = |reason| ArchiveError::BadName {
        format: FORMAT,
        path: path.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("the name or link target is empty"));
    }
    if value.contains('\0') {
        return Err(bad("the name or link target contains a NUL byte"));
    }
    if value.len() + 1 > MAX_LONG_NAME {
        return Err(ArchiveError::NameTooLong {
            format: FORMAT,
            path: path.to_string(),
            len: value.len() + 1,
            max: MAX_LONG_NAME,
        });
    }
    Ok(())
}

fn check_field(path: &str, field: &'static str, value: u64, max: u64) -> Result<(), ArchiveError> {
    if value > max {
        return Err(ArchiveError::FieldTooLarge {
            format: FORMAT,
            path: path.to_string(),
            field,
            value,
            max,
        });
    }
    Ok(())
}

/// Copies as much of `src` as fits; the rest of the field stays NUL.
fn copy_truncated(field: &mut [u8], src: &[u8]) {
    let n = src.len().min(field.len());
    field[..n].copy_from_slice(&src[..n]);
}

/// Zero bytes that bring `len` up to the next multiple of [`BLOCK`].
fn padding(len: usize) -> &'static [u8] {
    const ZEROS: [u8; BLOCK] = [0; BLOCK];
    &ZEROS[..(BLOCK - len % BLOCK) % BLOCK]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Node, TreePath};

    fn meta(mode: u32, gid: u32) -> TarMeta {
        TarMeta {
            mode,
            uid: 0,
            gid,
            mtime: 1_700_000_000,
        }
    }

    /// The checksum as a reader computes it: bytes summed with the checksum field as spaces.
    fn checksum(block: &[u8]) -> u32 {
        crate::codec::tar::read::header_sums(block).0 as u32
    }

    #[test]
    fn one_header_byte_for_byte() {
        let mut w = TarWriter::new(Vec::new());
        w.append_file("etc/shadow", &meta(0o640, 42), b"root:*:1::::::\n")
            .unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 512 + 512 + 1024);
        let h = &out[..512];
        let mut name = [0u8; 100];
        name[..10].copy_from_slice(b"etc/shadow");
        assert_eq!(&h[0..100], &name);
        assert_eq!(&h[100..108], b"0000640\0"); // mode
        assert_eq!(&h[108..116], b"0000000\0"); // uid
        assert_eq!(&h[116..124], b"0000052\0"); // gid 42
        assert_eq!(&h[124..136], b"00000000017\0"); // size 15
        assert_eq!(&h[136..148], b"14524770400\0"); // mtime 1_700_000_000
        assert_eq!(h[156], b'0'); // typeflag: regular file
        assert_eq!(&h[157..257], &[0u8; 100]); // linkname
        assert_eq!(&h[257..265], b"ustar  \0"); // GNU magic + version
        assert_eq!(&h[265..297], &[0u8; 32]); // uname empty
        assert_eq!(&h[297..329], &[0u8; 32]); // gname empty
        assert_eq!(&h[329..512], &[0u8; 183]); // devmajor, devminor, GNU extras
        let sum = checksum(h);
        assert_eq!(&h[148..156], format!("{sum:07o}\0").as_bytes());
        assert_eq!(&out[512..527], b"root:*:1::::::\n");
        assert!(out[527..].iter().all(|&b| b == 0));
    }

    #[test]
    fn keeps_special_mode_bits_and_marks_dirs() {
        let mut w = TarWriter::new(Vec::new());
        w.append_dir("usr/bin/", &meta(0o1777, 0)).unwrap();
        w.append_file("usr/bin/su", &meta(0o4755, 0), b"").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(&out[0..9], b"usr/bin/\0");
        assert_eq!(&out[100..108], b"0001777\0");
        assert_eq!(out[156], b'5');
        assert_eq!(&out[512 + 100..512 + 108], b"0004755\0");
    }

    #[test]
    fn long_names_use_fixed_gnu_long_link_entries() {
        let long = format!("{}/file", "d".repeat(145));
        let target = "t".repeat(120);
        let mut w = TarWriter::new(Vec::new());
        w.append_symlink(&long, &target, &meta(0o777, 0)).unwrap();
        let out = w.finish().unwrap();
        // L entry, its data block, K entry, its data block, the symlink header, end marker.
        assert_eq!(out.len(), 5 * 512 + 1024);
        let l = &out[..512];
        assert_eq!(&l[..14], b"././@LongLink\0");
        assert_eq!(&l[100..108], b"0000644\0");
        assert_eq!(&l[108..116], b"0000000\0"); // uid
        assert_eq!(&l[116..124], b"0000000\0"); // gid
        assert_eq!(
            &l[124..136],
            format!("{:011o}\0", long.len() + 1).as_bytes()
        );
        assert_eq!(&l[136..148], b"00000000000\0");
        assert_eq!(l[156], b'L');
        assert_eq!(
            &out[512..512 + long.len() + 1],
            format!("{long}\0").as_bytes()
        );
        assert_eq!(out[1024 + 156], b'K');
        assert_eq!(&out[1536..1536 + 121], format!("{target}\0").as_bytes());
        let h = &out[2048..2560];
        assert_eq!(h[156], b'2');
        assert_eq!(&h[..100], &long.as_bytes()[..100]);
        assert_eq!(&h[157..257], &target.as_bytes()[..100]);
    }

    #[test]
    fn refuses_values_that_need_base_256() {
        let mut w = TarWriter::new(Vec::new());
        let err = w.append_file(
            "a",
            &TarMeta {
                mode: 0o644,
                uid: 3_000_000,
                gid: 0,
                mtime: 0,
            },
            b"",
        );
        assert!(matches!(
            err,
            Err(ArchiveError::FieldTooLarge { field: "uid", .. })
        ));
        let err = w.append_file("a", &meta(0o100644, 0), b"");
        assert!(matches!(
            err,
            Err(ArchiveError::FieldTooLarge { field: "mode", .. })
        ));
        assert!(matches!(
            w.append_dir("/", &meta(0o755, 0)),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            w.append_file("", &meta(0o644, 0), b""),
            Err(ArchiveError::BadName { .. })
        ));
    }

    #[test]
    fn write_tree_covers_every_node_kind() {
        let mut tree = Tree::new();
        tree.insert(
            TreePath::new("dev/console").unwrap(),
            Node {
                gid: 5,
                ..Node::char_device(5, 1, 0o600)
            },
            "t",
        )
        .unwrap();
        tree.insert(
            TreePath::new("bin/sh").unwrap(),
            Node::symlink("busybox"),
            "t",
        )
        .unwrap();
        let out = write_tree(Vec::new(), &tree, 0).unwrap();
        let names: Vec<&[u8]> = out.chunks(512).take(4).map(|b| &b[..12]).collect();
        assert_eq!(
            names,
            [
                b"bin/\0\0\0\0\0\0\0\0",
                b"bin/sh\0\0\0\0\0\0",
                b"dev/\0\0\0\0\0\0\0\0",
                b"dev/console\0"
            ]
        );
        let dev = &out[3 * 512..4 * 512];
        assert_eq!(dev[156], b'3');
        assert_eq!(&dev[329..337], b"0000005\0"); // devmajor
        assert_eq!(&dev[337..345], b"0000001\0"); // devminor
    }
}
