//! `pimg.lock`: the exact inputs, board profile and overlay of a build, as sorted, stable text.
//!
//! This is the format: parse, render, compare. `build::lock` computes a lock from a build's
//! selection, writes it (`pimg lock`) and checks a build against it (`pimg build --locked`).

use serde::{Deserialize, Serialize};

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
    pub inputs: Vec<PinnedInput>,
}

/// An input pinned by its content, as the lock, the buildinfo and the SBOM record it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedInput {
    pub name: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// The file name in the inputs folder when locked (informational: content is what counts).
    pub file: String,
    pub sha256: String,
    /// For an `.apk`: the key that verified its signature, or `unverified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apk_signature: Option<String>,
}

/// What the buildinfo records about the lock a build was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        let mut inputs: Vec<&PinnedInput> = self.inputs.iter().collect();
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
            if let Some(s) = &i.apk_signature {
                kv(&mut t, "apk_signature", s);
            }
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
            d.extend(field(
                "apk signature",
                &want.apk_signature,
                &have.apk_signature,
            ));
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
                PinnedInput {
                    name: "z\"q\\".into(),
                    version: None,
                    arch: None,
                    file: "z dir".into(),
                    sha256: "3".repeat(64),
                    apk_signature: None,
                },
                PinnedInput {
                    name: "a".into(),
                    version: Some("1:2.0-1".into()),
                    arch: Some("arm64".into()),
                    file: "a_1%3a2.0-1_arm64.deb".into(),
                    sha256: "4".repeat(64),
                    apk_signature: Some("k.rsa.pub".into()),
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
