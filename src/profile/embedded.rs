//! Board profiles and overlays shipped in the repository, compiled into the binary.

/// What an embedded overlay entry is.
#[derive(Debug, Clone, Copy)]
pub enum EmbeddedKind {
    /// File bytes and whether the owner-execute bit was set in the repository.
    File(&'static [u8], bool),
    Dir,
    Symlink(&'static str),
}

/// One overlay entry, path relative to the overlay root.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedEntry {
    pub path: &'static str,
    pub kind: EmbeddedKind,
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
