//! xz: one stream of independently compressed blocks, as `xz -T` writes, whose bytes depend
//! only on the input.
//!
//! The input is cut into blocks of [`BLOCK_SIZE`] bytes (fixed here, never derived from the
//! host). Each block is raw LZMA2 from lzma-rust2's single-threaded `Lzma2Writer` at preset
//! [`PRESET`] (8 MiB dictionary, the size of a block, so no block could use more), started
//! fresh for every block; its header records its compressed and uncompressed sizes, and the
//! index lists every block, so decoders can seek and decompress blocks in parallel. The
//! container (stream header, block headers, index, footer) is written here rather than by
//! lzma-rust2's `XzWriterMt`, whose block headers carry no sizes. lzma-rust2's SIMD paths
//! (match-finder normalization, two-byte compares) compute the same values as its scalar code,
//! so the bytes do not depend on the CPU. The check is CRC32 (crc32fast, already used for
//! gzip).
//!
//! The reader (lzma-rust2's `XzReader`) is capped: a block whose dictionary needs more than
//! [`READ_MEM_LIMIT_KIB`] is refused, and [`super::release::decompress_to`] stops past a byte limit.

use super::blocks::{BlockCodec, BlockEncoder, Framing};
use std::io::{self, Read, Write};

/// Uncompressed bytes per block. Part of the output format: changing it changes every xz
/// pimg writes.
pub const BLOCK_SIZE: usize = 8 << 20;

/// The LZMA2 preset of every block (xz's default).
pub const PRESET: u32 = 6;

/// The dictionary of every block: preset 6's, which is also [`BLOCK_SIZE`].
const DICT_SIZE: u32 = 8 << 20;

/// The check type of the stream: CRC32.
const CHECK_CRC32: u8 = 0x01;

/// The LZMA2 filter's id.
const FILTER_LZMA2: u64 = 0x21;

const HEADER_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];

/// The most memory the reader lets one block's dictionary take, in KiB (a block pimg writes
/// needs about 9 MiB).
pub const READ_MEM_LIMIT_KIB: u32 = 80 * 1024;

/// One compressed block: its raw LZMA2 data and the CRC32 of its input.
pub struct XzBlock {
    data: Vec<u8>,
    uncompressed: u64,
    crc: u32,
}

/// Raw LZMA2 of one block with the fixed settings.
pub struct Lzma2Block;

impl BlockCodec for Lzma2Block {
    type Out = XzBlock;
    const BLOCK_SIZE: usize = BLOCK_SIZE;

    fn compress(&self, block: &[u8]) -> io::Result<XzBlock> {
        let mut options = lzma_rust2::Lzma2Options::with_preset(PRESET);
        options.lzma_options.dict_size = DICT_SIZE;
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        let mut w = lzma_rust2::Lzma2Writer::new(&mut out, options);
        w.write_all(block)?;
        w.finish()?;
        Ok(XzBlock {
            data: out,
            uncompressed: block.len() as u64,
            crc: crc32fast::hash(block),
        })
    }

    /// An empty stream has no blocks at all.
    fn compress_last(&self, block: &[u8]) -> io::Result<Option<XzBlock>> {
        if block.is_empty() {
            return Ok(None);
        }
        self.compress(block).map(Some)
    }
}

