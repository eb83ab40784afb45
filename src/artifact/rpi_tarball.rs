//! `<board>.tar.gz`: the boot tree as Alpine ships its rpi media, tar in tree order, gzip.

use crate::codec::archive::ArchiveError;
use crate::codec::{gzip::write as gzip, tar::write as tar};
use crate::epoch::SourceDateEpoch;
use crate::tree::Tree;
use std::io::Write;

/// Writes the tarball to `w` as it is made (the tarball is as large as the boot tree, so it
/// is never held in memory); returns `w`.
pub fn write<W: Write>(
    w: W,
    boot: &Tree,
    epoch: SourceDateEpoch,
    level: u32,
) -> Result<W, ArchiveError> {
    let gz = gzip::encoder(w, level);
    let gz = tar::write_tree(gz, boot, epoch.seconds() as u64)?;
    gz.finish().map_err(|source| ArchiveError::Io {
        format: "gzip",
        source,
    })
}
