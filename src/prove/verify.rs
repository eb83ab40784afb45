//! `pimg verify`: check published outputs against SHA256SUMS and the buildinfo, look inside
//! the image to name the boot-partition file that differs, and rebuild from a buildinfo to
//! compare every output byte for byte.
//!
//! This module reads the environment once (`std::env::temp_dir`, for the rebuild folder) and
//! never the clock; the rebuild goes through `build::build` like `pimg build`.

use crate::artifact::buildinfo::Buildinfo;
use crate::artifact::{provenance, sums};
use crate::build::{self, BuildRequest};
use crate::codec::bmap;
use crate::codec::fat::read::{FatVolume, HashWriter};
use crate::codec::openpgp::{self, Keyring};
use crate::codec::reader as read;
use crate::codec::release::Compression;
use crate::codec::{gzip::read as gzip, tar::read as tar};
use crate::digest::hex;
use crate::epoch::SourceDateEpoch;
use crate::inputs::{Input, InputKind, InputSet};
use crate::profile::board;
use crate::profile::overlay;
use crate::progress::Progress;
use crate::prove::diff::{self, DiffReport};
use crate::prove::open;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

/// One thing checked.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked: a file name, or `rpi3b.img › partition 1 › boot/vmlinuz-rpi`.
    pub what: String,
    pub ok: bool,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub detail: Option<String>,
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    pub ok: bool,
    pub checks: Vec<Check>,
    /// Structural differences that explain the first mismatch, when there is a reference.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<DiffReport>,
    pub notes: Vec<String>,
    /// Hashes already computed in this run (a file listed twice is read once).
    #[serde(skip)]
    hashes: BTreeMap<PathBuf, (String, u64)>,
}

impl VerifyOutcome {
    fn new() -> Self {
        VerifyOutcome {
            ok: true,
            checks: Vec::new(),
            diffs: Vec::new(),
            notes: Vec::new(),
            hashes: BTreeMap::new(),
        }
    }

    fn check(&mut self, c: Check) {
        self.ok &= c.ok;
        self.checks.push(c);
    }

    /// Text for people: one line per check (failures first in detail), then a summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            if c.ok {
                s.push_str(&format!("OK    {}\n", c.what));
            } else {
                s.push_str(&format!("FAIL  {}", c.what));
                match (&c.expected, &c.actual) {
                    (Some(e), Some(a)) => s.push_str(&format!(": expected {e}, found {a}")),
                    (Some(e), None) => s.push_str(&format!(": expected {e}, found nothing")),
                    (None, Some(a)) => s.push_str(&format!(": found {a}")),
                    (None, None) => {}
                }
                if let Some(d) = &c.detail {
                    s.push_str(&format!(" ({d})"));
                }
                s.push('\n');
            }
        }
        for d in &self.diffs {
            s.push_str(&format!(
                "structural difference between {} and {}:\n",
                d.a, d.b
            ));
            for line in d.render().lines() {
                s.push_str(&format!("  {line}\n"));
            }
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        s.push_str(&format!(
            "pimg verify: {} checks, {} failed: {}\n",
            self.checks.len(),
            failed,
            if self.ok { "OK" } else { "MISMATCH" }
        ));
        s
    }
}

