//! Raw and zlib deflate with miniz_oxide, called directly. flate2's backend is whatever
//! feature unification across the dependency tree picks (another crate asking for zlib-rs
//! switches every flate2 encoder in the binary), and each backend writes different bytes;
//! the writers' bytes must not depend on what else is linked in. The gzip reader inflates here
//! too ([`RawInflate`]): backends agree on what a good stream decodes to, but not on how much
//! of a damaged one they hand out before the error, and `pimg diff` names the first
//! decompressed byte that differs.

use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// How a call ends its input, as zlib's flush modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// More input follows.
    None,
    /// Byte-align the output with an empty stored block; the window is kept.
    Sync,
    /// End the stream.
    Finish,
}

/// Where a call left the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Input was taken or output written; call again with more.
    Ok,
    /// No room to make progress (give more output space).
    BufError,
    /// The stream is finished.
    StreamEnd,
}

/// The compressor refused its input (a state miniz_oxide does not reach from this module).
#[derive(Debug, thiserror::Error)]
#[error("deflate failed ({0:?})")]
pub struct DeflateError(MZError);

/// A deflate compressor with flate2's `Compress` contract (same calls, same bytes as its
/// miniz_oxide backend).
pub struct Deflate {
    inner: Box<CompressorOxide>,
    total_in: u64,
    total_out: u64,
}

impl Deflate {
    /// A compressor at `level` (0..=10), raw deflate or with the zlib wrapper.
    pub fn new(level: u32, zlib_header: bool) -> Deflate {
        let mut inner: Box<CompressorOxide> = Box::default();
        let format = if zlib_header {
            DataFormat::Zlib
        } else {
            DataFormat::Raw
        };
        inner.set_format_and_level(format, u8::try_from(level.min(10)).unwrap_or(1));
        Deflate {
            inner,
            total_in: 0,
            total_out: 0,
        }
    }

    /// Starts a new stream with the same settings.
    pub fn reset(&mut self) {
        self.total_in = 0;
        self.total_out = 0;
        self.inner.reset();
    }

    /// Input bytes taken since the last reset.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Output bytes written since the last reset.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Compresses from `input` into `output`; returns the status and how many bytes were
    /// taken and written.
    pub fn compress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        flush: Flush,
    ) -> Result<(Status, usize, usize), DeflateError> {
        let mz = match flush {
            Flush::None => MZFlush::None,
            Flush::Sync => MZFlush::Sync,
            Flush::Finish => MZFlush::Finish,
        };
        let r = miniz_oxide::deflate::stream::deflate(&mut self.inner, input, output, mz);
        self.total_in += r.bytes_consumed as u64;
        self.total_out += r.bytes_written as u64;
        let status = match r.status {
            Ok(MZStatus::StreamEnd) => Status::StreamEnd,
            Ok(_) => Status::Ok,
            Err(MZError::Buf) => Status::BufError,
            Err(e) => return Err(DeflateError(e)),
        };
        Ok((status, r.bytes_consumed, r.bytes_written))
    }

    /// Compresses into the spare capacity of `output` (which is not grown), as flate2's
    /// `Compress::compress_vec`.
    pub fn compress_vec(
        &mut self,
        input: &[u8],
        output: &mut Vec<u8>,
        flush: Flush,
    ) -> Result<Status, DeflateError> {
        let len = output.len();
        output.resize(output.capacity(), 0);
        let r = self.compress(input, &mut output[len..], flush);
        let written = r.as_ref().map_or(0, |&(_, _, w)| w);
        output.truncate(len + written);
        r.map(|(s, _, _)| s)
    }
}

