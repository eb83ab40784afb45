//! squashfs 4.0 reader for images from strangers: the superblock, the id, fragment, inode
//! and directory tables, and file content, gzip or xz compressed (what pimg and mksquashfs
//! write: fragments, extended inodes, sparse blocks, compressor options).
//!
//! Every offset is checked against the image and its table; the inode and directory tables
//! are loaded once, each capped at `MAX_TABLE` uncompressed bytes; every block is
//! decompressed into at most its nominal size; the directory walk visits each directory once
//! (a second visit is a loop), stops at `MAX_DEPTH` levels, `MAX_ENTRIES` entries and
//! `MAX_LISTING` bytes of names; file content stops at the caller's limit.

use super::{
    compressor_name, Superblock, BLOCK_UNCOMPRESSED, COMPRESSOR_GZIP, COMPRESSOR_XZ, DIR_ENTRY_LEN,
    DIR_HEADER_LEN, DIR_HEADER_MAX_ENTRIES, FLAG_COMPRESSOR_OPTIONS, FRAGMENTS_PER_BLOCK,
    IDS_PER_BLOCK, INODE_BLOCK_DEV, INODE_CHAR_DEV, INODE_DIR, INODE_EXT_BLOCK_DEV,
    INODE_EXT_CHAR_DEV, INODE_EXT_DIR, INODE_EXT_FILE, INODE_EXT_SYMLINK, INODE_FIFO, INODE_FILE,
    INODE_HEADER_LEN, INODE_SOCKET, INODE_SYMLINK, MAGIC, MAX_BLOCK_SIZE, MAX_NAME_LEN,
    METADATA_SIZE, METADATA_UNCOMPRESSED, MIN_BLOCK_SIZE, NO_FRAGMENT, NO_TABLE, SUPERBLOCK_LEN,
    VERSION,
};
use crate::codec::reader::{le16, le32, le64, printable, Device, ReadError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};

/// Most uncompressed bytes of the inode table, and of the directory table, the reader loads.
pub const MAX_TABLE: u64 = 64 << 20;
/// Most fragment entries (their table is capped like the others: 16 bytes each).
pub const MAX_FRAGMENTS: u64 = MAX_TABLE / 16;
/// Deepest directory nesting the reader follows.
pub const MAX_DEPTH: usize = 128;
/// Most entries the reader lists in one image.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Most bytes of paths and symlink targets one listing holds.
pub const MAX_LISTING: u64 = 256 << 20;
/// Longest symlink target (the kernel refuses more than a page).
pub const MAX_SYMLINK: u64 = 4096;
/// Memory the xz decoder may take, in KiB (a 1 MiB dictionary and its state fit).
const XZ_MEM_LIMIT_KB: u32 = 8 << 10;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SquashfsEntryKind {
    File,
    Dir,
    Symlink,
    BlockDevice,
    CharDevice,
    Fifo,
    Socket,
}

/// One entry of the image as its inode says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SquashfsListing {
    /// "a/b/c" below the root (the root itself is not listed). Names that are not UTF-8 are
    /// shown with their bytes escaped.
    pub path: String,
    pub kind: SquashfsEntryKind,
    /// Permission bits (0o7777 at most).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// File bytes; symlink target bytes; a directory's listing size as stored (what
    /// `unsquashfs -lls` shows); 0 for the others.
    pub size: u64,
    /// A symlink's target.
    pub target: Option<String>,
    /// A device's number as stored (major and minor packed the Linux way).
    pub rdev: Option<u32>,
    pub nlink: u32,
    pub inode_number: u32,
    /// Where the inode is: metadata block offset in the inode table << 16 | offset inside it.
    pub inode_ref: u64,
}

/// One metadata table, uncompressed, with where each of its blocks starts.
struct Table {
    what: &'static str,
    data: Vec<u8>,
    /// Offset of each block from the table start (compressed) → its offset in `data`.
    starts: BTreeMap<u64, usize>,
}

impl Table {
    /// The position in `data` of (block, offset), checked.
    fn locate(&self, block: u64, offset: u16, what: &str) -> Result<usize, ReadError> {
        let start = *self.starts.get(&block).ok_or_else(|| {
            ReadError::invalid(
                what,
                block,
                format!(
                    "points at byte {block} of the {}, which is not the start of a metadata block",
                    self.what
                ),
            )
        })?;
        if usize::from(offset) >= METADATA_SIZE {
            return Err(ReadError::invalid(
                what,
                block,
                format!("offset {offset} inside a metadata block is past its 8192 bytes"),
            ));
        }
        let pos = start + usize::from(offset);
        if pos > self.data.len() {
            return Err(self.truncated(what, pos, 1));
        }
        Ok(pos)
    }

