//! The input cache: each package is decompressed once, then read back as plain files.
//!
//! The first build that reads an input stores every member's bytes as a blob named by its
//! SHA-256 and a manifest of the members in archive order, named by the input's SHA-256.
//! Later builds replay the manifest instead of decoding the package again. Values derived
//! from one member (a kernel module's `.modinfo`) are kept beside it, named by the member's
//! digest, so they are not recomputed either.
//!
//! Layout of `<dir>/v1/`: `inputs/<input sha256>` manifests, `blobs/<xx>/<sha256>` member
//! bytes, `derived/<kind>/<member sha256>` derived values, `tmp/` fills in progress, and
//! `lock`.
//!
//! Nothing read from the cache is trusted: a manifest and a derived value carry their own
//! digest, and a blob's name is its digest, checked (with its size) before an entry is first
//! replayed. A damaged or incomplete entry is removed and filled again from the input, never
//! used. Every file is written under a temporary name and renamed into place, so builds that
//! share one cache at the same time see whole files only; a manifest is committed only when
//! the input still has the digest it is named by after the fill.
//!
//! Eviction: when the blobs exceed the limit ([`DEFAULT_LIMIT`]) after a fill, the inputs
//! filled longest ago (oldest manifest) are dropped until the blobs take at most three
//! quarters of it, then every blob and derived value no remaining manifest refers to. It
//! takes the lock exclusively and is skipped while another build holds it.

use super::deb::{Member, MemberKind};
use super::{Input, InputError, InputKind};
use crate::digest::hex;
use crate::tree::TreePath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The cache format; a new format lives in a new folder beside the old one.
const FORMAT: &str = "v1";
/// The blobs' size above which old inputs are evicted (8 GiB).
pub const DEFAULT_LIMIT: u64 = 8 << 30;

/// The cache folder could not be used.
#[derive(Debug, thiserror::Error)]
#[error("input cache {}: cannot {what}: {source}; free space, pass --cache DIR for a folder you can write, or --no-cache", path.display())]
pub struct CacheError {
    path: PathBuf,
    what: &'static str,
    #[source]
    source: io::Error,
}

/// An open cache folder.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    limit: u64,
    /// Inputs whose entry this process has checked blob by blob.
    checked: Mutex<BTreeSet<String>>,
    /// Names temporary files uniquely within this process.
    counter: AtomicU64,
}

/// One member as the manifest records it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    path: String,
    /// `file`, `dir`, `symlink`, `hardlink` or `other`.
    kind: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    flag: Option<u8>,
    mode: u32,
    mtime: i64,
    size: u64,
    #[serde(default)]
    sha256: Option<String>,
}

/// Every member of one input, in its archive's order.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    input_sha256: String,
    members: Vec<Entry>,
}

