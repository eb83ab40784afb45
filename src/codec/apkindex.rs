//! Alpine's repository index, v2 (`APKINDEX.tar.gz`): writer and reader.
//!
//! The layout follows apk-tools 2.14's `apk index`: one record per package (`C:` the package
//! identity, then `P V A S I T U L o m t c k` and the dependency lines `D p i`, a blank line
//! after each), ordered as `apk_db_foreach_sorted_package` orders them (names compared
//! case-insensitively, then bytewise; versions of one name by apk's version order, oldest
//! first). The records are the `APKINDEX` member of a tar after a `DESCRIPTION` member, with
//! the two end-of-archive blocks, in one gzip member. A signed index has one more gzip member
//! in front: a tar holding only `.SIGN.RSA.<key>.rsa.pub` (the RSA signature over the index's
//! gzip bytes), with no end-of-archive blocks so the two concatenate into one tar stream.

use crate::codec::archive::ArchiveError;
use crate::codec::reader::ReadError;
use crate::codec::{gzip::write as gzip, tar::write as tar};
use std::cmp::Ordering;
use std::io::Read;

/// The tar member that holds the records.
pub const INDEX_MEMBER: &str = "APKINDEX";
/// The tar member that holds the repository description.
pub const DESCRIPTION_MEMBER: &str = "DESCRIPTION";
/// Prefix of the signature member of an RSA (SHA-1) signed index or package.
pub const SIGN_RSA_PREFIX: &str = ".SIGN.RSA.";
/// Prefix of the signature member of an RSA SHA-256 signed package.
pub const SIGN_RSA256_PREFIX: &str = ".SIGN.RSA256.";
/// Cap on a decompressed index tar the reader accepts.
pub const MAX_INDEX_TAR: u64 = 64 << 20;
/// Cap on a signature member (an RSA-16384 signature is 2 KiB).
pub const MAX_SIGNATURE: u64 = 64 << 10;
/// Cap on the decompressed signature segment.
pub const MAX_SIGNATURE_TAR: u64 = 1 << 20;

/// One package's index record: the fields apk-tools writes for a v2 package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexRecord {
    /// SHA-1 of the package's control-segment gzip member as stored (`C:`, "Q1" + base64).
    pub checksum: [u8; 20],
    /// `P:` pkgname.
    pub name: String,
    /// `V:` pkgver.
    pub version: String,
    /// `A:` arch, when stated.
    pub arch: Option<String>,
    /// `S:` the size of the `.apk` file.
    pub size: u64,
    /// `I:` the installed size (`.PKGINFO`'s `size`).
    pub installed_size: u64,
    /// `T:` pkgdesc (empty when absent: apk writes the letter anyway).
    pub description: String,
    /// `U:` url (written even when empty).
    pub url: String,
    /// `L:` license (written even when empty).
    pub license: String,
    /// `o:` origin, when stated.
    pub origin: Option<String>,
    /// `m:` maintainer, when stated.
    pub maintainer: Option<String>,
    /// `t:` builddate; apk leaves out 0.
    pub build_time: u64,
    /// `c:` commit, when stated.
    pub commit: Option<String>,
    /// `k:` provider_priority; apk leaves out 0.
    pub provider_priority: u64,
    /// `D:` depends, one dependency a word, in `.PKGINFO` order.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install_if.
    pub install_if: Vec<String>,
}

