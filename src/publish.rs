//! The only place that writes output files.
//!
//! A build locks the output folder itself (`flock` on the folder), writes every output into a
//! new folder beside it (`<parent>/.<name>.pimg-stage-<hex>`, locked too), hard-links into it
//! the files of the old folder that this build does not write, syncs it, and publishes all
//! outputs at once by swapping the two folders with one `renameat2(RENAME_EXCHANGE)`; the old
//! folder is then deleted. An output folder that does not exist yet is not made until the
//! staging folder is renamed to it: until then the build locks the file
//! `<parent>/.<name>.pimg-lock` instead, and removes it when it ends. A kill at any point leaves
//! the output path holding either the complete old folder or the complete new one, and the
//! next build removes the staging folders that killed builds left (never one a live build
//! still locks). Whichever folder holds the output path is locked while a build runs, so a
//! second build into it fails at once instead of interleaving.
//!
//! Where one folder cannot replace the other, the outputs are staged inside the output
//! folder as `.<file>.pimg-partial` or moved there from the staging folder, renamed into
//! place one by one (not atomic), and the build says so in a warning: the output folder is a
//! mount point, pimg may not create a folder beside it, it is the current folder, it holds
//! subfolders or files that cannot be hard-linked, it belongs to another user, or its file
//! system cannot exchange two folders. Where the file system cannot lock a folder, the lock
//! is the file `.pimg.lock` inside it, and the outputs are renamed one by one as well.
// The only writer of output files: it lists, stages and swaps the output folder.
#![allow(clippy::disallowed_methods)]

use crate::digest::hex;
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file inside an output folder whose file system cannot lock a folder.
pub const LOCK_FILE: &str = ".pimg.lock";

/// What marks a folder beside output folder `name` as a build's staging folder:
/// `.<name>.pimg-stage-<16 hex digits>`.
const STAGE_TAG: &str = ".pimg-stage-";

/// What marks an old output folder kept because other programs changed it while it was
/// being replaced: `.<name>.pimg-kept-<16 hex digits>`.
const KEPT_TAG: &str = ".pimg-kept-";

/// Suffix of an output staged inside the output folder (`.<file>.pimg-partial`).
const PARTIAL_SUFFIX: &str = ".pimg-partial";

/// An output as published: name, size, SHA-256.
pub type OutputFile = crate::digest::FileSum;

/// A device that remembers its first I/O error, so a failure that a writer reports through
/// its own error type (a FAT write that hit a full disk) is still reported as an output error.
pub struct RecordIo<'a, T> {
    inner: T,
    first: &'a std::cell::RefCell<Option<std::io::Error>>,
}

impl<'a, T> RecordIo<'a, T> {
    /// Wraps `inner`; the first error lands in `first`.
    pub fn new(inner: T, first: &'a std::cell::RefCell<Option<std::io::Error>>) -> Self {
        RecordIo { inner, first }
    }

    fn note<V>(&self, r: std::io::Result<V>) -> std::io::Result<V> {
        if let Err(e) = &r {
            let mut first = self.first.borrow_mut();
            if first.is_none() {
                *first = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl<T: Read> Read for RecordIo<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        self.note(r)
    }
}

impl<T: Write> Write for RecordIo<'_, T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

impl<T: Seek> Seek for RecordIo<'_, T> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let r = self.inner.seek(pos);
        self.note(r)
    }
}

fn out_err(path: &Path) -> impl Fn(io::Error) -> PublishError + '_ {
    move |source| PublishError::Output {
        path: path.display().to_string(),
        source,
    }
}

/// An output error about `path` whose message says what pimg was doing when `e` happened.
fn out_ctx(path: &Path, doing: impl std::fmt::Display, e: io::Error) -> PublishError {
    PublishError::Output {
        path: path.display().to_string(),
        source: io::Error::new(e.kind(), format!("{doing}: {e}")),
    }
}

/// An output error about `path` that is not a system call's failure.
fn out_msg(path: &Path, kind: ErrorKind, message: String) -> PublishError {
    PublishError::Output {
        path: path.display().to_string(),
        source: io::Error::new(kind, message),
    }
}

/// Why the outputs could not be staged or published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("output {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "output folder {path} is in use by another pimg build, which holds the lock on \
         {lock}; wait for it to finish or use another --out"
    )]
    Busy { path: String, lock: String },
}

/// `.<name><tag><n as 16 hex digits>`.
fn tagged(name: &OsStr, tag: &str, n: u64) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!("{tag}{n:016x}"));
    s
}

/// Whether `entry` is `.<name><tag>` followed by exactly 16 hex digits. The digits make the
/// pattern unambiguous: no other output folder's staging folder matches it.
fn is_tagged(entry: &OsStr, name: &OsStr, tag: &str) -> bool {
    let e = entry.as_bytes();
    let prefix = [b".", name.as_bytes(), tag.as_bytes()].concat();
    e.len() == prefix.len() + 16
        && e.starts_with(&prefix)
        && e[prefix.len()..].iter().all(u8::is_ascii_hexdigit)
}

/// `.<file>.pimg-partial`: where an output is staged inside the output folder.
fn partial_name(file: &str) -> String {
    format!(".{file}{PARTIAL_SUFFIX}")
}

