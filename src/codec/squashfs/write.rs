//! squashfs 4.0 writer: a tree of files, directories and symlinks to image bytes, the same
//! bytes for the same entries and options on any host and for any thread count.
//!
//! Directories are sorted by name bytes; inodes are numbered and written in one fixed order
//! (depth first, a directory after everything under it, so the root is last as with
//! mksquashfs); every mtime is the caller's; ids are sorted. Every block is compressed on its
//! own, so blocks can be compressed in parallel and put back in index order. Files smaller
//! than a block are packed into fragment blocks in that same order; larger files keep their
//! tail in a short block (mksquashfs's default). No duplicate detection, no xattrs, no export
//! table.

use super::{
    inode_ref, Compression, Superblock, BLOCK_UNCOMPRESSED, DIR_ENTRY_LEN, DIR_HEADER_LEN,
    DIR_HEADER_MAX_ENTRIES, FLAG_NO_XATTRS, FRAGMENTS_PER_BLOCK, IDS_PER_BLOCK, INODE_DIR,
    INODE_EXT_DIR, INODE_EXT_FILE, INODE_FILE, INODE_SYMLINK, MAGIC, MAX_BLOCK_SIZE, MAX_IDS,
    MAX_NAME_LEN, METADATA_SIZE, METADATA_UNCOMPRESSED, MIN_BLOCK_SIZE, NO_FRAGMENT, NO_TABLE,
    PADDING, SUPERBLOCK_LEN, VERSION,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Longest symlink target the writer accepts (Linux's PATH_MAX without its NUL).
pub const MAX_SYMLINK_LEN: usize = 4095;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquashfsKind<'a> {
    /// A regular file with its content.
    File(&'a [u8]),
    /// A directory.
    Dir,
    /// A symbolic link with its target.
    Symlink(&'a str),
}

/// One entry of the image: everything that reaches its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquashfsEntry<'a> {
    /// "a/b/c": no leading or trailing '/', no empty, "." or ".." part; the root is implicit.
    pub path: &'a str,
    pub kind: SquashfsKind<'a>,
    /// Permission bits only (0o7777 at most).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
}

/// How the image is built; every field reaches the bytes except `threads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquashfsOptions {
    /// Every inode's mtime and the superblock's mkfs time.
    pub mtime: u32,
    /// Data block size: a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    pub compression: Compression,
    /// Blocks compressed at once; the output does not depend on it.
    pub threads: usize,
}

impl Default for SquashfsOptions {
    fn default() -> Self {
        SquashfsOptions {
            mtime: 0,
            block_size: super::DEFAULT_BLOCK_SIZE,
            compression: Compression::Gzip { level: 9 },
            threads: 1,
        }
    }
}

/// What went into an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SquashfsStats {
    /// Inodes, the root included.
    pub inodes: u32,
    pub files: u32,
    /// Directories, the root included.
    pub directories: u32,
    pub symlinks: u32,
    /// Data blocks of files (fragment blocks not counted).
    pub data_blocks: u64,
    pub fragment_blocks: u32,
    /// Data and fragment blocks stored uncompressed because compression did not shrink them.
    pub stored_uncompressed: u64,
    /// Distinct uid and gid values.
    pub ids: u32,
    /// Bytes up to the end of the last table (the superblock's "bytes used").
    pub bytes_used: u64,
    /// Bytes written, padding included.
    pub image_len: u64,
}

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("squashfs entry '{path}': {reason}; give a relative path like \"a/b/c\"")]
    BadName { path: String, reason: &'static str },
    #[error("squashfs entry '{path}' is given twice; keep one of them")]
    Duplicate { path: String },
    #[error(
        "squashfs entry '{path}': its parent directory '{parent}' is not among the entries; add it"
    )]
    MissingParent { path: String, parent: String },
    #[error("squashfs entry '{path}': its parent '{parent}' is not a directory")]
    ParentNotDirectory { path: String, parent: String },
    #[error("squashfs entry '{path}': mode 0{mode:o} has bits beyond the permission bits 07777")]
    BadMode { path: String, mode: u16 },
    #[error("squashfs entry '{path}': symlink target {reason}")]
    BadSymlink { path: String, reason: String },
    #[error("squashfs option {field} is {value}: {reason}")]
    BadOption {
        field: &'static str,
        value: u64,
        reason: &'static str,
    },
    #[error("squashfs image needs {count} distinct uid and gid values; the format holds {max}")]
    TooManyIds { count: usize, max: usize },
    #[error("squashfs image: {what} is {value}, more than the format holds ({max})")]
    TooLarge {
        what: &'static str,
        value: u64,
        max: u64,
    },
    #[error("compressing a squashfs block: {source}")]
    Compress {
        #[source]
        source: io::Error,
    },
    #[error("writing the squashfs image: {source}")]
    Io {
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Copy)]
enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
}

