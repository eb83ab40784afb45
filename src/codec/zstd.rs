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

use super::blocks::{BlockCodec, BlockPipeline};
use std::io::{self, Read, Write};

/// Uncompressed bytes per frame. Part of the output format: changing it changes every zstd
/// file pimg writes.
pub const CHUNK: usize = 8 << 20;

/// The compression level of every frame.
pub const LEVEL: i32 = 19;

/// The largest window the reader accepts: 2^27 bytes (128 MiB), zstd's default limit.
pub const READ_WINDOW_LOG_MAX: u32 = 27;

/// One chunk as a whole frame.
struct Frame;

impl BlockCodec for Frame {
    type Out = Vec<u8>;

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

/// A zstd encoder with the fixed frame layout; the caller must call [`ZstdEncoder::finish`].
pub struct ZstdEncoder<W: Write> {
    inner: W,
    current: Vec<u8>,
    pipeline: BlockPipeline<Frame>,
}

impl<W: Write> ZstdEncoder<W> {
    /// An encoder compressing on up to `threads` threads; the bytes do not depend on it.
    pub fn new(inner: W, threads: usize) -> Self {
        ZstdEncoder {
            inner,
            current: Vec::new(),
            pipeline: BlockPipeline::new(Frame, threads),
        }
    }

    fn emit(&mut self, frames: Vec<Vec<u8>>) -> io::Result<()> {
        for f in frames {
            self.inner.write_all(&f)?;
        }
        Ok(())
    }

    fn submit(&mut self) -> io::Result<()> {
        let chunk = std::mem::take(&mut self.current);
        let done = self.pipeline.push(chunk)?;
        self.emit(done)
    }

    /// Compresses what is left and returns the writer. Empty input still makes one frame (of
    /// nothing), so the file is a valid zstd stream.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() || self.pipeline.blocks() == 0 {
            self.submit()?;
        }
        let done = self.pipeline.finish()?;
        self.emit(done)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ZstdEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.capacity() == 0 {
            self.current.reserve_exact(CHUNK);
        }
        let n = buf.len().min(CHUNK - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    /// Does nothing: where a frame ends is fixed by the input, not by flushes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses a whole buffer on `threads` threads.
pub fn zstd_bytes(data: &[u8], threads: usize) -> Vec<u8> {
    let mut enc = ZstdEncoder::new(Vec::new(), threads);
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
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
    fn same_bytes_for_any_thread_count_and_round_trip() {
        let data = mixed(2 * CHUNK + 777);
        let one = zstd_bytes(&data, 1);
        let four = zstd_bytes(&data, 4);
        assert!(one == four, "1 and 4 threads wrote different bytes");
        assert!(unzstd(&one).unwrap() == data);
        assert!(frame_count(&one) >= 3);
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

    #[test]
    fn a_damaged_frame_is_refused() {
        let data = mixed(100_000);
        let mut z = zstd_bytes(&data, 1);
        let mid = z.len() / 2;
        z[mid] ^= 0x40;
        assert!(unzstd(&z).is_err(), "a flipped byte went unnoticed");
    }
}