/// pimg's own files inside an output folder: the lock and staged outputs of earlier builds
/// (and of pimg versions that kept them there). They are never carried into a new folder.
fn is_own_leftover(entry: &OsStr) -> bool {
    let e = entry.as_bytes();
    e == LOCK_FILE.as_bytes()
        || (e.len() > 1 + PARTIAL_SUFFIX.len()
            && e.starts_with(b".")
            && e.ends_with(PARTIAL_SUFFIX.as_bytes()))
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Flushes a folder's entries to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The file system's mount of `path` (statx `STATX_MNT_ID`), when the kernel reports it.
#[cfg(target_os = "linux")]
fn mount_id(path: &Path) -> Option<u64> {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let s = statx(CWD, path, AtFlags::empty(), StatxFlags::MNT_ID).ok()?;
    (s.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(s.stx_mnt_id)
}

#[cfg(not(target_os = "linux"))]
fn mount_id(_: &Path) -> Option<u64> {
    None
}

/// Whether `dir` is mounted on its own (another file system, or a bind mount): then a
/// folder beside it cannot be renamed over it.
fn is_mount_point(dir: &Path, parent: &Path) -> io::Result<bool> {
    let (d, p) = (fs::metadata(dir)?, fs::metadata(parent)?);
    if d.dev() != p.dev() {
        return Ok(true);
    }
    Ok(matches!((mount_id(dir), mount_id(parent)), (Some(a), Some(b)) if a != b))
}

#[cfg(target_os = "linux")]
fn rename_flags(from: &Path, to: &Path, flags: rustix::fs::RenameFlags) -> io::Result<()> {
    use rustix::fs::{renameat_with, CWD};
    renameat_with(CWD, from, CWD, to, flags).map_err(io::Error::from)
}

/// Swaps two paths in one step (`renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rename_flags(a, b, rustix::fs::RenameFlags::EXCHANGE)
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists (`RENAME_NOREPLACE`).
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    rename_flags(from, to, rustix::fs::RenameFlags::NOREPLACE)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        ErrorKind::Unsupported,
        "exchanging two folders in one step needs Linux's renameat2",
    ))
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        ErrorKind::Unsupported,
        "renaming without replacing needs Linux's renameat2",
    ))
}

/// The system call exists but this file system (or kernel) does not offer the flag.
fn unsupported(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported)
}

/// Where the output folder is, once `--out` is resolved.
struct Target {
    /// The path as given (for messages and the report).
    shown: PathBuf,
    /// The folder's real path: absolute, symbolic links resolved (it may not exist yet).
    dir: PathBuf,
    /// `dir`'s parent and file name; None for the root folder.
    parent: Option<(PathBuf, OsString)>,
}

/// Refuses an output path that can never hold the outputs (an existing file, a dangling
/// symbolic link, a path that names no folder), without creating or locking anything: a build
/// checks this before its work, not only when it publishes.
pub fn check_out(out: &Path) -> Result<(), PublishError> {
    match fs::metadata(out) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(out_msg(
            out,
            ErrorKind::NotADirectory,
            "exists and is not a folder; remove it or choose another --out".into(),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if fs::symlink_metadata(out).is_ok() {
                return Err(out_msg(
                    out,
                    ErrorKind::NotFound,
                    "is a symbolic link to nothing; remove it or point it at a folder".into(),
                ));
            }
            if out.file_name().is_none() {
                return Err(out_msg(
                    out,
                    ErrorKind::InvalidInput,
                    "does not name a folder; give a path such as out or ./out".into(),
                ));
            }
            Ok(())
        }
        Err(e) => Err(out_err(out)(e)),
    }
}

impl Target {
    fn resolve(out: &Path) -> Result<Target, PublishError> {
        check_out(out)?;
        let dir = match fs::metadata(out) {
            Ok(m) if m.is_dir() => fs::canonicalize(out).map_err(out_err(out))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // `..` and the like name no folder (check_out saw them as folders before).
                let Some(name) = out.file_name() else {
                    return Err(out_msg(
                        out,
                        ErrorKind::InvalidInput,
                        "does not name a folder; give a path such as out or ./out".into(),
                    ));
                };
                let parent = match out.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                fs::create_dir_all(parent).map_err(|e| {
                    out_ctx(out, format_args!("cannot create {}", parent.display()), e)
                })?;
                fs::canonicalize(parent).map_err(out_err(out))?.join(name)
            }
            // Replaced since check_out looked: refused for what it is now.
            Ok(_) | Err(_) => {
                return Err(check_out(out).err().unwrap_or_else(|| {
                    out_msg(
                        out,
                        ErrorKind::Other,
                        "changed while pimg looked at it".into(),
                    )
                }))
            }
        };
        let parent = match (dir.parent(), dir.file_name()) {
            (Some(p), Some(n)) => Some((p.to_path_buf(), n.to_os_string())),
            _ => None,
        };
        Ok(Target {
            shown: out.to_path_buf(),
            dir,
            parent,
        })
    }
}

/// Takes `file`'s lock (`lock` names it) without waiting: `Err(Busy)` where another build
/// holds it, `Ok(Err(_))` where the file system cannot lock it.
fn try_lock(file: &File, lock: &Path, shown: &Path) -> Result<io::Result<()>, PublishError> {
    match file.try_lock() {
        Ok(()) => Ok(Ok(())),
        Err(fs::TryLockError::WouldBlock) => Err(PublishError::Busy {
            path: shown.display().to_string(),
            lock: lock.display().to_string(),
        }),
        Err(fs::TryLockError::Error(e)) => Ok(Err(e)),
    }
}