    fn truncated(&self, what: &str, pos: usize, needed: usize) -> ReadError {
        ReadError::Truncated {
            what: format!("{what} in the {}", self.what),
            offset: pos as u64,
            needed: needed as u64,
            end: self.data.len() as u64,
        }
    }

    fn get(&self, pos: usize, len: usize, what: &str) -> Result<&[u8], ReadError> {
        pos.checked_add(len)
            .and_then(|end| self.data.get(pos..end))
            .ok_or_else(|| self.truncated(what, pos, len))
    }
}

/// An inode as stored.
#[derive(Debug, Clone)]
struct Inode {
    kind: SquashfsEntryKind,
    mode: u16,
    uid: u32,
    gid: u32,
    mtime: u32,
    number: u32,
    nlink: u32,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Dir {
        block: u64,
        offset: u16,
        size: u64,
    },
    File {
        start: u64,
        size: u64,
        fragment: u32,
        fragment_offset: u32,
        /// Where the block size words are in the inode table, and how many.
        sizes_at: usize,
        blocks: usize,
    },
    Symlink(Vec<u8>),
    Device(u32),
    Other,
}

/// Opens the squashfs image of `len` bytes at the start of `reader` (see [`Squashfs::open`]).
pub fn open<R: Read + Seek>(reader: R, len: u64) -> Result<Squashfs<R>, ReadError> {
    Squashfs::open(reader, len)
}

/// An open squashfs image.
pub struct Squashfs<R> {
    dev: Device<R>,
    sb: Superblock,
    ids: Vec<u32>,
    /// (start, size word) of each fragment block.
    fragments: Vec<(u64, u32)>,
    inodes: Table,
    dirs: Table,
    /// The last fragment block decompressed, by index (small files share them).
    fragment_cache: Option<(u32, Vec<u8>)>,
}

fn invalid(what: &str, offset: u64, message: impl Into<String>) -> ReadError {
    ReadError::invalid(what, offset, message)
}

/// Decompresses one block of the image into at most `max` bytes.
fn decompress(
    compressor: u16,
    input: &[u8],
    max: usize,
    what: &str,
    offset: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity(max.min(input.len().saturating_mul(4)));
    let got = match compressor {
        COMPRESSOR_GZIP => flate2::read::ZlibDecoder::new(input)
            .take(max as u64 + 1)
            .read_to_end(&mut out),
        COMPRESSOR_XZ => lzma_rust2::XzReader::new_mem_limit(input, false, XZ_MEM_LIMIT_KB)
            .take(max as u64 + 1)
            .read_to_end(&mut out),
        other => {
            return Err(invalid(
                what,
                offset,
                format!(
                    "compressor {} is not one pimg reads",
                    compressor_name(other)
                ),
            ))
        }
    };
    let n = got.map_err(|e| {
        invalid(
            what,
            offset,
            format!(
                "{} data does not decompress: {e}",
                compressor_name(compressor)
            ),
        )
    })?;
    if n > max {
        return Err(ReadError::Limit {
            what: format!("{what} (uncompressed)"),
            offset,
            value: n as u64,
            max: max as u64,
        });
    }
    Ok(out)
}

/// The directory entry type of an inode kind (the basic inode type).
fn entry_type(kind: SquashfsEntryKind) -> u16 {
    match kind {
        SquashfsEntryKind::Dir => INODE_DIR,
        SquashfsEntryKind::File => INODE_FILE,
        SquashfsEntryKind::Symlink => INODE_SYMLINK,
        SquashfsEntryKind::BlockDevice => INODE_BLOCK_DEV,
        SquashfsEntryKind::CharDevice => INODE_CHAR_DEV,
        SquashfsEntryKind::Fifo => INODE_FIFO,
        SquashfsEntryKind::Socket => INODE_SOCKET,
    }
}

/// The kind of an inode type, basic or extended (an extended type is its basic one plus 7).
fn kind_of(ty: u16) -> Option<SquashfsEntryKind> {
    use SquashfsEntryKind::*;
    let basic = if ty > INODE_SOCKET {
        ty - (INODE_EXT_DIR - INODE_DIR)
    } else {
        ty
    };
    [Dir, File, Symlink, BlockDevice, CharDevice, Fifo, Socket]
        .into_iter()
        .find(|&k| entry_type(k) == basic)
}

/// A name of a directory entry as text: UTF-8 as is, anything else escaped.
fn name_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => printable(b),
    }
}

