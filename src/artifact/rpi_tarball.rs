//! `<board>.tar.gz`: the boot tree as Alpine ships its rpi media, tar in tree order, gzip.

use crate::codec::archive::ArchiveError;
use crate::codec::{gzip::write as gzip, tar::write as tar};
use crate::epoch::SourceDateEpoch;
use crate::tree::Tree;

/// The tarball's bytes.
pub fn write(boot: &Tree, epoch: SourceDateEpoch, level: u32) -> Result<Vec<u8>, ArchiveError> {
    let gz = gzip::encoder(Vec::new(), level);
    let gz = tar::write_tree(gz, boot, epoch.seconds() as u64)?;
    gz.finish().map_err(|source| ArchiveError::Io {
        format: "gzip",
        source,
    })
}
