//! The lock stage: `pimg lock` resolves which inputs the profile selects, hashes them (and
//! checks every `.apk` against its datahash) and writes the lock; `pimg build --locked`
//! recomputes the same record and refuses to build when anything differs, naming each
//! difference, as apko does with its config digest.

use super::error::Error;
use crate::digest::hex;
use crate::inputs::apk_keys::ApkTrust;
use crate::inputs::{apk, Input, InputError, InputKind, InputSet};
use crate::profile::board::LoadedProfile;
use crate::profile::lock::{
    LockError, LockFile, LockRecord, PinnedInput, DEFAULT_LOCK_FILE, LOCK_FORMAT,
};
use crate::profile::overlay::Overlay;
use crate::publish;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Records the profile, the overlay and the given inputs (hashed now; apks checked).
pub fn compute(
    loaded: &LoadedProfile,
    overlay: &Overlay,
    inputs: &[Input],
    trust: &ApkTrust,
) -> Result<LockFile, InputError> {
    let mut locked = Vec::new();
    for i in inputs {
        let mut apk_signature = None;
        if i.kind == InputKind::Apk {
            let info = apk::verify(&i.path)?;
            apk_signature = Some(trust.check(&i.path, &info)?.label().to_string());
        }
        let mut pinned = crate::artifact::pinned(i, i.sha256()?);
        pinned.apk_signature = apk_signature;
        locked.push(pinned);
    }
    locked.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(LockFile {
        format: LOCK_FORMAT.to_string(),
        board: loaded.profile.board.name.clone(),
        profile: super::stable_origin(&loaded.origin),
        profile_sha256: hex(&Sha256::digest(loaded.text.as_bytes())),
        overlay: overlay.name.clone(),
        overlay_sha256: overlay.digest(),
        inputs: locked,
    })
}

/// What `pimg lock` did.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    pub path: String,
    pub sha256: String,
    pub board: String,
    pub inputs: Vec<PinnedInput>,
}

/// What to lock, from the command line.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub from: super::Sources,
    pub lock: PathBuf,
}

/// `pimg lock`: selects the inputs the profile uses, hashes them and writes the lock file.
pub fn lock(req: &LockRequest) -> Result<LockReport, Error> {
    let (loaded, overlay) = req.from.load(None, &super::Recorded::default())?;
    let trust = req.from.trust(Default::default())?;
    let set = super::select::input_set(&req.from.inputs, &loaded)?;
    let selected = super::selected_inputs(&loaded.profile, &set)?;
    let lock = compute(&loaded, &overlay, &selected, &trust)?;
    let text = lock.to_text();
    publish::write_file(&req.lock, text.as_bytes()).map_err(|source| LockError::Write {
        path: req.lock.display().to_string(),
        source,
    })?;
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
    trust: &ApkTrust,
) -> Result<LockRecord, Error> {
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
    let selected = super::selected_inputs(&loaded.profile, set)?;
    let current = compute(loaded, overlay, &selected, trust)?;
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
