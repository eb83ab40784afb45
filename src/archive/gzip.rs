//! gzip with a fixed header (mtime 0, no name, no comment, no extra, OS byte 255) over
//! flate2's pure-Rust miniz_oxide backend, so the bytes depend only on input and level.
//!
//! Never call `flush()` on the encoder: a sync flush inserts an empty stored block and
//! changes the output. Write everything, then `finish()`.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

/// The OS byte in the header: 255, "unknown", the same on every host.
pub const OS_UNKNOWN: u8 = 255;

/// A gzip encoder with the fixed header; the caller must call `finish()`.
///
/// `level` is the deflate level, 0 (store) to 9 (best); the header's XFL byte follows it
/// (2 for level 9 and above, 4 for level 1 and below, 0 otherwise).
pub fn encoder<W: Write>(w: W, level: u32) -> GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(OS_UNKNOWN)
        .write(w, Compression::new(level))
}

/// Compresses a whole buffer in one call.
pub fn gzip_bytes(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = encoder(Vec::new(), level);
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn fixed_header_and_identical_runs() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let a = gzip_bytes(&data, 9);
        let b = gzip_bytes(&data, 9);
        assert_eq!(a, b);
        // magic, CM=deflate, FLG=0, MTIME=0, XFL=2 (best), OS=255
        assert_eq!(&a[..10], &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x02, 0xff]);
        assert_eq!(gzip_bytes(&data, 6)[8], 0x00);
        assert_eq!(gzip_bytes(&data, 1)[8], 0x04);

        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Trailer: CRC32 then ISIZE, little-endian.
        assert_eq!(&a[a.len() - 4..], &(data.len() as u32).to_le_bytes());
    }

    #[test]
    fn empty_input_is_a_valid_stream() {
        let a = gzip_bytes(b"", 9);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
