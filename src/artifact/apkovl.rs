//! `<hostname>.apkovl.tar.gz`: the overlay as Alpine's apkovl, tar with explicit headers in
//! tree order, every mtime the epoch, gzip.

use crate::codec::archive::ArchiveError;
use crate::codec::{gzip::write as gzip, tar::write as tar};
use crate::epoch::SourceDateEpoch;
use crate::profile::overlay::Overlay;

/// The apkovl's file name, `<hostname>.apkovl.tar.gz`.
pub fn name(overlay: &Overlay) -> String {
    format!("{}.apkovl.tar.gz", overlay.hostname)
}

/// The apkovl's bytes.
pub fn write(
    overlay: &Overlay,
    epoch: SourceDateEpoch,
    level: u32,
) -> Result<Vec<u8>, ArchiveError> {
    let gz = gzip::encoder(Vec::new(), level);
    let gz = tar::write_tree(gz, &overlay.tree, epoch.seconds() as u64)?;
    gz.finish().map_err(|source| ArchiveError::Io {
        format: "gzip",
        source,
    })
}
