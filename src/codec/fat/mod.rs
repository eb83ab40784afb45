//! FAT12/16/32: reader and writer.

pub mod layout;
pub mod read;
pub mod write;
