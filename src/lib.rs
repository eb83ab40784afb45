//! pimg: byte-for-byte reproducible Raspberry Pi install media.
//!
//! Layers, imports pointing down only (`tests/layers.rs` checks it):
//! `prove` (check, inspect, diff, verify, boot) → `build` (the stages of one build) →
//! `artifact` (one room per output) · `firmware` (the config.txt rules) · `publish` (the only
//! writer of output files) → `profile` · `inputs` → `codec` (pure formats, reader and writer
//! side by side) → leaves (`tree`, `epoch`, `ids`, `digest`, `progress`).
//! Nothing reads the clock.

pub mod artifact;
pub mod build;
pub mod codec;
pub mod digest;
pub mod epoch;
pub mod firmware;
pub mod ids;
pub mod inputs;
pub mod profile;
pub mod progress;
pub mod prove;
pub mod publish;
pub mod tree;

pub use build::error::Error;