fn cannot_lock<'a>(shown: &'a Path, lock: &'a Path) -> impl Fn(io::Error) -> PublishError + 'a {
    move |e| out_ctx(shown, format_args!("cannot lock {}", lock.display()), e)
}

/// Opens (creating, never truncating) a lock file.
fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// The locks a build holds (`flock`, released when the files close at exit): the output
/// folder, and the staging folder that is to replace it. A build that opened the folder just
/// before another build swapped or removed it sees that the path no longer names what it
/// locked, and locks again.
struct Lock {
    held: Vec<File>,
    /// `.pimg.lock` inside the output folder, where its file system cannot lock a folder.
    file: Option<PathBuf>,
}

enum Locked {
    /// This build holds the lock; `created` when it made the (empty) output folder.
    Held { lock: Lock, created: bool },
    /// The file system cannot lock a folder (`flock` failed with this error).
    Unsupported(io::Error),
}

impl Lock {
    /// Locks the output folder, creating it (empty) if missing.
    fn folder(target: &Target) -> Result<Locked, PublishError> {
        let (dir, shown) = (&target.dir, &target.shown);
        for _ in 0..100 {
            let created = match fs::create_dir(dir) {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
                Err(e) => return Err(out_err(shown)(e)),
            };
            let file = File::open(dir).map_err(out_err(shown))?;
            if let Err(e) = try_lock(&file, dir, shown)? {
                if created {
                    let _ = fs::remove_dir(dir);
                }
                return Ok(Locked::Unsupported(e));
            }
            if still_names(dir, &file)? {
                let lock = Lock {
                    held: vec![file],
                    file: None,
                };
                return Ok(Locked::Held { lock, created });
            }
        }
        Err(replaced(shown, dir))
    }

    /// Locks `.pimg.lock` inside the (existing) output folder.
    fn file_inside(target: &Target) -> Result<Lock, PublishError> {
        let (path, shown) = (target.dir.join(LOCK_FILE), &target.shown);
        for _ in 0..100 {
            let file = open_lock_file(&path).map_err(|e| {
                out_ctx(
                    shown,
                    format_args!("cannot create the lock file {}", path.display()),
                    e,
                )
            })?;
            try_lock(&file, &path, shown)?.map_err(cannot_lock(shown, &path))?;
            if still_names(&path, &file)? {
                return Ok(Lock {
                    held: vec![file],
                    file: Some(path),
                });
            }
        }
        Err(replaced(shown, &path))
    }

    /// Locks the lock file `path` beside a missing output folder (creating it), or reports
    /// the build that holds it; `None` where the file system cannot lock it.
    fn side_file(path: &Path, shown: &Path) -> Result<Option<Lock>, PublishError> {
        for _ in 0..100 {
            let Ok(file) = open_lock_file(path) else {
                return Ok(None);
            };
            if try_lock(&file, path, shown)?.is_err() {
                return Ok(None);
            }
            if still_names(path, &file)? {
                return Ok(Some(Lock {
                    held: vec![file],
                    file: Some(path.to_path_buf()),
                }));
            }
        }
        Err(replaced(shown, path))
    }

    /// Also locks `dir` (a staging folder this build just made).
    fn add(&mut self, dir: &Path) -> io::Result<()> {
        let file = File::open(dir)?;
        file.try_lock().map_err(io::Error::from)?;
        self.held.push(file);
        Ok(())
    }
}

/// Whether `path` still names the file or folder open as `file`.
fn still_names(path: &Path, file: &File) -> Result<bool, PublishError> {
    let ours = file.metadata().map_err(out_err(path))?;
    Ok(matches!(fs::metadata(path), Ok(m) if same_file(&m, &ours)))
}

fn replaced(shown: &Path, lock: &Path) -> PublishError {
    out_msg(
        shown,
        ErrorKind::Other,
        format!(
            "{} keeps being replaced while pimg locks it; is another program replacing it?",
            lock.display()
        ),
    )
}

/// Where the outputs are staged.
enum Staging {
    /// In a new folder beside the output folder, published by swapping the folders.
    Beside {
        parent: PathBuf,
        name: OsString,
        stage: PathBuf,
    },
    /// Inside the output folder as `.<file>.pimg-partial`, renamed one by one; `why` says
    /// why the folder cannot be swapped.
    Inside { why: String },
}

/// An output folder being written.
pub struct OutputDir {
    target: Target,
    staging: Staging,
    staged: Vec<String>,
    files: Vec<OutputFile>,
    warnings: Vec<String>,
    /// Whether the staging folder still holds this build's outputs (to delete on failure).
    stage_ours: bool,
    /// Whether this build created the output folder (removed again, if still empty, when
    /// nothing was published).
    created: bool,
    /// Whether the lock covers the output folder (not only the staging folder: an output
    /// folder that did not exist when the build began).
    folder_locked: bool,
    committed: bool,
    // Dropped last: the cleanup in `Drop` runs under the lock.
    lock: Lock,
}