/// Why an index could not be written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "package '{package}': its {field} {value:?} cannot be written into APKINDEX ({why}); \
         fix the package's .PKGINFO"
    )]
    BadValue {
        package: String,
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the repository description {0:?} holds a line break; give one line")]
    BadDescription(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// `"Q1"` + base64 of a SHA-1, as apk writes a v2 package identity.
pub fn identity(sha1: &[u8; 20]) -> String {
    format!("Q1{}", base64(sha1))
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The order `apk index` writes records in: name (case-insensitive, then bytewise), then
/// version by apk's rules.
pub fn record_order(a: &IndexRecord, b: &IndexRecord) -> Ordering {
    let fold = |s: &str| s.to_ascii_lowercase();
    fold(&a.name)
        .cmp(&fold(&b.name))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| compare_versions(&a.version, &b.version))
}

/// The `APKINDEX` text: every record in [`record_order`], each followed by a blank line.
pub fn index_text(records: &[IndexRecord]) -> Result<String, IndexError> {
    let mut sorted: Vec<&IndexRecord> = records.iter().collect();
    sorted.sort_by(|a, b| record_order(a, b));
    let mut out = String::new();
    for r in sorted {
        write_record(&mut out, r)?;
    }
    Ok(out)
}

fn write_record(out: &mut String, r: &IndexRecord) -> Result<(), IndexError> {
    let check = |field: &'static str, value: &str, word: bool| -> Result<(), IndexError> {
        let why = if value.contains(['\n', '\r']) {
            Some("it holds a line break")
        } else if word && (value.is_empty() || value.contains(char::is_whitespace)) {
            Some("it must be one word")
        } else {
            None
        };
        match why {
            Some(why) => Err(IndexError::BadValue {
                package: r.name.clone(),
                field,
                value: value.to_string(),
                why,
            }),
            None => Ok(()),
        }
    };
    check("pkgname", &r.name, true)?;
    check("pkgver", &r.version, true)?;
    let mut line = |letter: char, field: &'static str, value: &str| -> Result<(), IndexError> {
        check(field, value, false)?;
        out.push(letter);
        out.push(':');
        out.push_str(value);
        out.push('\n');
        Ok(())
    };
    line('C', "checksum", &identity(&r.checksum))?;
    line('P', "pkgname", &r.name)?;
    line('V', "pkgver", &r.version)?;
    if let Some(a) = &r.arch {
        line('A', "arch", a)?;
    }
    line('S', "file size", &r.size.to_string())?;
    line('I', "size", &r.installed_size.to_string())?;
    line('T', "pkgdesc", &r.description)?;
    line('U', "url", &r.url)?;
    line('L', "license", &r.license)?;
    if let Some(o) = &r.origin {
        line('o', "origin", o)?;
    }
    if let Some(m) = &r.maintainer {
        line('m', "maintainer", m)?;
    }
    if r.build_time != 0 {
        line('t', "builddate", &r.build_time.to_string())?;
    }
    if let Some(c) = &r.commit {
        line('c', "commit", c)?;
    }
    if r.provider_priority != 0 {
        line('k', "provider_priority", &r.provider_priority.to_string())?;
    }
    for (letter, field, deps) in [
        ('D', "depend", &r.depends),
        ('p', "provides", &r.provides),
        ('i', "install_if", &r.install_if),
    ] {
        if deps.is_empty() {
            continue;
        }
        for d in deps {
            check(field, d, true)?;
        }
        line(letter, field, &deps.join(" "))?;
    }
    out.push('\n');
    Ok(())
}

/// The unsigned `APKINDEX.tar.gz`: gzip(tar(`DESCRIPTION`, `APKINDEX`, end blocks)), both
/// members regular files, mode 0644, owner 0/0, stamped `mtime`.
pub fn write_index(
    records: &[IndexRecord],
    description: &str,
    mtime: u64,
    level: u32,
) -> Result<Vec<u8>, IndexError> {
    if description.contains(['\n', '\r']) {
        return Err(IndexError::BadDescription(description.to_string()));
    }
    let text = index_text(records)?;
    let meta = member_meta(mtime);
    let mut t = tar::TarWriter::new(gzip::encoder(Vec::new(), level));
    t.append_file(DESCRIPTION_MEMBER, &meta, description.as_bytes())?;
    t.append_file(INDEX_MEMBER, &meta, text.as_bytes())?;
    Ok(finish_gzip(t.finish()?)?)
}

