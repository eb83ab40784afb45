//! Who signed each `.apk`: a keys folder in `/etc/apk/keys` layout (`<name>.rsa.pub`, PEM
//! public keys) and the check apk-tools makes before it trusts a package. This module lists
//! the keys folder (sorted); it reads nothing else.

use super::apk::ApkInfo;
use crate::codec::apksign::{self, KeyError, PublicKey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest key file accepted (a 16384-bit public key in PEM is about 3 KiB).
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// What is recorded for an apk that no key vouched for (`--allow-untrusted`).
pub const UNVERIFIED: &str = "unverified";

/// The public keys of one keys folder, by file name.
#[derive(Debug, Clone)]
pub struct ApkKeys {
    pub dir: PathBuf,
    keys: BTreeMap<String, PublicKey>,
}

/// How a build treats `.apk` signatures: the keys it trusts, and whether a package no key
/// vouches for is taken anyway (apk's `--allow-untrusted`).
#[derive(Debug, Clone, Default)]
pub struct ApkTrust {
    pub keys: Option<ApkKeys>,
    pub allow_untrusted: bool,
    /// Verdicts an earlier build of the same bytes recorded (by file name), taken as given.
    pub recorded: BTreeMap<String, Verdict>,
}

/// Who vouched for one apk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Its signature verified with this key (`<name>.rsa.pub`).
    Key(String),
    /// Taken without a verified signature (`--allow-untrusted`).
    Unverified,
}

impl Verdict {
    /// The key's name, or `unverified`.
    pub fn label(&self) -> &str {
        match self {
            Verdict::Key(k) => k,
            Verdict::Unverified => UNVERIFIED,
        }
    }
}

/// Why a key folder or a package's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("apk keys folder {}: {source}; pass the folder that holds the <name>.rsa.pub keys (Alpine's /etc/apk/keys)", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("apk key {}: {source}; a keys folder holds PEM public keys ('openssl rsa -in KEY -pubout')", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("apk keys folder {}: {name} is not a key (<name>.rsa.pub); keep only public keys there", dir.display())]
    NotAKey { dir: PathBuf, name: String },
    #[error("key {}: more than the {MAX_KEY_FILE} bytes a key file needs ({size} read)", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("apk keys folder {} holds no keys", dir.display())]
    Empty { dir: PathBuf },
    #[error(
        "{}: BAD signature: {key} does not verify the control segment; the package was changed \
         after it was signed, or signed by another key with the same name: download it again",
        apk.display()
    )]
    BadSignature { apk: PathBuf, key: String },
    #[error(
        "{}: signed with key {key}, which is not in {}; add the signer's public key there, or \
         pass --allow-untrusted to take it unverified",
        apk.display(), dir.display()
    )]
    UnknownKey {
        apk: PathBuf,
        key: String,
        dir: PathBuf,
    },
    #[error(
        "{}: UNTRUSTED: the package is not signed; sign it (abuild-sign) or pass \
         --allow-untrusted to take it unverified",
        apk.display()
    )]
    Unsigned { apk: PathBuf },
    #[error(
        "{}: signed with key {key}, but no keys folder was given; pass --apk-keys DIR (the \
         release's /etc/apk/keys) to check it, or --allow-untrusted to take it unverified",
        apk.display()
    )]
    NoKeys { apk: PathBuf, key: String },
}

/// A key file's text, at most [`MAX_KEY_FILE`] bytes.
pub fn read_key_text(path: &Path) -> Result<String, TrustError> {
    let read = |source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    fs::File::open(path)
        .map_err(read)?
        .take(MAX_KEY_FILE + 1)
        .read_to_end(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(TrustError::TooLarge {
            path: path.to_path_buf(),
            size: text.len() as u64,
        });
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

impl ApkKeys {
    /// Reads every `*.pub` of `dir` as a PEM public key; anything else there is an error.
    // The keys loader lists the keys folder; the names are sorted before use.
    #[allow(clippy::disallowed_methods)]
    pub fn load(dir: &Path) -> Result<Self, TrustError> {
        let folder = |source| TrustError::Folder {
            dir: dir.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for e in fs::read_dir(dir).map_err(folder)? {
            let e = e.map_err(folder)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if !name.ends_with(".pub") {
                return Err(TrustError::NotAKey {
                    dir: dir.to_path_buf(),
                    name,
                });
            }
            names.push(name);
        }
        names.sort();
        let mut keys = BTreeMap::new();
        for name in names {
            let path = dir.join(&name);
            let text = read_key_text(&path)?;
            let key = apksign::public_key_from_pem(&text).map_err(|source| TrustError::Key {
                path: path.clone(),
                source,
            })?;
            keys.insert(name, key);
        }
        if keys.is_empty() {
            return Err(TrustError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(ApkKeys {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    /// The key of that file name.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.get(name)
    }
}

impl ApkTrust {
    /// Checks `info`'s signature over its control segment as apk does: a known key must
    /// verify it; an unknown key, no signature or no keys folder is refused unless untrusted
    /// packages are allowed. A signature a known key rejects is refused either way.
    pub fn check(&self, apk: &Path, info: &ApkInfo) -> Result<Verdict, TrustError> {
        if let Some(v) = apk
            .file_name()
            .and_then(|n| self.recorded.get(n.to_string_lossy().as_ref()))
        {
            return Ok(v.clone());
        }
        let untrusted = |e: TrustError| {
            if self.allow_untrusted {
                Ok(Verdict::Unverified)
            } else {
                Err(e)
            }
        };
        let Some(sig) = &info.signature else {
            return untrusted(TrustError::Unsigned {
                apk: apk.to_path_buf(),
            });
        };
        let Some(keys) = &self.keys else {
            return untrusted(TrustError::NoKeys {
                apk: apk.to_path_buf(),
                key: sig.key_name.clone(),
            });
        };
        let Some(key) = keys.get(&sig.key_name) else {
            return untrusted(TrustError::UnknownKey {
                apk: apk.to_path_buf(),
                key: sig.key_name.clone(),
                dir: keys.dir.clone(),
            });
        };
        let digest: &[u8] = match sig.digest {
            crate::codec::apkindex::SignatureDigest::Sha1 => &info.control_sha1,
            crate::codec::apkindex::SignatureDigest::Sha256 => &info.control_sha256,
        };
        if apksign::verify_digest(key, sig.digest, digest, &sig.bytes) {
            Ok(Verdict::Key(sig.key_name.clone()))
        } else {
            Err(TrustError::BadSignature {
                apk: apk.to_path_buf(),
                key: sig.key_name.clone(),
            })
        }
    }
}
