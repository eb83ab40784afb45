//! The only place that writes output files. Each output is written to a temporary file in
//! the output folder, synced, and renamed into place only when every output is complete;
//! a lock on the folder keeps two builds from interleaving.

use crate::error::Error;
use crate::overlay::hex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file kept in an output folder while a build writes to it.
pub const LOCK_FILE: &str = ".pimg.lock";

/// One published output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

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

/// An output folder being written.
pub struct OutputDir {
    dir: PathBuf,
    _lock: File,
    staged: Vec<(PathBuf, PathBuf)>,
    files: Vec<OutputFile>,
    committed: bool,
}

fn out_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.display().to_string(),
        source,
    }
}

impl OutputDir {
    /// Creates the folder if needed and takes its lock (failing at once if another build holds it).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(out_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(out_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Busy {
                    path: dir.display().to_string(),
                    lock: lock_path.display().to_string(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(out_err(&lock_path)(e)),
        }
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            staged: Vec::new(),
            files: Vec::new(),
            committed: false,
        })
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.pimg-partial"))
    }

    /// Stages `name` by handing a fresh, empty temporary file to `write`, then hashes it.
    pub fn write_with<T>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut File) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tmp = self.temp_path(name);
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(out_err(&tmp))?;
        self.staged.push((tmp.clone(), self.dir.join(name)));
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

    /// Stages `name` with the given bytes.
    pub fn write_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let tmp = self.temp_path(name);
        self.write_with(name, |f| f.write_all(bytes).map_err(out_err(&tmp)))
    }

    /// The outputs staged so far, in the order written.
    pub fn files(&self) -> &[OutputFile] {
        &self.files
    }

    /// Renames every staged file into place and syncs the folder; returns its path.
    pub fn commit(&mut self) -> Result<String, Error> {
        for (tmp, fin) in &self.staged {
            fs::rename(tmp, fin).map_err(out_err(fin))?;
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.committed = true;
        Ok(self.dir.display().to_string())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.staged {
                let _ = fs::remove_file(tmp);
            }
        }
    }
}
