//! Inputs: Debian packages, Alpine packages, tarballs and plain directories in one inputs
//! folder, each named, hashed and read member by member. This module, `apk_keys` and
//! `overlay` are the only ones that list directories; every listing is sorted before use.

pub mod apk;
pub mod apk_keys;
pub mod cache;
pub mod deb;
pub mod tarball;

use crate::digest::hex;
use crate::tree::TreePath;
use apk::ApkError;
use deb::{DebError, Member, MemberKind};
use globset::{Glob, GlobMatcher};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use tarball::TarballError;

/// What kind of input a file in the inputs folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Deb,
    Dir,
    /// An Alpine package (apk v2), checked against its `datahash` before use.
    Apk,
    /// A `.tar`, `.tar.gz` or `.tgz` archive.
    Tarball,
}

/// One input: a package, a tarball or a directory in the inputs folder.
#[derive(Debug, Clone)]
pub struct Input {
    /// Package name for a `.deb` or `.apk`, the file name without its extension for a
    /// tarball, the directory name for a directory.
    pub name: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// The file or directory name inside the inputs folder.
    pub file: String,
    pub path: PathBuf,
    pub kind: InputKind,
}

/// Why the inputs could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("inputs folder {path}: {source}; run qemu/setup.sh to fetch the real inputs or pass --inputs DIR")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a .deb or .apk package, a .tar/.tar.gz/.tgz archive or a directory; move it out of the inputs folder")]
    Unknown { path: String },
    #[error("{path}: file names in the inputs folder must be UTF-8")]
    NotUtf8 { path: String },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Apk(#[from] ApkError),
    #[error(transparent)]
    Trust(#[from] apk_keys::TrustError),
    #[error(transparent)]
    Tarball(#[from] TarballError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("{field}: no input matches '{pattern}' in {dir} (inputs: {available}); run qemu/setup.sh or add it")]
    NoMatch {
        field: String,
        pattern: String,
        dir: String,
        available: String,
    },
    #[error("{field}: '{pattern}' matches several inputs ({matches}); keep one or make the pattern exact")]
    Ambiguous {
        field: String,
        pattern: String,
        matches: String,
    },
    #[error("{field}: '{pattern}' is not a valid glob: {message}")]
    BadGlob {
        field: String,
        pattern: String,
        message: String,
    },
    #[error("{input}: cannot read {path}: {source}")]
    Read {
        input: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{input}: member {path}: {message}")]
    Member {
        input: String,
        path: String,
        message: String,
    },
    #[error("inputs {a} and {b} both have the name '{name}'; keep one of them")]
    DuplicateName { name: String, a: String, b: String },
}

/// Every input found in an inputs folder, sorted by name.
#[derive(Debug, Clone)]
pub struct InputSet {
    pub dir: PathBuf,
    pub inputs: Vec<Input>,
}

impl InputSet {
    /// Lists the folder (sorted), reads each `.deb`'s control file and each `.apk`'s
    /// `.PKGINFO`. Dot files are ignored.
    // The inputs loader lists the inputs folder; the names are sorted before use.
    #[allow(clippy::disallowed_methods)]
    pub fn discover(dir: &Path) -> Result<Self, InputError> {
        let folder_err = |source| InputError::Folder {
            path: dir.display().to_string(),
            source,
        };
        let mut names = Vec::new();
        for e in fs::read_dir(dir).map_err(folder_err)? {
            let e = e.map_err(folder_err)?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|n| InputError::NotUtf8 {
                    path: dir.join(n).display().to_string(),
                })?;
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        let mut inputs = Vec::new();
        for file in names {
            let path = dir.join(&file);
            let meta = fs::metadata(&path).map_err(|source| InputError::Read {
                input: file.clone(),
                path: path.display().to_string(),
                source,
            })?;
            let found = |name: String, version, arch, kind| Input {
                name,
                version,
                arch,
                file: file.clone(),
                path: path.clone(),
                kind,
            };
            let input = if meta.is_dir() {
                found(file.clone(), None, None, InputKind::Dir)
            } else if file.ends_with(".deb") && meta.is_file() {
                let c = deb::read_control(&path)?;
                let (version, arch) = (Some(c.version), Some(c.architecture));
                found(c.package, version, arch, InputKind::Deb)
            } else if file.ends_with(".apk") && meta.is_file() {
                let info = apk::read_info(&path)?;
                let (version, arch) = (Some(info.version().into()), Some(info.arch().into()));
                found(info.name().into(), version, arch, InputKind::Apk)
            } else if let (Some(stem), true) = (tarball::stem(&file), meta.is_file()) {
                found(stem.to_string(), None, None, InputKind::Tarball)
            } else {
                return Err(InputError::Unknown {
                    path: path.display().to_string(),
                });
            };
            inputs.push(input);
        }
        inputs.sort_by(|a, b| a.name.cmp(&b.name).then(a.file.cmp(&b.file)));
        // One folder may hold the same package for several architectures (busybox-static
        // for arm64 and armel); a board takes only its own, see `for_arches`.
        let set = InputSet {
            dir: dir.to_path_buf(),
            inputs,
        };
        set.check_unique(|a, b| a.arch == b.arch)?;
        Ok(set)
    }

    /// The inputs a board can use: packages built for one of its Debian (`.deb`) or Alpine
    /// (`.apk`) architectures, architecture-independent ones (`all`, `noarch`), directories
    /// and tarballs. Two usable inputs with one name are an error.
    pub fn for_arches(&self, debian: &[&str], alpine: &[&str]) -> Result<InputSet, InputError> {
        let runs = |i: &Input| match i.arch.as_deref() {
            None | Some("all" | "noarch") => true,
            Some(a) => match i.kind {
                InputKind::Deb => debian.contains(&a),
                InputKind::Apk => alpine.contains(&a),
                InputKind::Dir | InputKind::Tarball => true,
            },
        };
        let set = InputSet {
            dir: self.dir.clone(),
            inputs: self.inputs.iter().filter(|i| runs(i)).cloned().collect(),
        };
        set.check_unique(|_, _| true)?;
        Ok(set)
    }

    fn check_unique(&self, same: impl Fn(&Input, &Input) -> bool) -> Result<(), InputError> {
        for (n, a) in self.inputs.iter().enumerate() {
            for b in self.inputs[n + 1..].iter().take_while(|b| b.name == a.name) {
                if same(a, b) {
                    return Err(InputError::DuplicateName {
                        name: a.name.clone(),
                        a: a.file.clone(),
                        b: b.file.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The one input whose name matches `pattern` (a glob); `field` names the profile key.
    pub fn select(&self, pattern: &str, field: &str) -> Result<&Input, InputError> {
        let m = matcher(pattern, field)?;
        let found: Vec<&Input> = self.inputs.iter().filter(|i| m.is_match(&i.name)).collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(InputError::NoMatch {
                field: field.to_string(),
                pattern: pattern.to_string(),
                dir: self.dir.display().to_string(),
                available: if self.inputs.is_empty() {
                    "none".into()
                } else {
                    self.inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
            many => Err(InputError::Ambiguous {
                field: field.to_string(),
                pattern: pattern.to_string(),
                matches: many
                    .iter()
                    .map(|i| i.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// The digest of a directory input: its sorted member digests (see `Input::member_digests`).
pub fn dir_digest(members: &std::collections::BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(b"pimg dir v2\0");
    for (path, digest) in members {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(digest.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// A glob where `*` stays within one path component.
pub fn matcher(pattern: &str, field: &str) -> Result<GlobMatcher, InputError> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|e| InputError::BadGlob {
            field: field.to_string(),
            pattern: pattern.to_string(),
            message: e.kind().to_string(),
        })
}

impl Input {
    /// SHA-256 of the package or tarball file, or a digest of a directory's sorted content.
    pub fn sha256(&self) -> Result<String, InputError> {
        let read_err = |p: &Path, source| InputError::Read {
            input: self.name.clone(),
            path: p.display().to_string(),
            source,
        };
        match self.kind {
            InputKind::Deb | InputKind::Apk | InputKind::Tarball => {
                let mut f = fs::File::open(&self.path).map_err(|e| read_err(&self.path, e))?;
                let mut h = Sha256::new();
                std::io::copy(&mut f, &mut h).map_err(|e| read_err(&self.path, e))?;
                Ok(hex(&h.finalize()))
            }
            InputKind::Dir => Ok(dir_digest(&self.member_digests()?)),
        }
    }

    /// For a directory input: every member's path with a digest of its content (files),
    /// target (symlinks) or kind, so a change can be traced to the file that changed.
    pub fn member_digests(&self) -> Result<std::collections::BTreeMap<String, String>, InputError> {
        let mut out = std::collections::BTreeMap::new();
        self.scan(&mut |m, r| {
            let digest = match &m.kind {
                MemberKind::File => {
                    let mut fh = Sha256::new();
                    std::io::copy(r, &mut fh).map_err(|e| InputError::Read {
                        input: self.name.clone(),
                        path: m.path.to_string(),
                        source: e,
                    })?;
                    format!("{:o} {}", m.mode, hex(&fh.finalize()))
                }
                MemberKind::Symlink(t) => format!("-> {t}"),
                other => format!("{other:?}"),
            };
            out.insert(m.path.to_string(), digest);
            Ok(())
        })?;
        Ok(out)
    }

    /// Visits every member in a fixed order (archive order for a package or tarball, sorted
    /// for a directory); an `.apk`'s data is checked against its `datahash` first. Directory members report mode 0755/0644 from the owner-execute bit and
    /// mtime 0: a checkout's modes and times say nothing about the content.
    pub fn scan(
        &self,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        match self.kind {
            InputKind::Deb => {
                let mut failure = None;
                let res = deb::scan_data(&self.path, &mut |m, r| {
                    visit(m, r).map_err(|e| {
                        let msg = e.to_string();
                        failure = Some(e);
                        DebError::Aborted(msg)
                    })
                });
                match (res, failure) {
                    (_, Some(e)) => Err(e),
                    (Err(e), None) => Err(e.into()),
                    (Ok(()), None) => Ok(()),
                }
            }
            InputKind::Apk => apk::scan_data::<InputError>(&self.path, visit),
            InputKind::Tarball => tarball::scan::<InputError>(&self.path, visit),
            InputKind::Dir => self.scan_dir(&self.path.clone(), visit),
        }
    }

    fn scan_dir(
        &self,
        dir: &Path,
        visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |p: &Path, source| InputError::Read {
            input: self.name.clone(),
            path: p.display().to_string(),
            source,
        };
        for child in crate::tree::sorted_children(dir).map_err(|e| read_err(dir, e))? {
            let rel = child
                .strip_prefix(&self.path)
                .expect("child of input")
                .to_str()
                .ok_or_else(|| InputError::NotUtf8 {
                    path: child.display().to_string(),
                })?;
            let path = TreePath::new(rel).map_err(|e| InputError::Member {
                input: self.name.clone(),
                path: rel.to_string(),
                message: e.to_string(),
            })?;
            let meta = fs::symlink_metadata(&child).map_err(|e| read_err(&child, e))?;
            let ft = meta.file_type();
            let exec = meta.permissions().mode() & 0o100 != 0;
            if ft.is_dir() {
                let m = Member {
                    path,
                    kind: MemberKind::Dir,
                    mode: 0o755,
                    mtime: 0,
                    size: 0,
                };
                visit(&m, &mut std::io::empty())?;
                self.scan_dir(&child, visit)?;
            } else if ft.is_symlink() {
                let t = fs::read_link(&child).map_err(|e| read_err(&child, e))?;
                let t = t.to_string_lossy().into_owned();
                let m = Member {
                    path,
                    kind: MemberKind::Symlink(t),
                    mode: 0o777,
                    mtime: 0,
                    size: 0,
                };
                visit(&m, &mut std::io::empty())?;
            } else if ft.is_file() {
                let mut f = fs::File::open(&child).map_err(|e| read_err(&child, e))?;
                let mode = if exec { 0o755 } else { 0o644 };
                let m = Member {
                    path,
                    kind: MemberKind::File,
                    mode,
                    mtime: 0,
                    size: meta.len(),
                };
                visit(&m, &mut f)?;
            } else {
                return Err(InputError::Member {
                    input: self.name.clone(),
                    path: rel.to_string(),
                    message:
                        "is a device, FIFO or socket; inputs hold files, directories and symlinks"
                            .into(),
                });
            }
        }
        Ok(())
    }

    /// A short label for messages and the buildinfo: `name version` or the file name.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {}", self.name, v),
            None => self.file.clone(),
        }
    }
}
