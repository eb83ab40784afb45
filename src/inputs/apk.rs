//! Reads Alpine packages (`.apk`, format v2) without apk-tools, treating them as hostile input.
//!
//! An apk v2 is concatenated gzip members: an optional signature tar (`.SIGN.RSA.<key>.pub`),
//! the control tar (`.PKGINFO`, install scripts) and the data tar.gz; the first two tars have
//! no end-of-archive blocks. `.PKGINFO`'s `datahash` is the SHA-256 of the data member's bytes
//! as stored, so the data is checked against it before any member is handed out. Member
//! boundaries are found by decompressing: flate2's buffered gzip decoder stops exactly at the
//! end of one member. The signature and the control member's SHA-1 and SHA-256 are handed
//! out; `apk_keys` checks them against the signer's key.

use super::deb::Member;
use super::tarball::{self, TarFault, WalkError};
use crate::codec::apkindex::{self, IndexRecord, SignatureDigest, MAX_SIGNATURE};
use crate::codec::reader::ReadError;
use crate::digest::hex;
use flate2::bufread::{GzDecoder, MultiGzDecoder};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Cap on the decompressed signature or control tar (real ones are a few KiB).
pub const MAX_CONTROL_TAR: u64 = 16 << 20;
/// Cap on `.PKGINFO` (real ones are about 1 KiB).
pub const MAX_PKGINFO: u64 = 1 << 20;
/// The magic of apk v3 packages, which this reader does not handle.
const APK_V3_MAGIC: &[u8; 3] = b"ADB";

/// What `.PKGINFO` says about a package, and where its data segment starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkInfo {
    /// Seconds since 1970 (`builddate`), when stated.
    pub builddate: Option<i64>,
    /// SHA-256 (lowercase hex) of the data segment as stored.
    pub datahash: String,
    /// The signing key's name from a `.SIGN.*` member, when signed.
    pub signature_key: Option<String>,
    /// The first `.SIGN.RSA.*` or `.SIGN.RSA256.*` signature, when signed so.
    pub signature: Option<ApkSignature>,
    /// SHA-1 and SHA-256 of the control segment's gzip member as stored: what the signature
    /// covers, and (SHA-1) the package's identity in an index.
    pub control_sha1: [u8; 20],
    pub control_sha256: [u8; 32],
    /// Byte offset of the control segment (0 when unsigned).
    pub control_offset: u64,
    /// Byte offset of the data segment (the third, or second when unsigned, gzip member).
    pub data_offset: u64,
    /// The package's `APKINDEX` record (`checksum` and `size` filled in by the reader).
    pub record: IndexRecord,
}

impl ApkInfo {
    /// `pkgname`.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// `pkgver`.
    pub fn version(&self) -> &str {
        &self.record.version
    }

    /// `arch` (required by the reader).
    pub fn arch(&self) -> &str {
        self.record.arch.as_deref().unwrap_or_default()
    }

    /// The `license` field, verbatim, when stated and not empty.
    pub fn license(&self) -> Option<&str> {
        Some(self.record.license.as_str()).filter(|l| !l.is_empty())
    }
}

