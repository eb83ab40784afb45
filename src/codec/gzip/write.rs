//! gzip with a fixed header (mtime 0, no name, no comment, no extra, OS byte 255) whose
//! deflate data is compressed in parallel and still depends only on the input and the level.
//!
//! The uncompressed stream is cut into pieces of [`CHUNK`] bytes, a size fixed here and never
//! derived from the host. Each piece is compressed as raw deflate by a fresh compressor at
//! the same level (miniz_oxide through [`crate::codec::deflate`], with no CPU-dependent code
//! paths); every piece but the last ends with a sync flush (an empty stored block, so the
//! next piece starts on a byte boundary and no block is marked final), the last with a
//! finish. The pieces are concatenated in order under one header, and the trailer holds the
//! CRC-32 and length of the whole input. Pieces are independent of each other, so which
//! thread compresses which piece, and how many threads there are, cannot change a byte (as
//! `pigz --independent`). The cost is a slightly worse ratio: no match reaches back across a
//! piece boundary. A piece that a fast level-1 pass cannot shrink (already compressed data:
//! modules, the modloop, an initramfs inside a tarball) is stored rather than searched again
//! at the chosen level, a rule that depends on the piece's bytes alone.
//!
//! The pieces go through [`BlockPipeline`]: each encoder with more than one piece starts its
//! own worker threads, hands them full pieces as the input arrives, and writes the results in
//! order as soon as they are ready; a bounded number of pieces in flight bounds the memory.
//!
//! `flush()` on the encoder does not flush the compressed stream (that would make the bytes
//! depend on when it is called); write everything, then `finish()`.

use std::io::{self, Write};

use crate::codec::deflate::{Deflate as Compress, Flush as FlushCompress, Status};

use crate::codec::blocks::{default_threads, BlockCodec, BlockEncoder, Framing};

/// The OS byte in the header: 255, "unknown", the same on every host.
pub const OS_UNKNOWN: u8 = 255;

/// Uncompressed bytes per independently compressed piece. Part of the output format: changing
/// it changes every gzip pimg writes.
pub const CHUNK: usize = 256 * 1024;

/// One compressed piece: its raw deflate bytes and the CRC-32 state of its input.
type Piece = (Vec<u8>, crc32fast::Hasher);

/// Raw deflate of whole pieces at one level, each from a fresh compressor state.
pub struct Deflate {
    level: u32,
}

impl Deflate {
    fn piece(&self, data: &[u8], flush: FlushCompress) -> Piece {
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        (deflate_piece(self.level, data, flush), crc)
    }
}

impl BlockCodec for Deflate {
    type Out = Piece;
    const BLOCK_SIZE: usize = CHUNK;
    /// Enough that a slow piece does not leave threads idle, few enough to bound memory:
    /// with [`MAX_THREADS`](crate::codec::blocks::MAX_THREADS), 8 MiB in flight.
    const MIN_IN_FLIGHT: usize = 8;

    /// Every piece but the last ends with a sync flush, so the next starts on a byte boundary.
    fn compress(&self, data: &[u8]) -> io::Result<Piece> {
        Ok(self.piece(data, FlushCompress::Sync))
    }

    /// The last piece (empty for an empty stream) is finished: it holds the final block.
    fn compress_last(&self, data: &[u8]) -> io::Result<Option<Piece>> {
        Ok(Some(self.piece(data, FlushCompress::Finish)))
    }
}

/// The gzip member around the pieces: the fixed header before the first, the CRC-32 and
/// length of the whole input after the last.
pub struct GzFraming {
    level: u32,
    crc: crc32fast::Hasher,
    header_written: bool,
}

impl Framing for GzFraming {
    type Codec = Deflate;

    /// Writes a compressed piece and takes its CRC into the trailer's.
    fn block<W: Write>(&mut self, w: &mut W, (data, crc): Piece) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level {
                9.. => 2,
                0 | 1 => 4,
                _ => 0,
            };
            // magic, CM=deflate, FLG=0, MTIME=0, XFL, OS
            w.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNKNOWN])?;
            self.header_written = true;
        }
        w.write_all(&data)?;
        self.crc.combine(&crc);
        Ok(())
    }

    fn end<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        let crc = std::mem::take(&mut self.crc);
        // ISIZE is the input length modulo 2^32.
        let isize = crc.total_len() as u32;
        w.write_all(&crc.finalize().to_le_bytes())?;
        w.write_all(&isize.to_le_bytes())
    }
}

/// A gzip encoder with the fixed header. Pieces are compressed on worker threads (started
/// when a second piece begins, so a stream of one piece starts none) and written to `W` in
/// order as they are done. The caller must call `finish()`.
pub type GzEncoder<W> = BlockEncoder<GzFraming, W>;

/// A gzip encoder with the fixed header on [`default_threads`] threads; the caller must call
/// `finish()`.
///
/// `level` is the deflate level, 0 (store) to 9 (best, the highest accepted; more counts as
/// 9); the header's XFL byte follows it (2 for level 9 and above, 4 for level 1 and below,
/// 0 otherwise).
pub fn encoder<W: Write>(w: W, level: u32) -> GzEncoder<W> {
    GzEncoder::new(w, level, default_threads())
}

impl<W: Write> GzEncoder<W> {
    /// An encoder compressing on up to `threads` threads (0 counts as 1). The bytes written
    /// do not depend on `threads`.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let level = level.min(9);
        let framing = GzFraming {
            level,
            crc: crc32fast::Hasher::new(),
            header_written: false,
        };
        BlockEncoder::start(inner, framing, Deflate { level }, threads)
    }
}

