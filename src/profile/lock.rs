//! `pimg.lock`: the exact inputs, board profile and overlay of a build, as sorted, stable text.
//!
//! `pimg lock` resolves which inputs the profile selects, hashes them (and checks every `.apk`
//! against its datahash) and writes the lock; `pimg build --locked` recomputes the same record
//! and refuses to build when anything differs, naming each difference, as apko does with its
//! config digest. Besides `output`, this is the only module that writes a file (the lock,
//! through a temporary file and a rename).

use crate::build::error::Error;
use crate::digest::hex;
use crate::inputs::{apk, Input, InputError, InputKind, InputSet};
use crate::profile::board::{self, LoadedProfile};
use crate::profile::overlay::{self, Overlay};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first line of the format; bumped when the meaning of a field changes.
pub const LOCK_FORMAT: &str = "pimg-lock/1";
/// Where `pimg lock` writes and `pimg build --locked` reads by default (the current folder).
pub const DEFAULT_LOCK_FILE: &str = "pimg.lock";

/// The parsed lock file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub format: String,
    pub board: String,
    /// `boards/<name>.toml` for a shipped profile, `file <name>` for a profile file.
    pub profile: String,
    pub profile_sha256: String,
    pub overlay: String,
    /// The overlay digest recorded in the buildinfo (content, modes, owners).
    pub overlay_sha256: String,
    /// Sorted by name.
    #[serde(default, rename = "input")]
    pub inputs: Vec<LockedInput>,
}

/// One input as locked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockedInput {
    pub name: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// The file name in the inputs folder when locked (informational: content is what counts).
    pub file: String,
    pub sha256: String,
}

/// What the buildinfo records about the lock a build was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockRecord {
    /// The lock's file name (no folder: the buildinfo must not depend on where it lived).
    pub file: String,
    /// SHA-256 of the lock file's bytes.
    pub sha256: String,
}

