//! squashfs 4.0: what the writer and the reader share. The superblock, the inode and
//! directory records, the metadata block and lookup table rules, and the compressors.
//!
//! Everything is little-endian. The image is: superblock, data blocks and fragment blocks,
//! inode table, directory table, fragment table, id table (each table a run of metadata
//! blocks of at most 8 KiB uncompressed, the last three behind an index of u64 pointers),
//! then zero padding to a multiple of 4 KiB.

use crate::codec::reader::{le16, le32, le64, Field};
use serde::Serialize;

pub mod read;
pub mod write;

#[cfg(test)]
mod tests;

/// "hsqs": the magic at byte 0.
pub const MAGIC: [u8; 4] = *b"hsqs";
/// Bytes in the superblock.
pub const SUPERBLOCK_LEN: usize = 96;
/// The only version pimg writes and reads.
pub const VERSION: (u16, u16) = (4, 0);
/// Uncompressed bytes in one metadata block (all but the last of a table are full).
pub const METADATA_SIZE: usize = 8192;
/// Set in a metadata block's 2-byte header when the block is stored uncompressed.
pub const METADATA_UNCOMPRESSED: u16 = 0x8000;
/// Set in a data or fragment block's size word when the block is stored uncompressed.
pub const BLOCK_UNCOMPRESSED: u32 = 1 << 24;
/// Smallest and largest block size the format allows (both powers of two).
pub const MIN_BLOCK_SIZE: u32 = 4096;
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;
/// The block size mksquashfs and pimg use unless told otherwise.
pub const DEFAULT_BLOCK_SIZE: u32 = 128 * 1024;
/// The image is padded with zeros to a multiple of this (as mksquashfs does), so it can be
/// used as a block device.
pub const PADDING: u64 = 4096;
/// "No such table" or "no fragment" in a 64- or 32-bit field.
pub const NO_TABLE: u64 = u64::MAX;
pub const NO_FRAGMENT: u32 = u32::MAX;
/// Longest name of a directory entry.
pub const MAX_NAME_LEN: usize = 256;
/// Most entries under one directory header.
pub const DIR_HEADER_MAX_ENTRIES: usize = 256;
/// Bytes of a directory header and of a directory entry before its name.
pub const DIR_HEADER_LEN: usize = 12;
pub const DIR_ENTRY_LEN: usize = 8;
/// Entries of one lookup table metadata block: fragments (16 bytes each), ids (4 bytes).
pub const FRAGMENTS_PER_BLOCK: usize = METADATA_SIZE / 16;
pub const IDS_PER_BLOCK: usize = METADATA_SIZE / 4;
/// Most distinct uid and gid values an image holds (indices are 16 bits).
pub const MAX_IDS: usize = 65536;

/// Superblock flag bits.
pub const FLAG_UNCOMPRESSED_INODES: u16 = 0x0001;
pub const FLAG_UNCOMPRESSED_DATA: u16 = 0x0002;
pub const FLAG_UNCOMPRESSED_FRAGMENTS: u16 = 0x0008;
pub const FLAG_NO_FRAGMENTS: u16 = 0x0010;
pub const FLAG_ALWAYS_FRAGMENTS: u16 = 0x0020;
pub const FLAG_DUPLICATES: u16 = 0x0040;
pub const FLAG_EXPORTABLE: u16 = 0x0080;
pub const FLAG_UNCOMPRESSED_XATTRS: u16 = 0x0100;
pub const FLAG_NO_XATTRS: u16 = 0x0200;
pub const FLAG_COMPRESSOR_OPTIONS: u16 = 0x0400;
pub const FLAG_UNCOMPRESSED_IDS: u16 = 0x0800;

/// Inode types (the basic ones are also the directory entry types).
pub const INODE_DIR: u16 = 1;
pub const INODE_FILE: u16 = 2;
pub const INODE_SYMLINK: u16 = 3;
pub const INODE_BLOCK_DEV: u16 = 4;
pub const INODE_CHAR_DEV: u16 = 5;
pub const INODE_FIFO: u16 = 6;
pub const INODE_SOCKET: u16 = 7;
pub const INODE_EXT_DIR: u16 = 8;
pub const INODE_EXT_FILE: u16 = 9;
pub const INODE_EXT_SYMLINK: u16 = 10;
pub const INODE_EXT_BLOCK_DEV: u16 = 11;
pub const INODE_EXT_CHAR_DEV: u16 = 12;
pub const INODE_EXT_FIFO: u16 = 13;
pub const INODE_EXT_SOCKET: u16 = 14;
/// Bytes of the header every inode starts with.
pub const INODE_HEADER_LEN: usize = 16;

/// Compressor ids of the superblock.
pub const COMPRESSOR_GZIP: u16 = 1;
pub const COMPRESSOR_LZMA: u16 = 2;
pub const COMPRESSOR_LZO: u16 = 3;
pub const COMPRESSOR_XZ: u16 = 4;
pub const COMPRESSOR_LZ4: u16 = 5;
pub const COMPRESSOR_ZSTD: u16 = 6;

/// The name squashfs-tools gives a compressor id.
pub fn compressor_name(id: u16) -> String {
    match id {
        COMPRESSOR_GZIP => "gzip".into(),
        COMPRESSOR_LZMA => "lzma".into(),
        COMPRESSOR_LZO => "lzo".into(),
        COMPRESSOR_XZ => "xz".into(),
        COMPRESSOR_LZ4 => "lz4".into(),
        COMPRESSOR_ZSTD => "zstd".into(),
        other => format!("unknown compressor {other}"),
    }
}

