//! Reads Debian binary packages (`.deb`) without dpkg, treating them as hostile input.
//!
//! A `.deb` is an `ar` archive: `debian-binary` ("2.0\n"), `control.tar[.gz|.xz|.zst]`,
//! `data.tar[.gz|.xz|.zst]`. The ar framing is parsed here (60-byte headers, sizes checked
//! against what the file really holds) and the tar streams go through the `tar` crate in raw
//! mode, so GNU long names and pax records are read with explicit size caps: nothing read
//! from a header decides how much memory is allocated.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::tree::{PathError, TreePath};

/// Magic at the start of every ar archive.
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// Bytes in an ar member header.
const AR_HEADER_LEN: usize = 60;
/// Terminator of an ar member header.
const AR_FMAG: &[u8; 2] = b"`\n";
/// `debian-binary` holds "2.0\n"; anything much longer is not a package.
const MAX_DEBIAN_BINARY: u64 = 64;
/// Real control files are a few KiB.
const MAX_CONTROL_FILE: u64 = 1 << 20;
/// Cap on a GNU long name or link target (Linux PATH_MAX is 4096).
const MAX_LONG_NAME: u64 = 64 << 10;
/// Cap on one pax extended header.
const MAX_PAX_HEADER: u64 = 1 << 20;
/// xz decoder memory limit; `xz -9` needs about 65 MiB to decompress.
const XZ_MEM_LIMIT_KIB: u32 = 256 * 1024;

/// The fields of a package's `control` file that pimg uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebControl {
    pub package: String,
    pub version: String,
    pub architecture: String,
}

/// What a `data.tar` member is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    File,
    Dir,
    /// A symbolic link and its target, verbatim.
    Symlink(String),
    /// A hard link to an earlier member.
    Hardlink(TreePath),
    /// Any other tar type flag (devices, FIFOs, ...), for the caller to accept or refuse.
    Other(u8),
}

impl std::fmt::Display for MemberKind {
    /// In words, for messages: "a symlink to /etc", "a hard link to usr/bin/x".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberKind::File => f.write_str("a regular file"),
            MemberKind::Dir => f.write_str("a directory"),
            MemberKind::Symlink(t) => write!(f, "a symlink to {t}"),
            MemberKind::Hardlink(t) => write!(f, "a hard link to {t}"),
            MemberKind::Other(flag) => match flag {
                b'3' => f.write_str("a character device"),
                b'4' => f.write_str("a block device"),
                b'6' => f.write_str("a FIFO"),
                _ => write!(f, "a tar member of type '{}'", flag.escape_ascii()),
            },
        }
    }
}

