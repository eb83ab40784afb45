//! gzip with a fixed header (mtime 0, no name, no comment, no extra, OS byte 255) whose
//! deflate data is compressed in parallel and still depends only on the input and the level.
//!
//! The uncompressed stream is cut into pieces of [`CHUNK`] bytes, a size fixed here and never
//! derived from the host. Each piece is compressed as raw deflate by a fresh compressor at
//! the same level (flate2's pure-Rust miniz_oxide backend, which has no CPU-dependent code
//! paths); every piece but the last ends with a sync flush (an empty stored block, so the
//! next piece starts on a byte boundary and no block is marked final), the last with a
//! finish. The pieces are concatenated in order under one header, and the trailer holds the
//! CRC-32 and length of the whole input. Pieces are independent of each other, so which
//! thread compresses which piece, and how many threads there are, cannot change a byte (as
//! `pigz --independent`). The cost is a slightly worse ratio: no match reaches back across a
//! piece boundary.
//!
//! `flush()` on the encoder does not flush the compressed stream (that would make the bytes
//! depend on when it is called); write everything, then `finish()`.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use flate2::{Compress, Compression, FlushCompress, Status};

/// The OS byte in the header: 255, "unknown", the same on every host.
pub const OS_UNKNOWN: u8 = 255;

/// Uncompressed bytes per independently compressed piece. Part of the output format: changing
/// it changes every gzip pimg writes.
pub const CHUNK: usize = 256 * 1024;

/// Pieces buffered before they are compressed together, at least: several for every thread,
/// since pieces compress at different speeds and a batch takes as long as its slowest thread.
/// A batch is `max(MIN_BATCH_PIECES, 2 * threads)` pieces.
const MIN_BATCH_PIECES: usize = 8;

/// At most this many threads, whatever the host has. It bounds the memory of a batch: at most
/// `2 * MAX_THREADS` pieces (8 MiB) uncompressed plus about as much compressed.
const MAX_THREADS: usize = 16;

/// The threads to compress with: the CPUs this process may run on, at most [`MAX_THREADS`].
/// The output is the same for every value.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// A gzip encoder with the fixed header, writing compressed bytes to `W` as whole batches of
/// pieces are ready. The caller must call [`GzEncoder::finish`].
pub struct GzEncoder<W: Write> {
    inner: W,
    level: u32,
    threads: usize,
    /// Uncompressed bytes not yet compressed; at most one batch plus one byte, so that the
    /// last piece (which must be finished, not sync-flushed) is known when `finish` comes.
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    header_written: bool,
}

/// A gzip encoder with the fixed header on [`default_threads`] threads; the caller must call
/// `finish()`.
///
/// `level` is the deflate level, 0 (store) to 9 (best, the highest accepted; more counts as
/// 9); the header's XFL byte follows it
/// (2 for level 9 and above, 4 for level 1 and below, 0 otherwise).
pub fn encoder<W: Write>(w: W, level: u32) -> GzEncoder<W> {
    GzEncoder::new(w, level, default_threads())
}