impl Cache {
    /// Opens (creating) the cache in `dir`.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        Cache::with_limit(dir, DEFAULT_LIMIT)
    }

    /// Opens the cache with another eviction limit (bytes of blobs).
    pub fn with_limit(dir: &Path, limit: u64) -> Result<Cache, CacheError> {
        let root = dir.join(FORMAT);
        for sub in ["inputs", "blobs", "derived", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|source| CacheError {
                path: p.clone(),
                what: "create the folder",
                source,
            })?;
        }
        let cache = Cache {
            root,
            limit,
            checked: Mutex::new(BTreeSet::new()),
            counter: AtomicU64::new(0),
        };
        // A cache this user cannot write (another user's, read-only) is found here, before
        // any input is read through it.
        cache.lock(false)?;
        let probe = cache.temporary();
        cache.commit(&probe, b"")?;
        let _ = fs::remove_file(&probe);
        Ok(cache)
    }

    /// Visits `input`'s members as [`Input::scan`] does, from the cache when it holds the
    /// input with digest `sha`, else from the input while filling the cache. Directory inputs
    /// are read directly: they are plain files already.
    pub fn scan(
        &self,
        input: &Input,
        sha: &str,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        if input.kind == InputKind::Dir || !is_digest(sha) {
            return input.scan(visit);
        }
        let _shared = self.lock(false)?;
        if let Some(manifest) = self.entry(sha) {
            return self.replay(&manifest, visit);
        }
        let manifest = self.fill(input, sha, visit)?;
        // The manifest names the bytes that were decoded only if the input still has them.
        if input.sha256()? == sha {
            let text = serde_json::to_vec(&manifest).expect("a manifest serializes");
            self.commit(&self.manifest_path(sha), &sealed(&text))?;
            self.checked
                .lock()
                .expect("not poisoned")
                .insert(sha.into());
        }
        drop(_shared);
        self.evict();
        Ok(())
    }

    /// A derived value of `kind` for the member with digest `key`, if one was stored whole.
    pub fn derived(&self, kind: &str, key: &str) -> Option<Vec<u8>> {
        if !is_digest(key) || !is_kind(kind) {
            return None;
        }
        let path = self.root.join("derived").join(kind).join(key);
        let bytes = read_capped(&path, 1 << 20)?;
        let value = unseal(&bytes);
        if value.is_none() {
            let _ = fs::remove_file(&path);
        }
        value
    }

    /// Stores a derived value; a value that cannot be stored is only recomputed next time.
    pub fn store_derived(&self, kind: &str, key: &str, value: &[u8]) {
        if !is_digest(key) || !is_kind(kind) {
            return;
        }
        let dir = self.root.join("derived").join(kind);
        if fs::create_dir_all(&dir).is_ok() {
            let _ = self.commit(&dir.join(key), &sealed(value));
        }
    }

    fn manifest_path(&self, sha: &str) -> PathBuf {
        self.root.join("inputs").join(sha)
    }

    fn blob_path(&self, sha: &str) -> PathBuf {
        self.root.join("blobs").join(&sha[..2]).join(sha)
    }

    /// The manifest for `sha` when it and (once per process) each of its blobs is whole; a
    /// damaged entry is removed.
    fn entry(&self, sha: &str) -> Option<Manifest> {
        let path = self.manifest_path(sha);
        let bytes = read_capped(&path, 256 << 20)?;
        let manifest = unseal(&bytes)
            .and_then(|body| serde_json::from_slice::<Manifest>(&body).ok())
            .filter(|m| m.input_sha256 == sha && m.members.iter().all(valid_entry));
        let whole = manifest.as_ref().is_some_and(|m| {
            self.checked.lock().expect("not poisoned").contains(sha)
                || m.members.iter().all(|e| self.blob_is_whole(e))
        });
        if !whole {
            let _ = fs::remove_file(&path);
            return None;
        }
        self.checked
            .lock()
            .expect("not poisoned")
            .insert(sha.into());
        manifest
    }

    fn blob_is_whole(&self, e: &Entry) -> bool {
        let Some(sha) = &e.sha256 else {
            return true;
        };
        let Ok(mut f) = File::open(self.blob_path(sha)) else {
            return false;
        };
        let mut h = Sha256::new();
        match io::copy(&mut (&mut f).take(e.size + 1), &mut h) {
            Ok(n) => n == e.size && hex(&h.finalize()) == *sha,
            Err(_) => false,
        }
    }

    /// Visits the members a manifest records; a blob is opened only when its member is read.
    fn replay(
        &self,
        manifest: &Manifest,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        for e in &manifest.members {
            let member = to_member(e).expect("entries were checked");
            match &e.sha256 {
                Some(sha) => {
                    let mut blob = Blob {
                        path: self.blob_path(sha),
                        size: e.size,
                        file: None,
                    };
                    visit(&member, &mut blob)?;
                }
                None => visit(&member, &mut io::empty())?,
            }
        }
        Ok(())
    }

    /// Decodes the input once, storing each file member as a blob before the visitor reads it
    /// back; the manifest of what was stored.
    fn fill(
        &self,
        input: &Input,
        sha: &str,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
    ) -> Result<Manifest, InputError> {
        let mut members = Vec::new();
        let label = input.label();
        input.scan(&mut |m, r| {
            let digest = match m.kind {
                MemberKind::File => Some(self.store_blob(r, &label, m)?),
                _ => None,
            };
            let mut entry = from_member(m);
            entry.sha256 = digest.clone();
            members.push(entry);
            match digest {
                Some(d) => {
                    let mut blob = Blob {
                        path: self.blob_path(&d),
                        size: m.size,
                        file: None,
                    };
                    visit(m, &mut blob)
                }
                None => visit(m, &mut io::empty()),
            }
        })?;
        Ok(Manifest {
            input_sha256: sha.to_string(),
            members,
        })
    }

    /// Copies one member into a blob named by its digest.
    fn store_blob(&self, r: &mut dyn Read, input: &str, m: &Member) -> Result<String, InputError> {
        let tmp = self.temporary();
        let write_err = |source| CacheError {
            path: tmp.clone(),
            what: "write a blob",
            source,
        };
        let mut h = Sha256::new();
        {
            let mut out = BufWriter::new(create(&tmp).map_err(write_err)?);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = r.read(&mut buf).map_err(|source| InputError::Read {
                    input: input.to_string(),
                    path: m.path.to_string(),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(write_err)?;
            }
            out.flush().map_err(write_err)?;
        }
        let sha = hex(&h.finalize());
        let dest = self.blob_path(&sha);
        let placed = fs::create_dir_all(dest.parent().expect("blob folder"))
            .and_then(|()| fs::rename(&tmp, &dest));
        if let Err(source) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(CacheError {
                path: dest,
                what: "store a blob",
                source,
            }
            .into());
        }
        Ok(sha)
    }

    /// A fresh temporary path in `tmp/`.
    fn temporary(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// Writes `bytes` to `dest` through a temporary file and a rename.
    fn commit(&self, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        let tmp = self.temporary();
        let result = create(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| fs::rename(&tmp, dest));
        result.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            CacheError {
                path: dest.to_path_buf(),
                what: "write",
                source,
            }
        })
    }

    /// Holds `lock` shared (builds reading or filling) or exclusive (eviction, only if free).
    fn lock(&self, exclusive: bool) -> Result<Option<File>, CacheError> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| CacheError {
                path: path.clone(),
                what: "open the lock",
                source,
            })?;
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{flock, FlockOperation};
            let op = match exclusive {
                true => FlockOperation::NonBlockingLockExclusive,
                false => FlockOperation::LockShared,
            };
            match flock(&file, op) {
                Ok(()) => {}
                Err(_) if exclusive => return Ok(None),
                Err(e) => {
                    return Err(CacheError {
                        path,
                        what: "take the lock",
                        source: e.into(),
                    })
                }
            }
        }
        Ok(Some(file))
    }

    /// Drops the oldest inputs while the blobs exceed the limit (see the module comment).
    fn evict(&self) {
        let Ok(Some(_exclusive)) = self.lock(true) else {
            return;
        };
        let blobs = files_under(&self.root.join("blobs"), 2);
        let mut total: u64 = blobs.iter().map(|(_, len, _)| len).sum();
        if total <= self.limit {
            return;
        }
        let mut manifests = files_under(&self.root.join("inputs"), 1);
        manifests.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
        let mut kept: Vec<PathBuf> = manifests.into_iter().map(|(p, _, _)| p).collect();
        let mut live = self.referenced(&kept);
        while total > self.limit / 4 * 3 && !kept.is_empty() {
            let _ = fs::remove_file(kept.remove(0));
            live = self.referenced(&kept);
            total = blobs
                .iter()
                .filter(|(p, _, _)| live.contains(&file_name(p)))
                .map(|(_, len, _)| len)
                .sum();
        }
        for (p, _, _) in &blobs {
            if !live.contains(&file_name(p)) {
                let _ = fs::remove_file(p);
            }
        }
        for (p, _, _) in files_under(&self.root.join("derived"), 2) {
            if !live.contains(&file_name(&p)) {
                let _ = fs::remove_file(p);
            }
        }
        for (p, _, _) in files_under(&self.root.join("tmp"), 1) {
            let _ = fs::remove_file(p);
        }
    }

    /// The blob digests the given manifests refer to.
    fn referenced(&self, manifests: &[PathBuf]) -> BTreeSet<String> {
        let mut live = BTreeSet::new();
        for path in manifests {
            let Some(m) = read_capped(path, 256 << 20)
                .and_then(|b| unseal(&b))
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            else {
                continue;
            };
            live.extend(m.members.into_iter().filter_map(|e| e.sha256));
        }
        live
    }
}