impl<R: Read + Seek> Squashfs<R> {
    /// Opens the image of `len` bytes at the start of `reader`: checks the superblock and
    /// loads the id, fragment, inode and directory tables.
    pub fn open(reader: R, len: u64) -> Result<Squashfs<R>, ReadError> {
        let mut dev = Device::new(reader, 0, len, "squashfs image")?;
        let mut raw = [0u8; SUPERBLOCK_LEN];
        dev.read_at(0, &mut raw, "squashfs superblock")?;
        let sb = Superblock::parse(&raw);
        check_superblock(&sb, len)?;
        let mut img = Squashfs {
            dev,
            sb,
            ids: Vec::new(),
            fragments: Vec::new(),
            inodes: Table {
                what: "inode table",
                data: Vec::new(),
                starts: BTreeMap::new(),
            },
            dirs: Table {
                what: "directory table",
                data: Vec::new(),
                starts: BTreeMap::new(),
            },
            fragment_cache: None,
        };
        if img.sb.flags & FLAG_COMPRESSOR_OPTIONS != 0 {
            // Options only tune the encoder (and the xz dictionary, which the decoder's
            // memory limit bounds); check that the block is there and readable.
            img.metadata_block(
                SUPERBLOCK_LEN as u64,
                img.sb.inode_table,
                "compressor options",
            )?;
        }
        let ids = img.lookup_table(
            img.sb.id_table,
            u64::from(img.sb.id_count),
            4,
            IDS_PER_BLOCK,
            "id table",
        )?;
        img.ids = ids.chunks_exact(4).map(|c| le32(c, 0)).collect();
        let mut dir_end = img.first_table_block(img.sb.id_table, "id table index")?;
        if img.sb.fragment_count > 0 {
            if u64::from(img.sb.fragment_count) > MAX_FRAGMENTS {
                return Err(ReadError::Limit {
                    what: "squashfs fragment count".into(),
                    offset: 16,
                    value: u64::from(img.sb.fragment_count),
                    max: MAX_FRAGMENTS,
                });
            }
            let frags = img.lookup_table(
                img.sb.fragment_table,
                u64::from(img.sb.fragment_count),
                16,
                FRAGMENTS_PER_BLOCK,
                "fragment table",
            )?;
            img.fragments = frags
                .chunks_exact(16)
                .map(|c| (le64(c, 0), le32(c, 8)))
                .collect();
            dir_end =
                dir_end.min(img.first_table_block(img.sb.fragment_table, "fragment table index")?);
        }
        if img.sb.export_table != NO_TABLE {
            dir_end =
                dir_end.min(img.first_table_block(img.sb.export_table, "export table index")?);
        }
        if img.sb.xattr_table != NO_TABLE {
            dir_end = dir_end.min(img.sb.xattr_table);
        }
        if dir_end < img.sb.directory_table {
            return Err(invalid(
                "squashfs directory table",
                img.sb.directory_table,
                format!("starts after the table that follows it (at byte {dir_end})"),
            ));
        }
        img.inodes = img.load_table(img.sb.inode_table, img.sb.directory_table, "inode table")?;
        img.dirs = img.load_table(img.sb.directory_table, dir_end, "directory table")?;
        let root = img.inode(img.sb.root_inode, "root inode")?;
        if root.kind != SquashfsEntryKind::Dir {
            return Err(invalid(
                "squashfs root inode",
                32,
                format!("is a {:?}, not a directory", root.kind),
            ));
        }
        Ok(img)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The uid and gid values of the id table, in stored order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The root directory's mode, owners and mtime (as a listing with an empty path).
    pub fn root(&self) -> Result<SquashfsListing, ReadError> {
        let inode = self.inode(self.sb.root_inode, "root inode")?;
        Ok(self.listing(String::new(), self.sb.root_inode, &inode))
    }

    /// Reads one metadata block at `pos` ending before `end`: (uncompressed bytes, next pos).
    fn metadata_block(
        &mut self,
        pos: u64,
        end: u64,
        what: &str,
    ) -> Result<(Vec<u8>, u64), ReadError> {
        let mut h = [0u8; 2];
        if pos.checked_add(2).is_none_or(|e| e > end) {
            return Err(ReadError::Truncated {
                what: format!("squashfs {what} metadata block header"),
                offset: pos,
                needed: 2,
                end,
            });
        }
        self.dev.read_at(pos, &mut h, what)?;
        let word = u16::from_le_bytes(h);
        let stored = u64::from(word & !METADATA_UNCOMPRESSED);
        if stored == 0 || stored > METADATA_SIZE as u64 {
            return Err(invalid(
                &format!("squashfs {what} metadata block header"),
                pos,
                format!("block length {stored} is not 1 to 8192"),
            ));
        }
        let body_at = pos + 2;
        if body_at + stored > end {
            return Err(ReadError::Truncated {
                what: format!("squashfs {what} metadata block"),
                offset: body_at,
                needed: stored,
                end,
            });
        }
        let body = self.dev.read_vec(body_at, stored, what)?;
        let data = if word & METADATA_UNCOMPRESSED != 0 {
            body
        } else {
            decompress(
                self.sb.compressor,
                &body,
                METADATA_SIZE,
                &format!("squashfs {what} metadata block"),
                pos,
            )?
        };
        Ok((data, body_at + stored))
    }

    /// Loads the metadata blocks of [start, end) as one table.
    fn load_table(&mut self, start: u64, end: u64, what: &'static str) -> Result<Table, ReadError> {
        let mut t = Table {
            what,
            data: Vec::new(),
            starts: BTreeMap::new(),
        };
        let mut pos = start;
        while pos < end {
            t.starts.insert(pos - start, t.data.len());
            let (block, next) = self.metadata_block(pos, end, what)?;
            if (t.data.len() + block.len()) as u64 > MAX_TABLE {
                return Err(ReadError::Limit {
                    what: format!("squashfs {what} (uncompressed)"),
                    offset: pos,
                    value: (t.data.len() + block.len()) as u64,
                    max: MAX_TABLE,
                });
            }
            t.data.extend_from_slice(&block);
            pos = next;
        }
        // A reference just past the last block is where an empty directory's listing points.
        t.starts.insert(pos - start, t.data.len());
        Ok(t)
    }

    /// The first block pointer of a lookup table's index at `index`.
    fn first_table_block(&mut self, index: u64, what: &str) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.dev.read_at(index, &mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A lookup table of `count` records of `record_len` bytes: its index at `index`, each
    /// pointer a metadata block of `per_block` records lying before the index.
    fn lookup_table(
        &mut self,
        index: u64,
        count: u64,
        record_len: usize,
        per_block: usize,
        what: &str,
    ) -> Result<Vec<u8>, ReadError> {
        let blocks = count.div_ceil(per_block as u64);
        let index_len = blocks * 8;
        if index
            .checked_add(index_len)
            .is_none_or(|e| e > self.sb.bytes_used)
        {
            return Err(ReadError::Truncated {
                what: format!("squashfs {what} index"),
                offset: index,
                needed: index_len,
                end: self.sb.bytes_used,
            });
        }
        let raw = self.dev.read_vec(index, index_len, what)?;
        let mut out = Vec::new();
        for (i, p) in raw.chunks_exact(8).enumerate() {
            let ptr = le64(p, 0);
            if ptr < SUPERBLOCK_LEN as u64 || ptr >= index {
                return Err(invalid(
                    &format!("squashfs {what} index entry {i}"),
                    index + 8 * i as u64,
                    format!("points at byte {ptr}, outside bytes 96 to {index}"),
                ));
            }
            let (block, _) = self.metadata_block(ptr, index, what)?;
            let want = (count as usize - i * per_block).min(per_block) * record_len;
            if block.len() < want {
                return Err(invalid(
                    &format!("squashfs {what} metadata block"),
                    ptr,
                    format!("holds {} bytes, {want} expected", block.len()),
                ));
            }
            out.extend_from_slice(&block[..want]);
        }
        Ok(out)
    }

    fn id(&self, index: u16, what: &str, at: u64) -> Result<u32, ReadError> {
        self.ids.get(usize::from(index)).copied().ok_or_else(|| {
            invalid(
                what,
                at,
                format!(
                    "id index {index} is past the id table's {} entries",
                    self.ids.len()
                ),
            )
        })
    }

    /// Where the inode at `reference` starts in the uncompressed inode table.
    fn inode_pos(&self, reference: u64, what: &str) -> Result<usize, ReadError> {
        self.inodes
            .locate(reference >> 16, (reference & 0xFFFF) as u16, what)
    }

    /// Parses the inode at `reference`.
    fn inode(&self, reference: u64, what: &str) -> Result<Inode, ReadError> {
        let t = &self.inodes;
        let pos = self.inode_pos(reference, what)?;
        let at = pos as u64;
        let h = t.get(pos, INODE_HEADER_LEN, what)?;
        let ty = le16(h, 0);
        let mode = le16(h, 2) & 0o7777;
        let uid = self.id(le16(h, 4), what, at)?;
        let gid = self.id(le16(h, 6), what, at)?;
        let mtime = le32(h, 8);
        let number = le32(h, 12);
        let p = pos + INODE_HEADER_LEN;
        let bs = u64::from(self.sb.block_size);
        let kind = kind_of(ty).ok_or_else(|| {
            invalid(
                what,
                at,
                format!("inode type {ty} is not one of squashfs's 1 to 14"),
            )
        })?;
        let (nlink, body) = match ty {
            INODE_DIR | INODE_EXT_DIR => {
                // The extended form stores the listing size in 32 bits, the link count first.
                let (nlink, block, size, offset) = if ty == INODE_DIR {
                    let b = t.get(p, 16, what)?;
                    (le32(b, 4), le32(b, 0), u32::from(le16(b, 8)), le16(b, 10))
                } else {
                    let b = t.get(p, 24, what)?;
                    (le32(b, 0), le32(b, 8), le32(b, 4), le16(b, 18))
                };
                let body = Body::Dir {
                    block: u64::from(block),
                    size: u64::from(size),
                    offset,
                };
                (nlink, body)
            }
            INODE_FILE | INODE_EXT_FILE => {
                let (start, size, fragment, fragment_offset, nlink, fixed) = if ty == INODE_FILE {
                    let b = t.get(p, 16, what)?;
                    (
                        u64::from(le32(b, 0)),
                        u64::from(le32(b, 12)),
                        le32(b, 4),
                        le32(b, 8),
                        1,
                        16,
                    )
                } else {
                    let b = t.get(p, 40, what)?;
                    (
                        le64(b, 0),
                        le64(b, 8),
                        le32(b, 28),
                        le32(b, 32),
                        le32(b, 24),
                        40,
                    )
                };
                let blocks = if fragment == NO_FRAGMENT {
                    size.div_ceil(bs)
                } else {
                    size / bs
                };
                let sizes_at = p + fixed;
                let avail = (t.data.len().saturating_sub(sizes_at) / 4) as u64;
                if blocks > avail {
                    return Err(t.truncated(
                        &format!("{what}: block list of a {size}-byte file"),
                        sizes_at,
                        (blocks.saturating_mul(4)).min(usize::MAX as u64) as usize,
                    ));
                }
                let body = Body::File {
                    start,
                    size,
                    fragment,
                    fragment_offset,
                    sizes_at,
                    blocks: blocks as usize,
                };
                (nlink, body)
            }
            INODE_SYMLINK | INODE_EXT_SYMLINK => {
                let b = t.get(p, 8, what)?;
                let len = u64::from(le32(b, 4));
                if len > MAX_SYMLINK {
                    return Err(ReadError::Limit {
                        what: format!("{what}: symlink target length"),
                        offset: at,
                        value: len,
                        max: MAX_SYMLINK,
                    });
                }
                let target = t.get(p + 8, len as usize, what)?.to_vec();
                (le32(b, 0), Body::Symlink(target))
            }
            INODE_BLOCK_DEV | INODE_CHAR_DEV | INODE_EXT_BLOCK_DEV | INODE_EXT_CHAR_DEV => {
                let b = t.get(p, 8, what)?;
                (le32(b, 0), Body::Device(le32(b, 4)))
            }
            // A fifo or a socket, basic or extended: the link count only.
            _ => (le32(t.get(p, 4, what)?, 0), Body::Other),
        };
        Ok(Inode {
            kind,
            mode,
            uid,
            gid,
            mtime,
            number,
            nlink,
            body,
        })
    }

    fn listing(&self, path: String, reference: u64, inode: &Inode) -> SquashfsListing {
        let (size, target, rdev) = match &inode.body {
            Body::Dir { size, .. } => (*size, None, None),
            Body::File { size, .. } => (*size, None, None),
            Body::Symlink(t) => (t.len() as u64, Some(name_text(t)), None),
            Body::Device(r) => (0, None, Some(*r)),
            Body::Other => (0, None, None),
        };
        SquashfsListing {
            path,
            kind: inode.kind,
            mode: inode.mode,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
            size,
            target,
            rdev,
            nlink: inode.nlink,
            inode_number: inode.number,
            inode_ref: reference,
        }
    }

    /// The (name, inode reference, entry type) of each entry of a directory, checked: names
    /// valid and strictly increasing, headers within the format's limits.
    fn directory(&self, dir: &Inode, what: &str) -> Result<Vec<(Vec<u8>, u64, u16)>, ReadError> {
        let Body::Dir {
            block,
            offset,
            size,
        } = dir.body
        else {
            return Err(invalid(what, 0, "is not a directory"));
        };
        if size < 3 {
            return Err(invalid(
                what,
                block,
                format!("directory size {size} is less than the 3 every directory has"),
            ));
        }
        let t = &self.dirs;
        let start = t.locate(block, offset, what)?;
        let len = (size - 3) as usize;
        let listing = t.get(start, len, &format!("{what}: listing"))?;
        let mut out: Vec<(Vec<u8>, u64, u16)> = Vec::new();
        let mut p = 0usize;
        while p < len {
            let at = (start + p) as u64;
            let h = listing.get(p..p + DIR_HEADER_LEN).ok_or_else(|| {
                t.truncated(
                    &format!("{what}: directory header"),
                    start + p,
                    DIR_HEADER_LEN,
                )
            })?;
            let count = u64::from(le32(h, 0)) + 1;
            if count > DIR_HEADER_MAX_ENTRIES as u64 {
                return Err(invalid(
                    &format!("{what}: directory header in the directory table"),
                    at,
                    format!("announces {count} entries, the limit is 256"),
                ));
            }
            let inode_block = u64::from(le32(h, 4));
            p += DIR_HEADER_LEN;
            for _ in 0..count {
                let e = listing.get(p..p + DIR_ENTRY_LEN).ok_or_else(|| {
                    t.truncated(
                        &format!("{what}: directory entry"),
                        start + p,
                        DIR_ENTRY_LEN,
                    )
                })?;
                let entry_offset = le16(e, 0);
                let ty = le16(e, 4);
                let name_len = usize::from(le16(e, 6)) + 1;
                let at = (start + p) as u64;
                if name_len > MAX_NAME_LEN {
                    return Err(invalid(
                        &format!("{what}: directory entry in the directory table"),
                        at,
                        format!("name of {name_len} bytes, the limit is 256"),
                    ));
                }
                if !(INODE_DIR..=INODE_SOCKET).contains(&ty) {
                    return Err(invalid(
                        &format!("{what}: directory entry in the directory table"),
                        at,
                        format!("entry type {ty} is not 1 to 7"),
                    ));
                }
                p += DIR_ENTRY_LEN;
                let name = listing.get(p..p + name_len).ok_or_else(|| {
                    t.truncated(
                        &format!("{what}: directory entry name"),
                        start + p,
                        name_len,
                    )
                })?;
                p += name_len;
                if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
                    return Err(invalid(
                        &format!("{what}: directory entry in the directory table"),
                        at,
                        format!("name \"{}\" is not a file name", printable(name)),
                    ));
                }
                if let Some((last, _, _)) = out.last() {
                    if name <= last.as_slice() {
                        return Err(invalid(
                            &format!("{what}: directory entry in the directory table"),
                            at,
                            format!(
                                "name \"{}\" does not sort after \"{}\" (names repeat or are out of order)",
                                printable(name),
                                printable(last)
                            ),
                        ));
                    }
                }
                out.push((
                    name.to_vec(),
                    (inode_block << 16) | u64::from(entry_offset),
                    ty,
                ));
            }
        }
        Ok(out)
    }

    /// Every entry below the root, sorted by path bytes. Fails on damage anywhere in the
    /// directory tree.
    pub fn entries(&self) -> Result<Vec<SquashfsListing>, ReadError> {
        let root = self.inode(self.sb.root_inode, "root inode")?;
        let mut out = Vec::new();
        // Directories by where their inode is (two references can name one place).
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        seen.insert(self.inode_pos(self.sb.root_inode, "root inode")?);
        let mut bytes = 0u64;
        let mut stack: Vec<(String, Inode, usize)> = vec![(String::new(), root, 0)];
        while let Some((prefix, dir, depth)) = stack.pop() {
            let what = if prefix.is_empty() {
                "root directory".to_string()
            } else {
                format!("directory '{prefix}'")
            };
            for (name, reference, ty) in self.directory(&dir, &what)? {
                let path = if prefix.is_empty() {
                    name_text(&name)
                } else {
                    format!("{prefix}/{}", name_text(&name))
                };
                if out.len() >= MAX_ENTRIES {
                    return Err(ReadError::Limit {
                        what: "squashfs entries".into(),
                        offset: reference,
                        value: out.len() as u64 + 1,
                        max: MAX_ENTRIES as u64,
                    });
                }
                let inode = self.inode(reference, &format!("inode of '{path}'"))?;
                if entry_type(inode.kind) != ty {
                    return Err(invalid(
                        &format!("directory entry '{path}'"),
                        reference,
                        format!(
                            "says type {ty}, but its inode is a {:?} (type {})",
                            inode.kind,
                            entry_type(inode.kind)
                        ),
                    ));
                }
                bytes += path.len() as u64
                    + match &inode.body {
                        Body::Symlink(t) => t.len() as u64,
                        _ => 0,
                    };
                if bytes > MAX_LISTING {
                    return Err(ReadError::Limit {
                        what: "squashfs listing (bytes of paths and targets)".into(),
                        offset: reference,
                        value: bytes,
                        max: MAX_LISTING,
                    });
                }
                out.push(self.listing(path.clone(), reference, &inode));
                if inode.kind == SquashfsEntryKind::Dir {
                    if !seen.insert(self.inode_pos(reference, &path)?) {
                        return Err(invalid(
                            &format!("directory '{path}'"),
                            reference,
                            "is reached a second time (a directory loop)",
                        ));
                    }
                    if depth + 1 >= MAX_DEPTH {
                        return Err(ReadError::Limit {
                            what: format!("directory depth at '{path}'"),
                            offset: reference,
                            value: depth as u64 + 2,
                            max: MAX_DEPTH as u64,
                        });
                    }
                    stack.push((path, inode, depth + 1));
                }
            }
        }
        out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(out)
    }

    /// The entry at `path` ("a/b/c"), found by walking from the root.
    pub fn lookup(&self, path: &str) -> Result<SquashfsListing, ReadError> {
        let mut dir = self.inode(self.sb.root_inode, "root inode")?;
        let mut found = None;
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() > MAX_DEPTH {
            return Err(ReadError::NotFound { path: path.into() });
        }
        for (i, part) in parts.iter().enumerate() {
            if dir.kind != SquashfsEntryKind::Dir {
                return Err(ReadError::NotFound { path: path.into() });
            }
            let sub = parts[..=i].join("/");
            let reference = self
                .directory(&dir, &format!("directory of '{sub}'"))?
                .into_iter()
                .find(|(n, _, _)| n == part.as_bytes())
                .map(|(_, r, _)| r)
                .ok_or_else(|| ReadError::NotFound { path: path.into() })?;
            dir = self.inode(reference, &format!("inode of '{sub}'"))?;
            found = Some((sub, reference));
        }
        let (sub, reference) = found.ok_or_else(|| ReadError::NotFound { path: path.into() })?;
        Ok(self.listing(sub, reference, &dir))
    }

    /// A fragment block, decompressed (the last one is kept for the next small file).
    fn fragment(&mut self, index: u32, what: &str, at: u64) -> Result<&[u8], ReadError> {
        if self
            .fragment_cache
            .as_ref()
            .is_none_or(|(i, _)| *i != index)
        {
            let &(start, word) = self.fragments.get(index as usize).ok_or_else(|| {
                invalid(
                    what,
                    at,
                    format!(
                        "fragment {index} is past the fragment table's {} entries",
                        self.fragments.len()
                    ),
                )
            })?;
            let data = self.data_block(start, word, u64::from(self.sb.block_size), true, what)?;
            self.fragment_cache = Some((index, data));
        }
        Ok(self
            .fragment_cache
            .as_ref()
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[]))
    }

