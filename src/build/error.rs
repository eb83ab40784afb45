//! The one error type the binary sees; every variant names the file, field or input at fault.

use crate::artifact::disk_image::ImageError;
use crate::artifact::modules::ModuleError;
use crate::artifact::FieldError;
use crate::codec::archive::ArchiveError;
use crate::epoch::EpochError;
use crate::inputs::InputError;
use crate::profile::board::BoardError;
use crate::profile::lock::LockError;
use crate::profile::overlay::OverlayError;
use crate::publish::PublishError;
use crate::tree::TreeError;

/// Anything that stops a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Epoch(#[from] EpochError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("kernel modules from {input}: {source}")]
    Modules { input: String, source: ModuleError },
    #[error("{what}: {source}")]
    Tree { what: String, source: TreeError },
    #[error("{what}: {source}")]
    Archive { what: String, source: ArchiveError },
    #[error("modloop {path}: {source}")]
    Modloop {
        path: String,
        source: crate::codec::squashfs::write::SquashfsError,
    },
    #[error(transparent)]
    Image(ImageError),
    #[error("board profile {profile}: {field}: {message}")]
    Profile {
        profile: String,
        field: String,
        message: String,
    },
    #[error(
        "board profile {profile}: the firmware would not boot this partition (`pimg check` \
         reasons; nothing was written):\n  {problems}"
    )]
    FirmwareCheck { profile: String, problems: String },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(
        "apk index signing key {path}: {reason}; pass abuild's private key \
         (~/.abuild/<name>.rsa, PEM) to --apk-sign-key"
    )]
    ApkSignKey { path: String, reason: String },
    #[error("--sign-key {path}: {reason}")]
    SignKey { path: String, reason: String },
    #[error("signing SHA256SUMS: {0}")]
    Sign(crate::codec::openpgp::OpenPgpError),
    #[error("boot repository index: {0}")]
    ApkIndex(#[from] crate::artifact::apkindex::ApkIndexError),
    #[error(
        "input {input} changed while pimg was reading it (replaced, modified or removed); \
         nothing was published: run the build again once the inputs are settled"
    )]
    InputChanged { input: String },
}

impl Error {
    /// A profile field that is wrong, in the profile named by `origin`.
    pub fn profile(origin: &str, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Profile {
            profile: origin.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An artifact's refusal of a profile value, in the profile named by `origin`.
    pub fn field(origin: &str, e: FieldError) -> Error {
        Error::profile(origin, e.field, e.message)
    }

    /// An image-planning or image-writing error, in the profile named by `origin`.
    pub fn image(origin: &str, e: ImageError) -> Error {
        match e {
            ImageError::Field(f) => Error::field(origin, f),
            other => Error::Image(other),
        }
    }

    /// Exit code: 2 for bad input or configuration the user must fix, 1 for failures to write.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Publish(_) | Error::InputChanged { .. } => 1,
            _ => 2,
        }
    }
}
