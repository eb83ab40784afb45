//! What a build is asked for: the board profile, the overlay, the lock file and the profiles
//! and overlays built into the binary.

pub mod board;
pub mod embedded;
pub mod lock;
pub mod models;
pub mod overlay;