struct Node<'a> {
    name: &'a [u8],
    kind: Kind<'a>,
    mode: u16,
    uid: u32,
    gid: u32,
    parent: usize,
    /// Sorted by name bytes (directories only).
    children: Vec<usize>,
}

fn bad_name(path: &str, reason: &'static str) -> SquashfsError {
    SquashfsError::BadName {
        path: path.to_string(),
        reason,
    }
}

fn check_entry(e: &SquashfsEntry) -> Result<(), SquashfsError> {
    let path = e.path;
    if path.is_empty() {
        return Err(bad_name(path, "the path is empty"));
    }
    if path.starts_with('/') {
        return Err(bad_name(path, "the path starts with '/'"));
    }
    if path.ends_with('/') {
        return Err(bad_name(path, "the path ends with '/'"));
    }
    if path.contains('\0') {
        return Err(bad_name(path, "the path holds a NUL byte"));
    }
    for part in path.split('/') {
        if part.is_empty() {
            return Err(bad_name(path, "the path has an empty part ('//')"));
        }
        if part == "." || part == ".." {
            return Err(bad_name(path, "the path has a '.' or '..' part"));
        }
        if part.len() > MAX_NAME_LEN {
            return Err(bad_name(
                path,
                "a part of the path is longer than 256 bytes",
            ));
        }
    }
    if e.mode & !0o7777 != 0 {
        return Err(SquashfsError::BadMode {
            path: path.to_string(),
            mode: e.mode,
        });
    }
    if let SquashfsKind::Symlink(target) = e.kind {
        let reason = if target.is_empty() {
            Some("is empty".to_string())
        } else if target.len() > MAX_SYMLINK_LEN {
            Some(format!(
                "is {} bytes, the limit is {MAX_SYMLINK_LEN}",
                target.len()
            ))
        } else if target.contains('\0') {
            Some("holds a NUL byte".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(SquashfsError::BadSymlink {
                path: path.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

fn check_options(opts: &SquashfsOptions) -> Result<(), SquashfsError> {
    let bs = opts.block_size;
    if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
        return Err(SquashfsError::BadOption {
            field: "block_size",
            value: u64::from(bs),
            reason: "must be a power of two from 4096 to 1048576",
        });
    }
    let (field, level) = match opts.compression {
        Compression::Gzip { level } => ("gzip level", level),
        Compression::Xz { preset } => ("xz preset", preset),
    };
    if level > 9 {
        return Err(SquashfsError::BadOption {
            field,
            value: u64::from(level),
            reason: "must be 0 to 9",
        });
    }
    Ok(())
}

/// The tree of entries under an implicit root (node 0), children sorted by name bytes.
fn build_tree<'a>(
    entries: &'a [SquashfsEntry<'a>],
    root_mode: u16,
) -> Result<Vec<Node<'a>>, SquashfsError> {
    if root_mode & !0o7777 != 0 {
        return Err(SquashfsError::BadMode {
            path: "/".into(),
            mode: root_mode,
        });
    }
    let mut by_path: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if by_path.insert(e.path, i).is_some() {
            return Err(SquashfsError::Duplicate {
                path: e.path.to_string(),
            });
        }
    }
    let mut nodes = vec![Node {
        name: b"",
        kind: Kind::Dir,
        mode: root_mode,
        uid: 0,
        gid: 0,
        parent: 0,
        children: Vec::new(),
    }];
    // Sorted paths, so the first error reported does not depend on the entries' order.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (&path, &i) in &by_path {
        let e = &entries[i];
        check_entry(e)?;
        let (parent_path, name) = match path.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, path),
        };
        let parent = match parent_path {
            None => 0,
            // A parent sorts before its children ("a" < "a/b"), so it is already indexed.
            Some(p) => match index.get(p) {
                Some(&n) => n,
                None => {
                    return Err(SquashfsError::MissingParent {
                        path: path.to_string(),
                        parent: p.to_string(),
                    })
                }
            },
        };
        if !matches!(nodes[parent].kind, Kind::Dir) {
            return Err(SquashfsError::ParentNotDirectory {
                path: path.to_string(),
                parent: parent_path.unwrap_or("/").to_string(),
            });
        }
        let kind = match e.kind {
            SquashfsKind::File(d) => Kind::File(d),
            SquashfsKind::Dir => Kind::Dir,
            SquashfsKind::Symlink(t) => Kind::Symlink(t),
        };
        let n = nodes.len();
        nodes.push(Node {
            name: name.as_bytes(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            parent,
            children: Vec::new(),
        });
        nodes[parent].children.push(n);
        index.insert(path, n);
    }
    // Siblings share their parent's prefix, so path order is name order already; the sort
    // keeps the listing order from depending on how the map above iterates.
    let names: Vec<&[u8]> = nodes.iter().map(|n| n.name).collect();
    for node in &mut nodes {
        node.children.sort_by(|&a, &b| names[a].cmp(names[b]));
    }
    Ok(nodes)
}