    /// One data or fragment block at `pos` with stored size word `word`, holding `expect`
    /// bytes (at most, for a fragment block).
    fn data_block(
        &mut self,
        pos: u64,
        word: u32,
        expect: u64,
        fragment: bool,
        what: &str,
    ) -> Result<Vec<u8>, ReadError> {
        let stored = u64::from(word & !BLOCK_UNCOMPRESSED);
        let bs = u64::from(self.sb.block_size);
        if stored > bs {
            return Err(invalid(
                what,
                pos,
                format!(
                    "block size word 0x{word:08x}: {stored} bytes is more than the block size {bs}"
                ),
            ));
        }
        if pos
            .checked_add(stored)
            .is_none_or(|e| e > self.sb.inode_table)
        {
            return Err(invalid(
                what,
                pos,
                format!(
                    "a block of {stored} bytes here reaches past the data, which ends at byte {}",
                    self.sb.inode_table
                ),
            ));
        }
        if stored == 0 {
            if fragment {
                return Err(invalid(what, pos, "fragment block of 0 bytes"));
            }
            return Ok(vec![0u8; expect as usize]);
        }
        let raw = self.dev.read_vec(pos, stored, what)?;
        let data = if word & BLOCK_UNCOMPRESSED != 0 {
            raw
        } else {
            decompress(self.sb.compressor, &raw, expect as usize, what, pos)?
        };
        if !fragment && data.len() as u64 != expect {
            return Err(invalid(
                what,
                pos,
                format!("block holds {} bytes, {expect} expected", data.len()),
            ));
        }
        Ok(data)
    }

