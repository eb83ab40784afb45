//! zstd: one frame per fixed-size chunk, each compressed on its own, so the bytes depend only
//! on the input.
//!
//! The input is cut into chunks of [`CHUNK`] bytes (fixed here, never derived from the host);
//! each becomes one zstd frame at level [`LEVEL`] with its content size and a checksum,
//! compressed by the single-threaded libzstd (`nbWorkers` 0) that the `zstd-sys` crate builds
//! from its bundled sources (the version Cargo.lock pins; zstd's output is a function of the
//! input, the library version and the parameters, whatever the CPU). Frames are concatenated;
//! every zstd decoder reads a concatenation of frames as one stream. zstd's own multi-threaded
//! mode is not used: its output differs between one worker and several.
//!
//! The reader refuses frames whose window is larger than 2^[`READ_WINDOW_LOG_MAX`] bytes,
//! and [`super::release::decompress_to`] stops past a byte limit.

use super::blocks::{BlockCodec, BlockEncoder, Framing};
use std::io::{self, Read, Write};

/// Uncompressed bytes per frame. Part of the output format: changing it changes every zstd
/// file pimg writes.
pub const CHUNK: usize = 8 << 20;

/// The compression level of every frame.
pub const LEVEL: i32 = 19;

/// The largest window the reader accepts: 2^27 bytes (128 MiB), zstd's default limit.
pub const READ_WINDOW_LOG_MAX: u32 = 27;

/// One chunk as a whole frame.
pub struct Frame;

impl BlockCodec for Frame {
    type Out = Vec<u8>;
    const BLOCK_SIZE: usize = CHUNK;

    fn compress(&self, chunk: &[u8]) -> io::Result<Vec<u8>> {
        use zstd::zstd_safe::CParameter;
        let mut c = zstd::bulk::Compressor::new(LEVEL)?;
        c.set_parameter(CParameter::ChecksumFlag(true))?;
        c.set_parameter(CParameter::ContentSizeFlag(true))?;
        c.set_parameter(CParameter::DictIdFlag(false))?;
        c.set_parameter(CParameter::NbWorkers(0))?;
        c.compress(chunk)
    }
}

/// Frames one after another, nothing around them.
pub struct Frames;

impl Framing for Frames {
    type Codec = Frame;

    fn block<W: Write>(&mut self, w: &mut W, frame: Vec<u8>) -> io::Result<()> {
        w.write_all(&frame)
    }

    fn end<W: Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }
}

/// A zstd encoder with the fixed frame layout; the caller must call `finish()`. Empty input
/// still makes one frame (of nothing), so the file is a valid zstd stream.
pub type ZstdEncoder<W> = BlockEncoder<Frames, W>;

impl<W: Write> ZstdEncoder<W> {
    /// An encoder compressing on up to `threads` threads; the bytes do not depend on it.
    pub fn new(inner: W, threads: usize) -> Self {
        BlockEncoder::start(inner, Frames, Frame, threads)
    }
}

/// Compresses a whole buffer on `threads` threads.
pub fn zstd_bytes(data: &[u8], threads: usize) -> Vec<u8> {
    ZstdEncoder::new(Vec::new(), threads).encode_all(data)
}

/// A reader of the concatenated frames in `r`, windows capped.
pub fn decoder<'a, R: Read + 'a>(r: R) -> io::Result<impl Read + 'a> {
    let mut d = zstd::stream::read::Decoder::new(r)?;
    d.window_log_max(READ_WINDOW_LOG_MAX)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unzstd(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn mixed(len: usize) -> Vec<u8> {
        crate::codec::testdata::mixed(len, 0x2545_f491_4f6c_dd1d, 5000)
    }

    /// The frames of a stream, by their magic and content size (single-segment or not).
    fn frame_count(z: &[u8]) -> usize {
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        z.windows(4).filter(|w| *w == magic).count()
    }

    #[test]
    fn a_frame_per_chunk() {
        let data = mixed(2 * CHUNK + 777);
        assert_eq!(frame_count(&zstd_bytes(&data, 2)), 3);
    }

    #[test]
    fn empty_input_is_one_empty_frame() {
        let z = zstd_bytes(b"", 2);
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert!(unzstd(&z).unwrap().is_empty());
    }

    #[test]
    fn exactly_one_chunk_is_one_frame() {
        let data = mixed(CHUNK);
        let z = zstd_bytes(&data, 2);
        assert!(unzstd(&z).unwrap() == data);
        assert_eq!(zstd_bytes(&data, 1), z);
    }
}