impl OutputDir {
    /// Resolves the output folder, takes its lock (failing at once if another build holds
    /// it), removes what killed builds left, and prepares the staging folder. Until
    /// [`OutputDir::commit`] the output path holds the previous outputs untouched, or an
    /// empty folder that is removed again if the build fails.
    pub fn open(out: &Path) -> Result<Self, PublishError> {
        let target = Target::resolve(out)?;
        let target = match Self::open_missing(target)? {
            Ok(dir) => return Ok(dir),
            Err(target) => target,
        };
        let (lock, created, unlockable) = match Lock::folder(&target)? {
            Locked::Held { lock, created } => (lock, created, None),
            Locked::Unsupported(e) => {
                let created = !target.dir.exists();
                fs::create_dir_all(&target.dir).map_err(out_err(&target.shown))?;
                let why = format!(
                    "its file system cannot lock a folder ({e}), so pimg locks {} in it instead",
                    target.dir.join(LOCK_FILE).display()
                );
                (Lock::file_inside(&target)?, created, Some(why))
            }
        };
        // From here on, dropping `dir` undoes what this build made.
        let mut dir = OutputDir {
            target,
            staging: Staging::Inside { why: String::new() },
            staged: Vec::new(),
            files: Vec::new(),
            warnings: Vec::new(),
            stage_ours: true,
            created,
            folder_locked: true,
            committed: false,
            lock,
        };
        dir.staging = dir.prepare_staging(unlockable)?;
        Ok(dir)
    }

    /// For an output folder that does not exist yet: nothing is made at the output path
    /// until the outputs are published there, so a build killed before then leaves no empty
    /// folder behind (only its staging folder and the empty lock file beside the output
    /// path, which the next build removes). The build holds the lock file
    /// `<parent>/.<name>.pimg-lock` instead of the folder's lock, and a second build finds
    /// it held and stops. Gives the target back where this does not apply: the folder exists
    /// (or appeared meanwhile), or nothing can be made or locked beside it.
    fn open_missing(target: Target) -> Result<Result<Self, Target>, PublishError> {
        let Some((parent, name)) = target.parent.clone() else {
            return Ok(Err(target));
        };
        if fs::symlink_metadata(&target.dir).is_ok() {
            return Ok(Err(target));
        }
        let side = parent.join(side_lock_name(&name));
        let mut lock = match Lock::side_file(&side, &target.shown)? {
            Some(lock) => lock,
            None => return Ok(Err(target)),
        };
        let give_back = |lock: Lock, target: Target| {
            if let Some(f) = &lock.file {
                let _ = fs::remove_file(f);
            }
            drop(lock);
            Ok(Err(target))
        };
        if fs::symlink_metadata(&target.dir).is_ok() {
            return give_back(lock, target);
        }
        let mut warnings = Vec::new();
        remove_stale_stages(&parent, &name, &mut warnings);
        let mut attempts = 0;
        let stage = loop {
            let stage = match create_stage(&parent, &name) {
                Ok(stage) => stage,
                // Where no folder can be made beside it, the usual path says why.
                Err(_) => return give_back(lock, target),
            };
            match lock.add(&stage) {
                Ok(()) => break stage,
                // Held a moment by a build that looked whether it was a killed build's
                // (builds into the folder once it exists do): make another.
                Err(e) if e.kind() == ErrorKind::WouldBlock && attempts < 100 => {
                    let _ = fs::remove_dir(&stage);
                    attempts += 1;
                }
                Err(_) => {
                    let _ = fs::remove_dir(&stage);
                    return give_back(lock, target);
                }
            }
        };
        Ok(Ok(OutputDir {
            target,
            staging: Staging::Beside {
                parent,
                name,
                stage,
            },
            staged: Vec::new(),
            files: Vec::new(),
            warnings,
            stage_ours: true,
            created: false,
            folder_locked: false,
            committed: false,
            lock,
        }))
    }

    /// Makes the staging folder beside the output folder, or says why the outputs are
    /// staged inside it.
    fn prepare_staging(&mut self, unlockable: Option<String>) -> Result<Staging, PublishError> {
        let target = &self.target;
        let why = match (unlockable, &target.parent) {
            (Some(why), _) => why,
            (None, None) => "it is the root folder".to_string(),
            (None, Some((parent, name))) => {
                if is_mount_point(&target.dir, parent).map_err(out_err(&target.shown))? {
                    "it is a mount point, and a folder beside it cannot be renamed over it".into()
                } else {
                    remove_stale_stages(parent, name, &mut self.warnings);
                    match create_stage(parent, name) {
                        Ok(stage) => {
                            if let Err(e) = self.lock.add(&stage) {
                                let _ = fs::remove_dir(&stage);
                                return Err(out_ctx(
                                    &target.shown,
                                    format_args!(
                                        "cannot lock the staging folder {}",
                                        stage.display()
                                    ),
                                    e,
                                ));
                            }
                            return Ok(Staging::Beside {
                                parent: parent.clone(),
                                name: name.clone(),
                                stage,
                            });
                        }
                        // The folder is writable, the one holding it may not be.
                        Err(e) if e.kind() == ErrorKind::PermissionDenied => format!(
                            "pimg may not create a folder beside it in {} ({e})",
                            parent.display()
                        ),
                        Err(e) => {
                            return Err(out_ctx(
                                &target.shown,
                                format_args!(
                                    "cannot create a staging folder in {}",
                                    parent.display()
                                ),
                                e,
                            ))
                        }
                    }
                }
            }
        };
        remove_partials(&target.dir, &mut self.warnings);
        Ok(Staging::Inside { why })
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        match &self.staging {
            Staging::Beside { stage, .. } => stage.join(name),
            Staging::Inside { .. } => self.target.dir.join(partial_name(name)),
        }
    }