/// One `data.tar` member's normalized path and metadata (owners are not reported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub path: TreePath,
    pub kind: MemberKind,
    /// Permission bits (`0o7777`), no file-type bits.
    pub mode: u32,
    /// Seconds since the Unix epoch, from the tar header.
    pub mtime: i64,
    /// Content bytes in the archive (0 for anything but files).
    pub size: u64,
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{}: cannot read the file: {source}", deb.display())]
    Io {
        deb: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a Debian package (no '!<arch>' ar header); check that the path names a .deb", deb.display())]
    NotADeb { deb: PathBuf },
    #[error("{}: damaged ar header at byte {offset}: {reason}; download the package again", deb.display())]
    BadArHeader {
        deb: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: the file ends inside {what}; it is truncated, download it again", deb.display())]
    Truncated { deb: PathBuf, what: String },
    #[error("{}: has no '{member}' member; this is not a complete Debian binary package", deb.display())]
    MissingMember { deb: PathBuf, member: &'static str },
    #[error("{}: unexpected ar member '{member}' (expected debian-binary, control.tar*, data.tar*)", deb.display())]
    UnexpectedMember { deb: PathBuf, member: String },
    #[error("{}: package format '{version}' is not supported (only 2.x)", deb.display())]
    UnsupportedFormat { deb: PathBuf, version: String },
    #[error("{}: member '{member}' uses a compression pimg cannot read (supported: none, .gz, .xz, .zst)", deb.display())]
    UnknownCompression { deb: PathBuf, member: String },
    #[error("{}: member '{member}' is damaged: {reason}; download the package again", deb.display())]
    Corrupt {
        deb: PathBuf,
        member: String,
        reason: String,
    },
    #[error("{}: {member} contains '{path}', which pimg refuses: {source}", deb.display())]
    BadMemberPath {
        deb: PathBuf,
        member: String,
        path: String,
        #[source]
        source: PathError,
    },
    #[error("{}: {what} is {size}+ bytes, more than the {limit} bytes pimg accepts", deb.display())]
    TooLarge {
        deb: PathBuf,
        what: String,
        size: u64,
        limit: u64,
    },
    #[error("{}: control.tar has no 'control' file", deb.display())]
    MissingControl { deb: PathBuf },
    #[error("{}: control file: {reason}", deb.display())]
    BadControl { deb: PathBuf, reason: String },
    #[error("{}: control file has no '{field}' field", deb.display())]
    MissingField { deb: PathBuf, field: &'static str },
    /// A `scan_data` visitor stopped the scan; the message is the visitor's own (the
    /// visitor knows which package it was reading).
    #[error("{0}")]
    Aborted(String),
}

/// Reads `Package`, `Version` and `Architecture` from the package's control file.
pub fn read_control(path: &Path) -> Result<DebControl, DebError> {
    let mut ar = ArFile::open(path)?;
    let member = ar.find_member("control.tar", &[])?;
    let mut text: Option<Vec<u8>> = None;
    ar.with_tar(&member, &mut |m: &Member, content: &mut dyn Read| {
        if m.path.as_str() != "control" || m.kind != MemberKind::File {
            return Ok(());
        }
        let what = "the control file";
        text = Some(read_capped(content, MAX_CONTROL_FILE).map_err(|e| match e {
            Capped::Io(source) => DebError::Corrupt {
                deb: path.to_path_buf(),
                member: member.name.clone(),
                reason: source.to_string(),
            },
            Capped::TooLarge => too_large(path, what, MAX_CONTROL_FILE),
        })?);
        Ok(())
    })?;
    let text = text.ok_or_else(|| DebError::MissingControl {
        deb: path.to_path_buf(),
    })?;
    parse_control(path, &text)
}

/// Streams `data.tar` members in archive order; `visit` gets each member and a reader of its
/// content (only meaningful for files). The root entry `./` is not reported.
pub fn scan_data(
    path: &Path,
    visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), DebError>,
) -> Result<(), DebError> {
    let mut ar = ArFile::open(path)?;
    let member = ar.find_member("data.tar", &["control.tar"])?;
    ar.with_tar(&member, visit)
}

fn too_large(deb: &Path, what: &str, limit: u64) -> DebError {
    DebError::TooLarge {
        deb: deb.to_path_buf(),
        what: what.to_string(),
        size: limit + 1,
        limit,
    }
}

/// The three fields we need from the first paragraph of a deb822 control file.
fn parse_control(deb: &Path, text: &[u8]) -> Result<DebControl, DebError> {
    let bad = |reason: String| DebError::BadControl {
        deb: deb.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(text).map_err(|_| bad("not valid UTF-8".to_string()))?;
    let mut fields: [(&'static str, Option<String>); 3] =
        [("Package", None), ("Version", None), ("Architecture", None)];
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            // Continuation lines belong to multi-line fields (Description); comments are skipped.
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("line {} is not 'Field: value': {line:?}", n + 1)))?;
        for (name, slot) in fields.iter_mut() {
            if key.eq_ignore_ascii_case(name) {
                if slot.is_some() {
                    return Err(bad(format!("field '{name}' appears twice")));
                }
                let value = value.trim();
                if value.is_empty() || value.contains(char::is_whitespace) {
                    return Err(bad(format!(
                        "field '{name}' has an invalid value {value:?}"
                    )));
                }
                *slot = Some(value.to_string());
            }
        }
    }
    let [package, version, architecture] = fields.map(|(name, value)| {
        value.ok_or(DebError::MissingField {
            deb: deb.to_path_buf(),
            field: name,
        })
    });
    Ok(DebControl {
        package: package?,
        version: version?,
        architecture: architecture?,
    })
}

/// An ar member header: its name (padding and the GNU trailing `/` removed) and size.
struct ArMember {
    name: String,
    size: u64,
}

/// A `.deb` opened for one forward pass over its ar members.
struct ArFile {
    deb: PathBuf,
    reader: BufReader<File>,
    /// Offset of the next unread byte, for error messages.
    offset: u64,
}

impl ArFile {
    /// Opens the file, checks the ar magic and the `debian-binary` member.
    fn open(deb: &Path) -> Result<Self, DebError> {
        let file = File::open(deb).map_err(|source| DebError::Io {
            deb: deb.to_path_buf(),
            source,
        })?;
        let mut ar = ArFile {
            deb: deb.to_path_buf(),
            reader: BufReader::new(file),
            offset: 0,
        };
        let mut magic = [0u8; AR_MAGIC.len()];
        let n = ar.read_up_to(&mut magic)?;
        if n < magic.len() || &magic != AR_MAGIC {
            return Err(DebError::NotADeb { deb: ar.deb });
        }
        let first = ar.next_member()?.ok_or(DebError::MissingMember {
            deb: ar.deb.clone(),
            member: "debian-binary",
        })?;
        if first.name != "debian-binary" {
            return Err(DebError::MissingMember {
                deb: ar.deb.clone(),
                member: "debian-binary",
            });
        }
        if first.size > MAX_DEBIAN_BINARY {
            return Err(DebError::UnsupportedFormat {
                deb: ar.deb.clone(),
                version: format!("a {}-byte debian-binary", first.size),
            });
        }
        let mut version = vec![0u8; first.size as usize];
        if ar.read_up_to(&mut version)? < version.len() {
            return Err(ar.truncated("debian-binary"));
        }
        ar.skip_padding(&first)?;
        let version = String::from_utf8_lossy(&version).trim_end().to_string();
        if !version.starts_with("2.") {
            return Err(DebError::UnsupportedFormat {
                deb: ar.deb.clone(),
                version,
            });
        }
        Ok(ar)
    }

    fn truncated(&self, what: &str) -> DebError {
        DebError::Truncated {
            deb: self.deb.clone(),
            what: what.to_string(),
        }
    }

    /// Reads until `buf` is full or the file ends; returns the bytes read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, DebError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DebError::Io {
                        deb: self.deb.clone(),
                        source,
                    })
                }
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// The next member header, or `None` at a clean end of the archive.
    fn next_member(&mut self) -> Result<Option<ArMember>, DebError> {
        let start = self.offset;
        let mut header = [0u8; AR_HEADER_LEN];
        match self.read_up_to(&mut header)? {
            0 => return Ok(None),
            AR_HEADER_LEN => {}
            _ => return Err(self.truncated("an ar member header")),
        }
        let bad = |reason: String| DebError::BadArHeader {
            deb: self.deb.clone(),
            offset: start,
            reason,
        };
        if &header[58..60] != AR_FMAG {
            return Err(bad("missing the '`\\n' header terminator".to_string()));
        }
        let name = std::str::from_utf8(&header[..16])
            .map_err(|_| bad("member name is not ASCII".to_string()))?
            .trim_end_matches(' ');
        let name = name.strip_suffix('/').unwrap_or(name).to_string();
        let size_field = std::str::from_utf8(&header[48..58])
            .unwrap_or("")
            .trim_end_matches(' ');
        let size = size_field.parse::<u64>().map_err(|_| {
            bad(format!(
                "member '{name}' has an invalid size field {size_field:?}"
            ))
        })?;
        Ok(Some(ArMember { name, size }))
    }

    /// Skips to the next member whose name starts with `prefix`, passing over members named
    /// in `skippable` and dpkg's reserved `_*` members; anything else is an error.
    fn find_member(
        &mut self,
        prefix: &'static str,
        skippable: &[&str],
    ) -> Result<ArMember, DebError> {
        loop {
            let member = self.next_member()?.ok_or(DebError::MissingMember {
                deb: self.deb.clone(),
                member: prefix,
            })?;
            if member.name.starts_with(prefix) {
                return Ok(member);
            }
            if !member.name.starts_with('_')
                && !skippable.iter().any(|s| member.name.starts_with(s))
            {
                return Err(DebError::UnexpectedMember {
                    deb: self.deb.clone(),
                    member: member.name,
                });
            }
            let skipped = io::copy(&mut (&mut self.reader).take(member.size), &mut io::sink())
                .map_err(|source| DebError::Io {
                    deb: self.deb.clone(),
                    source,
                })?;
            self.offset += skipped;
            if skipped < member.size {
                return Err(self.truncated(&format!("member '{}'", member.name)));
            }
            self.skip_padding(&member)?;
        }
    }

    /// Members start at even offsets: an odd-sized member is followed by one `\n`.
    fn skip_padding(&mut self, member: &ArMember) -> Result<(), DebError> {
        if member.size % 2 == 1 {
            let mut pad = [0u8; 1];
            // A missing final pad byte is harmless (the archive ends there anyway).
            self.read_up_to(&mut pad)?;
        }
        Ok(())
    }

    /// Decompresses `member` (positioned at its first byte) and walks its tar stream.
    fn with_tar(
        &mut self,
        member: &ArMember,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), DebError>,
    ) -> Result<(), DebError> {
        let deb = self.deb.clone();
        let truncated = Rc::new(Cell::new(false));
        let raw = MemberReader {
            inner: &mut self.reader,
            remaining: member.size,
            truncated: truncated.clone(),
        };
        let tar_stream = decompressor(&deb, &member.name, raw)?;
        let walk = TarWalk {
            deb: &deb,
            member: &member.name,
            truncated: &truncated,
        };
        walk.run(tar_stream, visit)
    }
}