/// Nodes in inode order: depth first, children by name, a directory after its subtree.
fn post_order(nodes: &[Node]) -> Vec<usize> {
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack = vec![(0usize, 0usize)];
    while let Some((n, next)) = stack.pop() {
        match nodes[n].children.get(next) {
            Some(&c) => {
                stack.push((n, next + 1));
                if nodes[c].children.is_empty() {
                    order.push(c);
                } else {
                    stack.push((c, 0));
                }
            }
            None => order.push(n),
        }
    }
    order
}

/// Compresses one block; `None` when compression does not shrink it (stored as is). A gzip
/// block that a fast level-1 pass cannot shrink is stored without trying its level.
fn compress(data: &[u8], compression: Compression, block_size: u32) -> io::Result<Option<Vec<u8>>> {
    let out = match compression {
        Compression::Gzip { level }
            if level > 1 && !crate::codec::deflate::fast_pass_shrinks(data) =>
        {
            return Ok(None)
        }
        Compression::Gzip { level } => {
            crate::codec::deflate::zlib(data, level).map_err(io::Error::other)?
        }
        Compression::Xz { preset } => {
            let mut o = lzma_rust2::XzOptions::with_preset(preset);
            // The kernel's decoder is sized for a dictionary of one block.
            o.lzma_options.dict_size = block_size;
            o.set_check_sum_type(lzma_rust2::CheckType::Crc32);
            let mut x = lzma_rust2::XzWriter::new(Vec::with_capacity(data.len() / 2), o)?;
            x.write_all(data)?;
            x.finish()?
        }
    };
    Ok((out.len() < data.len()).then_some(out))
}

/// A compressed block, `None` when stored as is.
type Packed = io::Result<Option<Vec<u8>>>;

/// Compresses every block, `threads` at a time; results in block order.
fn compress_all(
    blocks: &[&[u8]],
    opts: &SquashfsOptions,
) -> Result<Vec<Option<Vec<u8>>>, SquashfsError> {
    let threads = opts.threads.clamp(1, blocks.len().max(1));
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Packed)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = blocks.get(i) else { break };
                    mine.push((i, compress(b, opts.compression, opts.block_size)));
                }
                done.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter()
        .map(|(_, r)| r.map_err(|source| SquashfsError::Compress { source }))
        .collect()
}