/// Why verification could not run (as opposed to finding a mismatch).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} line {line}: {message}")]
    Sums {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: not a pimg buildinfo: {message}")]
    Buildinfo { path: String, message: String },
    #[error("{0}")]
    Rebuild(String),
    #[error("input {name}: {message}")]
    MissingInput { name: String, message: String },
    #[error("--key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the rebuild failed: {0}")]
    Build(#[from] crate::Error),
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> VerifyError + '_ {
    move |source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The largest SHA256SUMS or buildinfo pimg reads (a real one is a few KiB).
const MAX_TEXT: u64 = 16 << 20;

/// A published file's bytes for a comparison, when it is a regular file inside the folder
/// and not larger than `cap` (the size of what it is compared with, give or take).
fn read_capped(dir: &Path, name: &str, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = open::in_folder(dir, name).ok()?;
    let limit = cap.saturating_mul(2).max(1 << 20);
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// Reads and parses a buildinfo file.
pub fn load_buildinfo(path: &Path) -> Result<Buildinfo, VerifyError> {
    let f = open::regular(path).map_err(io_err(path))?;
    let text = open::read_text(f, MAX_TEXT, path).map_err(io_err(path))?;
    Buildinfo::parse(&text).map_err(|message| VerifyError::Buildinfo {
        path: path.display().to_string(),
        message,
    })
}

/// SHA-256 and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64), VerifyError> {
    hash_file(open::regular(path).map_err(io_err(path))?, path)
}

/// SHA-256 and size of an open file (`path` names it in errors), streamed.
fn hash_file(f: File, path: &Path) -> Result<(String, u64), VerifyError> {
    let mut h = HashWriter(Sha256::new());
    let n = io::copy(&mut BufReader::with_capacity(1 << 20, f), &mut h).map_err(io_err(path))?;
    Ok((hex(&h.0.finalize()), n))
}

/// Parses SHA256SUMS (`HASH  NAME` or `HASH *NAME` lines).
pub fn parse_sums(path: &Path) -> Result<Vec<(String, String)>, VerifyError> {
    let f = open::regular(path).map_err(io_err(path))?;
    let text = open::read_text(f, MAX_TEXT, path).map_err(io_err(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: &str| VerifyError::Sums {
            path: path.display().to_string(),
            line: i + 1,
            message: message.to_string(),
        };
        let (hash, name) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected 'SHA256  NAME'"))?;
        let name = name
            .strip_prefix(' ')
            .or_else(|| name.strip_prefix('*'))
            .ok_or_else(|| bad("expected two spaces or ' *' between hash and name"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the hash is not 64 hexadecimal digits"));
        }
        if let Some(why) = open::bad_name(name) {
            return Err(bad(&format!("the name {name:?} {why}")));
        }
        out.push((hash.to_ascii_lowercase(), name.to_string()));
    }
    Ok(out)
}

/// Checks the file at `path` (opened by `open`, which decides what may be read: a file the
/// user named, or one inside a published folder) against `expected` and `size`.
fn check_hash(
    o: &mut VerifyOutcome,
    what: &str,
    path: &Path,
    open: impl FnOnce() -> io::Result<File>,
    expected: &str,
    size: Option<u64>,
) -> bool {
    let hashed = match o.hashes.get(path) {
        Some(h) => Ok(h.clone()),
        None => open()
            .map_err(io_err(path))
            .and_then(|f| hash_file(f, path)),
    };
    if let Ok(h) = &hashed {
        o.hashes.insert(path.to_path_buf(), h.clone());
    }
    match hashed {
        Ok((h, n)) => {
            let ok = h == expected && size.is_none_or(|s| s == n);
            o.check(Check {
                what: what.to_string(),
                ok,
                expected: (!ok).then(|| match size {
                    Some(s) => format!("sha256 {expected} ({s} bytes)"),
                    None => format!("sha256 {expected}"),
                }),
                actual: (!ok).then(|| format!("sha256 {h} ({n} bytes)")),
                detail: None,
            });
            ok
        }
        Err(e) => {
            o.check(Check {
                what: what.to_string(),
                ok: false,
                expected: Some(format!("sha256 {expected}")),
                actual: None,
                detail: Some(e.to_string()),
            });
            false
        }
    }
}

/// `pimg verify --sums SHA256SUMS [FILE…]`: the files given (all listed when none).
pub fn check_sums(sums: &Path, files: &[PathBuf]) -> Result<VerifyOutcome, VerifyError> {
    let list = parse_sums(sums)?;
    let base = sums.parent().unwrap_or(Path::new("."));
    let mut o = VerifyOutcome::new();
    if files.is_empty() {
        for (hash, name) in &list {
            let open = || open::in_folder(base, name);
            check_hash(&mut o, name, &base.join(name), open, hash, None);
        }
        return Ok(o);
    }
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match list.iter().find(|(_, n)| *n == name || Path::new(n) == f) {
            Some((hash, _)) => {
                let open = || open::regular(f);
                check_hash(&mut o, &f.display().to_string(), f, open, hash, None);
            }
            None => {
                return Err(VerifyError::Sums {
                    path: sums.display().to_string(),
                    line: 0,
                    message: format!("{name} is not listed"),
                })
            }
        }
    }
    Ok(o)
}

/// The public keys of `--key` files (armored or binary, one or more keys each).
pub fn load_keyring(paths: &[PathBuf]) -> Result<Keyring, VerifyError> {
    let mut ring = Keyring::default();
    for path in paths {
        let key_err = |reason: String| VerifyError::Key {
            path: path.display().to_string(),
            reason,
        };
        let bytes = open::regular(path)
            .and_then(|f| read_bytes_capped(f, openpgp::MAX_KEY_SIZE))
            .map_err(|e| key_err(e.to_string()))?;
        ring.add(&bytes).map_err(|e| key_err(e.to_string()))?;
    }
    Ok(ring)
}

/// A file's bytes when it has at most `cap` of them; an error naming the cap otherwise.
fn read_bytes_capped(f: File, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    f.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(bytes)
}

/// Checks `SHA256SUMS.asc` in `dir` over `sums` (the bytes to trust) with the keys; a check
/// that fails when the signature is missing, unreadable, bad or by a key not given.
fn check_signature(o: &mut VerifyOutcome, dir: &Path, sums: &[u8], keys: &Keyring, what: &str) {
    let fail = |detail: String| Check {
        what: what.to_string(),
        ok: false,
        expected: Some("a good signature by a --key key".into()),
        actual: None,
        detail: Some(detail),
    };
    let asc = match open::in_folder(dir, sums::SIGNATURE) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            o.check(fail(format!(
                "--key was given but {} has no {}",
                dir.display(),
                sums::SIGNATURE
            )));
            return;
        }
        Err(e) => {
            o.check(fail(format!("cannot read {}: {e}", sums::SIGNATURE)));
            return;
        }
    };
    let checked = read_bytes_capped(asc, openpgp::MAX_SIGNATURE_SIZE)
        .map_err(|e| format!("{}: {e}: not one OpenPGP signature", sums::SIGNATURE))
        .and_then(|sig| {
            keys.verify(&sig, sums)
                .map_err(|e| format!("{}: {e}", sums::SIGNATURE))
        });
    match checked {
        Ok(signer) => o.check(Check {
            what: format!(
                "{what}: good signature by {}{}",
                signer.fingerprint,
                signer
                    .user_id
                    .map(|u| format!(" \"{u}\""))
                    .unwrap_or_default()
            ),
            ok: true,
            expected: None,
            actual: None,
            detail: None,
        }),
        Err(detail) => o.check(fail(detail)),
    }
}

/// `pimg verify DIR`: SHA256SUMS, the buildinfo's outputs, and every boot file in the image.
pub fn check_dir(dir: &Path) -> Result<VerifyOutcome, VerifyError> {
    check_dir_with(dir, None)
}

/// `pimg verify DIR [--key PUB…]`: with keys, the signature over SHA256SUMS first (nothing
/// else is checked when it fails: the sums are not to be trusted); without, a signature is
/// reported as present and not checked.
pub fn check_dir_with(dir: &Path, keys: Option<&Keyring>) -> Result<VerifyOutcome, VerifyError> {
    let sums_path = dir.join(sums::SUMS);
    let mut o = VerifyOutcome::new();
    match keys {
        Some(keys) => {
            let bytes = open::in_folder(dir, sums::SUMS)
                .and_then(|f| read_bytes_capped(f, MAX_TEXT))
                .map_err(io_err(&sums_path))?;
            check_signature(
                &mut o,
                dir,
                &bytes,
                keys,
                &format!("{} (signature)", sums::SIGNATURE),
            );
            if !o.ok {
                o.notes.push(format!(
                    "{} is not trusted without a good signature: nothing else was checked",
                    sums::SUMS
                ));
                return Ok(o);
            }
        }
        None => {
            if open::in_folder(dir, sums::SIGNATURE).is_ok() {
                o.notes.push(format!(
                    "{}: signature present, not checked (give the signer's public key with --key PUB.asc)",
                    sums::SIGNATURE
                ));
            }
        }
    }
    let list = parse_sums(&sums_path)?;
    let mut sums_ok: BTreeMap<String, bool> = BTreeMap::new();
    for (hash, name) in &list {
        let what = format!("{name} (SHA256SUMS)");
        let open = || open::in_folder(dir, name);
        let ok = check_hash(&mut o, &what, &dir.join(name), open, hash, None);
        sums_ok.insert(name.clone(), ok);
    }
    let infos: Vec<&String> = list
        .iter()
        .map(|(_, n)| n)
        .filter(|n| n.ends_with(".buildinfo.json"))
        .collect();
    if infos.is_empty() {
        o.notes
            .push("SHA256SUMS lists no *.buildinfo.json; only the sums were checked".into());
        return Ok(o);
    }
    for info_name in infos {
        // A damaged buildinfo is a mismatch to report, not a reason to stop.
        let loaded = open::in_folder(dir, info_name)
            .map_err(io_err(&dir.join(info_name)))
            .and_then(|_| load_buildinfo(&dir.join(info_name)));
        match loaded {
            Ok(info) => {
                check_against_buildinfo(&mut o, dir, &info, info_name)?;
                check_provenance(&mut o, dir, &info, info_name);
            }
            Err(e) => o.check(Check {
                what: format!("{info_name} (contents)"),
                ok: false,
                expected: Some("a pimg buildinfo".into()),
                actual: None,
                detail: Some(e.to_string()),
            }),
        }
    }
    Ok(o)
}

/// Checks that the folder's provenance statement is the one its buildinfo makes (its subjects
/// are then exactly the buildinfo's outputs and the buildinfo, with their digests). A folder
/// without one (made by an older pimg) gets a note.
fn check_provenance(o: &mut VerifyOutcome, dir: &Path, info: &Buildinfo, info_name: &str) {
    let name = provenance::name(&info.board.name);
    // The buildinfo was hashed when SHA256SUMS was checked; it is not read again here.
    let Some((sha256, size)) = o.hashes.get(&dir.join(info_name)).cloned() else {
        return;
    };
    let info_file = crate::digest::FileSum {
        name: info_name.to_string(),
        size,
        sha256,
    };
    let expected = provenance::statement(info, &info_file);
    let Ok(f) = open::in_folder(dir, &name) else {
        o.notes
            .push(format!("{name}: no provenance statement in the folder"));
        return;
    };
    let found = read_bytes_capped(f, MAX_TEXT);
    let ok = found.as_deref().ok() == Some(expected.as_bytes());
    o.check(Check {
        what: format!("{name} (the statement {info_name} makes)"),
        ok,
        expected: (!ok).then(|| format!("sha256 {}", hex(&Sha256::digest(expected.as_bytes())))),
        actual: (!ok).then(|| match &found {
            Ok(b) => format!("sha256 {}", hex(&Sha256::digest(b))),
            Err(e) => format!("unreadable: {e}"),
        }),
        detail: None,
    });
}

/// Checks a folder's outputs against one buildinfo: each output's size and hash, the image's
/// identifiers and every boot-partition file; explains archives that differ.
fn check_against_buildinfo(
    o: &mut VerifyOutcome,
    dir: &Path,
    info: &Buildinfo,
    info_name: &str,
) -> Result<(), VerifyError> {
    let mut failed_outputs = Vec::new();
    for out in &info.outputs {
        let what = format!("{} ({info_name})", out.name);
        let open = || open::in_folder(dir, &out.name);
        let path = dir.join(&out.name);
        let ok = check_hash(o, &what, &path, open, &out.sha256, Some(out.size));
        if !ok {
            failed_outputs.push(out.clone());
        }
    }
    // The image: identifiers and boot-partition files.
    let mut image_files: BTreeMap<String, String> = BTreeMap::new();
    for out in info.outputs.iter().filter(|x| x.name.ends_with(".img")) {
        let Ok(f) = open::in_folder(dir, &out.name) else {
            continue;
        };
        match check_image(o, &f, &out.name, info) {
            Ok(files) => image_files = files,
            Err(e) => o.check(Check {
                what: format!("{} › boot partition", out.name),
                ok: false,
                expected: Some("a readable partition table and FAT file system".into()),
                actual: None,
                detail: Some(e.to_string()),
            }),
        }
        check_release(o, dir, info);
        // Archives that differ: compare with their intact copy inside the image.
        for failed in failed_outputs.iter().filter(|x| !x.name.ends_with(".img")) {
            let Some(boot) = info
                .boot_partition
                .iter()
                .find(|b| b.sha256 == failed.sha256)
            else {
                if failed.name.ends_with(".tar.gz") {
                    if let Ok(f) = open::in_folder(dir, &failed.name) {
                        explain_tarball(o, f, &failed.name, info);
                    }
                }
                continue;
            };
            if image_files.get(&boot.path) != Some(&boot.sha256) {
                continue;
            }
            if let Ok(copy) = read_boot_file(&f, &boot.path) {
                if let Some(bytes) = read_capped(dir, &failed.name, copy.len() as u64) {
                    let report = diff::diff_buffers(
                        &format!("{} › {}", out.name, boot.path),
                        &failed.name,
                        &copy,
                        &bytes,
                    );
                    o.notes.push(format!(
                        "{} differs; the copy in {} ({}) matches the buildinfo, so it is the reference below",
                        failed.name, out.name, boot.path
                    ));
                    o.diffs.push(report);
                }
            }
        }
    }
    Ok(())
}

/// The codecs a buildinfo's `release` record names, for a rebuild to repeat.
fn release_codecs(info: &Buildinfo) -> Result<Vec<Compression>, VerifyError> {
    let Some(release) = &info.release else {
        return Ok(Vec::new());
    };
    release
        .compress
        .iter()
        .map(|name| {
            Compression::from_name(name).ok_or_else(|| {
                VerifyError::Rebuild(format!(
                    "the buildinfo asks for --compress {name}, which this pimg does not know; rebuild with the pimg version it names"
                ))
            })
        })
        .collect()
}

/// Checks that each compressed image decompresses to the image, and that the bmap is intact
/// and its ranges hash as the image's bytes do.
fn check_release(o: &mut VerifyOutcome, dir: &Path, info: &Buildinfo) {
    let Some(img) = info.outputs.iter().find(|x| x.name.ends_with(".img")) else {
        return;
    };
    let prefix = format!("{}.", img.name);
    for out in &info.outputs {
        let Some(ext) = out.name.strip_prefix(&prefix) else {
            continue;
        };
        if ext == "bmap" {
            check_bmap(o, dir, &out.name, img);
            continue;
        }
        let Some(codec) = Compression::ALL.into_iter().find(|c| c.extension() == ext) else {
            continue;
        };
        let result = open::in_folder(dir, &out.name)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let mut h = HashWriter(Sha256::new());
                let n = codec
                    .decompress_to(
                        BufReader::with_capacity(1 << 20, f),
                        &mut h,
                        img.size,
                        &out.name,
                    )
                    .map_err(|e| e.to_string())?;
                Ok((hex(&h.0.finalize()), n))
            });
        let expected = format!(
            "sha256 {} ({} bytes), as {}",
            img.sha256, img.size, img.name
        );
        let (ok, actual, detail) = match result {
            Ok((h, n)) => {
                let ok = h == img.sha256 && n == img.size;
                (ok, Some(format!("sha256 {h} ({n} bytes)")), None)
            }
            Err(e) => (false, None, Some(e)),
        };
        o.check(Check {
            what: format!("{} › decompressed", out.name),
            ok,
            expected: (!ok).then_some(expected),
            actual: if ok { None } else { actual },
            detail,
        });
    }
}