/// The signature segment put in front of a signed index: gzip(tar with one member
/// `.SIGN.RSA.<key_name>` holding `signature`), without end-of-archive blocks.
pub fn signature_segment(
    key_name: &str,
    signature: &[u8],
    mtime: u64,
    level: u32,
) -> Result<Vec<u8>, ArchiveError> {
    let mut t = tar::TarWriter::new(gzip::encoder(Vec::new(), level));
    t.append_file(
        &format!("{SIGN_RSA_PREFIX}{key_name}"),
        &member_meta(mtime),
        signature,
    )?;
    // No finish(): the end blocks would end the tar stream apk reads across both members.
    finish_gzip(t.into_inner())
}

fn member_meta(mtime: u64) -> tar::TarMeta {
    tar::TarMeta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime,
    }
}

fn finish_gzip(gz: gzip::GzEncoder<Vec<u8>>) -> Result<Vec<u8>, ArchiveError> {
    gz.finish().map_err(|source| ArchiveError::Io {
        format: "gzip",
        source,
    })
}

/// Which digest a signature member's name says was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureDigest {
    /// `.SIGN.RSA.*`: PKCS#1 v1.5 over SHA-1.
    Sha1,
    /// `.SIGN.RSA256.*`: PKCS#1 v1.5 over SHA-256.
    Sha256,
}

/// A signature member's digest and key name (`<name>.rsa.pub`), from its tar member name;
/// none when the name is not a `.SIGN.RSA*` member.
pub fn signature_member(name: &str) -> Option<(SignatureDigest, &str)> {
    let name = name.trim_start_matches("./");
    if let Some(key) = name.strip_prefix(SIGN_RSA256_PREFIX) {
        Some((SignatureDigest::Sha256, key))
    } else {
        name.strip_prefix(SIGN_RSA_PREFIX)
            .map(|key| (SignatureDigest::Sha1, key))
    }
}

/// An index as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadIndex {
    /// The signature member's digest, key name and bytes, when signed.
    pub signature: Option<(SignatureDigest, String, Vec<u8>)>,
    /// The gzip bytes the signature covers (the whole file when unsigned).
    pub signed_bytes_offset: usize,
    /// The `DESCRIPTION` member, when present.
    pub description: Option<String>,
    /// The `APKINDEX` member.
    pub text: String,
}

/// Reads an `APKINDEX.tar.gz` (signed or not) from hostile bytes: sizes capped, every
/// member's type checked.
pub fn read_index(bytes: &[u8]) -> Result<ReadIndex, ReadError> {
    let mut rest = bytes;
    let mut signature = None;
    let first = read_member(&mut rest, MAX_INDEX_TAR, "the first gzip member")?;
    let mut offset = 0;
    let mut index_tar = first.tar;
    if let Some(sig) = first.signature {
        signature = Some(sig);
        offset = bytes.len() - rest.len();
        if rest.is_empty() {
            return Err(ReadError::Truncated {
                what: "the index after its signature".into(),
                offset: offset as u64,
                needed: 1,
                end: bytes.len() as u64,
            });
        }
        let second = read_member(&mut rest, MAX_INDEX_TAR, "the index gzip member")?;
        if second.signature.is_some() {
            return Err(ReadError::invalid(
                "the index gzip member",
                offset as u64,
                "holds a second signature",
            ));
        }
        index_tar = second.tar;
    }
    if !rest.is_empty() {
        return Err(ReadError::invalid(
            "the index",
            (bytes.len() - rest.len()) as u64,
            format!("{} bytes follow the last gzip member", rest.len()),
        ));
    }
    let (description, text) = index_tar;
    let text = text
        .ok_or_else(|| ReadError::invalid("the index", offset as u64, "has no APKINDEX member"))?;
    Ok(ReadIndex {
        signature,
        signed_bytes_offset: offset,
        description,
        text,
    })
}

type SignatureFound = (SignatureDigest, String, Vec<u8>);

struct Member {
    signature: Option<SignatureFound>,
    tar: (Option<String>, Option<String>),
}

