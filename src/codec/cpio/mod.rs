//! cpio: reader and writer.

pub mod read;
pub mod write;