    /// The content of the file `entry` (from [`entries`](Self::entries) or
    /// [`lookup`](Self::lookup)); more than `limit` bytes is a `Limit` error.
    pub fn read_file(&mut self, entry: &SquashfsListing, limit: u64) -> Result<Vec<u8>, ReadError> {
        let what = format!("file '{}'", entry.path);
        let inode = self.inode(entry.inode_ref, &what)?;
        let Body::File {
            start,
            size,
            fragment,
            fragment_offset,
            sizes_at,
            blocks,
        } = inode.body
        else {
            return Err(invalid(&what, entry.inode_ref, "is not a regular file"));
        };
        if size > limit {
            return Err(ReadError::Limit {
                what: format!("size of {what}"),
                offset: entry.inode_ref,
                value: size,
                max: limit,
            });
        }
        let bs = u64::from(self.sb.block_size);
        let mut out = Vec::with_capacity(size.min(64 << 20) as usize);
        let mut pos = start;
        for i in 0..blocks {
            let word = le32(self.inodes.get(sizes_at + 4 * i, 4, &what)?, 0);
            let expect = (size - i as u64 * bs).min(bs);
            let block = self.data_block(pos, word, expect, false, &what)?;
            pos += u64::from(word & !BLOCK_UNCOMPRESSED);
            out.extend_from_slice(&block);
        }
        let tail = size - out.len() as u64;
        if fragment != NO_FRAGMENT {
            let frag = self.fragment(fragment, &what, entry.inode_ref)?;
            let from = u64::from(fragment_offset);
            let piece = from
                .checked_add(tail)
                .and_then(|end| frag.get(from as usize..end as usize))
                .ok_or_else(|| {
                    invalid(
                        &what,
                        entry.inode_ref,
                        format!(
                            "its {tail} bytes at offset {from} of fragment {fragment} are past the fragment's {} bytes",
                            frag.len()
                        ),
                    )
                })?;
            out.extend_from_slice(piece);
        } else if tail != 0 {
            return Err(invalid(
                &what,
                entry.inode_ref,
                "has no fragment for its last bytes",
            ));
        }
        Ok(out)
    }