/// An RSA signature member of an apk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkSignature {
    pub digest: SignatureDigest,
    /// The key's file name in an `/etc/apk/keys` folder (`<name>.rsa.pub`).
    pub key_name: String,
    pub bytes: Vec<u8>,
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApkError {
    #[error("{}: cannot read the file: {source}", apk.display())]
    Io {
        apk: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not an Alpine package (v2): {reason}", apk.display())]
    NotAnApk { apk: PathBuf, reason: String },
    #[error("{}: the file ends inside {what}; it is truncated, download it again", apk.display())]
    Truncated { apk: PathBuf, what: &'static str },
    #[error("{}: {what} is damaged: {reason}; download the package again", apk.display())]
    Corrupt {
        apk: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{}: the control segment has no .PKGINFO; this is not a complete Alpine package", apk.display())]
    MissingPkginfo { apk: PathBuf },
    #[error("{}: .PKGINFO: {reason}", apk.display())]
    BadPkginfo { apk: PathBuf, reason: String },
    #[error("{}: .PKGINFO has no '{field}'; pimg needs it{why}", apk.display())]
    MissingField {
        apk: PathBuf,
        field: &'static str,
        why: &'static str,
    },
    #[error("{}: the file ends after the control segment; it has no data segment", apk.display())]
    NoData { apk: PathBuf },
    #[error(
        "{}: the data segment (from byte {offset}) has sha256 {actual} but .PKGINFO's datahash is \
         {expected}: the package was changed after it was built; download it again",
        apk.display()
    )]
    DataHash {
        apk: PathBuf,
        offset: u64,
        expected: String,
        actual: String,
    },
    #[error("{}: data segment {fault}", apk.display())]
    Data { apk: PathBuf, fault: TarFault },
}

/// Reads `.PKGINFO` (signature and control segments only; the data is not checked).
pub fn read_info(path: &Path) -> Result<ApkInfo, ApkError> {
    Ok(open_control(path)?.1)
}

/// Reads `.PKGINFO` and checks the data segment against its `datahash`.
pub fn verify(path: &Path) -> Result<ApkInfo, ApkError> {
    let (mut reader, info) = open_control(path)?;
    check_datahash(path, &mut reader, &info)?;
    Ok(info)
}

/// Opens the package and reads its control segment: the reader, at the data segment, and
/// what `.PKGINFO` says (with the file's size).
fn open_control(path: &Path) -> Result<(BufReader<File>, ApkInfo), ApkError> {
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    let size = file
        .metadata()
        .map_err(|source| io_error(path, source))?
        .len();
    let mut reader = BufReader::new(file);
    let mut info = read_control(path, &mut reader)?;
    info.record.size = size;
    Ok((reader, info))
}

/// Like [`verify`] for a package already in memory (the bytes checked are the bytes used).
pub fn verify_bytes(path: &Path, bytes: &[u8]) -> Result<ApkInfo, ApkError> {
    let mut reader = BufReader::new(Cursor::new(bytes));
    let mut info = read_control(path, &mut reader)?;
    info.record.size = bytes.len() as u64;
    check_datahash(path, &mut reader, &info)?;
    Ok(info)
}

/// Checks the data segment against `datahash`, then streams its members in archive order;
/// `visit` gets each member and a reader of its content. The root entry `./` is not reported.
pub fn scan_data<E: From<ApkError>>(
    path: &Path,
    visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let info = verify(path)?;
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    reader
        .seek(SeekFrom::Start(info.data_offset))
        .map_err(|source| io_error(path, source))?;
    tarball::walk(MultiGzDecoder::new(reader), visit).map_err(|e| match e {
        WalkError::Visitor(e) => e,
        WalkError::Fault(fault) => ApkError::Data {
            apk: path.to_path_buf(),
            fault,
        }
        .into(),
    })
}

fn io_error(apk: &Path, source: io::Error) -> ApkError {
    ApkError::Io {
        apk: apk.to_path_buf(),
        source,
    }
}

/// Hashes everything from the data offset to the end and compares it with `datahash`.
fn check_datahash<R: Read + Seek>(
    path: &Path,
    reader: &mut BufReader<R>,
    info: &ApkInfo,
) -> Result<(), ApkError> {
    reader
        .seek(SeekFrom::Start(info.data_offset))
        .map_err(|source| io_error(path, source))?;
    let mut h = Sha256::new();
    let n = io::copy(reader, &mut h).map_err(|source| io_error(path, source))?;
    if n == 0 {
        return Err(ApkError::NoData {
            apk: path.to_path_buf(),
        });
    }
    let actual = hex(&h.finalize());
    if actual != info.datahash {
        // A cut-off download is the likelier story when the gzip stream ends early.
        reader
            .seek(SeekFrom::Start(info.data_offset))
            .map_err(|source| io_error(path, source))?;
        let mut gz = MultiGzDecoder::new(reader);
        if let Err(e) = io::copy(&mut gz, &mut io::sink()) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Err(ApkError::Corrupt {
                    apk: path.to_path_buf(),
                    what: "the data segment",
                    reason: format!(
                        "its gzip stream ends early, so the file is truncated or damaged, and its \
                         sha256 {actual} does not match .PKGINFO's datahash {}",
                        info.datahash
                    ),
                });
            }
        }
        return Err(ApkError::DataHash {
            apk: path.to_path_buf(),
            offset: info.data_offset,
            expected: info.datahash.clone(),
            actual,
        });
    }
    Ok(())
}