/// Why a lock could not be written, read or matched.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock file {path}: {source}; create it with `pimg lock --board BOARD --inputs DIR`")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("lock file {path}: {message}; recreate it with `pimg lock`")]
    Parse { path: String, message: String },
    #[error("lock file {path}: format '{found}' is not {LOCK_FORMAT}; recreate it with this pimg's `pimg lock`")]
    Format { path: String, found: String },
    #[error(
        "lock file {path} does not match this build:\n  {}\nif the change is intended, run \
         `pimg lock` again and review the difference",
        differences.join("\n  ")
    )]
    Differs {
        path: String,
        differences: Vec<String>,
    },
    #[error("writing lock file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl LockFile {
    /// Records the profile, the overlay and the given inputs (hashed now; apks checked).
    pub fn compute(
        loaded: &LoadedProfile,
        overlay: &Overlay,
        inputs: &[Input],
    ) -> Result<Self, InputError> {
        let mut locked = Vec::new();
        for i in inputs {
            if i.kind == InputKind::Apk {
                apk::verify(&i.path)?;
            }
            locked.push(LockedInput {
                name: i.name.clone(),
                version: i.version.clone(),
                arch: i.arch.clone(),
                file: i.file.clone(),
                sha256: i.sha256()?,
            });
        }
        locked.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(LockFile {
            format: LOCK_FORMAT.to_string(),
            board: loaded.profile.board.name.clone(),
            profile: crate::build::stable_origin(&loaded.origin),
            profile_sha256: hex(&Sha256::digest(loaded.text.as_bytes())),
            overlay: overlay.name.clone(),
            overlay_sha256: overlay.digest(),
            inputs: locked,
        })
    }

    /// The lock as text: TOML, fixed key order, inputs sorted by name, no timestamps, no
    /// absolute paths, newline-terminated.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        t.push_str("# pimg.lock: the exact inputs, board profile and overlay of a build.\n");
        t.push_str(
            "# Written by `pimg lock`; `pimg build --locked` refuses to build from anything else.\n",
        );
        let kv = |t: &mut String, k: &str, v: &str| {
            t.push_str(k);
            t.push_str(" = ");
            t.push_str(&toml_string(v));
            t.push('\n');
        };
        kv(&mut t, "format", &self.format);
        kv(&mut t, "board", &self.board);
        kv(&mut t, "profile", &self.profile);
        kv(&mut t, "profile_sha256", &self.profile_sha256);
        kv(&mut t, "overlay", &self.overlay);
        kv(&mut t, "overlay_sha256", &self.overlay_sha256);
        let mut inputs: Vec<&LockedInput> = self.inputs.iter().collect();
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        for i in inputs {
            t.push_str("\n[[input]]\n");
            kv(&mut t, "name", &i.name);
            if let Some(v) = &i.version {
                kv(&mut t, "version", v);
            }
            if let Some(a) = &i.arch {
                kv(&mut t, "arch", a);
            }
            kv(&mut t, "file", &i.file);
            kv(&mut t, "sha256", &i.sha256);
        }
        t
    }

    /// Parses lock text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LockError> {
        let lock: LockFile = toml::from_str(text).map_err(|e| LockError::Parse {
            path: origin.to_string(),
            message: e.message().trim().to_string(),
        })?;
        if lock.format != LOCK_FORMAT {
            return Err(LockError::Format {
                path: origin.to_string(),
                found: lock.format,
            });
        }
        Ok(lock)
    }

    /// Every way `current` (this build) differs from `self` (the lock), one line each.
    pub fn differences(&self, current: &LockFile) -> Vec<String> {
        let mut d = Vec::new();
        if self.profile_sha256 != current.profile_sha256 {
            d.push(format!(
                "board profile: the lock has {} with sha256 {}, this build uses {} with sha256 {}",
                self.profile, self.profile_sha256, current.profile, current.profile_sha256
            ));
        }
        if self.overlay_sha256 != current.overlay_sha256 {
            d.push(format!(
                "overlay: the lock has '{}' with digest {}, this build uses '{}' with digest {}",
                self.overlay, self.overlay_sha256, current.overlay, current.overlay_sha256
            ));
        }
        for want in &self.inputs {
            let Some(have) = current.inputs.iter().find(|i| i.name == want.name) else {
                d.push(format!(
                    "input {}: in the lock ({}) but not used by this build",
                    want.name, want.file
                ));
                continue;
            };
            let field = |what: &str, a: &Option<String>, b: &Option<String>| {
                (a != b).then(|| {
                    format!(
                        "input {}: {what} {} in the lock, {} in {}",
                        want.name,
                        a.as_deref().unwrap_or("(none)"),
                        b.as_deref().unwrap_or("(none)"),
                        have.file
                    )
                })
            };
            d.extend(field("version", &want.version, &have.version));
            d.extend(field("arch", &want.arch, &have.arch));
            if want.sha256 != have.sha256 {
                d.push(format!(
                    "input {}: sha256 {} in the lock, but {} has sha256 {} (the file was replaced)",
                    want.name, want.sha256, have.file, have.sha256
                ));
            }
        }
        for have in &current.inputs {
            if !self.inputs.iter().any(|i| i.name == have.name) {
                d.push(format!(
                    "input {}: used by this build ({}) but not in the lock",
                    have.name, have.file
                ));
            }
        }
        d
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What `pimg lock` did.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    pub path: String,
    pub sha256: String,
    pub board: String,
    pub inputs: Vec<LockedInput>,
}

/// What to lock, from the command line.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub board: String,
    pub inputs: PathBuf,
    pub overlay: Option<String>,
    pub lock: PathBuf,
}

/// `pimg lock`: selects the inputs the profile uses, hashes them and writes the lock file.
pub fn lock(req: &LockRequest) -> Result<LockReport, Error> {
    let loaded = board::load(&req.board)?;
    let overlay = overlay::load(
        req.overlay
            .as_deref()
            .unwrap_or(&loaded.profile.overlay.default),
    )?;
    let set = InputSet::discover(&req.inputs)?.for_board(&loaded.profile.board)?;
    let selected = crate::build::selected_inputs(&loaded.profile, &set)?;
    let lock = LockFile::compute(&loaded, &overlay, &selected)?;
    let text = lock.to_text();
    write_atomic(&req.lock, text.as_bytes()).map_err(InputError::from)?;
    Ok(LockReport {
        path: req.lock.display().to_string(),
        sha256: hex(&Sha256::digest(text.as_bytes())),
        board: lock.board.clone(),
        inputs: lock.inputs,
    })
}