/// A table of metadata blocks, each compressed as soon as it is full, so the position of the
/// block being filled is known while writing it.
struct Metadata {
    out: Vec<u8>,
    cur: Vec<u8>,
    compression: Compression,
    block_size: u32,
}

impl Metadata {
    fn new(opts: &SquashfsOptions) -> Metadata {
        Metadata {
            out: Vec::new(),
            cur: Vec::with_capacity(METADATA_SIZE),
            compression: opts.compression,
            block_size: opts.block_size,
        }
    }

    /// (offset of the current block from the table start, offset inside it).
    fn pos(&self) -> (u64, u16) {
        (self.out.len() as u64, self.cur.len() as u16)
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result<(), SquashfsError> {
        while !bytes.is_empty() {
            let take = (METADATA_SIZE - self.cur.len()).min(bytes.len());
            self.cur.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.cur.len() == METADATA_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SquashfsError> {
        let packed = compress(&self.cur, self.compression, self.block_size)
            .map_err(|source| SquashfsError::Compress { source })?;
        let (header, body) = match &packed {
            Some(c) => (c.len() as u16, c.as_slice()),
            None => (
                self.cur.len() as u16 | METADATA_UNCOMPRESSED,
                self.cur.as_slice(),
            ),
        };
        self.out.extend_from_slice(&header.to_le_bytes());
        self.out.extend_from_slice(body);
        self.cur.clear();
        Ok(())
    }

    /// The table's bytes and the start offsets of its blocks.
    fn finish(mut self) -> Result<Vec<u8>, SquashfsError> {
        if !self.cur.is_empty() {
            self.flush()?;
        }
        Ok(self.out)
    }
}

/// A lookup table (fragments or ids): metadata blocks of `per_block` records, then the u64
/// index of their positions; returns (bytes, offset of the index inside them).
fn lookup_table(
    records: &[u8],
    record_len: usize,
    per_block: usize,
    start: u64,
    opts: &SquashfsOptions,
) -> Result<(Vec<u8>, u64), SquashfsError> {
    let mut blocks = Vec::new();
    let mut index = Vec::new();
    for chunk in records.chunks(per_block * record_len) {
        let mut m = Metadata::new(opts);
        m.put(chunk)?;
        index.extend_from_slice(&(start + blocks.len() as u64).to_le_bytes());
        blocks.extend_from_slice(&m.finish()?);
    }
    let at = blocks.len() as u64;
    blocks.extend_from_slice(&index);
    Ok((blocks, at))
}

fn too_large(what: &'static str, value: u64, max: u64) -> SquashfsError {
    SquashfsError::TooLarge { what, value, max }
}

fn u32_of(what: &'static str, value: u64) -> Result<u32, SquashfsError> {
    u32::try_from(value).map_err(|_| too_large(what, value, u64::from(u32::MAX)))
}

/// Where a file's bytes went: its first block, the stored size word of each block, and its
/// fragment (index, offset) if its content sits in one.
struct FileData {
    start: u64,
    sizes: Vec<u32>,
    fragment: Option<(u32, u32)>,
}

/// Writes a squashfs 4.0 image of `entries` (any order) under a root directory of mode
/// `root_mode` owned by 0:0. Refuses bad names, duplicates and missing parents, naming the
/// entry; the bytes depend only on the entries and `opts` (not on `opts.threads`).
pub fn write_squashfs<W: Write>(
    mut out: W,
    entries: &[SquashfsEntry],
    root_mode: u16,
    opts: &SquashfsOptions,
) -> Result<SquashfsStats, SquashfsError> {
    check_options(opts)?;
    let nodes = build_tree(entries, root_mode)?;
    let order = post_order(&nodes);
    let inode_count = u32_of("the inode count", order.len() as u64)?;
    let bs = opts.block_size as usize;
    let mut stats = SquashfsStats {
        inodes: inode_count,
        ..SquashfsStats::default()
    };

    // Inode numbers follow the write order: 1 for the first inode, the root last.
    let mut number = vec![0u32; nodes.len()];
    for (i, &n) in order.iter().enumerate() {
        number[n] = i as u32 + 1;
    }

    // Data blocks of every file in inode order, then fragment blocks.
    let mut blocks: Vec<&[u8]> = Vec::new();
    let mut owners: Vec<(usize, usize)> = Vec::new(); // (node, blocks) per file with blocks
    let mut fragments: Vec<Vec<u8>> = Vec::new();
    let mut frag_of: BTreeMap<usize, (u32, u32)> = BTreeMap::new();
    for &n in &order {
        let Kind::File(data) = nodes[n].kind else {
            continue;
        };
        if !data.is_empty() && data.len() < bs {
            if fragments.last().is_none_or(|f| f.len() + data.len() > bs) {
                fragments.push(Vec::with_capacity(bs));
            }
            let f = fragments.len() - 1;
            let offset = fragments[f].len() as u32;
            fragments[f].extend_from_slice(data);
            frag_of.insert(n, (f as u32, offset));
        } else {
            let before = blocks.len();
            blocks.extend(data.chunks(bs));
            owners.push((n, blocks.len() - before));
        }
    }
    let data_block_count = blocks.len();
    blocks.extend(fragments.iter().map(Vec::as_slice));
    let packed = compress_all(&blocks, opts)?;
    let stored = |i: usize| -> (&[u8], u32) {
        match &packed[i] {
            Some(c) => (c.as_slice(), c.len() as u32),
            None => (blocks[i], blocks[i].len() as u32 | BLOCK_UNCOMPRESSED),
        }
    };
    stats.data_blocks = data_block_count as u64;
    stats.fragment_blocks = u32_of("the fragment count", fragments.len() as u64)?;
    stats.stored_uncompressed = packed.iter().filter(|p| p.is_none()).count() as u64;

    let mut pos = SUPERBLOCK_LEN as u64;
    let mut file_data: BTreeMap<usize, FileData> = BTreeMap::new();
    let mut next_block = 0usize;
    for &(n, count) in &owners {
        let start = pos;
        let mut sizes = Vec::with_capacity(count);
        for i in next_block..next_block + count {
            let (bytes, word) = stored(i);
            pos += bytes.len() as u64;
            sizes.push(word);
        }
        next_block += count;
        file_data.insert(
            n,
            FileData {
                start,
                sizes,
                fragment: None,
            },
        );
    }
    let mut fragment_records = Vec::with_capacity(fragments.len() * 16);
    for i in data_block_count..blocks.len() {
        let (bytes, word) = stored(i);
        fragment_records.extend_from_slice(&pos.to_le_bytes());
        fragment_records.extend_from_slice(&word.to_le_bytes());
        fragment_records.extend_from_slice(&0u32.to_le_bytes());
        pos += bytes.len() as u64;
    }
    for (&n, &frag) in &frag_of {
        file_data.insert(
            n,
            FileData {
                start: pos,
                sizes: Vec::new(),
                fragment: Some(frag),
            },
        );
    }

    // Owners: sorted ids, each inode holding indices into them.
    let ids: BTreeSet<u32> = nodes.iter().flat_map(|n| [n.uid, n.gid]).collect();
    if ids.len() > MAX_IDS {
        return Err(SquashfsError::TooManyIds {
            count: ids.len(),
            max: MAX_IDS,
        });
    }
    let id_index: BTreeMap<u32, u16> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u16))
        .collect();
    stats.ids = ids.len() as u32;

    // Inode and directory tables, in inode order: a directory's listing needs the references
    // of its children, which come before it.
    let mut inodes = Metadata::new(opts);
    let mut dirs = Metadata::new(opts);
    let mut refs = vec![(0u64, 0u16); nodes.len()];
    for &n in &order {
        let node = &nodes[n];
        let type_and_body: (u16, Vec<u8>) = match node.kind {
            Kind::File(data) => {
                stats.files += 1;
                let fd = &file_data[&n];
                let (frag, frag_offset) = fd.fragment.unwrap_or((NO_FRAGMENT, 0));
                let size = data.len() as u64;
                let mut b = Vec::with_capacity(40 + 4 * fd.sizes.len());
                let ty = if fd.start <= u64::from(u32::MAX) && size <= u64::from(u32::MAX) {
                    b.extend_from_slice(&(fd.start as u32).to_le_bytes());
                    b.extend_from_slice(&frag.to_le_bytes());
                    b.extend_from_slice(&frag_offset.to_le_bytes());
                    b.extend_from_slice(&(size as u32).to_le_bytes());
                    INODE_FILE
                } else {
                    b.extend_from_slice(&fd.start.to_le_bytes());
                    b.extend_from_slice(&size.to_le_bytes());
                    b.extend_from_slice(&0u64.to_le_bytes()); // sparse bytes
                    b.extend_from_slice(&1u32.to_le_bytes()); // links
                    b.extend_from_slice(&frag.to_le_bytes());
                    b.extend_from_slice(&frag_offset.to_le_bytes());
                    b.extend_from_slice(&u32::MAX.to_le_bytes()); // no xattrs
                    INODE_EXT_FILE
                };
                for w in &fd.sizes {
                    b.extend_from_slice(&w.to_le_bytes());
                }
                (ty, b)
            }
            Kind::Symlink(target) => {
                stats.symlinks += 1;
                let mut b = Vec::with_capacity(8 + target.len());
                b.extend_from_slice(&1u32.to_le_bytes());
                b.extend_from_slice(&(target.len() as u32).to_le_bytes());
                b.extend_from_slice(target.as_bytes());
                (INODE_SYMLINK, b)
            }
            Kind::Dir => {
                stats.directories += 1;
                let (block, offset) = dirs.pos();
                let listing = listing(&nodes, node, &refs, &number)?;
                dirs.put(&listing)?;
                let size = listing.len() as u64 + 3;
                let subdirs = node
                    .children
                    .iter()
                    .filter(|&&c| matches!(nodes[c].kind, Kind::Dir))
                    .count() as u64;
                let links = u32_of("a directory's link count", 2 + subdirs)?;
                let parent = if n == 0 {
                    inode_count + 1
                } else {
                    number[node.parent]
                };
                let block = u32_of("the directory table", block)?;
                let mut b = Vec::with_capacity(24);
                let ty = if size <= u64::from(u16::MAX) {
                    b.extend_from_slice(&block.to_le_bytes());
                    b.extend_from_slice(&links.to_le_bytes());
                    b.extend_from_slice(&(size as u16).to_le_bytes());
                    b.extend_from_slice(&offset.to_le_bytes());
                    b.extend_from_slice(&parent.to_le_bytes());
                    INODE_DIR
                } else {
                    b.extend_from_slice(&links.to_le_bytes());
                    b.extend_from_slice(&u32_of("a directory listing", size)?.to_le_bytes());
                    b.extend_from_slice(&block.to_le_bytes());
                    b.extend_from_slice(&parent.to_le_bytes());
                    b.extend_from_slice(&0u16.to_le_bytes()); // no index
                    b.extend_from_slice(&offset.to_le_bytes());
                    b.extend_from_slice(&u32::MAX.to_le_bytes()); // no xattrs
                    INODE_EXT_DIR
                };
                (ty, b)
            }
        };
        refs[n] = inodes.pos();
        let (ty, body) = type_and_body;
        let mut header = [0u8; 16];
        header[0..2].copy_from_slice(&ty.to_le_bytes());
        header[2..4].copy_from_slice(&node.mode.to_le_bytes());
        header[4..6].copy_from_slice(&id_index[&node.uid].to_le_bytes());
        header[6..8].copy_from_slice(&id_index[&node.gid].to_le_bytes());
        header[8..12].copy_from_slice(&opts.mtime.to_le_bytes());
        header[12..16].copy_from_slice(&number[n].to_le_bytes());
        inodes.put(&header)?;
        inodes.put(&body)?;
    }
    let (root_block, root_offset) = refs[0];
    let inode_table = inodes.finish()?;
    let dir_table = dirs.finish()?;

    let inode_start = pos;
    let dir_start = inode_start + inode_table.len() as u64;
    let frag_start = dir_start + dir_table.len() as u64;
    let (frag_bytes, frag_index) =
        lookup_table(&fragment_records, 16, FRAGMENTS_PER_BLOCK, frag_start, opts)?;
    let id_start = frag_start + frag_bytes.len() as u64;
    let id_records: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    let (id_bytes, id_index_at) = lookup_table(&id_records, 4, IDS_PER_BLOCK, id_start, opts)?;
    let bytes_used = id_start + id_bytes.len() as u64;
    let image_len = bytes_used.div_ceil(PADDING) * PADDING;

    let sb = Superblock {
        magic: MAGIC,
        inode_count,
        mkfs_time: opts.mtime,
        block_size: opts.block_size,
        fragment_count: stats.fragment_blocks,
        compressor: opts.compression.id(),
        block_log: opts.block_size.trailing_zeros() as u16,
        flags: FLAG_NO_XATTRS,
        id_count: (ids.len() as u64)
            .try_into()
            .map_err(|_| too_large("the id count", ids.len() as u64, u64::from(u16::MAX)))?,
        version_major: VERSION.0,
        version_minor: VERSION.1,
        root_inode: inode_ref(root_block, root_offset),
        bytes_used,
        id_table: id_start + id_index_at,
        xattr_table: NO_TABLE,
        inode_table: inode_start,
        directory_table: dir_start,
        fragment_table: frag_start + frag_index,
        export_table: NO_TABLE,
    };

    let io = |source| SquashfsError::Io { source };
    out.write_all(&sb.encode()).map_err(io)?;
    for i in 0..blocks.len() {
        out.write_all(stored(i).0).map_err(io)?;
    }
    for part in [&inode_table, &dir_table, &frag_bytes, &id_bytes] {
        out.write_all(part).map_err(io)?;
    }
    out.write_all(&vec![0u8; (image_len - bytes_used) as usize])
        .map_err(io)?;
    out.flush().map_err(io)?;
    stats.bytes_used = bytes_used;
    stats.image_len = image_len;
    Ok(stats)
}

/// A directory's listing: runs of entries under headers, each run sharing one inode
/// metadata block, at most 256 entries, inode numbers within ±32767 of the header's.
fn listing(
    nodes: &[Node],
    dir: &Node,
    refs: &[(u64, u16)],
    number: &[u32],
) -> Result<Vec<u8>, SquashfsError> {
    let mut b = Vec::new();
    let kids = &dir.children;
    let mut i = 0;
    while i < kids.len() {
        let (block, _) = refs[kids[i]];
        let base = number[kids[i]];
        let mut j = i;
        while j < kids.len()
            && j - i < DIR_HEADER_MAX_ENTRIES
            && refs[kids[j]].0 == block
            && i16::try_from(i64::from(number[kids[j]]) - i64::from(base)).is_ok()
        {
            j += 1;
        }
        b.reserve(DIR_HEADER_LEN + (j - i) * (DIR_ENTRY_LEN + 16));
        b.extend_from_slice(&((j - i - 1) as u32).to_le_bytes());
        b.extend_from_slice(&u32_of("the inode table", block)?.to_le_bytes());
        b.extend_from_slice(&base.to_le_bytes());
        for &c in &kids[i..j] {
            let node = &nodes[c];
            let ty = match node.kind {
                Kind::Dir => INODE_DIR,
                Kind::File(_) => INODE_FILE,
                Kind::Symlink(_) => INODE_SYMLINK,
            };
            let delta = (i64::from(number[c]) - i64::from(base)) as i16;
            b.extend_from_slice(&refs[c].1.to_le_bytes());
            b.extend_from_slice(&delta.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&((node.name.len() - 1) as u16).to_le_bytes());
            b.extend_from_slice(node.name);
        }
        i = j;
    }
    Ok(b)
}