    /// The content of the file at `path`, at most `limit` bytes.
    pub fn read_path(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let entry = self.lookup(path)?;
        self.read_file(&entry, limit)
    }
}

/// The superblock's own rules and the order of the tables it points at.
fn check_superblock(sb: &Superblock, len: u64) -> Result<(), ReadError> {
    if sb.magic != MAGIC {
        return Err(invalid(
            "squashfs superblock magic",
            0,
            format!("is \"{}\", not \"hsqs\"", printable(&sb.magic)),
        ));
    }
    if (sb.version_major, sb.version_minor) != VERSION {
        return Err(invalid(
            "squashfs superblock version",
            28,
            format!(
                "is {}.{}; pimg reads squashfs 4.0",
                sb.version_major, sb.version_minor
            ),
        ));
    }
    if sb.compressor != COMPRESSOR_GZIP && sb.compressor != COMPRESSOR_XZ {
        return Err(invalid(
            "squashfs superblock compressor",
            20,
            format!(
                "is {}; pimg reads gzip and xz images (rebuild the image with `mksquashfs -comp gzip` or `-comp xz`)",
                compressor_name(sb.compressor)
            ),
        ));
    }
    let bs = sb.block_size;
    if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
        return Err(invalid(
            "squashfs superblock block size",
            12,
            format!("is {bs}, not a power of two from 4096 to 1048576"),
        ));
    }
    if u32::from(sb.block_log) != bs.trailing_zeros() {
        return Err(invalid(
            "squashfs superblock block log",
            22,
            format!(
                "is {}, but the block size {bs} is 2^{}",
                sb.block_log,
                bs.trailing_zeros()
            ),
        ));
    }
    if sb.bytes_used > len {
        return Err(ReadError::Truncated {
            what: "squashfs image (bytes used)".into(),
            offset: 0,
            needed: sb.bytes_used,
            end: len,
        });
    }
    if sb.id_count == 0 {
        return Err(invalid(
            "squashfs superblock id count",
            26,
            "is 0; every image has an owner",
        ));
    }
    let order = [
        ("inode table", sb.inode_table, 64),
        ("directory table", sb.directory_table, 72),
        ("id table", sb.id_table, 48),
    ];
    let mut prev = ("superblock", SUPERBLOCK_LEN as u64);
    for (name, at, field) in order {
        if at < prev.1 || at > sb.bytes_used {
            return Err(invalid(
                &format!("squashfs superblock {name} start"),
                field,
                format!(
                    "is byte {at}; it must lie after the {} (byte {}) and within the {} bytes used",
                    prev.0, prev.1, sb.bytes_used
                ),
            ));
        }
        prev = (name, at);
    }
    if sb.inode_table == sb.directory_table {
        return Err(invalid("squashfs inode table", sb.inode_table, "is empty"));
    }
    Ok(())
}