    /// Stages `name` by handing a fresh, empty temporary file to `write`, then hashes it.
    pub fn write_with<T, E: From<PublishError>>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut File) -> Result<T, E>,
    ) -> Result<T, E> {
        let tmp = self.temp_path(name);
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(out_err(&tmp))?;
        self.staged.push(name.to_string());
        let value = write(&mut file)?;
        file.sync_all().map_err(out_err(&tmp))?;
        file.seek(SeekFrom::Start(0)).map_err(out_err(&tmp))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(out_err(&tmp))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        self.files.push(OutputFile {
            name: name.to_string(),
            size,
            sha256: hex(&h.finalize()),
        });
        Ok(value)
    }

    /// Opens an output staged by this build for reading, to derive another output from it.
    pub fn open_staged(&self, name: &str) -> Result<File, PublishError> {
        let tmp = self.temp_path(name);
        if !self.staged.iter().any(|n| n == name) {
            return Err(out_msg(
                &tmp,
                ErrorKind::NotFound,
                "is not an output this build staged".into(),
            ));
        }
        File::open(&tmp).map_err(out_err(&tmp))
    }

    /// Stages `name` with the given bytes.
    pub fn write_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let tmp = self.temp_path(name);
        self.write_with(name, |f| f.write_all(bytes).map_err(out_err(&tmp)))
    }

    /// The outputs staged so far, in the order written.
    pub fn files(&self) -> &[OutputFile] {
        &self.files
    }

    /// Warnings about the output folder: publishing that was not atomic, leftovers that
    /// could not be removed.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Publishes every staged output at once (see the module documentation); returns the
    /// output folder as given.
    pub fn commit(&mut self) -> Result<String, PublishError> {
        match &self.staging {
            Staging::Inside { why } => {
                let why = why.clone();
                self.publish_each(None, &why)?;
            }
            Staging::Beside {
                parent,
                name,
                stage,
            } => {
                let (parent, name, stage) = (parent.clone(), name.clone(), stage.clone());
                self.publish_beside(&parent, &name, &stage)?;
            }
        }
        self.committed = true;
        Ok(self.target.shown.display().to_string())
    }

    fn publish_beside(
        &mut self,
        parent: &Path,
        name: &OsStr,
        stage: &Path,
    ) -> Result<(), PublishError> {
        let dir = self.target.dir.clone();
        if !dir.exists() && fs::symlink_metadata(&dir).is_err() {
            sync_dir(stage).map_err(out_err(stage))?;
            match rename_noreplace(stage, &dir) {
                Ok(()) => return self.published(parent, None),
                // Created by someone else meanwhile: carry it over like any old folder, once
                // this build holds its lock.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => self.lock_folder()?,
                Err(e) if unsupported(&e) => {
                    fs::rename(stage, &dir).map_err(|e| {
                        out_ctx(
                            &self.target.shown,
                            format_args!("cannot rename {} to it", stage.display()),
                            e,
                        )
                    })?;
                    return self.published(parent, None);
                }
                Err(e) => {
                    return Err(out_ctx(
                        &self.target.shown,
                        format_args!("cannot rename {} to it", stage.display()),
                        e,
                    ))
                }
            }
        }
        if let Some(why) = self.carry_over(stage)? {
            return self.publish_each(Some(stage), &why);
        }
        sync_dir(stage).map_err(out_err(stage))?;
        if let Err(e) = exchange(stage, &dir) {
            let why = format!(
                "its file system refused to exchange it with the new folder {} (renameat2 \
                 RENAME_EXCHANGE: {e})",
                stage.display()
            );
            return self.publish_each(Some(stage), &why);
        }
        // `stage` now names the previous folder.
        self.stage_ours = false;
        self.published(parent, Some((name, stage)))
    }

    /// Locks an output folder that appeared after this build began (see `folder_locked`).
    fn lock_folder(&mut self) -> Result<(), PublishError> {
        if self.folder_locked {
            return Ok(());
        }
        let (dir, shown) = (&self.target.dir, &self.target.shown);
        let file = File::open(dir).map_err(out_err(shown))?;
        try_lock(&file, dir, shown)?.map_err(cannot_lock(shown, dir))?;
        self.lock.held.push(file);
        self.folder_locked = true;
        Ok(())
    }

    /// After the new folder took the output path: syncs the parent and removes the previous
    /// folder (`old`, now at the staging path) if there was one.
    fn published(
        &mut self,
        parent: &Path,
        old: Option<(&OsStr, &Path)>,
    ) -> Result<(), PublishError> {
        self.stage_ours = false;
        if let Err(e) = sync_dir(parent) {
            self.warnings.push(format!(
                "the outputs are published in {}, but syncing {} failed ({e}); they may not \
                 survive a power loss until the system syncs",
                self.target.shown.display(),
                parent.display()
            ));
        }
        if let Some((name, old)) = old {
            self.retire(parent, name, old);
        }
        Ok(())
    }

    /// Makes the staging folder a complete copy of the output folder as it will be: hard
    /// links to every entry of the old folder this build does not write (pimg's own
    /// leftovers aside), and the old folder's owner and mode. Returns why the folders cannot
    /// be swapped, if they cannot.
    fn carry_over(&self, stage: &Path) -> Result<Option<String>, PublishError> {
        let dir = &self.target.dir;
        let old = fs::metadata(dir).map_err(out_err(&self.target.shown))?;
        if let Ok(cwd) = std::env::current_dir().and_then(fs::metadata) {
            if same_file(&cwd, &old) {
                return Ok(Some(
                    "it is the current folder, and a shell there would be left in the removed \
                     old folder"
                        .into(),
                ));
            }
        }
        let entries = fs::read_dir(dir).map_err(out_err(&self.target.shown))?;
        for entry in entries {
            let entry = entry.map_err(out_err(&self.target.shown))?;
            let name = entry.file_name();
            let path = entry.path();
            let kind = entry.file_type().map_err(out_err(&path))?;
            if self.staged.iter().any(|s| OsStr::new(s) == name) {
                if kind.is_dir() {
                    return Err(out_msg(
                        &path,
                        ErrorKind::IsADirectory,
                        "is a folder where pimg writes an output file; move it away".into(),
                    ));
                }
                continue;
            }
            if is_own_leftover(&name) && kind.is_file() {
                continue;
            }
            if kind.is_dir() {
                return Ok(Some(format!(
                    "it holds the folder {}, which pimg does not copy into a new folder (give \
                     pimg an output folder of its own to publish atomically)",
                    path.display()
                )));
            }
            if let Err(e) = fs::hard_link(&path, stage.join(&name)) {
                return Ok(Some(format!(
                    "{} cannot be hard-linked into the new folder ({e})",
                    path.display()
                )));
            }
        }
        let new = fs::metadata(stage).map_err(out_err(stage))?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
            if let Err(e) = std::os::unix::fs::chown(stage, Some(old.uid()), Some(old.gid())) {
                return Ok(Some(format!(
                    "it belongs to user {} and group {}, which a new folder cannot be given ({e})",
                    old.uid(),
                    old.gid()
                )));
            }
        }
        fs::set_permissions(stage, fs::Permissions::from_mode(old.mode() & 0o7777))
            .map_err(out_err(stage))?;
        Ok(None)
    }

    /// Removes the previous output folder, now at `old`. What other programs put into the
    /// output folder while it was being replaced is moved into the new folder; what cannot
    /// be is kept, with the old folder renamed to `.<name>.pimg-kept-<hex>` and a warning.
    fn retire(&mut self, parent: &Path, name: &OsStr, old: &Path) {
        let dir = &self.target.dir;
        let mut kept = Vec::new();
        let mut failed = Vec::new();
        let entries = match fs::read_dir(old) {
            Ok(e) => e,
            Err(e) => {
                self.warnings.push(format!(
                    "cannot list the previous output folder {} ({e}); the next build removes it",
                    old.display()
                ));
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ours = self.staged.iter().any(|s| OsStr::new(s) == name)
                || (is_own_leftover(&name) && meta.is_file());
            if !ours {
                match fs::symlink_metadata(dir.join(&name)) {
                    // Carried over: the new folder holds the same file.
                    Ok(m) if same_file(&m, &meta) => {}
                    // Appeared while pimg published: it belongs in the new folder.
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        if rename_noreplace(&path, &dir.join(&name)).is_err() {
                            kept.push(path);
                        }
                        continue;
                    }
                    // Replaced while pimg published: keep the other version.
                    _ => {
                        kept.push(path);
                        continue;
                    }
                }
            }
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = removed {
                failed.push(format!("{} ({e})", path.display()));
            }
        }
        if !kept.is_empty() {
            let keep = parent.join(tagged(name, KEPT_TAG, std::process::id() as u64));
            let list: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
            let at = match fs::rename(old, &keep) {
                Ok(()) => keep,
                Err(_) => old.to_path_buf(),
            };
            self.warnings.push(format!(
                "{} changed while pimg replaced it; the previous folder is kept as {} with \
                 what changed ({}): move what you need out of it and remove it",
                self.target.shown.display(),
                at.display(),
                list.join(", ")
            ));
        } else if !failed.is_empty() || fs::remove_dir(old).is_err() {
            self.warnings.push(format!(
                "cannot remove all of the previous output folder {}{}; the next build removes it",
                old.display(),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", failed.join(", "))
                }
            ));
        }
    }

    /// Publishes file by file: staged outputs (from `stage`, or already inside the folder)
    /// become `.<file>.pimg-partial` inside the output folder, then each is renamed into
    /// place. Not atomic: says so in a warning that gives `why`.
    fn publish_each(&mut self, stage: Option<&Path>, why: &str) -> Result<(), PublishError> {
        let dir = self.target.dir.clone();
        if let Some(stage) = stage {
            fs::create_dir_all(&dir).map_err(out_err(&self.target.shown))?;
            remove_partials(&dir, &mut self.warnings);
            for name in &self.staged {
                let (from, to) = (stage.join(name), dir.join(partial_name(name)));
                match fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::CrossesDevices => {
                        copy_synced(&from, &to).map_err(out_err(&to))?
                    }
                    Err(e) => return Err(out_err(&to)(e)),
                }
            }
            sync_dir(&dir).map_err(out_err(&dir))?;
        }
        for name in &self.staged {
            let fin = dir.join(name);
            fs::rename(dir.join(partial_name(name)), &fin).map_err(out_err(&fin))?;
        }
        if let Err(e) = sync_dir(&dir) {
            self.warnings.push(format!(
                "syncing {} failed ({e}); the outputs may not survive a power loss until the \
                 system syncs",
                dir.display()
            ));
        }
        self.warnings.push(format!(
            "publishing into {} is not atomic: {why}. The outputs were renamed into place one \
             by one; a build killed meanwhile would leave new outputs beside old ones",
            self.target.shown.display()
        ));
        if let Some(stage) = stage {
            self.stage_ours = false;
            if let Err(e) = fs::remove_dir_all(stage) {
                self.warnings.push(format!(
                    "cannot remove the staging folder {} ({e}); the next build removes it",
                    stage.display()
                ));
            }
        }
        Ok(())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            if let Staging::Beside { stage, .. } = &self.staging {
                if self.stage_ours {
                    let _ = fs::remove_dir_all(stage);
                }
            }
            for name in &self.staged {
                let _ = fs::remove_file(self.target.dir.join(partial_name(name)));
            }
        }
        // Still locked here: the lock files close after this.
        if let Some(file) = &self.lock.file {
            let _ = fs::remove_file(file);
        }
        if self.created && !self.committed {
            // Only if still empty.
            let _ = fs::remove_dir(&self.target.dir);
        }
    }
}