/// Checks a bmap's own checksum and counts, and every range against the image in `dir`.
fn check_bmap(o: &mut VerifyOutcome, dir: &Path, name: &str, img: &crate::digest::FileSum) {
    use std::io::Read;
    let result = (|| -> Result<Vec<String>, String> {
        let mut bytes = Vec::new();
        open::in_folder(dir, name)
            .map_err(|e| e.to_string())?
            .take(bmap::MAX_BMAP_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let map = bmap::parse(&bytes, name).map_err(|e| e.to_string())?;
        if map.image_size != img.size {
            return Err(format!(
                "ImageSize {} but {} has {} bytes",
                map.image_size, img.name, img.size
            ));
        }
        let image = open::in_folder(dir, &img.name).map_err(|e| e.to_string())?;
        let bad = bmap::mismatches(&map, &mut BufReader::with_capacity(1 << 20, image))
            .map_err(|e| format!("reading {}: {e}", img.name))?;
        Ok(bad
            .iter()
            .map(|(r, actual)| {
                format!(
                    "blocks {}-{} hash {actual}, the bmap says {}",
                    r.first, r.last, r.sha256
                )
            })
            .collect())
    })();
    let (ok, detail) = match result {
        Ok(bad) if bad.is_empty() => (true, None),
        Ok(bad) => (false, Some(bad.join("; "))),
        Err(e) => (false, Some(e)),
    };
    o.check(Check {
        what: format!("{name} › ranges of {}", img.name),
        ok,
        expected: (!ok).then(|| "every mapped range hashes as listed".to_string()),
        actual: None,
        detail,
    });
}

fn read_boot_file(f: &File, path: &str) -> Result<Vec<u8>, read::ReadError> {
    let table = crate::codec::partition::partitions(f)?;
    for p in &table.partitions {
        if let Ok(mut v) = FatVolume::open(f, p.start, p.size) {
            if let Ok(d) = v.read_file(path) {
                return Ok(d);
            }
        }
    }
    Err(read::ReadError::NotFound {
        path: path.to_string(),
    })
}

/// Checks identifiers and every boot file; returns path → sha256 of the files found.
fn check_image(
    o: &mut VerifyOutcome,
    f: &File,
    name: &str,
    info: &Buildinfo,
) -> Result<BTreeMap<String, String>, read::ReadError> {
    let table = crate::codec::partition::partitions(f)?;
    let ids = &info.identifiers;
    let mut cmp = |what: String, expected: Option<String>, actual: Option<String>| {
        if let Some(e) = expected {
            let ok = actual.as_deref() == Some(e.as_str());
            o.check(Check {
                what,
                ok,
                expected: (!ok).then_some(e),
                actual: if ok { None } else { actual },
                detail: None,
            });
        }
    };
    cmp(
        format!("{name} › partition table › disk signature"),
        ids.mbr_disk_signature.clone(),
        table.disk_signature.map(|s| format!("{s:08x}")),
    );
    cmp(
        format!("{name} › partition table › disk GUID"),
        ids.gpt_disk_guid.clone(),
        table.disk_guid.clone(),
    );
    let part = table
        .partitions
        .first()
        .ok_or_else(|| read::ReadError::invalid("partition table", 0, "has no partitions"))?;
    cmp(
        format!("{name} › partition {} › GUID", part.index),
        ids.gpt_boot_partition_guid.clone(),
        part.part_guid.clone(),
    );
    let mut v = FatVolume::open(f, part.start, part.size)?;
    let label = format!("{name} › partition {}", part.index);
    cmp(
        format!("{label} › FAT › volume ID"),
        ids.fat_volume_id.clone(),
        Some(format!("{:08x}", v.boot.volume_id)),
    );
    let entries = v.entries()?;
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for e in entries.iter().filter(|e| !e.is_dir) {
        match v.sha256_file(e) {
            Ok(h) => {
                found.insert(e.path.clone(), hex(&h));
            }
            Err(err) => o.check(Check {
                what: format!("{label} › {}", e.path),
                ok: false,
                expected: None,
                actual: None,
                detail: Some(err.to_string()),
            }),
        }
    }
    for b in &info.boot_partition {
        let what = format!("{label} › {}", b.path);
        match found.get(&b.path) {
            Some(h) if *h == b.sha256 => o.check(Check {
                what,
                ok: true,
                expected: None,
                actual: None,
                detail: None,
            }),
            Some(h) => o.check(Check {
                what,
                ok: false,
                expected: Some(format!("sha256 {}", b.sha256)),
                actual: Some(format!("sha256 {h}")),
                detail: (!b.from.is_empty()).then(|| format!("from {}", b.from)),
            }),
            None => o.check(Check {
                what,
                ok: false,
                expected: Some(format!("sha256 {}", b.sha256)),
                actual: None,
                detail: Some("the file is not on the partition".into()),
            }),
        }
    }
    for path in found.keys() {
        if !info.boot_partition.iter().any(|b| &b.path == path) {
            o.check(Check {
                what: format!("{label} › {path}"),
                ok: false,
                expected: Some("no such file (not in the buildinfo)".into()),
                actual: Some("present".into()),
                detail: None,
            });
        }
    }
    Ok(found)
}

/// Names the rpi tarball's entries whose content differs from the buildinfo's boot files.
fn explain_tarball(o: &mut VerifyOutcome, f: File, name: &str, info: &Buildinfo) {
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let Ok(gz) = gzip::GzipReader::new(BufReader::new(f), len.saturating_mul(gzip::MAX_RATIO))
    else {
        return;
    };
    let mut bad = Vec::new();
    let r = tar::read(gz, |e, data| {
        if e.kind() != "file" {
            return Ok(());
        }
        let mut h = HashWriter(Sha256::new());
        io::copy(data, &mut h).map_err(|source| read::ReadError::Io {
            what: e.path.clone(),
            offset: e.data_offset,
            source,
        })?;
        let h = hex(&h.0.finalize());
        if let Some(b) = info.boot_partition.iter().find(|b| b.path == e.path) {
            if b.sha256 != h {
                bad.push(format!("{} (sha256 {h}, buildinfo {})", e.path, b.sha256));
            }
        } else {
            bad.push(format!("{} (not in the buildinfo)", e.path));
        }
        Ok(())
    });
    if let Err(e) = r {
        o.notes.push(format!("{name}: {e}"));
    }
    if !bad.is_empty() {
        o.notes.push(format!(
            "{name}: entries that differ from the buildinfo: {}",
            bad.join(", ")
        ));
    }
}

/// What `pimg verify --rebuild` needs.
#[derive(Debug, Clone)]
pub struct RebuildRequest {
    pub buildinfo: PathBuf,
    pub inputs: PathBuf,
    /// Profile file, when the build did not use a built-in board.
    pub board: Option<PathBuf>,
    /// Overlay directory, when the build did not use a built-in overlay.
    pub overlay: Option<PathBuf>,
    /// Public keys that check the published signature over the rebuilt SHA256SUMS.
    pub keys: Option<Keyring>,
    /// The secret key to sign the rebuild with, so the signature is compared too.
    pub sign_key: Option<build::SignKey>,
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, VerifyError> {
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let p = base.join(format!("pimg-verify-{}-{n}", std::process::id()));
            match fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&p)(e)),
            }
        }
        Err(VerifyError::Rebuild(format!(
            "cannot create a temporary folder in {}",
            base.display()
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Checks every input the buildinfo lists; returns the path of each (in buildinfo order).
fn check_inputs(
    o: &mut VerifyOutcome,
    info: &Buildinfo,
    dir: &Path,
) -> Result<Vec<(String, PathBuf)>, VerifyError> {
    let mut paths = Vec::new();
    let mut discovered: Option<Result<InputSet, String>> = None;
    for rec in &info.inputs {
        let label = match &rec.version {
            Some(v) => format!("input {} {v}", rec.name),
            None => format!("input {}", rec.name),
        };
        if let Some(why) = open::bad_name(&rec.file) {
            return Err(VerifyError::Rebuild(format!(
                "the buildinfo's input file {:?} {why}; it is not a buildinfo pimg wrote",
                rec.file
            )));
        }
        let path = open::inside(dir, &rec.file).map_err(io_err(dir))?;
        if fs::symlink_metadata(&path).is_ok() {
            let kind = if path.is_dir() {
                InputKind::Dir
            } else {
                InputKind::Deb
            };
            let input = Input {
                name: rec.name.clone(),
                version: rec.version.clone(),
                arch: rec.arch.clone(),
                file: rec.file.clone(),
                path: path.clone(),
                kind,
            };
            let h = input.sha256().map_err(|e| VerifyError::MissingInput {
                name: rec.name.clone(),
                message: e.to_string(),
            })?;
            let ok = h == rec.sha256;
            o.check(Check {
                what: format!("{label} ({})", rec.file),
                ok,
                expected: (!ok).then(|| format!("sha256 {}", rec.sha256)),
                actual: (!ok).then(|| format!("sha256 {h}")),
                detail: (!ok).then(|| format!("{} is not the file the build used", path.display())),
            });
            paths.push((rec.file.clone(), path));
            continue;
        }
        let set =
            discovered.get_or_insert_with(|| InputSet::discover(dir).map_err(|e| e.to_string()));
        let others: Vec<String> = match set {
            Ok(s) => s
                .inputs
                .iter()
                .filter(|i| i.name == rec.name)
                .map(|i| {
                    format!(
                        "{} (version {})",
                        i.file,
                        i.version.clone().unwrap_or_default()
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if others.is_empty() {
            return Err(VerifyError::MissingInput {
                name: rec.name.clone(),
                message: format!(
                    "{} is not in {} (expected sha256 {}); fetch that exact file (e.g. `apt-get download {}={}`)",
                    rec.file,
                    dir.display(),
                    rec.sha256,
                    rec.name,
                    rec.version.clone().unwrap_or_default()
                ),
            });
        }
        o.check(Check {
            what: format!("{label} ({})", rec.file),
            ok: false,
            expected: Some(format!("{} with sha256 {}", rec.file, rec.sha256)),
            actual: Some(others.join(", ")),
            detail: Some(
                "a different version of this input; the rebuild needs the recorded one".into(),
            ),
        });
    }
    Ok(paths)
}

/// The profile the buildinfo carries, as `(origin, text)`, when no `--board` is given: a
/// shipped profile keeps its `boards/` origin, a profile file its recorded file name.
fn recorded_profile(
    info: &Buildinfo,
    given: bool,
) -> Result<Option<(String, String)>, VerifyError> {
    let Some(text) = info.board.text.clone().filter(|_| !given) else {
        return Ok(None);
    };
    let origin = match info.board.profile.strip_prefix("file ") {
        Some(name) => {
            if let Some(why) = open::bad_name(name).or_else(|| {
                name.contains('/')
                    .then_some("is not a file name; a profile is recorded by its file name")
            }) {
                return Err(VerifyError::Rebuild(format!(
                    "the buildinfo's profile name {name:?} {why}; it is not a buildinfo pimg wrote"
                )));
            }
            name.to_string()
        }
        None => info.board.profile.clone(),
    };
    Ok(Some((origin, text)))
}

/// Most bytes a published apkovl may have (an overlay holds at most 64 MiB of files).
const MAX_APKOVL: u64 = 128 << 20;

/// The overlay the published apkovl holds, when the folder has the apkovl the buildinfo
/// lists: read only when its SHA-256 is the recorded one.
fn published_overlay(
    info: &Buildinfo,
    published: &Path,
) -> Result<Option<overlay::Overlay>, VerifyError> {
    let name = format!("{}.apkovl.tar.gz", info.overlay.hostname);
    let Some(rec) = info.outputs.iter().find(|o| o.name == name) else {
        return Ok(None);
    };
    let path = match open::inside(published, &name) {
        Ok(p) if p.is_file() => p,
        _ => return Ok(None),
    };
    let f = open::in_folder(published, &name).map_err(io_err(&path))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(f, MAX_APKOVL.min(rec.size) + 1),
        &mut bytes,
    )
    .map_err(io_err(&path))?;
    let digest = hex(&Sha256::digest(&bytes));
    if digest != rec.sha256 {
        return Err(VerifyError::Rebuild(format!(
            "{} has sha256 {digest}, not the {} the buildinfo records; the overlay cannot be taken from it: pass the overlay the build used with --overlay DIR",
            path.display(),
            rec.sha256
        )));
    }
    overlay::from_apkovl(&bytes, &name, &info.overlay.name)
        .map(Some)
        .map_err(|e| VerifyError::Rebuild(e.to_string()))
}

/// `pimg verify --rebuild BUILDINFO --inputs DIR`.
pub fn rebuild(req: &RebuildRequest) -> Result<VerifyOutcome, VerifyError> {
    let info = load_buildinfo(&req.buildinfo)?;
    let mut o = VerifyOutcome::new();
    if info.pimg_version != env!("CARGO_PKG_VERSION")
        || info.cargo_lock_sha256 != crate::profile::embedded::CARGO_LOCK_SHA256
    {
        o.notes.push(format!(
            "the buildinfo was made by pimg {} (Cargo.lock {}), this is pimg {} (Cargo.lock {}); outputs may differ for that reason",
            info.pimg_version,
            &info.cargo_lock_sha256.get(..12).unwrap_or(""),
            env!("CARGO_PKG_VERSION"),
            &crate::profile::embedded::CARGO_LOCK_SHA256.get(..12).unwrap_or("")
        ));
    }
    // Inputs first: a rebuild from other inputs proves nothing.
    let inputs = check_inputs(&mut o, &info, &req.inputs)?;
    if !o.ok {
        return Ok(o);
    }
    // The profile: the one given, else the text the buildinfo carries (which its digest must
    // match), else the shipped one of that name.
    let published = req.buildinfo.parent().unwrap_or(Path::new("."));
    let recorded_profile = recorded_profile(&info, req.board.is_some())?;
    let board = match (&req.board, &recorded_profile) {
        (Some(p), _) => p.display().to_string(),
        (None, Some((origin, _))) => origin.clone(),
        (None, None) if info.board.profile.starts_with("boards/") => info.board.name.clone(),
        (None, None) => {
            return Err(VerifyError::Rebuild(format!(
                "the build used the profile {} and its buildinfo does not carry the profile's text; pass it with --board FILE",
                info.board.profile
            )))
        }
    };
    let loaded = match &recorded_profile {
        Some((origin, text)) => board::parse(text, origin),
        None => board::load(&board),
    }
    .map_err(crate::Error::from)?;
    let digest = hex(&Sha256::digest(loaded.text.as_bytes()));
    if digest != info.board.profile_sha256 {
        return Err(VerifyError::Rebuild(format!(
            "board profile {} has sha256 {digest} but the build used one with sha256 {}; pass the profile the build used with --board FILE",
            loaded.origin, info.board.profile_sha256
        )));
    }
    // The overlay: the one given, else the shipped one of that name when it is the one the
    // build used, else the one the published apkovl holds.
    let mut recorded_overlay = None;
    let overlay_spec = match &req.overlay {
        Some(p) => p.display().to_string(),
        None => {
            // The shipped overlay, loaded once here, is the one the rebuild takes.
            recorded_overlay = match overlay::shipped(&info.overlay.name)
                .and_then(Result::ok)
                .filter(|o| o.digest() == info.overlay.sha256)
            {
                Some(shipped) => Some(shipped),
                None => published_overlay(&info, published)?,
            };
            info.overlay.name.clone()
        }
    };
    let overlay = match &recorded_overlay {
        Some(o) => Ok(o.clone()),
        None => overlay::load(&overlay_spec),
    }
    .map_err(|e| {
        VerifyError::Rebuild(format!(
            "overlay {overlay_spec}: {e}; pass the overlay the build used with --overlay DIR"
        ))
    })?;
    if overlay.digest() != info.overlay.sha256 {
        return Err(VerifyError::Rebuild(format!(
            "overlay {} has digest {} but the build used one with digest {}; pass the overlay directory the build used with --overlay DIR",
            overlay.origin,
            overlay.digest(),
            info.overlay.sha256
        )));
    }
    // Rebuild with exactly the recorded inputs, in a temporary folder.
    let tmp = TempDir::new()?;
    let in_dir = tmp.0.join("inputs");
    fs::create_dir(&in_dir).map_err(io_err(&in_dir))?;
    for (file, path) in &inputs {
        let abs = fs::canonicalize(path).map_err(io_err(path))?;
        let link = in_dir.join(file);
        std::os::unix::fs::symlink(&abs, &link).map_err(io_err(&link))?;
    }
    let out_dir = tmp.0.join("out");
    // An epoch derived from the inputs is derived again (so the buildinfo says the same);
    // a given one is given again.
    let epoch = if info.epoch_source.starts_with("newest mtime") {
        None
    } else {
        Some(SourceDateEpoch::new(info.source_date_epoch).map_err(crate::Error::from)?)
    };
    // Every input was found by its recorded SHA-256, so each .apk is the very file whose
    // signature the build checked: its recorded verdict stands.
    let apk_verdicts = info
        .inputs
        .iter()
        .filter_map(|i| {
            let v = i.apk_signature.as_deref()?;
            let verdict = if v == crate::inputs::apk_keys::UNVERIFIED {
                crate::inputs::apk_keys::Verdict::Unverified
            } else {
                crate::inputs::apk_keys::Verdict::Key(v.to_string())
            };
            Some((i.file.clone(), verdict))
        })
        .collect();
    // Without the signing key the rebuild records the same signature and writes none, so
    // every other output is comparable byte for byte.
    let signed = info.signature.is_some();
    let opts = build::BuildOptions {
        recorded: build::Recorded {
            apk_verdicts,
            signature: info.signature.clone().filter(|_| req.sign_key.is_none()),
            profile: recorded_profile,
            overlay: recorded_overlay,
        },
        sign_key: req.sign_key.clone().filter(|_| signed),
        ..build::BuildOptions::default()
    };
    if req.sign_key.is_some() && !signed {
        o.notes.push(format!(
            "the build was not signed: --sign-key is not used and no {} is compared",
            sums::SIGNATURE
        ));
    }
    let report = build::build_with(
        &BuildRequest {
            from: build::Sources {
                board,
                inputs: in_dir,
                overlay: Some(overlay_spec),
                apk_keys: None,
                allow_untrusted: true,
            },
            out: out_dir.clone(),
            epoch,
            table: match info.board.table.as_deref() {
                Some(t) => Some(t.parse().map_err(VerifyError::Rebuild)?),
                None => None,
            },
            compress: release_codecs(&info)?,
        },
        &opts,
        &Progress::hidden(),
    )?;
    if report.source_date_epoch != info.source_date_epoch {
        o.check(Check {
            what: "SOURCE_DATE_EPOCH".into(),
            ok: false,
            expected: Some(info.source_date_epoch.to_string()),
            actual: Some(report.source_date_epoch.to_string()),
            detail: Some(format!(
                "derived by the rebuild from {}",
                report.epoch_source
            )),
        });
    }
    // Compare every output with the recorded hashes, and with the published files when present.
    let mut first_diff_done = false;
    let mut names: Vec<(String, String)> = info
        .outputs
        .iter()
        .map(|x| (x.name.clone(), x.sha256.clone()))
        .collect();
    let info_name = req
        .buildinfo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (info_sha, info_size) = sha256_file(&req.buildinfo)?;
    names.push((info_name.clone(), info_sha.clone()));
    let statement = provenance::statement(
        &info,
        &crate::digest::FileSum {
            name: info_name.clone(),
            size: info_size,
            sha256: info_sha,
        },
    );
    names.push((
        provenance::name(&info.board.name),
        hex(&Sha256::digest(statement.as_bytes())),
    ));
    let sums_path = published.join(sums::SUMS);
    if sums_path.is_file() {
        names.push((sums::SUMS.into(), sha256_file(&sums_path)?.0));
    }
    let asc = published.join(sums::SIGNATURE);
    if signed && req.sign_key.is_some() {
        match sha256_file(&asc) {
            Ok((h, _)) => names.push((sums::SIGNATURE.into(), h)),
            Err(e) => o
                .notes
                .push(format!("no published signature to compare: {e}")),
        }
    }
    for (name, expected) in names {
        let rebuilt = out_dir.join(&name);
        let what = format!("{name} (rebuilt)");
        let ok = check_hash(
            &mut o,
            &what,
            &rebuilt,
            || open::regular(&rebuilt),
            &expected,
            None,
        );
        if ok || first_diff_done {
            continue;
        }
        first_diff_done = true;
        let original = published.join(&name);
        if original.is_file()
            && sha256_file(&original)
                .map(|(h, _)| h == expected)
                .unwrap_or(false)
        {
            match diff::diff_paths(&original, &rebuilt) {
                Ok(mut d) => {
                    d.b = format!("rebuilt {name}");
                    o.diffs.push(d);
                }
                Err(e) => o.notes.push(format!("comparing {name}: {e}")),
            }
        } else if name.ends_with(".img") {
            if let Ok(f) = File::open(&rebuilt) {
                let mut sub = VerifyOutcome::new();
                let _ = check_image(&mut sub, &f, &what, &info);
                for c in sub.checks.into_iter().filter(|c| !c.ok) {
                    o.check(c);
                }
            }
            o.notes.push(format!("the published {name} is not next to the buildinfo; boot files were compared with the recorded hashes instead"));
        }
    }
    if signed && req.sign_key.is_none() {
        let rebuilt_sums = open::regular(&out_dir.join(sums::SUMS))
            .and_then(|f| read_bytes_capped(f, MAX_TEXT))
            .map_err(io_err(&out_dir.join(sums::SUMS)))?;
        match &req.keys {
            Some(keys) => check_signature(
                &mut o,
                published,
                &rebuilt_sums,
                keys,
                &format!("{} (over the rebuilt {})", sums::SIGNATURE, sums::SUMS),
            ),
            None if asc.is_file() => o.notes.push(format!(
                "{}: signature present, not checked (give --key PUB.asc to check it over the rebuilt {})",
                sums::SIGNATURE,
                sums::SUMS
            )),
            None => {}
        }
        if o.ok {
            o.notes.push(format!(
                "reproducible except for the signature: {} was not made again (give --sign-key to the rebuild to compare it too)",
                sums::SIGNATURE
            ));
        }
    }
    Ok(o)
}