/// A blob opened on its first read; it must hold exactly the recorded size.
struct Blob {
    path: PathBuf,
    size: u64,
    file: Option<io::Take<File>>,
}

impl Read for Blob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.file.is_none() {
            let f = File::open(&self.path)?;
            if f.metadata()?.len() != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cache blob {} changed size", self.path.display()),
                ));
            }
            self.file = Some(f.take(self.size));
        }
        self.file.as_mut().expect("opened").read(buf)
    }
}

// The cache writes only inside its own folder, under temporary names that are renamed.
#[allow(clippy::disallowed_methods)]
fn create(path: &Path) -> io::Result<File> {
    File::create(path)
}

/// Every file `depth` levels below `dir`: path, length and modification time.
// Eviction lists the cache's own folders; the order is sorted before use.
#[allow(clippy::disallowed_methods)]
fn files_under(dir: &Path, depth: usize) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if depth > 1 && meta.is_dir() {
            out.extend(files_under(&p, depth - 1));
        } else if depth == 1 && meta.is_file() {
            let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((p, meta.len(), mtime));
        }
    }
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a whole cache file of at most `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> Option<Vec<u8>> {
    let f = File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(cap + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= cap).then_some(bytes)
}

/// `<sha256 of body>\n<body>`: a file that says whether it is whole.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = hex(&Sha256::digest(body)).into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn unseal(bytes: &[u8]) -> Option<Vec<u8>> {
    let (digest, body) = (bytes.get(..64)?, bytes.get(65..)?);
    (bytes[64] == b'\n' && digest == hex(&Sha256::digest(body)).as_bytes()).then(|| body.to_vec())
}

/// A derived value's kind is one folder name of letters, digits and '-'.
fn is_kind(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_entry(e: &Entry) -> bool {
    let digest_ok = match (e.kind.as_str(), &e.sha256) {
        ("file", Some(d)) => is_digest(d),
        ("file", None) => false,
        (_, None) => true,
        (_, Some(_)) => false,
    };
    digest_ok && to_member(e).is_some()
}

fn from_member(m: &Member) -> Entry {
    let (kind, target, flag) = match &m.kind {
        MemberKind::File => ("file", None, None),
        MemberKind::Dir => ("dir", None, None),
        MemberKind::Symlink(t) => ("symlink", Some(t.clone()), None),
        MemberKind::Hardlink(t) => ("hardlink", Some(t.to_string()), None),
        MemberKind::Other(f) => ("other", None, Some(*f)),
    };
    Entry {
        path: m.path.to_string(),
        kind: kind.to_string(),
        target,
        flag,
        mode: m.mode,
        mtime: m.mtime,
        size: m.size,
        sha256: None,
    }
}

/// The member an entry records; `None` for an entry no reader could have produced.
fn to_member(e: &Entry) -> Option<Member> {
    let kind = match (e.kind.as_str(), &e.target, e.flag) {
        ("file", None, None) => MemberKind::File,
        ("dir", None, None) => MemberKind::Dir,
        ("symlink", Some(t), None) => MemberKind::Symlink(t.clone()),
        ("hardlink", Some(t), None) => MemberKind::Hardlink(TreePath::new(t).ok()?),
        ("other", None, Some(f)) => MemberKind::Other(f),
        _ => return None,
    };
    if e.mode > 0o7777 {
        return None;
    }
    Some(Member {
        path: TreePath::new(&e.path).ok()?,
        kind,
        mode: e.mode,
        mtime: e.mtime,
        size: e.size,
    })
}

#[cfg(test)]
// The tests make their inputs and damage the cache's files on purpose.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    /// A `.tar` input with a file, a directory and a symlink, and its digest.
    fn tarball(dir: &Path, name: &str, content: &[u8]) -> (Input, String) {
        let path = dir.join(format!("{name}.tar"));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path("boot/").unwrap();
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(7);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("boot/kernel.img").unwrap();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(9);
        h.set_cksum();
        b.append(&h, content).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_path("boot/link").unwrap();
        h.set_link_name("kernel.img").unwrap();
        h.set_mode(0o777);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        fs::write(&path, b.into_inner().unwrap()).unwrap();
        let input = Input {
            name: name.into(),
            version: None,
            arch: None,
            file: format!("{name}.tar"),
            path,
            kind: InputKind::Tarball,
        };
        let sha = input.sha256().unwrap();
        (input, sha)
    }

    /// Every member as `path kind mode mtime size content`.
    fn members(cache: &Cache, input: &Input, sha: &str) -> Vec<String> {
        let mut seen = Vec::new();
        cache
            .scan(input, sha, &mut |m, r| {
                let mut data = Vec::new();
                r.read_to_end(&mut data)
                    .map_err(|source| InputError::Read {
                        input: input.name.clone(),
                        path: m.path.to_string(),
                        source,
                    })?;
                seen.push(format!(
                    "{} {:?} {:o} {} {} {}",
                    m.path,
                    m.kind,
                    m.mode,
                    m.mtime,
                    m.size,
                    String::from_utf8_lossy(&data)
                ));
                Ok(())
            })
            .unwrap();
        seen
    }

    fn direct(input: &Input) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        // An empty digest bypasses the cache: the input as its reader gives it.
        members(&cache, input, "")
    }

    #[test]
    fn a_filled_entry_replays_without_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let (input, sha) = tarball(dir.path(), "k", b"kernel bytes");
        let expected = direct(&input);
        assert_eq!(expected.len(), 3, "{expected:?}");
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        assert_eq!(members(&cache, &input, &sha), expected);
        assert!(
            cache.manifest_path(&sha).is_file(),
            "the fill commits a manifest"
        );
        // The entry is used in place of the input: a garbled input under the same digest
        // is never opened, by this process or the next.
        fs::write(&input.path, b"not a tar").unwrap();
        assert_eq!(members(&cache, &input, &sha), expected);
        let next = Cache::open(&dir.path().join("cache")).unwrap();
        assert_eq!(members(&next, &input, &sha), expected);
    }

    /// What was done to the cache, and how.
    type Damage<'a> = (&'a str, &'a dyn Fn(&Cache));

    #[test]
    fn damaged_entries_are_dropped_and_filled_again() {
        let dir = tempfile::tempdir().unwrap();
        let (input, sha) = tarball(dir.path(), "k", b"kernel bytes");
        let expected = direct(&input);
        let root = dir.path().join("cache");
        let blob = Cache::open(&root)
            .unwrap()
            .blob_path(&hex(&Sha256::digest(b"kernel bytes")));
        let damages: [Damage; 5] = [
            ("a blob with other bytes", &|_| {
                fs::write(&blob, b"kernel BYTES").unwrap()
            }),
            ("a missing blob", &|_| fs::remove_file(&blob).unwrap()),
            ("a truncated manifest", &|c| {
                let p = c.manifest_path(&sha);
                let b = fs::read(&p).unwrap();
                fs::write(&p, &b[..b.len() - 5]).unwrap()
            }),
            ("a manifest for another input", &|c| {
                let p = c.manifest_path(&sha);
                let text = String::from_utf8(fs::read(&p).unwrap()[65..].to_vec()).unwrap();
                fs::write(&p, sealed(text.replace(&sha, &"0".repeat(64)).as_bytes())).unwrap()
            }),
            ("a sealed manifest whose path leaves the tree", &|c| {
                let p = c.manifest_path(&sha);
                let text = String::from_utf8(fs::read(&p).unwrap()[65..].to_vec()).unwrap();
                let evil = text.replace("\"boot/link\"", "\"../../etc/passwd\"");
                assert_ne!(evil, text);
                fs::write(&p, sealed(evil.as_bytes())).unwrap()
            }),
        ];
        for (what, damage) in damages {
            let cache = Cache::open(&root).unwrap();
            assert_eq!(
                members(&cache, &input, &sha),
                expected,
                "fill before {what}"
            );
            damage(&cache);
            // A new process checks the entry before its first use.
            let cache = Cache::open(&root).unwrap();
            assert_eq!(members(&cache, &input, &sha), expected, "after {what}");
            assert_eq!(
                fs::read(&blob).unwrap(),
                b"kernel bytes",
                "{what}: refilled"
            );
        }
    }

    #[test]
    fn an_input_changed_during_the_fill_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (input, sha) = tarball(dir.path(), "k", b"first");
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let mut first = true;
        cache
            .scan(&input, &sha, &mut |_, _| {
                if first {
                    first = false;
                    tarball(dir.path(), "k", b"second");
                }
                Ok(())
            })
            .unwrap();
        assert!(!cache.manifest_path(&sha).exists());
    }

    #[test]
    fn eviction_drops_the_oldest_inputs_and_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let (a, sha_a) = tarball(dir.path(), "a", &[b'a'; 600]);
        let (b, sha_b) = tarball(dir.path(), "b", &[b'b'; 600]);
        let cache = Cache::with_limit(&root, 1000).unwrap();
        members(&cache, &a, &sha_a);
        assert!(cache.manifest_path(&sha_a).is_file(), "one input fits");
        // Modification times are whole seconds on some file systems; make the order plain.
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
        File::options()
            .write(true)
            .open(cache.manifest_path(&sha_a))
            .unwrap()
            .set_modified(old)
            .unwrap();
        members(&cache, &b, &sha_b);
        assert!(
            !cache.manifest_path(&sha_a).exists(),
            "the oldest input goes"
        );
        assert!(cache.manifest_path(&sha_b).is_file(), "the newest stays");
        let blob_a = cache.blob_path(&hex(&Sha256::digest([b'a'; 600])));
        let blob_b = cache.blob_path(&hex(&Sha256::digest([b'b'; 600])));
        assert!(!blob_a.exists() && blob_b.is_file());
    }

    #[test]
    fn derived_values_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = hex(&Sha256::digest(b"member"));
        assert_eq!(cache.derived("modinfo-1", &key), None);
        cache.store_derived("modinfo-1", &key, b"value");
        assert_eq!(
            cache.derived("modinfo-1", &key).as_deref(),
            Some(&b"value"[..])
        );
        let path = cache.root.join("derived/modinfo-1").join(&key);
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_eq!(
            cache.derived("modinfo-1", &key),
            None,
            "a damaged value is not used"
        );
        assert!(!path.exists(), "and is removed");
        assert_eq!(cache.derived("../x", &key), None);
        assert_eq!(cache.derived("modinfo-1", "../../x"), None);
    }
}