/// What one of the leading gzip members held.
#[derive(Default)]
struct Segment {
    pkginfo: Option<Vec<u8>>,
    signature_key: Option<String>,
    signature: Option<ApkSignature>,
    members: usize,
}

/// Reads the signature (if any) and control segments from the start of `reader`.
fn read_control<R: Read + Seek>(
    path: &Path,
    reader: &mut BufReader<R>,
) -> Result<ApkInfo, ApkError> {
    let head = reader.fill_buf().map_err(|source| io_error(path, source))?;
    if head.starts_with(APK_V3_MAGIC) {
        return Err(ApkError::NotAnApk {
            apk: path.to_path_buf(),
            reason: "it starts with 'ADB', the apk v3 format, which pimg does not read yet".into(),
        });
    }
    if !head.starts_with(&crate::codec::gzip::read::MAGIC) {
        return Err(ApkError::NotAnApk {
            apk: path.to_path_buf(),
            reason: if head.is_empty() {
                "the file is empty".into()
            } else {
                "it does not start with a gzip member (1f 8b)".into()
            },
        });
    }
    let first = read_segment(path, reader, "the first gzip member")?;
    let mut control_offset = 0;
    let (signature_key, signature, control) = if first.pkginfo.is_some() {
        (None, None, first)
    } else if first.signature_key.is_some() {
        if reader
            .fill_buf()
            .map_err(|source| io_error(path, source))?
            .is_empty()
        {
            return Err(ApkError::Truncated {
                apk: path.to_path_buf(),
                what: "the package (nothing follows the signature)",
            });
        }
        control_offset = reader
            .stream_position()
            .map_err(|source| io_error(path, source))?;
        let control = read_segment(path, reader, "the control segment")?;
        (first.signature_key, first.signature, control)
    } else {
        return Err(ApkError::NotAnApk {
            apk: path.to_path_buf(),
            reason: format!(
                "its first gzip member holds {} tar members but neither a .SIGN.* signature nor .PKGINFO",
                first.members
            ),
        });
    };
    let pkginfo = control.pkginfo.ok_or_else(|| ApkError::MissingPkginfo {
        apk: path.to_path_buf(),
    })?;
    let data_offset = reader
        .stream_position()
        .map_err(|source| io_error(path, source))?;
    let mut info = parse_pkginfo(path, &pkginfo)?;
    info.signature_key = signature_key;
    info.signature = signature;
    info.control_offset = control_offset;
    info.data_offset = data_offset;
    // Hash the control member's bytes as stored: the signature and the index's identity
    // cover the compressed bytes, not the tar.
    reader
        .seek(SeekFrom::Start(control_offset))
        .map_err(|source| io_error(path, source))?;
    let mut both = TwoDigests::default();
    io::copy(
        &mut Read::take(&mut *reader, data_offset - control_offset),
        &mut both,
    )
    .map_err(|source| io_error(path, source))?;
    info.control_sha1 = both.sha1.finalize().into();
    info.control_sha256 = both.sha256.finalize().into();
    info.record.checksum = info.control_sha1;
    reader
        .seek(SeekFrom::Start(data_offset))
        .map_err(|source| io_error(path, source))?;
    Ok(info)
}

/// SHA-1 and SHA-256 of one stream.
#[derive(Default)]
struct TwoDigests {
    sha1: Sha1,
    sha256: Sha256,
}