/// One piece as raw deflate with a fresh compressor state, ended by `flush`. Above level 1, a
/// piece the fast pass cannot shrink is stored (level 0): it is compressed data already.
fn deflate_piece(level: u32, piece: &[u8], flush: FlushCompress) -> Vec<u8> {
    let level = if level > 1 && !crate::codec::deflate::fast_pass_shrinks(piece) {
        0
    } else {
        level
    };
    let mut c = Compress::new(level, false);
    // Stored blocks cost 5 bytes per 64 KiB; a sync flush and a final block a few more.
    let mut out = Vec::with_capacity(piece.len() + piece.len() / 8192 + 64);
    let mut input = piece;
    loop {
        let before = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .expect("deflate of an in-memory buffer cannot fail");
        input = &input[(c.total_in() - before) as usize..];
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // Done when all input is taken and the flush did not run out of room.
            _ => input.is_empty() && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

/// Compresses a whole buffer in one call.
pub fn gzip_bytes(data: &[u8], level: u32) -> Vec<u8> {
    gzip_bytes_threads(data, level, default_threads())
}

/// [`gzip_bytes`] on `threads` threads: the same bytes for every thread count.
pub fn gzip_bytes_threads(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
    GzEncoder::new(Vec::new(), level, threads).encode_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        crate::codec::testdata::inflate(gz, true)
    }

    /// Bytes that compress (repeats) mixed with bytes that do not (a xorshift stream).
    fn mixed(len: usize) -> Vec<u8> {
        crate::codec::testdata::mixed(len, 0x2545_f491_4f6c_dd1d, 5000)
    }

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

        assert_eq!(gunzip(&a), data);
        // Trailer: CRC32 then ISIZE, little-endian.
        let crc = crc32fast::hash(&data);
        assert_eq!(&a[a.len() - 8..a.len() - 4], &crc.to_le_bytes());
        assert_eq!(&a[a.len() - 4..], &(data.len() as u32).to_le_bytes());
    }

    #[test]
    fn empty_input_is_a_valid_stream() {
        for threads in [1, 4] {
            let a = gzip_bytes_threads(b"", 9, threads);
            assert!(gunzip(&a).is_empty());
            assert_eq!(&a[a.len() - 8..], &[0; 8]);
        }
    }

    /// The bytes of the pieces an encoder on 2 threads may have in flight.
    fn window2() -> usize {
        GzEncoder::new(Vec::new(), 9, 2).max_in_flight() * CHUNK
    }

    #[test]
    fn same_bytes_for_every_thread_count_and_write_pattern() {
        // More pieces than 2 threads may have in flight, fewer than 16, a short last piece.
        let data = mixed(2 * window2() + 3 * CHUNK + 12_345);
        let one = gzip_bytes_threads(&data, 9, 1);
        assert_eq!(gunzip(&one), data);
        for threads in [2, 3, 5, 16, 64] {
            assert_eq!(
                gzip_bytes_threads(&data, 9, threads),
                one,
                "{threads} threads"
            );
        }
        // Writes of odd sizes, and writes that end exactly on piece boundaries.
        for (threads, step) in [(1, 1000), (2, 7919), (3, CHUNK), (2, window2())] {
            let mut enc = GzEncoder::new(Vec::new(), 9, threads);
            for part in data.chunks(step) {
                enc.write_all(part).unwrap();
                enc.flush().unwrap();
            }
            assert_eq!(
                enc.finish().unwrap(),
                one,
                "{threads} threads, writes of {step}"
            );
        }
    }

    #[test]
    fn inputs_of_whole_pieces() {
        // Lengths that end exactly on a piece boundary: the last piece is finished.
        for len in [
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            window2(),
            window2() + 1,
            2 * window2(),
        ] {
            let data = mixed(len);
            let one = gzip_bytes_threads(&data, 9, 1);
            assert_eq!(gunzip(&one), data, "{len} bytes");
            assert_eq!(gzip_bytes_threads(&data, 9, 2), one, "{len} bytes");
        }
    }

    #[test]
    fn dropped_or_failing_encoders_stop_their_threads() {
        let data = mixed(3 * window2());
        // Dropped in the middle of a stream, with pieces queued: the threads stop.
        let mut enc = GzEncoder::new(Vec::new(), 9, 2);
        enc.write_all(&data[..window2() + CHUNK]).unwrap();
        drop(enc);
        // A writer that fails: the error comes back, nothing hangs.
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 < b.len() {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
                }
                self.0 -= b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut enc = GzEncoder::new(Full(100_000), 9, 3);
        let e = enc
            .write_all(&data)
            .and_then(|_| enc.finish().map(|_| ()))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn every_level_round_trips() {
        let data = mixed(2 * CHUNK + 99);
        for level in 0..=9 {
            let gz = gzip_bytes_threads(&data, level, 2);
            assert_eq!(gunzip(&gz), data, "level {level}");
            assert_eq!(gz, gzip_bytes_threads(&data, level, 1), "level {level}");
        }
    }

    #[test]
    fn pieces_are_byte_aligned_and_not_final() {
        // Each piece but the last ends with the empty stored block of a sync flush.
        let data = mixed(3 * CHUNK);
        let a = deflate_piece(9, &data[..CHUNK], FlushCompress::Sync);
        assert_eq!(&a[a.len() - 4..], &[0, 0, 0xff, 0xff]);
        // BFINAL is the first bit of the piece's first block.
        assert_eq!(a[0] & 1, 0);
        let gz = gzip_bytes_threads(&data, 9, 1);
        assert_eq!(&gz[10..10 + a.len()], &a[..]);
        // The second piece starts afresh: no match reaches back into the first.
        let b = deflate_piece(9, &data[CHUNK..2 * CHUNK], FlushCompress::Sync);
        assert_eq!(&gz[10 + a.len()..10 + a.len() + b.len()], &b[..]);
    }
}
