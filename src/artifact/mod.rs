//! One room per output: each decides names, modes, owners and the epoch of its bytes.

pub mod initramfs;
pub mod modules;
pub mod sbom;
