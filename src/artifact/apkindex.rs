//! `apks/<arch>/APKINDEX.tar.gz`: the boot repository's index, so `apk --repository
//! <media>/apks add PKG` finds the packages `[boot.apks]` copies there. Every member is
//! stamped with the epoch; signed with the build's key when one is given.

use super::FieldError;
use crate::codec::apkindex::{self, IndexError, IndexRecord};
use crate::codec::apksign::{self, KeyError, PrivateKey};
use crate::epoch::SourceDateEpoch;
use crate::profile::board::BoardProfile;
use crate::tree::TreePath;

/// The index's file name inside `apks/<arch>/`.
pub const FILE_NAME: &str = "APKINDEX.tar.gz";

/// Where the index goes and what its `DESCRIPTION` says; none without `[boot.apks]`.
#[derive(Debug, Clone)]
pub struct ApkIndexPlan {
    pub path: TreePath,
    pub description: String,
}

/// A key that signs the index, and the name apk looks its public half up by.
#[derive(Debug, Clone)]
pub struct IndexSigner {
    pub key: PrivateKey,
    /// `<private key file name>.pub`, abuild's convention (`foo.rsa` signs as `foo.rsa.pub`).
    pub key_name: String,
}

/// Why the index could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ApkIndexError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("signing the index: {0}")]
    Sign(#[from] KeyError),
}

/// The index's place and description from the profile.
pub fn plan(p: &BoardProfile) -> Result<Option<ApkIndexPlan>, FieldError> {
    let Some(repo) = &p.boot.apks else {
        return Ok(None);
    };
    let path = TreePath::new(&format!("apks/{}/{FILE_NAME}", repo.arch))
        .map_err(|e| FieldError::new("boot.apks.arch", e.to_string()))?;
    let description = match &p.boot.alpine_release {
        Some(r) => format!("{} boot repository (Alpine {})", p.board.name, r.trim()),
        None => format!("{} boot repository", p.board.name),
    };
    Ok(Some(ApkIndexPlan { path, description }))
}

/// The index's bytes: gzip(tar(DESCRIPTION, APKINDEX)), with the signature segment in front
/// when `signer` is given.
pub fn write(
    plan: &ApkIndexPlan,
    records: &[IndexRecord],
    epoch: SourceDateEpoch,
    level: u32,
    signer: Option<&IndexSigner>,
) -> Result<Vec<u8>, ApkIndexError> {
    let mtime = epoch.seconds().max(0) as u64;
    let index = apkindex::write_index(records, &plan.description, mtime, level)?;
    match signer {
        Some(s) => Ok(apksign::signed_index(
            &index,
            &s.key,
            &s.key_name,
            mtime,
            level,
        )?),
        None => Ok(index),
    }
}
