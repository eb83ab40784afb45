//! One room per output: each decides names, modes, owners and the epoch of its bytes. Those
//! that depend on the profile have a `plan` step that rejects a bad profile before any input
//! is read, and a write step that only encodes.

pub mod apkindex;
pub mod apkovl;
pub mod boot_tree;
pub mod buildinfo;
pub mod disk_image;
pub mod initramfs;
pub mod modloop;
pub mod modules;
pub mod provenance;
pub mod rpi_tarball;
pub mod sbom;
pub mod sums;

/// How the lock, the buildinfo and the SBOM record an input whose content hashes to `sha256`.
pub fn pinned(i: &crate::inputs::Input, sha256: String) -> crate::profile::lock::PinnedInput {
    crate::profile::lock::PinnedInput {
        name: i.name.clone(),
        version: i.version.clone(),
        arch: i.arch.clone(),
        file: i.file.clone(),
        sha256,
        apk_signature: None,
    }
}

/// A profile value an artifact cannot be made from; the build names the profile file.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// The error for `field`, saying what is wrong.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}
