//! pimg: byte-for-byte reproducible Raspberry Pi install media.
//!
//! Data flows one way: board profile + overlay + inputs are resolved into sorted trees
//! (`tree`), then pure writers turn trees into bytes (`archive`, `fat`, `disk`), and the
//! artifact modules (`initramfs`, `overlay`, `media`) decide names, modes and owners.
//! Only `inputs`, `overlay` and `output` touch the file system; nothing reads the clock.

pub mod archive;
pub mod board;
pub mod boot;
pub mod disk;
pub mod embedded;
pub mod epoch;
pub mod error;
pub mod fat;
pub mod fdt;
pub mod fwcheck;
pub mod ids;
pub mod initramfs;
pub mod inputs;
pub mod lock;
pub mod media;
pub mod modules;
pub mod output;
pub mod overlay;
pub mod progress;
pub mod read;
pub mod sbom;
pub mod tree;

pub use error::Error;
pub mod cli_verify;
pub mod diff;
pub mod inspect;
pub mod verify;
