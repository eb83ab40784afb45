//! Plain `.tar`, `.tar.gz` and `.tgz` inputs (for example an existing rpi tarball), and the tar
//! walk shared with `.apk` data segments.
//!
//! Tar streams go through pimg's own reader (`read::tar`: checksummed headers, capped GNU long
//! names and pax records, no allocation sized by the input), and each member is normalized to
//! the same `Member` a `.deb` yields, so profiles select from every kind of input alike.

use super::deb::{Member, MemberKind};
use crate::codec::reader::ReadError;
use crate::tree::{PathError, TreePath};
use flate2::bufread::MultiGzDecoder;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a tar stream inside an input could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum TarFault {
    /// The stream is not a tar archive, is truncated or fails a check (CRC, header checksum).
    #[error("{0}")]
    Damaged(String),
    #[error("contains '{path}', which pimg refuses: {source}")]
    BadPath {
        path: String,
        #[source]
        source: PathError,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// Why a walk stopped: the archive's fault, or the visitor's own error.
pub(crate) enum WalkError<E> {
    Fault(TarFault),
    Visitor(E),
}

/// Why a tarball input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {fault}; check that it is a complete .tar or .tar.gz archive", path.display())]
    Tar { path: PathBuf, fault: TarFault },
}

/// Streams a tarball's members in archive order (gzip when the name ends in `.gz`/`.tgz` or
/// the content starts with the gzip magic). The root entry `./` is not reported.
pub fn scan<E: From<TarballError>>(
    path: &Path,
    visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let io_err = |source| TarballError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let head = io::BufRead::fill_buf(&mut reader).map_err(io_err)?;
    let gzipped = head.starts_with(&crate::codec::gzip::read::MAGIC);
    let result = if gzipped {
        walk(MultiGzDecoder::new(reader), visit)
    } else {
        walk(reader, visit)
    };
    result.map_err(|e| match e {
        WalkError::Visitor(e) => e,
        WalkError::Fault(fault) => TarballError::Tar {
            path: path.to_path_buf(),
            fault,
        }
        .into(),
    })
}

/// Walks a tar stream, handing each member (normalized like a `.deb`'s) and its content to
/// `visit`, then reads the stream to its end so a compressed stream's own check runs.
pub(crate) fn walk<E>(
    stream: impl Read,
    visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), E>,
) -> Result<(), WalkError<E>> {
    let mut outcome: Option<WalkError<E>> = None;
    let stream_failure: RefCell<Option<String>> = RefCell::new(None);
    let result = crate::codec::tar::read::read(stream, |entry, data| {
        let member = match member(entry) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(fault) => {
                outcome = Some(WalkError::Fault(fault));
                return Err(stop());
            }
        };
        let mut content = Content {
            inner: data,
            failure: &stream_failure,
        };
        match visit(&member, &mut content) {
            Ok(()) => Ok(()),
            Err(e) => {
                outcome = Some(WalkError::Visitor(e));
                Err(stop())
            }
        }
    });
    // A damaged stream is the root cause even when the visitor reports it its own way.
    if let Some(msg) = stream_failure.into_inner() {
        return Err(WalkError::Fault(TarFault::Damaged(msg)));
    }
    if let Some(o) = outcome {
        return Err(o);
    }
    result.map_err(|e| WalkError::Fault(TarFault::Damaged(e.to_string())))?;
    Ok(())
}

/// The marker error that stops `crate::codec::tar::read::read` when the walk already knows why.
fn stop() -> ReadError {
    ReadError::invalid("tar walk", 0, "stopped")
}