/// Creates `.<name>.pimg-stage-<hex>` in `parent`.
fn create_stage(parent: &Path, name: &OsStr) -> io::Result<PathBuf> {
    let pid = std::process::id() as u64;
    let mut last = None;
    for attempt in 0..64u64 {
        let stage = parent.join(tagged(name, STAGE_TAG, (pid << 16) | attempt));
        match fs::create_dir(&stage) {
            Ok(()) => return Ok(stage),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(ErrorKind::AlreadyExists)))
}

/// Removes the staging folders of killed builds into output folder `name` (and, after a kill
/// between the swap and the clean-up, the previous folder), skipping any a live build still
/// locks.
fn remove_stale_stages(parent: &Path, name: &OsStr, warnings: &mut Vec<String>) {
    // The lock file a killed build held while the folder did not exist.
    let side = parent.join(side_lock_name(name));
    if let Ok(f) = File::open(&side) {
        if f.try_lock().is_ok() {
            let _ = fs::remove_file(&side);
        }
    }
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_tagged(&entry.file_name(), name, STAGE_TAG) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let held = File::open(&path).map(|f| {
                    let live = matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock));
                    (f, live)
                });
                match held {
                    Ok((_, true)) => continue,
                    // Removed while this build holds its lock.
                    Ok((_f, false)) => fs::remove_dir_all(&path),
                    Err(_) => fs::remove_dir_all(&path),
                }
            }
            _ => fs::remove_file(&path),
        };
        if let Err(e) = removed {
            warnings.push(format!(
                "cannot remove {}, left by an interrupted build ({e}); remove it by hand",
                path.display()
            ));
        }
    }
}