/// Decompresses one gzip member from the front of `rest` and reads the tar in it.
fn read_member(rest: &mut &[u8], cap: u64, what: &str) -> Result<Member, ReadError> {
    let start = *rest;
    let mut gz = flate2::bufread::GzDecoder::new(&mut *rest).take(cap + 1);
    let mut tar_bytes = Vec::new();
    gz.read_to_end(&mut tar_bytes)
        .map_err(|source| ReadError::Io {
            what: what.into(),
            offset: 0,
            source,
        })?;
    if tar_bytes.len() as u64 > cap {
        return Err(ReadError::Limit {
            what: what.into(),
            offset: 0,
            value: tar_bytes.len() as u64,
            max: cap,
        });
    }
    drop(gz);
    if rest.len() == start.len() {
        return Err(ReadError::invalid(what, 0, "is not a gzip member"));
    }
    let mut m = Member {
        signature: None,
        tar: (None, None),
    };
    crate::codec::tar::read::read(tar_bytes.as_slice(), |entry, data| {
        let mut take = |limit: u64, what: &str| -> Result<Vec<u8>, ReadError> {
            if entry.typeflag != b'0' && entry.typeflag != 0 {
                return Err(ReadError::invalid(
                    what,
                    entry.header_offset,
                    "is not a regular file",
                ));
            }
            if entry.size > limit {
                return Err(ReadError::Limit {
                    what: what.into(),
                    offset: entry.header_offset,
                    value: entry.size,
                    max: limit,
                });
            }
            let mut v = Vec::new();
            data.take(limit)
                .read_to_end(&mut v)
                .map_err(|source| ReadError::Io {
                    what: what.into(),
                    offset: entry.data_offset,
                    source,
                })?;
            Ok(v)
        };
        let text = |v: Vec<u8>, what: &str| {
            String::from_utf8(v)
                .map_err(|_| ReadError::invalid(what, entry.data_offset, "is not UTF-8"))
        };
        if let Some((digest, key)) = signature_member(&entry.path) {
            if m.signature.is_some() {
                return Err(ReadError::invalid(
                    "signature",
                    entry.header_offset,
                    "a second signature member",
                ));
            }
            let key = key.to_string();
            m.signature = Some((digest, key, take(MAX_SIGNATURE, "the signature member")?));
        } else if entry.path == DESCRIPTION_MEMBER {
            m.tar.0 = Some(text(take(MAX_INDEX_TAR, "DESCRIPTION")?, "DESCRIPTION")?);
        } else if entry.path == INDEX_MEMBER {
            if m.tar.1.is_some() {
                return Err(ReadError::invalid(
                    "APKINDEX",
                    entry.header_offset,
                    "a second APKINDEX member",
                ));
            }
            m.tar.1 = Some(text(take(MAX_INDEX_TAR, "APKINDEX")?, "APKINDEX")?);
        }
        Ok(())
    })?;
    Ok(m)
}

/// One token of an apk version, weighted so that comparing (weight, rank, number)
/// lexicographically gives apk's order; [`END`] stands for "the version ends here".
type Token = (u8, u8, u64);
const END: Token = (2, 0, 0);

