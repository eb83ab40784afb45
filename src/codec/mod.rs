//! Pure formats: the reader and the writer of each format side by side. No clock, no
//! filesystem, no policy: writers encode what the caller decided, readers treat every byte as
//! hostile.

/// Sector size of every partition table and volume pimg writes and reads (the only size
/// lamfat, the Pi and QEMU agree on).
pub const SECTOR_SIZE: u64 = 512;

pub mod apkindex;
pub mod apksign;
pub mod archive;
pub mod blocks;
pub mod bmap;
pub mod cpio;
pub mod deflate;
pub mod detect;
pub mod fat;
pub mod fdt;
pub mod gzip;
pub mod kmod;
pub mod openpgp;
pub mod partition;
pub mod reader;
pub mod release;
pub mod squashfs;
pub mod tar;
pub mod xz;
pub mod zstd;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