/// Whether a fast pass (raw deflate at level 1) makes `data` any smaller. What it cannot
/// shrink is already compressed (`.ko.xz` modules, a squashfs, a gzip stream) and is stored
/// as is, instead of being searched again at a higher level for nothing: that search was most
/// of a build's time. The answer depends on the bytes alone, so it is part of the output
/// format of every writer that asks.
pub fn fast_pass_shrinks(data: &[u8]) -> bool {
    let mut c = Deflate::new(1, false);
    // Room for one byte less than the input: running out of it is the answer "no".
    let mut out = vec![0u8; data.len().saturating_sub(1)];
    let (mut input, mut written) = (data, 0);
    loop {
        match c.compress(input, &mut out[written..], Flush::Finish) {
            Ok((Status::StreamEnd, _, _)) => return true,
            Ok((_, taken, w)) if written + w < out.len() && (taken, w) != (0, 0) => {
                input = &input[taken..];
                written += w;
            }
            _ => return false,
        }
    }
}

/// A raw deflate stream from a buffered reader, decoded by miniz_oxide. It takes from the
/// reader exactly the stream's bytes, so what follows (a gzip trailer) is still there; on
/// damaged data it first hands out everything decoded before the damage; a stream cut short
/// just ends (what should follow it is missing, and its reader says so).
pub struct RawInflate<R> {
    inner: R,
    state: Box<miniz_oxide::inflate::stream::InflateState>,
    total_in: u64,
    done: bool,
    /// An error met after output that was handed out first.
    pending: Option<String>,
}

impl<R: std::io::BufRead> RawInflate<R> {
    pub fn new(inner: R) -> Self {
        RawInflate {
            inner,
            state: miniz_oxide::inflate::stream::InflateState::new_boxed(DataFormat::Raw),
            total_in: 0,
            done: false,
            pending: None,
        }
    }

    /// Compressed bytes taken from the reader.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// The reader, positioned after what the stream took.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: std::io::BufRead> std::io::Read for RawInflate<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        if let Some(e) = self.pending.take() {
            return Err(Error::new(ErrorKind::InvalidData, e));
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let flush = if eof { MZFlush::Finish } else { MZFlush::None };
            let r = miniz_oxide::inflate::stream::inflate(&mut self.state, input, out, flush);
            self.inner.consume(r.bytes_consumed);
            self.total_in += r.bytes_consumed as u64;
            let failure = match r.status {
                Ok(MZStatus::StreamEnd) => {
                    self.done = true;
                    None
                }
                // At the end of the input without the stream's end: no more output, as
                // flate2 does; the reader of what follows finds it missing.
                Ok(_) | Err(MZError::Buf) if eof && r.bytes_written == 0 => return Ok(0),
                Ok(_) | Err(MZError::Buf) => None,
                Err(_) => Some("corrupt deflate stream".to_string()),
            };
            match (failure, r.bytes_written) {
                (Some(e), 0) => return Err(Error::new(ErrorKind::InvalidData, e)),
                (Some(e), n) => {
                    self.pending = Some(e);
                    return Ok(n);
                }
                (None, 0) if !self.done => {
                    if r.bytes_consumed == 0 && !eof {
                        // Nothing taken from a full buffer and nothing given: cannot happen
                        // with a correct decoder; stop rather than spin.
                        return Err(Error::new(
                            ErrorKind::InvalidData,
                            "the deflate decoder made no progress",
                        ));
                    }
                }
                (None, n) => return Ok(n),
            }
        }
    }
}

/// Output space per call, as flate2's `write::ZlibEncoder` uses: the stream's bytes are
/// those of that encoder's miniz_oxide backend.
const WRITER_CHUNK: usize = 32 * 1024;