/// Reads exactly one ar member; an early end of file is an error and sets `truncated`.
struct MemberReader<'a> {
    inner: &'a mut BufReader<File>,
    remaining: u64,
    truncated: Rc<Cell<bool>>,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            self.truncated.set(true);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the .deb file ends inside this member",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The decompressor named by the member's suffix.
fn decompressor<'a>(
    deb: &Path,
    name: &str,
    raw: MemberReader<'a>,
) -> Result<Box<dyn Read + 'a>, DebError> {
    let suffix = name
        .strip_prefix("control.tar")
        .or_else(|| name.strip_prefix("data.tar"))
        .unwrap_or(name);
    Ok(match suffix {
        "" => Box::new(raw),
        ".gz" => Box::new(flate2::read::GzDecoder::new(raw)),
        ".xz" => Box::new(lzma_rust2::XzReader::new_mem_limit(
            BufReader::new(raw),
            true,
            XZ_MEM_LIMIT_KIB,
        )),
        ".zst" => Box::new(ZstdReader::Pending(Some(raw))),
        _ => {
            return Err(DebError::UnknownCompression {
                deb: deb.to_path_buf(),
                member: name.to_string(),
            })
        }
    })
}

/// ruzstd reads the frame header in its constructor; defer that to the first read so its
/// errors take the same path as every other stream error.
enum ZstdReader<'a> {
    Pending(Option<MemberReader<'a>>),
    Running(
        Box<ruzstd::decoding::StreamingDecoder<MemberReader<'a>, ruzstd::decoding::FrameDecoder>>,
    ),
}

