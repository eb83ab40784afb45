//! bmap files (bmaptool's block map, format version 2.0): which 4096-byte blocks of an image
//! hold data, with the SHA-256 of every range, so a flasher writes only those and checks each.
//!
//! The writer is told which blocks matter by a [`BlockSet`]; [`WrittenBlocks`] builds one by
//! watching every write the image's writers make, so a block is mapped because pimg wrote it
//! (zeros included: a zeroed FAT or directory cluster must reach the card), never because its
//! bytes look non-zero. Blocks nothing wrote are holes: their contents do not matter.
//!
//! The file checksum follows bmaptool's rule: the SHA-256 of the file with the checksum's
//! own 64 hex digits replaced by `0`s (bmaptool replaces the first occurrence, so the field
//! comes before the ranges). The reader accepts the layout this writer makes, checks every
//! count and range against the others, and caps the file and the number of ranges.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes per block: bmaptool's usual size, and a multiple of the sector.
pub const BLOCK_SIZE: u64 = 4096;

/// The largest bmap file the reader takes (a fully fragmented 8 GiB image needs about 200 MiB;
/// pimg's images are a few hundred ranges).
pub const MAX_BMAP_BYTES: usize = 16 << 20;

/// The format version written.
pub const VERSION: &str = "2.0";

/// The blocks of an image that matter, one bit each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSet {
    bits: Vec<u64>,
    blocks: u64,
}

impl BlockSet {
    /// No block yet of an image of `image_size` bytes.
    pub fn new(image_size: u64) -> Self {
        let blocks = image_size.div_ceil(BLOCK_SIZE);
        BlockSet {
            bits: vec![0; blocks.div_ceil(64) as usize],
            blocks,
        }
    }

    /// Marks every block that `len` bytes at `offset` touch (bytes past the image are ignored).
    pub fn mark(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = offset / BLOCK_SIZE;
        let last = (offset.saturating_add(len) - 1) / BLOCK_SIZE;
        for b in first..=last.min(self.blocks.saturating_sub(1)) {
            self.bits[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// Whether block `b` is marked.
    pub fn contains(&self, b: u64) -> bool {
        b < self.blocks && self.bits[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    /// The marked blocks as inclusive ranges, in order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for b in (0..self.blocks).filter(|&b| self.contains(b)) {
            match out.last_mut() {
                Some((_, last)) if *last + 1 == b => *last = b,
                _ => out.push((b, b)),
            }
        }
        out
    }
}

/// A device that passes every call through and marks the blocks each write touched.
pub struct WrittenBlocks<D> {
    inner: D,
    pos: u64,
    set: BlockSet,
}

impl<D> WrittenBlocks<D> {
    /// Watches writes to `inner`, an image of `image_size` bytes positioned at its start.
    pub fn new(inner: D, image_size: u64) -> Self {
        WrittenBlocks {
            inner,
            pos: 0,
            set: BlockSet::new(image_size),
        }
    }

    /// The blocks written so far.
    pub fn written(&self) -> &BlockSet {
        &self.set
    }

    /// The device and the blocks written to it.
    pub fn into_parts(self) -> (D, BlockSet) {
        (self.inner, self.set)
    }
}

impl<D: Read> Read for WrittenBlocks<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Write> Write for WrittenBlocks<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.set.mark(self.pos, n as u64);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<D: Seek> Seek for WrittenBlocks<D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

/// One mapped range: inclusive block numbers and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmapRange {
    pub first: u64,
    pub last: u64,
    pub sha256: String,
}

/// A parsed bmap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub mapped_blocks: u64,
    pub ranges: Vec<BmapRange>,
}

impl Bmap {
    /// The blocks of the image: the image size in blocks, rounded up.
    pub fn blocks(&self) -> u64 {
        self.image_size.div_ceil(BLOCK_SIZE)
    }