impl<W: Write> GzEncoder<W> {
    /// An encoder compressing on up to `threads` threads (0 counts as 1). The bytes written
    /// do not depend on `threads`.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let threads = threads.clamp(1, MAX_THREADS);
        GzEncoder {
            inner,
            level: level.min(9),
            threads,
            pending: Vec::new(),
            crc: crc32fast::Hasher::new(),
            header_written: false,
        }
    }

    fn batch_len(&self) -> usize {
        MIN_BATCH_PIECES.max(2 * self.threads) * CHUNK
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level {
                9.. => 2,
                0 | 1 => 4,
                _ => 0,
            };
            // magic, CM=deflate, FLG=0, MTIME=0, XFL, OS
            let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNKNOWN];
            self.inner.write_all(&header)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Compresses the first `len` pending bytes and writes them out: whole pieces, all
    /// sync-flushed, unless `last` (then the last piece may be short and is finished).
    fn compress_pending(&mut self, len: usize, last: bool) -> io::Result<()> {
        self.write_header()?;
        let pieces = compress_pieces(&self.pending[..len], self.level, self.threads, last);
        for (data, crc) in pieces {
            self.inner.write_all(&data)?;
            self.crc.combine(&crc);
        }
        self.pending.drain(..len);
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        let len = self.pending.len();
        self.compress_pending(len, true)?;
        let crc = self.crc.clone();
        // ISIZE is the input length modulo 2^32.
        let isize = crc.total_len() as u32;
        self.inner.write_all(&crc.finalize().to_le_bytes())?;
        self.inner.write_all(&isize.to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let batch = self.batch_len();
        let room = batch + 1 - self.pending.len();
        let n = buf.len().min(room);
        let len = self.pending.len() + n;
        if len > self.pending.capacity() {
            // Grow as a Vec would, but never past one batch plus a byte.
            let cap = len.next_power_of_two().min(batch + 1);
            self.pending.reserve_exact(cap - self.pending.len());
        }
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() > batch {
            // More input follows the batch, so none of its pieces is the last one.
            self.compress_pending(batch, false)?;
        }
        Ok(n)
    }

    /// Does not flush the compressed stream: a flush point would change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One compressed piece: its raw deflate bytes and the CRC-32 state of its input.
type Piece = (Vec<u8>, crc32fast::Hasher);

/// Compresses `data` piece by piece on up to `threads` threads: for each piece, its raw
/// deflate bytes and its CRC-32. If `last`, the last piece is finished (and `data` may be
/// empty or end with a short piece); otherwise every piece is sync-flushed.
fn compress_pieces(data: &[u8], level: u32, threads: usize, last: bool) -> Vec<Piece> {
    let count = data.len().div_ceil(CHUNK).max(1);
    let piece = |i: usize| {
        let start = i * CHUNK;
        &data[start..data.len().min(start + CHUNK)]
    };
    let flush = |i: usize| {
        if last && i == count - 1 {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        }
    };
    let work = |i: usize, c: &mut Compress| {
        let p = piece(i);
        let mut crc = crc32fast::Hasher::new();
        crc.update(p);
        (deflate_piece(c, p, flush(i)), crc)
    };
    let threads = threads.min(count);
    if threads <= 1 {
        let mut c = Compress::new(Compression::new(level), false);
        return (0..count).map(|i| work(i, &mut c)).collect();
    }
    // Each thread takes the next piece not yet taken; results go to the piece's slot.
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Piece>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let run = || {
        let mut c = Compress::new(Compression::new(level), false);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let out = work(i, &mut c);
            *slots[i].lock().expect("a compressing thread panicked") = Some(out);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            // A thread that cannot be started leaves its pieces to the others: same bytes.
            let _ = std::thread::Builder::new().spawn_scoped(s, run);
        }
        run();
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("a compressing thread panicked")
                .expect("every piece is compressed")
        })
        .collect()
}

/// One piece as raw deflate with a fresh compressor state, ended by `flush`.
fn deflate_piece(c: &mut Compress, piece: &[u8], flush: FlushCompress) -> Vec<u8> {
    c.reset();
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
    let mut enc = GzEncoder::new(Vec::new(), level, threads);
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    /// Bytes that compress (repeats) mixed with bytes that do not (a xorshift stream).
    fn mixed(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 5000) % 3 == 0 {
                    x as u8
                } else {
                    (i % 251) as u8
                }
            })
            .collect()
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

    /// The batch length of an encoder on 2 threads.
    fn batch2() -> usize {
        GzEncoder::new(Vec::new(), 9, 2).batch_len()
    }

    #[test]
    fn same_bytes_for_every_thread_count_and_write_pattern() {
        // Two batches and a short last piece on 2 threads; one batch on 16.
        let data = mixed(2 * batch2() + 3 * CHUNK + 12_345);
        let one = gzip_bytes_threads(&data, 9, 1);
        assert_eq!(gunzip(&one), data);
        for threads in [2, 3, 5, 16, 64] {
            assert_eq!(
                gzip_bytes_threads(&data, 9, threads),
                one,
                "{threads} threads"
            );
        }
        // Writes of odd sizes, and writes that end exactly on piece and batch boundaries.
        for (threads, step) in [(1, 1000), (2, 7919), (3, CHUNK), (2, batch2())] {
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
    fn inputs_of_whole_pieces_and_batches() {
        // Lengths that end exactly on a piece or a batch boundary: the last piece is finished.
        for len in [CHUNK, 2 * CHUNK, batch2(), batch2() + 1, 2 * batch2()] {
            let data = mixed(len);
            let one = gzip_bytes_threads(&data, 9, 1);
            assert_eq!(gunzip(&one), data, "{len} bytes");
            assert_eq!(gzip_bytes_threads(&data, 9, 2), one, "{len} bytes");
        }
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
        let mut c = Compress::new(Compression::new(9), false);
        let a = deflate_piece(&mut c, &data[..CHUNK], FlushCompress::Sync);
        assert_eq!(&a[a.len() - 4..], &[0, 0, 0xff, 0xff]);
        // BFINAL is the first bit of the piece's first block.
        assert_eq!(a[0] & 1, 0);
        let gz = gzip_bytes_threads(&data, 9, 1);
        assert_eq!(&gz[10..10 + a.len()], &a[..]);
        // A compressor reused after another piece starts afresh: the same bytes as a new one.
        let b = deflate_piece(&mut c, &data[CHUNK..2 * CHUNK], FlushCompress::Sync);
        let mut fresh = Compress::new(Compression::new(9), false);
        let second = &data[CHUNK..2 * CHUNK];
        assert_eq!(deflate_piece(&mut fresh, second, FlushCompress::Sync), b);
        assert_eq!(&gz[10 + a.len()..10 + a.len() + b.len()], &b[..]);
    }
}