impl Read for ZstdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let ZstdReader::Pending(raw) = self {
            let raw = raw
                .take()
                .ok_or_else(|| io::Error::other("zstd stream failed to start"))?;
            let decoder = ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            *self = ZstdReader::Running(Box::new(decoder));
        }
        match self {
            ZstdReader::Running(decoder) => decoder.read(buf),
            ZstdReader::Pending(_) => Ok(0),
        }
    }
}

/// Why a capped read stopped.
enum Capped {
    Io(io::Error),
    TooLarge,
}

/// Reads all of `r` into memory, refusing more than `limit` bytes.
fn read_capped(r: &mut dyn Read, limit: u64) -> Result<Vec<u8>, Capped> {
    let mut out = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(Capped::Io)?;
    if out.len() as u64 > limit {
        return Err(Capped::TooLarge);
    }
    Ok(out)
}

/// The records of a pax extended header that change how the next member is read.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

/// One pass over a tar stream inside a `.deb`, with the context for error messages.
struct TarWalk<'a> {
    deb: &'a Path,
    member: &'a str,
    truncated: &'a Cell<bool>,
}

impl TarWalk<'_> {
    /// A stream error: truncation if the file ended early, damage otherwise.
    fn stream_error(&self, e: &io::Error) -> DebError {
        if self.truncated.get() {
            DebError::Truncated {
                deb: self.deb.to_path_buf(),
                what: format!("member '{}'", self.member),
            }
        } else {
            self.corrupt(e.to_string())
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> DebError {
        DebError::Corrupt {
            deb: self.deb.to_path_buf(),
            member: self.member.to_string(),
            reason: reason.into(),
        }
    }

    /// Reads an extension header's content under a cap.
    fn read_extension(
        &self,
        r: &mut dyn Read,
        what: &str,
        limit: u64,
    ) -> Result<Vec<u8>, DebError> {
        read_capped(r, limit).map_err(|e| match e {
            Capped::Io(e) => self.stream_error(&e),
            Capped::TooLarge => too_large(self.deb, &format!("a {what} in {}", self.member), limit),
        })
    }

    fn run(
        &self,
        stream: Box<dyn Read + '_>,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), DebError>,
    ) -> Result<(), DebError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(|e| self.stream_error(&e))?
            .raw(true);
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Pax> = None;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.stream_error(&e))?;
            let flag = entry.header().entry_type().as_byte();
            match flag {
                b'L' | b'K' => {
                    let slot = if flag == b'L' {
                        &mut long_name
                    } else {
                        &mut long_link
                    };
                    if slot.is_some() {
                        return Err(self.corrupt("two GNU long-name headers for one member"));
                    }
                    let mut value =
                        self.read_extension(&mut entry, "GNU long name", MAX_LONG_NAME)?;
                    while value.last() == Some(&0) {
                        value.pop();
                    }
                    *slot = Some(value);
                    continue;
                }
                b'x' => {
                    if pax.is_some() {
                        return Err(self.corrupt("two pax headers for one member"));
                    }
                    let data = self.read_extension(&mut entry, "pax header", MAX_PAX_HEADER)?;
                    pax = Some(self.parse_pax(&data)?);
                    continue;
                }
                b'g' => {
                    let data =
                        self.read_extension(&mut entry, "pax global header", MAX_PAX_HEADER)?;
                    let global = self.parse_pax(&data)?;
                    if global.path.is_some() || global.linkpath.is_some() || global.size.is_some() {
                        return Err(self.corrupt("a pax global header sets path, linkpath or size"));
                    }
                    continue;
                }
                b'S' => return Err(self.corrupt("GNU sparse members are not supported")),
                _ => {}
            }
            let pax = pax.take().unwrap_or_default();
            let header = entry.header();
            let raw_path = pax
                .path
                .or(long_name.take())
                .unwrap_or_else(|| header.path_bytes().into_owned());
            let raw_link = pax
                .linkpath
                .or(long_link.take())
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
            let size = header
                .entry_size()
                .map_err(|e| self.corrupt(e.to_string()))?;
            if pax.size.is_some_and(|s| s != size) {
                return Err(
                    self.corrupt("a pax size record overrides the header size (not supported)")
                );
            }
            let path_text = self.utf8(raw_path, "member path")?;
            let path = match TreePath::from_archive(&path_text) {
                Ok(p) => p,
                // The archive root "./" is the directory everything is unpacked into.
                Err(PathError::Empty(_)) if flag == b'5' => continue,
                Err(source) => return Err(self.bad_path(path_text, source)),
            };
            let kind = match flag {
                b'0' | b'\0' | b'7' => MemberKind::File,
                b'5' => MemberKind::Dir,
                b'2' | b'1' => {
                    let target = raw_link
                        .ok_or_else(|| self.corrupt(format!("link '{path}' has no target")))?;
                    let target = self.utf8(target, "link target")?;
                    if flag == b'2' {
                        MemberKind::Symlink(target)
                    } else {
                        MemberKind::Hardlink(
                            TreePath::from_archive(&target)
                                .map_err(|source| self.bad_path(target, source))?,
                        )
                    }
                }
                other => MemberKind::Other(other),
            };
            let mode = header.mode().map_err(|e| self.corrupt(e.to_string()))? & 0o7777;
            let mtime = header.mtime().map_err(|e| self.corrupt(e.to_string()))?;
            let mtime = i64::try_from(mtime)
                .map_err(|_| self.corrupt(format!("'{path}' has mtime {mtime}")))?;
            let member = Member {
                path,
                kind,
                mode,
                mtime,
                size,
            };
            let failure = RefCell::new(None);
            let mut content = Content {
                inner: &mut entry,
                failure: &failure,
            };
            let result = visit(&member, &mut content);
            // A damaged stream is the root cause even when the visitor reports it its own way.
            if let Some(e) = failure.into_inner() {
                return Err(self.stream_error(&e));
            }
            result?;
        }
        if long_name.is_some() || long_link.is_some() || pax.is_some() {
            return Err(self.corrupt("the archive ends after an extension header"));
        }
        // Read to the end so the compressed stream's own check (CRC, xz index) is verified.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| self.stream_error(&e))?;
        Ok(())
    }

    fn utf8(&self, raw: Vec<u8>, what: &str) -> Result<String, DebError> {
        String::from_utf8(raw).map_err(|e| {
            self.corrupt(format!(
                "{what} {:?} is not UTF-8",
                String::from_utf8_lossy(e.as_bytes())
            ))
        })
    }

    fn bad_path(&self, path: String, source: PathError) -> DebError {
        DebError::BadMemberPath {
            deb: self.deb.to_path_buf(),
            member: self.member.to_string(),
            path,
            source,
        }
    }

    /// Parses pax records ("<len> <key>=<value>\n").
    fn parse_pax(&self, mut data: &[u8]) -> Result<Pax, DebError> {
        let mut pax = Pax::default();
        while !data.is_empty() {
            let bad = || self.corrupt("malformed pax header");
            let space = data.iter().position(|&b| b == b' ').ok_or_else(bad)?;
            let len: usize = std::str::from_utf8(&data[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
                return Err(bad());
            }
            let record = &data[space + 1..len - 1];
            let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => pax.path = Some(value.to_vec()),
                b"linkpath" => pax.linkpath = Some(value.to_vec()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(bad)?;
                    pax.size = Some(size);
                }
                k if k.starts_with(b"GNU.sparse.") => {
                    return Err(self.corrupt("GNU sparse members are not supported"))
                }
                _ => {}
            }
            data = &data[len..];
        }
        Ok(pax)
    }
}