/// Converts one tar entry to a `Member`; `None` for the archive root `./`.
fn member(e: &crate::codec::tar::read::TarEntry) -> Result<Option<Member>, TarFault> {
    // read::tar decodes names lossily; a replacement character means the bytes were not UTF-8.
    if e.path.contains('\u{FFFD}') || e.link_name.contains('\u{FFFD}') {
        return Err(TarFault::Damaged(format!(
            "member {:?} has a name or link target that is not UTF-8",
            e.path
        )));
    }
    if e.typeflag == b'S' || e.pax.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
        return Err(TarFault::Unsupported(format!(
            "member '{}' is a GNU sparse file (not supported)",
            e.path
        )));
    }
    let path = match TreePath::from_archive(&e.path) {
        Ok(p) => p,
        Err(PathError::Empty(_)) if e.typeflag == b'5' => return Ok(None),
        Err(source) => {
            return Err(TarFault::BadPath {
                path: e.path.clone(),
                source,
            })
        }
    };
    let kind = match e.typeflag {
        b'0' | 0 | b'7' => MemberKind::File,
        b'5' => MemberKind::Dir,
        b'2' => MemberKind::Symlink(e.link_name.clone()),
        b'1' => MemberKind::Hardlink(TreePath::from_archive(&e.link_name).map_err(|source| {
            TarFault::BadPath {
                path: e.link_name.clone(),
                source,
            }
        })?),
        other => MemberKind::Other(other),
    };
    let size = match kind {
        MemberKind::File => e.size,
        _ => 0,
    };
    Ok(Some(Member {
        path,
        kind,
        mode: (e.mode & 0o7777) as u32,
        mtime: e.mtime,
        size,
    }))
}

/// A member's content as handed to the visitor; remembers the first read error.
struct Content<'a, 'r> {
    inner: &'a mut dyn Read,
    failure: &'r RefCell<Option<String>>,
}

impl Read for Content<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let mut failure = self.failure.borrow_mut();
            if failure.is_none() {
                *failure = Some(e.to_string());
            }
        })
    }
}

/// The input name of a tarball: its file name without `.tar`, `.tar.gz` or `.tgz`.
pub fn stem(file: &str) -> Option<&str> {
    [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, flag) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o4755);
            h.set_mtime(1234);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::new(*flag));
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if *flag == b'2' {
                h.set_link_name("target").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn collect(bytes: &[u8]) -> Result<Vec<(Member, Vec<u8>)>, WalkError<io::Error>> {
        let mut out = Vec::new();
        walk(bytes, &mut |m: &Member, r: &mut dyn Read| {
            let mut d = Vec::new();
            r.read_to_end(&mut d)?;
            out.push((m.clone(), d));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn members_are_normalized() {
        let t = tar(&[
            ("./", b"", b'5'),
            ("./bin/", b"", b'5'),
            ("./bin/x", b"hello", b'0'),
            ("bin/sh", b"", b'2'),
        ]);
        let got = collect(&t).ok().unwrap();
        let paths: Vec<&str> = got.iter().map(|(m, _)| m.path.as_str()).collect();
        assert_eq!(paths, ["bin", "bin/x", "bin/sh"]);
        assert_eq!(got[1].0.mode, 0o4755);
        assert_eq!(got[1].0.mtime, 1234);
        assert_eq!(got[1].1, b"hello");
        assert_eq!(got[2].0.kind, MemberKind::Symlink("target".into()));
    }

    #[test]
    fn hostile_paths_and_damage_are_faults() {
        let t = tar(&[("../etc/passwd", b"x", b'0')]);
        assert!(matches!(
            collect(&t),
            Err(WalkError::Fault(TarFault::BadPath { .. }))
        ));
        let mut t = tar(&[("a", b"x", b'0')]);
        t[0] ^= 1;
        assert!(matches!(
            collect(&t),
            Err(WalkError::Fault(TarFault::Damaged(_)))
        ));
        assert!(matches!(
            collect(&t[..300]),
            Err(WalkError::Fault(TarFault::Damaged(_)))
        ));
        let t = tar(&[("s", b"", b'S')]);
        assert!(matches!(
            collect(&t),
            Err(WalkError::Fault(TarFault::Unsupported(_)))
        ));
    }

    #[test]
    fn stems() {
        assert_eq!(
            stem("alpine-rpi-3.19.1-aarch64.tar.gz"),
            Some("alpine-rpi-3.19.1-aarch64")
        );
        assert_eq!(stem("x.tgz"), Some("x"));
        assert_eq!(stem("x.tar"), Some("x"));
        assert_eq!(stem(".tar"), None);
        assert_eq!(stem("x.zip"), None);
    }
}