impl io::Write for TwoDigests {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sha1.update(buf);
        self.sha256.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses exactly one gzip member from `reader` and collects what its tar holds.
fn read_segment<R: Read>(
    path: &Path,
    reader: &mut BufReader<R>,
    what: &'static str,
) -> Result<Segment, ApkError> {
    let mut gz = Capped {
        inner: GzDecoder::new(reader),
        left: MAX_CONTROL_TAR,
    };
    let mut seg = Segment::default();
    let mut failure: Option<ApkError> = None;
    let result = crate::codec::tar::read::read(&mut gz, |entry, data| {
        seg.members += 1;
        let name = entry.path.trim_start_matches("./");
        if let Some(key) = name.strip_prefix(".SIGN.") {
            if seg.signature_key.is_none() {
                seg.signature_key = Some(key.to_string());
            }
            if let Some((digest, key_name)) = apkindex::signature_member(name) {
                if seg.signature.is_none() {
                    if entry.size > MAX_SIGNATURE {
                        failure = Some(ApkError::Corrupt {
                            apk: path.to_path_buf(),
                            what: "the signature segment",
                            reason: format!(
                                "its {name} is {} bytes, more than the {MAX_SIGNATURE} pimg accepts",
                                entry.size
                            ),
                        });
                        return Err(ReadError::invalid(name, 0, "too large"));
                    }
                    let mut bytes = Vec::new();
                    data.take(MAX_SIGNATURE)
                        .read_to_end(&mut bytes)
                        .map_err(|source| ReadError::Io {
                            what: name.to_string(),
                            offset: entry.data_offset,
                            source,
                        })?;
                    seg.signature = Some(ApkSignature {
                        digest,
                        key_name: key_name.to_string(),
                        bytes,
                    });
                }
            }
        } else if name == ".PKGINFO" {
            if seg.pkginfo.is_some() {
                failure = Some(ApkError::BadPkginfo {
                    apk: path.to_path_buf(),
                    reason: "the control segment holds two .PKGINFO files".into(),
                });
                return Err(ReadError::invalid(".PKGINFO", 0, "twice"));
            }
            if entry.size > MAX_PKGINFO {
                failure = Some(ApkError::BadPkginfo {
                    apk: path.to_path_buf(),
                    reason: format!(
                        "it is {} bytes, more than the {MAX_PKGINFO} pimg accepts",
                        entry.size
                    ),
                });
                return Err(ReadError::invalid(".PKGINFO", 0, "too large"));
            }
            let mut text = Vec::new();
            data.take(MAX_PKGINFO)
                .read_to_end(&mut text)
                .map_err(|source| ReadError::Io {
                    what: ".PKGINFO".into(),
                    offset: entry.data_offset,
                    source,
                })?;
            seg.pkginfo = Some(text);
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let truncated = || ApkError::Truncated {
        apk: path.to_path_buf(),
        what,
    };
    let corrupt = |reason: String| ApkError::Corrupt {
        apk: path.to_path_buf(),
        what,
        reason,
    };
    match result {
        Ok(_) => {}
        Err(ReadError::Truncated { .. }) => return Err(truncated()),
        Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(truncated())
        }
        Err(e) => return Err(corrupt(e.to_string())),
    }
    // The tar reader stops at the end of the stream or at an end marker; finish the member so
    // its CRC and length are checked and the reader sits exactly at the next member.
    io::copy(&mut gz, &mut io::sink()).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            corrupt(e.to_string())
        }
    })?;
    Ok(seg)
}