    /// Byte offset and length of a range in the image (the last block may be short).
    pub fn byte_span(&self, r: &BmapRange) -> (u64, u64) {
        let start = r.first * BLOCK_SIZE;
        let end = ((r.last + 1) * BLOCK_SIZE).min(self.image_size);
        (start, end - start)
    }
}

/// The SHA-256 of `len` bytes of `image` from `offset`, in lowercase hex.
fn range_sha256<R: Read + Seek>(image: &mut R, offset: u64, len: u64) -> io::Result<String> {
    image.seek(SeekFrom::Start(offset))?;
    let mut h = Sha256::new();
    let mut left = len;
    let mut buf = vec![0u8; (1 << 20).min(len.max(1)) as usize];
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        image.read_exact(&mut buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(crate::digest::hex(&h.finalize()))
}

/// The bmap of `image` (`image_size` bytes) mapping the blocks in `mapped`: the same bytes for
/// the same image and set.
pub fn write<R: Read + Seek>(
    image: &mut R,
    image_size: u64,
    mapped: &BlockSet,
) -> io::Result<Vec<u8>> {
    let bmap = Bmap {
        image_size,
        mapped_blocks: 0,
        ranges: Vec::new(),
    };
    let mut ranges = Vec::new();
    let mut count = 0;
    for (first, last) in mapped.ranges() {
        let mut r = BmapRange {
            first,
            last,
            sha256: String::new(),
        };
        let (offset, len) = bmap.byte_span(&r);
        r.sha256 = range_sha256(image, offset, len)?;
        count += last - first + 1;
        ranges.push(r);
    }
    let bmap = Bmap {
        mapped_blocks: count,
        ranges,
        ..bmap
    };
    Ok(render(&bmap))
}

/// The file text with the file checksum filled in.
fn render(b: &Bmap) -> Vec<u8> {
    let zeros = "0".repeat(64);
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" ?>\n");
    s.push_str("<!-- Block map written by pimg: the blocks listed hold the image's data; the others need not be written. -->\n");
    s.push_str(&format!("<bmap version=\"{VERSION}\">\n"));
    s.push_str(&format!("    <ImageSize> {} </ImageSize>\n", b.image_size));
    s.push_str(&format!("    <BlockSize> {BLOCK_SIZE} </BlockSize>\n"));
    s.push_str(&format!(
        "    <BlocksCount> {} </BlocksCount>\n",
        b.blocks()
    ));
    s.push_str(&format!(
        "    <MappedBlocksCount> {} </MappedBlocksCount>\n",
        b.mapped_blocks
    ));
    s.push_str("    <ChecksumType> sha256 </ChecksumType>\n");
    s.push_str(&format!(
        "    <BmapFileChecksum> {zeros} </BmapFileChecksum>\n"
    ));
    s.push_str("    <BlockMap>\n");
    for r in &b.ranges {
        let span = if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        };
        s.push_str(&format!(
            "        <Range chksum=\"{}\"> {span} </Range>\n",
            r.sha256
        ));
    }
    s.push_str("    </BlockMap>\n</bmap>\n");
    let sum = crate::digest::hex(&Sha256::digest(s.as_bytes()));
    s.replacen(&zeros, &sum, 1).into_bytes()
}

/// Why a bmap file was refused.
#[derive(Debug, thiserror::Error)]
pub enum BmapError {
    /// The file is larger than [`MAX_BMAP_BYTES`].
    #[error("{what}: {size} bytes, more than the {MAX_BMAP_BYTES} a bmap pimg writes can be")]
    TooLarge { what: String, size: usize },
    /// The text breaks the layout or its own counts.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

fn invalid(what: &str, message: impl Into<String>) -> BmapError {
    BmapError::Invalid {
        what: what.to_string(),
        message: message.into(),
    }
}

/// The text between `<tag>` and `</tag>`, trimmed, the first time it appears after `from`.
fn element<'a>(text: &'a str, tag: &str, what: &str) -> Result<&'a str, BmapError> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text
        .find(&open)
        .ok_or_else(|| invalid(what, format!("no <{tag}> element")))?
        + open.len();
    let len = text[start..]
        .find(&close)
        .ok_or_else(|| invalid(what, format!("<{tag}> is not closed")))?;
    Ok(text[start..start + len].trim())
}