/// `data` as one zlib stream at `level`, as `write_all` then `finish` on flate2's
/// `write::ZlibEncoder` (miniz_oxide backend) writes it.
pub fn zlib(data: &[u8], level: u32) -> Result<Vec<u8>, DeflateError> {
    let mut c = Deflate::new(level, true);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut chunk = vec![0u8; WRITER_CHUNK];
    let mut input = data;
    while !input.is_empty() {
        let (_, taken, written) = c.compress(input, &mut chunk, Flush::None)?;
        out.extend_from_slice(&chunk[..written]);
        input = &input[taken..];
    }
    loop {
        let (_, _, written) = c.compress(&[], &mut chunk, Flush::Finish)?;
        if written == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..written]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_zlib(z: &[u8]) -> Vec<u8> {
        crate::codec::testdata::inflate(z, false)
    }

    /// A good stream decodes whole and leaves what follows it; a damaged one hands out what it
    /// decoded before the damage, then the error.
    #[test]
    fn raw_inflate_stops_at_the_stream_end_and_reports_damage_after_the_good_part() {
        use std::io::Read;
        let data = crate::codec::testdata::mixed(300_000, 3, 4096);
        let mut c = Deflate::new(6, false);
        let mut raw = Vec::with_capacity(data.len() + 1024);
        assert_eq!(
            c.compress_vec(&data, &mut raw, Flush::Finish).unwrap(),
            Status::StreamEnd
        );
        let stream_len = raw.len() as u64;
        raw.extend_from_slice(b"TRAILER!");
        let mut r = RawInflate::new(std::io::BufReader::with_capacity(1000, &raw[..]));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(r.total_in(), stream_len);
        let mut rest = Vec::new();
        r.get_mut().read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"TRAILER!");

        // The first half, sync-flushed (byte-aligned, not final), then a block of the reserved
        // type 3 (BFINAL 1, BTYPE 11): a decoder must stop there.
        let half = &data[..150_000];
        let mut c = Deflate::new(6, false);
        let mut bad = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(half, &mut bad, Flush::Sync).unwrap();
        bad.push(0b111);
        let mut r = RawInflate::new(&bad[..]);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert!(
            out.len() == half.len(),
            "{} bytes before the damage",
            out.len()
        );
        assert_eq!(out[..], data[..out.len()]);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        let mut r = RawInflate::new(&raw[..100]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(out.len() < data.len() && out[..] == data[..out.len()]);
    }

    #[test]
    fn the_fast_pass_tells_compressed_from_compressible() {
        let text: Vec<u8> = b"modules.dep modules.alias ".repeat(5000);
        assert!(fast_pass_shrinks(&text));
        let noise = crate::codec::testdata::noise(131_072, 7);
        assert!(!fast_pass_shrinks(&noise));
        assert!(fast_pass_shrinks(&[&noise[..], &text[..]].concat()));
        // Deflated noise is still noise to a second deflate.
        assert!(!fast_pass_shrinks(&zlib(&noise, 9).unwrap()));
        assert!(!fast_pass_shrinks(b""));
        assert!(!fast_pass_shrinks(b"x"));
    }

    /// Hand-checked: level 0 of three bytes is the zlib header 78 01, one final stored block
    /// (01, LEN 3, NLEN !3) and the Adler-32 of "abc".
    #[test]
    fn stored_block_by_hand() {
        let z = zlib(b"abc", 0).unwrap();
        assert_eq!(
            z,
            [0x78, 0x01, 0x01, 0x03, 0x00, 0xfc, 0xff, b'a', b'b', b'c', 0x02, 0x4d, 0x01, 0x27]
        );
    }

    #[test]
    fn round_trips_through_any_decoder() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x0f)
            .collect();
        for level in [1, 6, 9] {
            let z = zlib(&data, level).unwrap();
            assert!(z.len() < data.len());
            assert_eq!(inflate_zlib(&z), data);
        }
    }

    /// One stream is one set of bytes however its input is split between calls.
    #[test]
    fn raw_stream_independent_of_call_sizes() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        let whole = {
            let mut c = Deflate::new(9, false);
            let mut out = Vec::with_capacity(data.len() + 1024);
            assert_eq!(
                c.compress_vec(&data, &mut out, Flush::Finish).unwrap(),
                Status::StreamEnd
            );
            out
        };
        let mut c = Deflate::new(9, false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        for piece in data.chunks(7_777) {
            c.compress_vec(piece, &mut out, Flush::None).unwrap();
        }
        assert_eq!(
            c.compress_vec(&[], &mut out, Flush::Finish).unwrap(),
            Status::StreamEnd
        );
        assert_eq!(out, whole);
        assert_eq!(c.total_in(), data.len() as u64);
    }
}