/// `.<name>.pimg-lock`: the lock file beside output folder `name` while it does not exist.
fn side_lock_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(".pimg-lock");
    s
}

/// Removes `.<file>.pimg-partial` files that killed builds left inside `dir`.
fn remove_partials(dir: &Path, warnings: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && name.as_bytes() != LOCK_FILE.as_bytes() && is_own_leftover(&name) {
            if let Err(e) = fs::remove_file(entry.path()) {
                warnings.push(format!(
                    "cannot remove {}, left by an interrupted build ({e}); remove it by hand",
                    entry.path().display()
                ));
            }
        }
    }
}

/// Copies `from` to a new file `to` and syncs it.
fn copy_synced(from: &Path, to: &Path) -> io::Result<()> {
    let _ = fs::remove_file(to);
    let mut src = File::open(from)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.sync_all()
}

/// Writes one file outside an output folder (the lock file): a temporary file beside `path`,
/// synced, then renamed into place, so `path` holds the old bytes or the new, never a part.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path names no file"))?;
    let tmp = path.with_file_name(format!(".{}{PARTIAL_SUFFIX}", name.to_string_lossy()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_belong_to_one_output_folder() {
        let out = OsStr::new("out");
        let stage = tagged(out, STAGE_TAG, 0x1234);
        assert_eq!(stage, ".out.pimg-stage-0000000000001234");
        assert!(is_tagged(&stage, out, STAGE_TAG));
        // The staging folder of an output folder named `out.pimg-stage-…` is not `out`'s.
        let other = tagged(OsStr::new("out.pimg-stage-0000000000001234"), STAGE_TAG, 1);
        assert!(!is_tagged(&other, out, STAGE_TAG));
        assert!(!is_tagged(
            OsStr::new(".out.pimg-stage-xyz"),
            out,
            STAGE_TAG
        ));
        assert!(!is_tagged(OsStr::new(".out.pimg.lock"), out, STAGE_TAG));
    }

    #[test]
    fn own_leftovers() {
        assert!(is_own_leftover(OsStr::new(".pimg.lock")));
        assert!(is_own_leftover(OsStr::new(".rpi3b.img.pimg-partial")));
        assert!(!is_own_leftover(OsStr::new(".pimg-partial")));
        assert!(!is_own_leftover(OsStr::new("rpi3b.img")));
        assert!(!is_own_leftover(OsStr::new("notes.pimg-partial")));
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn first_build_then_swap_keeps_foreign_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        {
            let mut d = OutputDir::open(&out).unwrap();
            assert!(
                !out.exists(),
                "nothing at the output path before publishing"
            );
            d.write_bytes("a", b"1").unwrap();
            d.commit().unwrap();
            assert!(d.warnings().is_empty(), "{:?}", d.warnings());
        }
        assert_eq!(names(&out), ["a"]);
        assert_eq!(names(tmp.path()), ["out"]);
        fs::write(out.join("notes.txt"), b"mine").unwrap();
        std::os::unix::fs::symlink("a", out.join("link")).unwrap();
        fs::write(out.join(".old.pimg-partial"), b"x").unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o750)).unwrap();
        let before = fs::metadata(&out).unwrap();
        {
            let mut d = OutputDir::open(&out).unwrap();
            d.write_bytes("a", b"2").unwrap();
            d.commit().unwrap();
            assert!(d.warnings().is_empty(), "{:?}", d.warnings());
        }
        let after = fs::metadata(&out).unwrap();
        assert!(!same_file(&before, &after), "the folder was not swapped");
        assert_eq!(after.mode() & 0o7777, 0o750);
        assert_eq!(names(&out), ["a", "link", "notes.txt"]);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"2");
        assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"mine");
        assert_eq!(fs::read_link(out.join("link")).unwrap(), Path::new("a"));
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn failed_build_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        {
            let mut d = OutputDir::open(&out).unwrap();
            d.write_bytes("a", b"1").unwrap();
        }
        assert_eq!(names(tmp.path()), Vec::<String>::new());
    }

    #[test]
    fn stale_staging_folders_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let stale = tmp.path().join(tagged(OsStr::new("out"), STAGE_TAG, 7));
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("rpi3b.img"), b"half").unwrap();
        let foreign = tmp.path().join(".out.pimg-stage-notours");
        fs::create_dir(&foreign).unwrap();
        let mut d = OutputDir::open(&out).unwrap();
        assert!(!stale.exists());
        assert!(foreign.exists());
        d.write_bytes("a", b"1").unwrap();
        d.commit().unwrap();
    }

    #[test]
    fn second_build_is_refused_while_the_first_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = OutputDir::open(&out).unwrap();
        let err = OutputDir::open(&out).err().unwrap();
        assert!(matches!(err, PublishError::Busy { .. }), "{err}");
        assert!(
            err.to_string().contains("in use by another pimg build"),
            "{err}"
        );
        // The staging folder of a live build is not removed as a leftover.
        let mut second_stage = None;
        if let Staging::Beside { stage, .. } = &first.staging {
            let mut warnings = Vec::new();
            remove_stale_stages(tmp.path(), OsStr::new("out"), &mut warnings);
            assert!(stage.is_dir(), "a live build's staging folder was removed");
            second_stage = Some(stage.clone());
        }
        drop(first);
        assert!(
            !out.exists(),
            "the empty folder of a failed first build is left"
        );
        assert!(!second_stage.unwrap().exists());
        drop(OutputDir::open(&out).unwrap());
        assert_eq!(names(tmp.path()), Vec::<String>::new());
    }

    #[test]
    fn a_new_folder_is_locked_beside_it_until_published() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = OutputDir::open(&out).unwrap();
        assert!(!out.exists());
        let err = OutputDir::open(&out).err().unwrap();
        assert!(
            matches!(&err, PublishError::Busy { lock, .. } if lock.ends_with(".out.pimg-lock")),
            "{err}"
        );
        drop(first);
        assert_eq!(names(tmp.path()), Vec::<String>::new());
        // A lock file a killed build left is taken over, and removed again.
        fs::write(tmp.path().join(".out.pimg-lock"), b"").unwrap();
        let mut d = OutputDir::open(&out).unwrap();
        d.write_bytes("a", b"1").unwrap();
        d.commit().unwrap();
        drop(d);
        assert_eq!(names(tmp.path()), ["out"]);
        assert_eq!(names(&out), ["a"]);
    }

    #[test]
    fn lock_follows_the_swap() {
        // A build that locked the folder the first build swapped out locks the new one.
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        let mut first = OutputDir::open(&out).unwrap();
        let early = File::open(&out).unwrap();
        first.write_bytes("a", b"1").unwrap();
        first.commit().unwrap();
        // Published, but still running: the new folder is locked.
        let err = OutputDir::open(&out).err().unwrap();
        assert!(matches!(err, PublishError::Busy { .. }), "{err}");
        drop(first);
        assert!(!still_names(&out, &early).unwrap());
        let mut second = OutputDir::open(&out).unwrap();
        second.write_bytes("a", b"2").unwrap();
        second.commit().unwrap();
        drop(second);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"2");
    }

    #[test]
    fn subfolder_means_file_by_file_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir_all(out.join("keep/deep")).unwrap();
        fs::write(out.join("a"), b"old").unwrap();
        let before = fs::metadata(&out).unwrap();
        let mut d = OutputDir::open(&out).unwrap();
        d.write_bytes("a", b"new").unwrap();
        d.commit().unwrap();
        let w = d.warnings().join("\n");
        assert!(w.contains("not atomic") && w.contains("keep"), "{w}");
        drop(d);
        assert!(same_file(&before, &fs::metadata(&out).unwrap()));
        assert_eq!(names(&out), ["a", "keep"]);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"new");
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn trailing_slash_and_not_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let mut slash = tmp.path().join("out").into_os_string();
        slash.push("/");
        let mut d = OutputDir::open(Path::new(&slash)).unwrap();
        d.write_bytes("a", b"1").unwrap();
        d.commit().unwrap();
        drop(d);
        assert_eq!(names(&tmp.path().join("out")), ["a"]);
        fs::write(tmp.path().join("file"), b"x").unwrap();
        let err = OutputDir::open(&tmp.path().join("file")).err().unwrap();
        assert!(err.to_string().contains("is not a folder"), "{err}");
    }
}
