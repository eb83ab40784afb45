//! Test data shared by the codecs' unit tests and, through `tests/common`, the integration
//! tests. Imports nothing of the crate, so any codec (and any test crate) may use it.

/// Runs of `run` bytes, by turns a xorshift stream from `seed` (which does not compress) and
/// two of a repeating ramp (which does): test data for the compressors.
pub(crate) fn mixed(len: usize, seed: u64, run: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / run).is_multiple_of(3) {
                x as u8
            } else {
                (i % 251) as u8
            }
        })
        .collect()
}

/// Bytes that neither compress nor repeat: a xorshift stream from `seed`.
pub(crate) fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// `data` decoded by flate2's reader: gzip when `gzip`, else zlib. Panics on damage.
pub(crate) fn inflate(data: &[u8], gzip: bool) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let read = if gzip {
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)
    };
    read.expect("the stream decodes");
    out
}