/// apk's version order (apk-tools `version.c`): dot-separated numbers, one optional letter,
/// `_alpha _beta _pre _rc` (older than none) and `_cvs _svn _git _hg _p` (newer) suffixes
/// with optional numbers, `~hash`, `-r<N>`. A version outside that grammar sorts after the
/// valid ones, bytewise among themselves.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (version_tokens(a), version_tokens(b)) {
        (Some(x), Some(y)) => {
            let n = x.len().max(y.len());
            for i in 0..n {
                let (p, q) = (x.get(i).unwrap_or(&END), y.get(i).unwrap_or(&END));
                match p.cmp(q) {
                    Ordering::Equal => continue,
                    o => return o,
                }
            }
            a.cmp(b)
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn version_tokens(v: &str) -> Option<Vec<Token>> {
    const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
    const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];
    let b = v.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let number = |i: &mut usize| -> Option<u64> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        // Longer than u64 saturates: such versions still order, just not exactly.
        (start < *i).then(|| v[start..*i].parse::<u64>().unwrap_or(u64::MAX))
    };
    out.push((7, 0, number(&mut i)?));
    while i < b.len() && b[i] == b'.' {
        i += 1;
        out.push((7, 0, number(&mut i)?));
    }
    if i < b.len() && b[i].is_ascii_lowercase() {
        out.push((6, b[i], 0));
        i += 1;
    }
    while i < b.len() && b[i] == b'_' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_lowercase() {
            i += 1;
        }
        let word = &v[start..i];
        let n = number(&mut i).unwrap_or(0);
        if let Some(rank) = PRE.iter().position(|s| *s == word) {
            out.push((1, rank as u8, n));
        } else if let Some(rank) = POST.iter().position(|s| *s == word) {
            out.push((5, rank as u8, n));
        } else {
            return None;
        }
    }
    if i < b.len() && b[i] == b'~' {
        i += 1;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        out.push((3, 0, 0));
    }
    if v[i..].starts_with("-r") {
        i += 2;
        out.push((4, 0, number(&mut i)?));
    }
    (i == b.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> IndexRecord {
        IndexRecord {
            checksum: [0xab; 20],
            name: "busybox-static".into(),
            version: "1.36.1-r15".into(),
            arch: Some("aarch64".into()),
            size: 123_456,
            installed_size: 4096,
            description: "Statically linked busybox".into(),
            url: "https://busybox.net/".into(),
            license: "GPL-2.0-only".into(),
            origin: Some("busybox".into()),
            maintainer: Some("A <a@example.invalid>".into()),
            build_time: 1_700_000_000,
            commit: Some("0123abcd".into()),
            provider_priority: 0,
            depends: vec!["so:libc.musl-aarch64.so.1".into(), "musl>=1.2".into()],
            provides: vec!["cmd:busybox=1.36.1-r15".into()],
            install_if: vec![],
        }
    }

    #[test]
    fn one_record_by_hand() {
        // 20 bytes of 0xab: "q6urq6urq6urq6urq6urq6urq6s=" (each 3 bytes ab ab ab -> "q6ur").
        let text = index_text(&[record()]).unwrap();
        assert_eq!(
            text,
            "C:Q1q6urq6urq6urq6urq6urq6urq6s=\nP:busybox-static\nV:1.36.1-r15\nA:aarch64\n\
             S:123456\nI:4096\nT:Statically linked busybox\nU:https://busybox.net/\n\
             L:GPL-2.0-only\no:busybox\nm:A <a@example.invalid>\nt:1700000000\nc:0123abcd\n\
             D:so:libc.musl-aarch64.so.1 musl>=1.2\np:cmd:busybox=1.36.1-r15\n\n"
        );
    }

    #[test]
    fn absent_fields_follow_apk() {
        let r = IndexRecord {
            checksum: [0; 20],
            name: "a".into(),
            version: "1-r0".into(),
            provider_priority: 100,
            install_if: vec!["b".into(), "c".into()],
            ..Default::default()
        };
        assert_eq!(
            index_text(&[r]).unwrap(),
            "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:a\nV:1-r0\nS:0\nI:0\nT:\nU:\nL:\nk:100\ni:b c\n\n"
        );
    }

    #[test]
    fn base64_by_hand() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn records_sort_as_apk_does() {
        let named = |n: &str, v: &str| IndexRecord {
            name: n.into(),
            version: v.into(),
            ..Default::default()
        };
        let text = index_text(&[
            named("zlib", "1.3-r0"),
            named("Linux-rpi", "6.6-r0"),
            named("busybox", "1.36.1-r2"),
            named("busybox", "1.36.1-r10"),
            named("alpine-base", "3.20.0-r0"),
        ])
        .unwrap();
        let order: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("P:") || l.starts_with("V:"))
            .collect();
        assert_eq!(
            order,
            [
                "P:alpine-base",
                "V:3.20.0-r0",
                "P:busybox",
                "V:1.36.1-r2",
                "P:busybox",
                "V:1.36.1-r10",
                "P:Linux-rpi",
                "V:6.6-r0",
                "P:zlib",
                "V:1.3-r0"
            ]
        );
    }

    #[test]
    fn version_order() {
        let less = [
            ("1.2", "1.10"),
            ("1.2", "1.2.1"),
            ("1.2_rc1", "1.2"),
            ("1.2_alpha", "1.2_beta"),
            ("1.2", "1.2_p1"),
            ("1.2-r1", "1.2-r2"),
            ("1.2-r9", "1.2-r10"),
            ("1.2", "1.2a"),
            ("1.2-r5", "1.2.1"),
            ("1.2_rc1-r3", "1.2-r0"),
            ("1.2", "not a version"),
        ];
        for (a, b) in less {
            assert_eq!(compare_versions(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare_versions(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare_versions("1.2-r0", "1.2-r0"), Ordering::Equal);
    }

    #[test]
    fn bad_values_are_refused() {
        let mut r = record();
        r.description = "two\nlines".into();
        let err = index_text(&[r]).unwrap_err();
        assert!(err.to_string().contains("pkgdesc"), "{err}");
        let mut r = record();
        r.depends = vec!["a b".into()];
        assert!(index_text(&[r]).is_err());
        assert!(write_index(&[record()], "a\nb", 0, 9).is_err());
    }

    #[test]
    fn index_tar_gz_layout() {
        let bytes = write_index(&[record()], "v3.20 pimg", 1_700_000_000, 9).unwrap();
        // gzip header: no name, mtime 0, OS byte 255.
        assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
        let (_, tar, _) = crate::codec::gzip::read::decompress(&bytes).unwrap();
        // DESCRIPTION header + 1 data block, APKINDEX header + data blocks, two end blocks.
        let text = index_text(&[record()]).unwrap();
        assert_eq!(tar.len(), 512 * (2 + 1 + text.len().div_ceil(512) + 2));
        assert_eq!(&tar[..11], b"DESCRIPTION");
        assert_eq!(&tar[100..107], b"0000644");
        assert_eq!(&tar[136..147], b"14524770400"); // 1_700_000_000 in octal
        assert_eq!(&tar[512..522], b"v3.20 pimg");
        assert_eq!(&tar[1024..1032], b"APKINDEX");
        assert!(tar[tar.len() - 1024..].iter().all(|b| *b == 0));
        let back = read_index(&bytes).unwrap();
        assert_eq!(back.text, text);
        assert_eq!(back.description.as_deref(), Some("v3.20 pimg"));
        assert_eq!(back.signature, None);
        assert_eq!(
            write_index(&[record()], "v3.20 pimg", 1_700_000_000, 9).unwrap(),
            bytes
        );
    }

    #[test]
    fn signed_index_reads_back() {
        let index = write_index(&[record()], "d", 0, 9).unwrap();
        let seg = signature_segment("k.rsa.pub", &[7; 256], 0, 9).unwrap();
        let (_, tar, _) = crate::codec::gzip::read::decompress(&seg).unwrap();
        // One header and the 256 bytes padded: no end-of-archive blocks.
        assert_eq!(tar.len(), 1024);
        assert_eq!(&tar[..22], b".SIGN.RSA.k.rsa.pub\0\0\0");
        let signed = [seg.as_slice(), &index].concat();
        let back = read_index(&signed).unwrap();
        assert_eq!(
            back.signature,
            Some((SignatureDigest::Sha1, "k.rsa.pub".into(), vec![7; 256]))
        );
        assert_eq!(&signed[back.signed_bytes_offset..], index.as_slice());
        assert!(read_index(&seg).is_err(), "a signature alone is no index");
        assert!(read_index(&signed[..signed.len() - 3]).is_err());
        assert!(read_index(b"").is_err());
    }
}