/// `pimg build --locked`: checks this build's profile, overlay and inputs against the lock.
pub fn check(
    path: &Path,
    loaded: &LoadedProfile,
    overlay: &Overlay,
    set: &InputSet,
) -> Result<LockRecord, InputError> {
    let shown = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| LockError::Read {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| LockError::Parse {
        path: shown.clone(),
        message: "not UTF-8 text".into(),
    })?;
    let want = LockFile::parse(&text, &shown)?;
    let selected = crate::build::selected_inputs(&loaded.profile, set)?;
    let current = LockFile::compute(loaded, overlay, &selected)?;
    let differences = want.differences(&current);
    if !differences.is_empty() {
        return Err(LockError::Differs {
            path: shown,
            differences,
        }
        .into());
    }
    Ok(LockRecord {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| DEFAULT_LOCK_FILE.to_string()),
        sha256: hex(&Sha256::digest(text.as_bytes())),
    })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LockError> {
    let shown = path.display().to_string();
    let err = |source| LockError::Write {
        path: shown.clone(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| err(std::io::Error::other("the path names no file")))?;
    let tmp = path.with_file_name(format!(".{}.pimg-partial", name.to_string_lossy()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LockFile {
        LockFile {
            format: LOCK_FORMAT.into(),
            board: "b".into(),
            profile: "boards/b.toml".into(),
            profile_sha256: "1".repeat(64),
            overlay: "default".into(),
            overlay_sha256: "2".repeat(64),
            inputs: vec![
                LockedInput {
                    name: "z\"q\\".into(),
                    version: None,
                    arch: None,
                    file: "z dir".into(),
                    sha256: "3".repeat(64),
                },
                LockedInput {
                    name: "a".into(),
                    version: Some("1:2.0-1".into()),
                    arch: Some("arm64".into()),
                    file: "a_1%3a2.0-1_arm64.deb".into(),
                    sha256: "4".repeat(64),
                },
            ],
        }
    }

    #[test]
    fn text_round_trips_sorted() {
        let l = sample();
        let text = l.to_text();
        assert!(text.ends_with('\n'));
        let a = text.find("name = \"a\"").unwrap();
        let z = text.find("name = \"z\\\"q\\\\\"").unwrap();
        assert!(a < z, "{text}");
        let mut back = LockFile::parse(&text, "x").unwrap();
        let mut want = l.clone();
        want.inputs.sort_by(|a, b| a.name.cmp(&b.name));
        back.inputs.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, want);
        assert_eq!(back.to_text(), text);
    }

    #[test]
    fn differences_name_what_changed() {
        let l = sample();
        assert!(l.differences(&l).is_empty());
        let mut c = l.clone();
        c.inputs[1].sha256 = "5".repeat(64);
        c.inputs[1].file = "other.deb".into();
        c.inputs.remove(0);
        c.overlay_sha256 = "6".repeat(64);
        let d = l.differences(&c).join("\n");
        assert!(
            d.contains("input a: sha256") && d.contains("other.deb"),
            "{d}"
        );
        assert!(d.contains("but not used by this build"), "{d}");
        assert!(d.contains("overlay:"), "{d}");
        let err = LockFile::parse("format = \"pimg-lock/0\"\n", "x").unwrap_err();
        assert!(matches!(
            err,
            LockError::Parse { .. } | LockError::Format { .. }
        ));
        let text = sample()
            .to_text()
            .replace("format = \"pimg-lock/1\"", "format = \"pimg-lock/9\"");
        assert!(matches!(
            LockFile::parse(&text, "x"),
            Err(LockError::Format { .. })
        ));
        let text = sample().to_text() + "extra = 1\n";
        assert!(matches!(
            LockFile::parse(&text, "x"),
            Err(LockError::Parse { .. })
        ));
    }
}