/// A decompressed stream that fails once more than `left` bytes come out of it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it decompresses to more than the {MAX_CONTROL_TAR} bytes pimg accepts"),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Parses `.PKGINFO`: `key = value` lines, `#` comments; repeated keys (depend, provides, ...)
/// are allowed except for the ones pimg uses. The index fields are read as apk-tools reads
/// them: the dependency keys add words, the others keep their last value.
fn parse_pkginfo(path: &Path, text: &[u8]) -> Result<ApkInfo, ApkError> {
    let bad = |reason: String| ApkError::BadPkginfo {
        apk: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(text).map_err(|_| bad("not valid UTF-8".into()))?;
    const SINGLE: [&str; 6] = [
        "pkgname",
        "pkgver",
        "arch",
        "builddate",
        "datahash",
        "license",
    ];
    let mut fields: [Option<String>; 6] = Default::default();
    let mut record = IndexRecord::default();
    let number = |key: &str, value: &str| {
        value
            .parse::<u64>()
            .map_err(|_| bad(format!("'{key}' {value:?} is not a number")))
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("line {} is not 'key = value': {line:?}", n + 1)))?;
        let (key, value) = (key.trim(), value.trim());
        if let Some(i) = SINGLE.iter().position(|k| *k == key) {
            if fields[i].is_some() {
                return Err(bad(format!("'{key}' appears twice")));
            }
            fields[i] = Some(value.to_string());
        }
        let words = || value.split_whitespace().map(str::to_string);
        match key {
            "pkgdesc" => record.description = value.to_string(),
            "url" => record.url = value.to_string(),
            "size" => record.installed_size = number(key, value)?,
            "origin" => record.origin = Some(value.to_string()),
            "maintainer" => record.maintainer = Some(value.to_string()),
            "commit" => record.commit = Some(value.to_string()),
            "provider_priority" => record.provider_priority = number(key, value)?,
            "depend" => record.depends.extend(words()),
            "provides" => record.provides.extend(words()),
            "install_if" => record.install_if.extend(words()),
            _ => {}
        }
    }
    let [pkgname, pkgver, arch, builddate, datahash, license] = fields;
    let missing = |field: &'static str, why: &'static str| ApkError::MissingField {
        apk: path.to_path_buf(),
        field,
        why,
    };
    let word = |field: &'static str, v: Option<String>| -> Result<String, ApkError> {
        let v = v.ok_or_else(|| missing(field, " to name the package"))?;
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(bad(format!("'{field}' has an invalid value {v:?}")));
        }
        Ok(v)
    };
    let pkgname = word("pkgname", pkgname)?;
    let pkgver = word("pkgver", pkgver)?;
    let arch = word("arch", arch)?;
    let datahash = datahash
        .ok_or_else(|| {
            missing(
                "datahash",
                " to check the data segment; rebuild it with abuild",
            )
        })?
        .to_ascii_lowercase();
    if datahash.len() != 64 || !datahash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "'datahash' {datahash:?} is not a SHA-256 in hex"
        )));
    }
    let builddate = builddate
        .map(|b| {
            b.parse::<i64>()
                .ok()
                .filter(|t| *t >= 0)
                .ok_or_else(|| bad(format!("'builddate' {b:?} is not seconds since 1970")))
        })
        .transpose()?;
    record.name = pkgname;
    record.version = pkgver;
    record.arch = Some(arch);
    record.license = license.unwrap_or_default();
    record.build_time = builddate.unwrap_or(0) as u64;
    Ok(ApkInfo {
        builddate,
        datahash,
        signature_key: None,
        signature: None,
        control_sha1: [0; 20],
        control_sha256: [0; 32],
        control_offset: 0,
        data_offset: 0,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkginfo_fields() {
        let p = Path::new("x.apk");
        let text = format!(
            "# Generated by abuild\npkgname = busybox\npkgver = 1.36.1-r15\narch = aarch64\n\
             builddate = 1700000000\nlicense = GPL-2.0-only\ndepend = so:libc.musl-aarch64.so.1\n\
             depend = musl\ndatahash = {}\n",
            "AB".repeat(32)
        );
        let i = parse_pkginfo(p, text.as_bytes()).unwrap();
        assert_eq!(i.name(), "busybox");
        assert_eq!(i.version(), "1.36.1-r15");
        assert_eq!(i.arch(), "aarch64");
        assert_eq!(i.builddate, Some(1_700_000_000));
        assert_eq!(i.license(), Some("GPL-2.0-only"));
        assert_eq!(i.datahash, "ab".repeat(32));
        assert_eq!(i.record.depends, ["so:libc.musl-aarch64.so.1", "musl"]);
        assert_eq!(i.record.build_time, 1_700_000_000);
        assert_eq!(i.record.license, "GPL-2.0-only");

        let err = parse_pkginfo(p, b"pkgname = a\npkgname = b\n").unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = parse_pkginfo(p, b"pkgname = a\npkgver = 1\narch = x\n").unwrap_err();
        let missing = matches!(err, ApkError::MissingField { field, .. } if field == "datahash");
        assert!(missing, "{err}");
        let err = parse_pkginfo(p, b"pkgname = a b\n").unwrap_err();
        assert!(matches!(err, ApkError::BadPkginfo { .. }), "{err}");
        let err = parse_pkginfo(p, b"just text\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let text = format!(
            "pkgname=a\npkgver=1\narch=x\nbuilddate=-5\ndatahash={}\n",
            "0".repeat(64)
        );
        let err = parse_pkginfo(p, text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("builddate"), "{err}");
    }

    #[test]
    fn not_gzip_and_v3_are_named() {
        let p = Path::new("x.apk");
        let err = verify_bytes(p, b"ADBd....").unwrap_err();
        assert!(err.to_string().contains("apk v3"), "{err}");
        let err = verify_bytes(p, b"hello").unwrap_err();
        assert!(
            err.to_string()
                .contains("does not start with a gzip member"),
            "{err}"
        );
        let err = verify_bytes(p, b"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