/// How data and metadata blocks are compressed; each block on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Compression {
    /// zlib streams (what squashfs calls gzip) from miniz_oxide, level 0..=9.
    Gzip { level: u32 },
    /// xz streams (CRC32 check, LZMA2, dictionary = block size) from lzma-rust2, preset 0..=9.
    Xz { preset: u32 },
}

impl Compression {
    /// The superblock's compressor id.
    pub fn id(self) -> u16 {
        match self {
            Compression::Gzip { .. } => COMPRESSOR_GZIP,
            Compression::Xz { .. } => COMPRESSOR_XZ,
        }
    }
}

/// A reference into the inode or directory table: the metadata block's offset from the table
/// start (compressed bytes) in the high bits, the offset inside its uncompressed content low.
pub fn inode_ref(block: u64, offset: u16) -> u64 {
    (block << 16) | u64::from(offset)
}

/// The superblock, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superblock {
    pub magic: [u8; 4],
    pub inode_count: u32,
    pub mkfs_time: u32,
    pub block_size: u32,
    pub fragment_count: u32,
    pub compressor: u16,
    pub block_log: u16,
    pub flags: u16,
    pub id_count: u16,
    pub version_major: u16,
    pub version_minor: u16,
    pub root_inode: u64,
    pub bytes_used: u64,
    pub id_table: u64,
    pub xattr_table: u64,
    pub inode_table: u64,
    pub directory_table: u64,
    pub fragment_table: u64,
    pub export_table: u64,
}

/// Byte offset, length and name of each superblock field, in on-disk order.
const SUPERBLOCK_FIELDS: [(usize, usize, &str); 19] = [
    (0, 4, "magic"),
    (4, 4, "inode count"),
    (8, 4, "modification time"),
    (12, 4, "block size"),
    (16, 4, "fragment count"),
    (20, 2, "compressor"),
    (22, 2, "block log"),
    (24, 2, "flags"),
    (26, 2, "id count"),
    (28, 2, "version major"),
    (30, 2, "version minor"),
    (32, 8, "root inode"),
    (40, 8, "bytes used"),
    (48, 8, "id table"),
    (56, 8, "xattr id table"),
    (64, 8, "inode table"),
    (72, 8, "directory table"),
    (80, 8, "fragment table"),
    (88, 8, "export table"),
];

impl Superblock {
    /// Parses the first 96 bytes of an image (no check of the values).
    pub fn parse(b: &[u8; SUPERBLOCK_LEN]) -> Superblock {
        Superblock {
            magic: [b[0], b[1], b[2], b[3]],
            inode_count: le32(b, 4),
            mkfs_time: le32(b, 8),
            block_size: le32(b, 12),
            fragment_count: le32(b, 16),
            compressor: le16(b, 20),
            block_log: le16(b, 22),
            flags: le16(b, 24),
            id_count: le16(b, 26),
            version_major: le16(b, 28),
            version_minor: le16(b, 30),
            root_inode: le64(b, 32),
            bytes_used: le64(b, 40),
            id_table: le64(b, 48),
            xattr_table: le64(b, 56),
            inode_table: le64(b, 64),
            directory_table: le64(b, 72),
            fragment_table: le64(b, 80),
            export_table: le64(b, 88),
        }
    }

    /// The 96 bytes of the superblock.
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        let mut b = [0u8; SUPERBLOCK_LEN];
        b[0..4].copy_from_slice(&self.magic);
        // The fields after the magic, in the order of SUPERBLOCK_FIELDS, which places them.
        let values = [
            u64::from(self.inode_count),
            u64::from(self.mkfs_time),
            u64::from(self.block_size),
            u64::from(self.fragment_count),
            u64::from(self.compressor),
            u64::from(self.block_log),
            u64::from(self.flags),
            u64::from(self.id_count),
            u64::from(self.version_major),
            u64::from(self.version_minor),
            self.root_inode,
            self.bytes_used,
            self.id_table,
            self.xattr_table,
            self.inode_table,
            self.directory_table,
            self.fragment_table,
            self.export_table,
        ];
        for (&(at, len, _), v) in SUPERBLOCK_FIELDS[1..].iter().zip(values) {
            // Little-endian, so the low `len` bytes are the field.
            b[at..at + len].copy_from_slice(&v.to_le_bytes()[..len]);
        }
        b
    }

    /// Every field with its byte range, in on-disk order (for inspect and diff).
    pub fn fields(&self) -> Vec<Field> {
        let raw = self.encode();
        SUPERBLOCK_FIELDS
            .iter()
            .map(|&(at, len, name)| {
                let value = match name {
                    "magic" => format!("{:?}", crate::codec::reader::printable(&self.magic)),
                    "compressor" => compressor_name(self.compressor),
                    "flags" => format!("0x{:04x}", self.flags),
                    _ => match len {
                        2 => le16(&raw, at).to_string(),
                        4 => le32(&raw, at).to_string(),
                        _ => match le64(&raw, at) {
                            NO_TABLE => "none".into(),
                            v => v.to_string(),
                        },
                    },
                };
                Field::new(name, at as u64, len as u64, value)
            })
            .collect()
    }
}