/// Appends `v` as an xz variable-length integer (7 bits a byte, low bits first).
fn put_vli(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Pads `out` with zero bytes to a multiple of four.
fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The LZMA2 property byte of a dictionary size: the smallest encoded size that holds it.
fn dict_prop(dict: u32) -> u8 {
    (0u8..40)
        .find(|&b| (2u64 | (b as u64 & 1)) << (b / 2 + 11) >= dict as u64)
        .unwrap_or(40)
}

/// The block header of a block with these sizes.
fn block_header(compressed: u64, uncompressed: u64) -> Vec<u8> {
    // Size byte filled in below; flags: one filter, both sizes present.
    let mut h = vec![0, 0xc0];
    put_vli(&mut h, compressed);
    put_vli(&mut h, uncompressed);
    put_vli(&mut h, FILTER_LZMA2);
    put_vli(&mut h, 1);
    h.push(dict_prop(DICT_SIZE));
    pad4(&mut h);
    h[0] = ((h.len() + 4) / 4 - 1) as u8;
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// The xz container around the blocks: a header before each, the index and the footer after
/// the last.
pub struct XzFraming {
    /// (unpadded size, uncompressed size) of every block written, for the index.
    records: Vec<(u64, u64)>,
}

impl Framing for XzFraming {
    type Codec = Lzma2Block;

    fn block<W: Write>(&mut self, w: &mut W, b: XzBlock) -> io::Result<()> {
        let header = block_header(b.data.len() as u64, b.uncompressed);
        w.write_all(&header)?;
        w.write_all(&b.data)?;
        let pad = (4 - b.data.len() % 4) % 4;
        w.write_all(&[0; 3][..pad])?;
        w.write_all(&b.crc.to_le_bytes())?;
        let unpadded = (header.len() + b.data.len() + 4) as u64;
        self.records.push((unpadded, b.uncompressed));
        Ok(())
    }

    /// The index and the footer.
    fn end<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        let mut index = vec![0];
        put_vli(&mut index, self.records.len() as u64);
        for &(unpadded, uncompressed) in &self.records {
            put_vli(&mut index, unpadded);
            put_vli(&mut index, uncompressed);
        }
        pad4(&mut index);
        let crc = crc32fast::hash(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        w.write_all(&index)?;
        let backward = (index.len() / 4 - 1) as u32;
        let mut tail = backward.to_le_bytes().to_vec();
        tail.extend_from_slice(&[0, CHECK_CRC32]);
        w.write_all(&crc32fast::hash(&tail).to_le_bytes())?;
        w.write_all(&tail)?;
        w.write_all(&FOOTER_MAGIC)
    }
}

/// An xz encoder with the fixed block layout; the caller must call `finish()`.
pub type XzEncoder<W> = BlockEncoder<XzFraming, W>;

impl<W: Write> XzEncoder<W> {
    /// An encoder compressing on up to `threads` threads; the bytes do not depend on it.
    /// Writes the stream header at once.
    pub fn new(mut inner: W, threads: usize) -> io::Result<Self> {
        let flags = [0, CHECK_CRC32];
        inner.write_all(&HEADER_MAGIC)?;
        inner.write_all(&flags)?;
        inner.write_all(&crc32fast::hash(&flags).to_le_bytes())?;
        let framing = XzFraming {
            records: Vec::new(),
        };
        Ok(BlockEncoder::start(inner, framing, Lzma2Block, threads))
    }
}

/// Compresses a whole buffer on `threads` threads.
pub fn xz_bytes(data: &[u8], threads: usize) -> Vec<u8> {
    let enc = XzEncoder::new(Vec::new(), threads).expect("writing to a Vec");
    enc.encode_all(data)
}

/// A reader of the xz stream in `r` (one stream, dictionaries capped).
pub fn decoder<R: Read>(r: R) -> impl Read {
    lzma_rust2::XzReader::new_mem_limit(r, false, READ_MEM_LIMIT_KIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unxz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decoder(data).read_to_end(&mut out).unwrap();
        out
    }

    /// Repeats mixed with a xorshift stream, so blocks neither vanish nor stay raw.
    fn mixed(len: usize) -> Vec<u8> {
        crate::codec::testdata::mixed(len, 0x9e37_79b9_7f4a_7c15, 4096)
    }

    #[test]
    fn vli_and_dictionary_property() {
        let mut v = Vec::new();
        put_vli(&mut v, 0x21);
        put_vli(&mut v, 300);
        assert_eq!(v, [0x21, 0xac, 0x02]);
        // 8 MiB is 2 << 22: property 22 (xz's preset 6 block headers carry 0x16).
        assert_eq!(dict_prop(8 << 20), 22);
        assert_eq!(dict_prop(12 << 20), 23);
    }

    #[test]
    fn header_by_hand() {
        let xz = xz_bytes(b"", 1);
        // Magic, flags (CRC32), CRC32 of the flags; empty index; footer.
        assert_eq!(&xz[..8], &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 1]);
        assert_eq!(&xz[8..12], &crc32fast::hash(&[0, 1]).to_le_bytes());
        assert_eq!(&xz[xz.len() - 2..], b"YZ");
        assert_eq!(xz.len(), 12 + 8 + 12);
        assert!(unxz(&xz).is_empty());
    }

    #[test]
    fn exactly_one_block() {
        let data = mixed(BLOCK_SIZE);
        let xz = xz_bytes(&data, 3);
        assert!(unxz(&xz) == data);
        // One block header with both sizes: flags 0xc0 right after the stream header.
        assert_eq!(xz[13], 0xc0);
        let backward = u32::from_le_bytes(xz[xz.len() - 8..xz.len() - 4].try_into().unwrap());
        let index_at = xz.len() - 12 - (backward as usize + 1) * 4;
        assert_eq!(&xz[index_at..index_at + 2], &[0, 1], "one index record");
    }
}