fn number(s: &str, field: &str, what: &str) -> Result<u64, BmapError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(what, format!("{field} {s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| invalid(what, format!("{field} {s:?} is out of range")))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a bmap pimg wrote and checks its file checksum, its counts and its ranges (in order,
/// not overlapping, inside the image). `what` names the file in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<Bmap, BmapError> {
    if bytes.len() > MAX_BMAP_BYTES {
        return Err(BmapError::TooLarge {
            what: what.to_string(),
            size: bytes.len(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(what, format!("not UTF-8: {e}")))?;
    let version_tag = format!("<bmap version=\"{VERSION}\">");
    if !text.contains(&version_tag) {
        return Err(invalid(what, format!("no {version_tag} element")));
    }
    let image_size = number(element(text, "ImageSize", what)?, "ImageSize", what)?;
    let block_size = number(element(text, "BlockSize", what)?, "BlockSize", what)?;
    if block_size != BLOCK_SIZE {
        return Err(invalid(
            what,
            format!("BlockSize {block_size}, expected {BLOCK_SIZE}"),
        ));
    }
    let blocks = number(element(text, "BlocksCount", what)?, "BlocksCount", what)?;
    if blocks != image_size.div_ceil(BLOCK_SIZE) {
        return Err(invalid(
            what,
            format!("BlocksCount {blocks} does not match ImageSize {image_size}"),
        ));
    }
    let mapped = number(
        element(text, "MappedBlocksCount", what)?,
        "MappedBlocksCount",
        what,
    )?;
    let cs_type = element(text, "ChecksumType", what)?;
    if cs_type != "sha256" {
        return Err(invalid(
            what,
            format!("ChecksumType {cs_type:?}, expected sha256"),
        ));
    }
    let file_sum = element(text, "BmapFileChecksum", what)?;
    if !is_sha256_hex(file_sum) {
        return Err(invalid(what, "BmapFileChecksum is not 64 hex digits"));
    }
    let zeroed = text.replacen(file_sum, &"0".repeat(64), 1);
    let actual = crate::digest::hex(&Sha256::digest(zeroed.as_bytes()));
    if actual != file_sum {
        return Err(invalid(
            what,
            format!(
                "BmapFileChecksum is {file_sum} but the file hashes to {actual}: it was changed"
            ),
        ));
    }
    let map = element(text, "BlockMap", what)?;
    let mut ranges: Vec<BmapRange> = Vec::new();
    let mut counted = 0u64;
    let mut rest = map;
    while let Some(at) = rest.find("<Range") {
        rest = &rest[at..];
        let head = "<Range chksum=\"";
        if !rest.starts_with(head) {
            return Err(invalid(what, "a <Range> without chksum=\"…\" first"));
        }
        let after = &rest[head.len()..];
        let q = after
            .find("\">")
            .ok_or_else(|| invalid(what, "a <Range> tag is not closed"))?;
        let sha = &after[..q];
        if !is_sha256_hex(sha) {
            return Err(invalid(what, "a range's chksum is not 64 hex digits"));
        }
        let body = &after[q + 2..];
        let end = body
            .find("</Range>")
            .ok_or_else(|| invalid(what, "a <Range> is not closed"))?;
        let span = body[..end].trim();
        let (first, last) = match span.split_once('-') {
            Some((a, b)) => (
                number(a.trim(), "range start", what)?,
                number(b.trim(), "range end", what)?,
            ),
            None => {
                let n = number(span, "range", what)?;
                (n, n)
            }
        };
        if first > last || last >= blocks {
            return Err(invalid(
                what,
                format!("range {first}-{last} is not inside the image's {blocks} blocks"),
            ));
        }
        if let Some(prev) = ranges.last() {
            if first <= prev.last {
                return Err(invalid(
                    what,
                    format!(
                        "range {first}-{last} is not after range {}-{}",
                        prev.first, prev.last
                    ),
                ));
            }
        }
        counted += last - first + 1;
        ranges.push(BmapRange {
            first,
            last,
            sha256: sha.to_string(),
        });
        rest = &body[end..];
    }
    if counted != mapped {
        return Err(invalid(
            what,
            format!("MappedBlocksCount {mapped} but the ranges hold {counted} blocks"),
        ));
    }
    Ok(Bmap {
        image_size,
        mapped_blocks: mapped,
        ranges,
    })
}

/// The ranges of `bmap` whose bytes in `image` do not hash as listed: (range, actual hash).
pub fn mismatches<R: Read + Seek>(
    bmap: &Bmap,
    image: &mut R,
) -> io::Result<Vec<(BmapRange, String)>> {
    let mut bad = Vec::new();
    for r in &bmap.ranges {
        let (offset, len) = bmap.byte_span(r);
        let actual = range_sha256(image, offset, len)?;
        if actual != r.sha256 {
            bad.push((r.clone(), actual));
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn image() -> (Vec<u8>, BlockSet) {
        let size = 10 * BLOCK_SIZE + 100;
        let mut dev = WrittenBlocks::new(Cursor::new(vec![0u8; size as usize]), size);
        dev.seek(SeekFrom::Start(10)).unwrap();
        dev.write_all(b"boot").unwrap();
        dev.seek(SeekFrom::Start(3 * BLOCK_SIZE - 2)).unwrap();
        // Zeros written are mapped too, across a block boundary.
        dev.write_all(&[0; 4]).unwrap();
        dev.seek(SeekFrom::Start(10 * BLOCK_SIZE)).unwrap();
        dev.write_all(b"tail").unwrap();
        let (c, set) = dev.into_parts();
        (c.into_inner(), set)
    }

    #[test]
    fn written_blocks_become_ranges() {
        let (_, set) = image();
        assert_eq!(set.ranges(), [(0, 0), (2, 3), (10, 10)]);
    }

    #[test]
    fn file_checksum_follows_bmaptools_rule_and_parses_back() {
        let (img, set) = image();
        let bytes = write(&mut Cursor::new(&img), img.len() as u64, &set).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let sum = element(&text, "BmapFileChecksum", "t").unwrap().to_string();
        let zeroed = text.replacen(&sum, &"0".repeat(64), 1);
        assert_eq!(crate::digest::hex(&Sha256::digest(zeroed.as_bytes())), sum);
        assert!(text.contains("<Range chksum=\""));
        assert!(text.contains("> 2-3 </Range>"), "{text}");
        let b = parse(&bytes, "t").unwrap();
        assert_eq!(b.blocks(), 11);
        assert_eq!(b.mapped_blocks, 4);
        assert_eq!(b.byte_span(&b.ranges[2]), (10 * BLOCK_SIZE, 100));
        assert!(mismatches(&b, &mut Cursor::new(&img)).unwrap().is_empty());
        let mut changed = img.clone();
        changed[11] ^= 1;
        assert_eq!(mismatches(&b, &mut Cursor::new(&changed)).unwrap().len(), 1);
        // Same image and set, same bytes.
        assert_eq!(
            write(&mut Cursor::new(&img), img.len() as u64, &set).unwrap(),
            bytes
        );
    }

    #[test]
    fn edited_files_are_refused() {
        let (img, set) = image();
        let bytes = write(&mut Cursor::new(&img), img.len() as u64, &set).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let edited = text.replacen("> 2-3 <", "> 2-4 <", 1);
        let e = parse(edited.as_bytes(), "t").unwrap_err().to_string();
        assert!(e.contains("it was changed"), "{e}");
        assert!(parse(b"<bmap>", "t").is_err());
        assert!(parse(&vec![b' '; MAX_BMAP_BYTES + 1], "t").is_err());
    }

    #[test]
    fn empty_image_has_no_ranges() {
        let set = BlockSet::new(0);
        let bytes = write(&mut Cursor::new(Vec::new()), 0, &set).unwrap();
        let b = parse(&bytes, "t").unwrap();
        assert_eq!((b.blocks(), b.ranges.len()), (0, 0));
    }
}