/// A member's content as handed to the visitor; remembers the first read error.
struct Content<'a, 'r> {
    inner: &'a mut dyn Read,
    failure: &'r RefCell<Option<io::Error>>,
}

impl Read for Content<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let mut failure = self.failure.borrow_mut();
            if failure.is_none() {
                *failure = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields() {
        let deb = Path::new("x.deb");
        let text = b"Package: linux-image-6.1.0-56-arm64-unsigned\nSource: linux (6.1.192-2)\n\
            version: 6.1.192-2\nArchitecture: arm64\nDescription: Linux 6.1\n continued: here\n .\n";
        let c = parse_control(deb, text).unwrap();
        assert_eq!(c.package, "linux-image-6.1.0-56-arm64-unsigned");
        assert_eq!(c.version, "6.1.192-2");
        assert_eq!(c.architecture, "arm64");

        let err = parse_control(deb, b"Package: a\nVersion: 1\n").unwrap_err();
        let missing =
            matches!(err, DebError::MissingField { field, .. } if field == "Architecture");
        assert!(missing, "{err}");
        let err = parse_control(deb, b"Package: a\nPackage: b\n").unwrap_err();
        assert!(matches!(err, DebError::BadControl { .. }), "{err}");
        let err = parse_control(deb, b"Package: a b\n").unwrap_err();
        assert!(matches!(err, DebError::BadControl { .. }), "{err}");
        // Fields after the first paragraph do not count.
        let err = parse_control(deb, b"Package: a\nVersion: 1\n\nArchitecture: all\n").unwrap_err();
        assert!(matches!(err, DebError::MissingField { .. }), "{err}");
    }

    #[test]
    fn pax_records() {
        let truncated = Cell::new(false);
        let walk = TarWalk {
            deb: Path::new("x.deb"),
            member: "data.tar",
            truncated: &truncated,
        };
        let pax = walk
            .parse_pax(b"30 mtime=1700000000.123456789\n14 path=a/b/c\n")
            .unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"a/b/c"[..]));
        assert!(walk.parse_pax(b"99 path=x\n").is_err());
        assert!(walk.parse_pax(b"3 x\n").is_err());
        assert!(walk.parse_pax(b"abc").is_err());
    }
}
