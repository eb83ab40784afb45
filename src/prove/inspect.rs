//! `pimg inspect`: what an image or archive holds, read with the hostile-input readers:
//! partition table, FAT parameters, every file with its timestamps, attributes and SHA-256,
//! and the entries of the archives inside (initramfs, apkovl, rpi tarball) and of squashfs
//! images (modloop).

use crate::codec::detect::ArtifactKind;
use crate::codec::fat::read::{FatEntry, FatVolume};
use crate::codec::partition::PartitionTable;
use crate::codec::reader::ReadError;
use crate::codec::{cpio::read as cpio, gzip::read as gzip, tar::read as tar};
use crate::digest::hex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Largest file inside an image that inspect opens as an archive.
const MAX_NESTED_ARCHIVE: u64 = 1 << 30;

/// Everything inspect found in one file.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub kind: ArtifactKind,
    pub partition_table: Option<PartitionTable>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionInspection>,
    /// A bare FAT volume (no partition table).
    pub filesystem: Option<FatInspection>,
    pub archive: Option<ArchiveInspection>,
    /// Problems found while reading (damage, unreadable parts).
    pub problems: Vec<String>,
}

/// One partition and its file system.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInspection {
    pub index: u32,
    pub start: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FatInspection>,
}

/// FAT parameters and files.
#[derive(Debug, Clone, Serialize)]
pub struct FatInspection {
    pub fat_type: String,
    pub oem_name: String,
    pub volume_id: String,
    pub label: String,
    /// The label entry in the root directory, if any.
    pub label_entry: Option<String>,
    pub fs_type_field: String,
    pub bytes_per_sector: u64,
    pub cluster_size: u64,
    pub clusters: u32,
    pub reserved_sectors: u16,
    pub fats: u8,
    pub sectors_per_fat: u64,
    pub total_sectors: u64,
    pub hidden_sectors: u32,
    pub media: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_cluster: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsinfo_free_clusters: Option<u32>,
    pub files: Vec<FileInspection>,
}

/// One file or directory on a FAT volume.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct FileInspection {
    pub path: String,
    pub kind: &'static str,
    pub short_name: String,
    pub size: u32,
    pub attributes: String,
    pub created: String,
    pub modified: String,
    pub accessed: String,
    pub first_cluster: u32,
    pub sha256: Option<String>,
    pub archive: Option<ArchiveInspection>,
}

/// An archive's compression and entries.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInspection {
    /// "cpio newc" or "tar".
    pub format: String,
    pub gzip: Option<GzipInspection>,
    pub entries: Vec<ArchiveEntry>,
    pub error: Option<String>,
}

/// gzip header and trailer.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct GzipInspection {
    pub mtime: u32,
    pub os: u8,
    pub extra_flags: u8,
    pub name: Option<String>,
    pub decompressed_size: u64,
    pub crc32: Option<String>,
}

/// One archive entry.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveEntry {
    pub path: String,
    pub kind: &'static str,
    /// Octal, permission bits and (cpio) type bits.
    pub mode: String,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub sha256: Option<String>,
    pub link_target: Option<String>,
    pub device: Option<String>,
}

/// Why inspect could not read a file at all.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Read { path: String, source: ReadError },
}

/// Inspects one file; damage below the top level is listed in `problems`.
pub fn inspect_path(path: &Path) -> Result<Inspection, InspectError> {
    let io_err = |source| InspectError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = crate::prove::open::regular(path).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let mut h = crate::codec::fat::read::HashWriter(Sha256::new());
    io::copy(&mut BufReader::with_capacity(1 << 20, &f), &mut h).map_err(io_err)?;
    let kind = crate::codec::detect::detect(&mut &f).map_err(|source| InspectError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut ins = Inspection {
        file: path.display().to_string(),
        size,
        sha256: hex(&h.0.finalize()),
        kind,
        partition_table: None,
        partitions: Vec::new(),
        filesystem: None,
        archive: None,
        problems: Vec::new(),
    };
    match kind {
        ArtifactKind::DiskImage => {
            let table =
                crate::codec::partition::partitions(&f).map_err(|source| InspectError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
            ins.problems.extend(
                table
                    .problems
                    .iter()
                    .map(|p| format!("partition table: {p}")),
            );
            for p in &table.partitions {
                let fs = match FatVolume::open(&f, p.start, p.size) {
                    Ok(mut v) => Some(fat(
                        &mut v,
                        &mut ins.problems,
                        &format!("partition {}", p.index),
                    )),
                    Err(e) => {
                        ins.problems.push(format!(
                            "partition {}: no readable FAT file system: {e}",
                            p.index
                        ));
                        None
                    }
                };
                ins.partitions.push(PartitionInspection {
                    index: p.index,
                    start: p.start,
                    size: p.size,
                    filesystem: fs,
                });
            }
            ins.partition_table = Some(table);
        }
        ArtifactKind::FatVolume => {
            let mut v = FatVolume::open(&f, 0, size).map_err(|source| InspectError::Read {
                path: path.display().to_string(),
                source,
            })?;
            ins.filesystem = Some(fat(&mut v, &mut ins.problems, "volume"));
        }
        ArtifactKind::Squashfs => {
            let a = squashfs(&f, size).map_err(|source| InspectError::Read {
                path: path.display().to_string(),
                source,
            })?;
            if let Some(e) = &a.error {
                ins.problems.push(e.clone());
            }
            ins.archive = Some(a);
        }
        ArtifactKind::Unknown => ins.problems.push(
            "no known format: not a disk image (MBR or GPT), a FAT volume, a squashfs image, a \
             gzip, cpio or tar archive; only its size and SHA-256 are shown"
                .into(),
        ),
        _ => {
            use std::io::Seek;
            (&f).seek(io::SeekFrom::Start(0)).map_err(io_err)?;
            let a = archive(BufReader::new(&f), size);
            if let Some(e) = &a.error {
                ins.problems.push(e.clone());
            }
            ins.archive = Some(a);
        }
    }
    Ok(ins)
}

fn fat(v: &mut FatVolume<&File>, problems: &mut Vec<String>, label: &str) -> FatInspection {
    let b = v.boot.clone();
    let g = v.geometry;
    let mut files = Vec::new();
    let entries = v.entries().unwrap_or_else(|e| {
        problems.push(format!("{label}: directory tree unreadable: {e}"));
        Vec::new()
    });
    for e in &entries {
        files.push(file(v, e, problems, label));
    }
    let label_entry = v
        .label_entry()
        .ok()
        .flatten()
        .map(|e| e.short_name_raw.escape_ascii().to_string());
    FatInspection {
        fat_type: g.kind.to_string(),
        oem_name: b.oem_name.clone(),
        volume_id: format!("{:08x}", b.volume_id),
        label: b.volume_label.clone(),
        label_entry,
        fs_type_field: b.fs_type.clone(),
        bytes_per_sector: g.bytes_per_sector,
        cluster_size: g.cluster_size,
        clusters: g.cluster_count,
        reserved_sectors: b.reserved_sectors,
        fats: b.fat_count,
        sectors_per_fat: b.fat_sectors(),
        total_sectors: b.total_sectors(),
        hidden_sectors: b.hidden_sectors,
        media: format!("0x{:02x}", b.media),
        root_cluster: (g.kind == crate::codec::fat::read::FatType::Fat32).then_some(b.root_cluster),
        fsinfo_free_clusters: v.fsinfo.as_ref().map(|f| f.free_count),
        files,
    }
}

fn file(
    v: &mut FatVolume<&File>,
    e: &FatEntry,
    problems: &mut Vec<String>,
    label: &str,
) -> FileInspection {
    let mut out = FileInspection {
        path: e.path.clone(),
        kind: if e.is_dir { "directory" } else { "file" },
        short_name: e.short_name.clone(),
        size: e.size,
        attributes: e.attribute_letters(),
        created: e.created.to_string(),
        modified: e.modified.to_string(),
        accessed: e
            .accessed
            .unix
            .map(|t| crate::epoch::iso8601(t)[..10].to_string())
            .unwrap_or_else(|| "invalid".into()),
        first_cluster: e.first_cluster,
        sha256: None,
        archive: None,
    };
    if e.is_dir {
        return out;
    }
    let data = if u64::from(e.size) <= MAX_NESTED_ARCHIVE {
        v.read_entry(e)
    } else {
        Err(ReadError::invalid(
            &e.path,
            e.entry_offset,
            "too large to open as an archive",
        ))
    };
    match data {
        Ok(d) => {
            out.sha256 = Some(hex(&Sha256::digest(&d)));
            if d.starts_with(&gzip::MAGIC)
                || crate::codec::detect::payload_kind(&d) != ArtifactKind::Unknown
            {
                let a = archive(&d[..], d.len() as u64);
                if let Some(err) = &a.error {
                    problems.push(format!("{label}: {}: {err}", e.path));
                }
                out.archive = Some(a);
            }
        }
        Err(err) => {
            if let Ok(h) = v.sha256_file(e) {
                out.sha256 = Some(hex(&h));
            } else {
                problems.push(format!("{label}: {}: {err}", e.path));
            }
        }
    }
    out
}

/// Reads an archive (gzip-compressed or not) from a stream of `len` bytes.
pub fn archive<R: Read>(r: R, len: u64) -> ArchiveInspection {
    let mut head = [0u8; 2];
    let mut r = io::BufReader::new(r);
    let peek = {
        use std::io::BufRead;
        let buf = r.fill_buf().unwrap_or(&[]);
        let n = buf.len().min(2);
        head[..n].copy_from_slice(&buf[..n]);
        n
    };
    if peek == 2 && head == gzip::MAGIC {
        let limit = len.saturating_mul(gzip::MAX_RATIO);
        match gzip::GzipReader::new(r, limit) {
            Ok(mut gz) => {
                let mut a = payload(&mut gz);
                let h = gz.header().clone();
                let t = gz.trailer().cloned();
                a.gzip = Some(GzipInspection {
                    mtime: h.mtime,
                    os: h.os,
                    extra_flags: h.xfl,
                    name: h.name.as_ref().map(|n| n.escape_ascii().to_string()),
                    decompressed_size: gz.decompressed_len(),
                    crc32: t.map(|t| format!("{:08x}", t.crc32)),
                });
                a
            }
            Err(e) => ArchiveInspection {
                format: "gzip".into(),
                gzip: None,
                entries: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    } else {
        payload(&mut r)
    }
}

/// A squashfs image's entries, each file with its SHA-256; damage in the directory tree or a
/// file is the inspection's error, a superblock or table that cannot be read fails.
fn squashfs(f: &File, len: u64) -> Result<ArchiveInspection, ReadError> {
    use crate::codec::squashfs::{compressor_name, read::Squashfs, read::SquashfsEntryKind};
    let mut fs = Squashfs::open(f, len)?;
    let sb = fs.superblock().clone();
    let mut a = ArchiveInspection {
        format: format!(
            "squashfs {}.{}, {}, {}-byte blocks, mkfs time {}",
            sb.version_major,
            sb.version_minor,
            compressor_name(sb.compressor),
            sb.block_size,
            sb.mkfs_time
        ),
        gzip: None,
        entries: Vec::new(),
        error: None,
    };
    let listing = match fs.entries() {
        Ok(l) => l,
        Err(e) => {
            a.error = Some(format!("squashfs directory tree unreadable: {e}"));
            return Ok(a);
        }
    };
    for l in listing {
        let sha256 = if l.kind == SquashfsEntryKind::File {
            match fs.read_file(&l, MAX_NESTED_ARCHIVE) {
                Ok(data) => Some(hex(&Sha256::digest(&data))),
                Err(e) => {
                    a.error.get_or_insert_with(|| format!("squashfs: {e}"));
                    None
                }
            }
        } else {
            None
        };
        a.entries.push(ArchiveEntry {
            kind: match l.kind {
                SquashfsEntryKind::File => "file",
                SquashfsEntryKind::Dir => "directory",
                SquashfsEntryKind::Symlink => "symlink",
                SquashfsEntryKind::CharDevice => "char device",
                SquashfsEntryKind::BlockDevice => "block device",
                SquashfsEntryKind::Fifo => "fifo",
                SquashfsEntryKind::Socket => "socket",
            },
            mode: format!("0{:o}", l.mode),
            uid: u64::from(l.uid),
            gid: u64::from(l.gid),
            mtime: i64::from(l.mtime),
            size: l.size,
            sha256,
            link_target: l.target,
            device: l.rdev.map(|r| {
                format!(
                    "{}:{}",
                    (r >> 8) & 0xFFF,
                    (r & 0xFF) | ((r >> 12) & 0xFFF00)
                )
            }),
            path: l.path,
        });
    }
    Ok(a)
}

fn payload<R: Read>(r: &mut R) -> ArchiveInspection {
    let mut head = Vec::with_capacity(512);
    if let Err(e) = r.by_ref().take(512).read_to_end(&mut head) {
        return ArchiveInspection {
            format: "unknown".into(),
            gzip: None,
            entries: Vec::new(),
            error: Some(e.to_string()),
        };
    }
    let kind = crate::codec::detect::payload_kind(&head);
    let stream = (&head[..]).chain(r);
    let mut entries = Vec::new();
    let (format, result) = match kind {
        ArtifactKind::Cpio => (
            "cpio newc",
            cpio::read(stream, |h, data| {
                let (sha, link) = content(h.mode() & 0o170000 == 0o120000, data)?;
                let ty = h.mode() & 0o170000;
                entries.push(ArchiveEntry {
                    path: h.name.clone(),
                    kind: match ty {
                        0o100000 => "file",
                        0o040000 => "directory",
                        0o120000 => "symlink",
                        0o020000 => "char device",
                        0o060000 => "block device",
                        0o010000 => "fifo",
                        0o140000 => "socket",
                        _ => "other",
                    },
                    mode: format!("0{:o}", h.mode()),
                    uid: u64::from(h.uid()),
                    gid: u64::from(h.gid()),
                    mtime: i64::from(h.mtime()),
                    size: u64::from(h.file_size()),
                    sha256: (ty == 0o100000).then_some(sha),
                    link_target: link,
                    device: matches!(ty, 0o020000 | 0o060000)
                        .then(|| format!("{}:{}", h.rdev().0, h.rdev().1)),
                });
                Ok(())
            })
            .map(|_| ()),
        ),
        ArtifactKind::Tar => (
            "tar",
            tar::read(stream, |e, data| {
                let (sha, _) = content(false, data)?;
                entries.push(ArchiveEntry {
                    path: e.path.clone(),
                    kind: e.kind(),
                    mode: format!("0{:o}", e.mode),
                    uid: e.uid,
                    gid: e.gid,
                    mtime: e.mtime,
                    size: e.size,
                    sha256: (e.kind() == "file").then_some(sha),
                    link_target: matches!(e.typeflag, b'1' | b'2').then(|| e.link_name.clone()),
                    device: matches!(e.typeflag, b'3' | b'4')
                        .then(|| format!("{}:{}", e.dev_major, e.dev_minor)),
                });
                Ok(())
            })
            .map(|_| ()),
        ),
        _ => (
            "unknown",
            Err(ReadError::invalid(
                "archive",
                0,
                "is neither cpio newc nor tar",
            )),
        ),
    };
    ArchiveInspection {
        format: format.into(),
        gzip: None,
        entries,
        error: result.err().map(|e| e.to_string()),
    }
}

/// SHA-256 of an entry's data, and the data as text when it is a link target.
fn content(is_link: bool, data: &mut dyn Read) -> Result<(String, Option<String>), ReadError> {
    let mut h = Sha256::new();
    let mut link = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = data.read(&mut buf).map_err(|source| ReadError::Io {
            what: "archive entry data".into(),
            offset: 0,
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if is_link && link.len() < 4096 {
            link.extend_from_slice(&buf[..n.min(4096)]);
        }
    }
    Ok((
        hex(&h.finalize()),
        is_link.then(|| String::from_utf8_lossy(&link).into_owned()),
    ))
}

/// Human-readable rendering.
pub fn render(ins: &Inspection) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{}: {}, {} bytes, sha256 {}\n",
        ins.file, ins.kind, ins.size, ins.sha256
    ));
    if let Some(t) = &ins.partition_table {
        s.push_str(&format!("partition table: {}", t.kind));
        if let Some(sig) = t.disk_signature {
            s.push_str(&format!(", disk signature {sig:08x}"));
        }
        if let Some(g) = &t.disk_guid {
            s.push_str(&format!(", disk GUID {g}"));
        }
        s.push('\n');
        for p in &t.partitions {
            s.push_str(&format!(
                "  partition {}: start {} ({} sectors), size {} ({} sectors)",
                p.index,
                p.start,
                p.start / 512,
                p.size,
                p.size / 512
            ));
            if let Some(ty) = p.mbr_type {
                s.push_str(&format!(
                    ", type 0x{ty:02x}{}",
                    if p.bootable { ", active" } else { "" }
                ));
            }
            if let Some(ty) = &p.type_guid {
                s.push_str(&format!(", type {ty}"));
            }
            if let Some(g) = &p.part_guid {
                s.push_str(&format!(", GUID {g}"));
            }
            if let Some(n) = &p.name {
                s.push_str(&format!(", name {n:?}"));
            }
            s.push('\n');
        }
    }
    for p in &ins.partitions {
        if let Some(fs) = &p.filesystem {
            render_fat(&mut s, &format!("partition {}", p.index), fs);
        }
    }
    if let Some(fs) = &ins.filesystem {
        render_fat(&mut s, "volume", fs);
    }
    if let Some(a) = &ins.archive {
        render_archive(&mut s, "", a);
    }
    for p in &ins.problems {
        s.push_str(&format!("problem: {p}\n"));
    }
    s
}

fn render_fat(s: &mut String, label: &str, fs: &FatInspection) {
    s.push_str(&format!(
        "{label}: {}, label {:?}, volume ID {}, OEM name {:?}, {} clusters of {} bytes, {} FATs of {} sectors, {} reserved sectors, {} hidden sectors\n",
        fs.fat_type, fs.label, fs.volume_id, fs.oem_name, fs.clusters, fs.cluster_size, fs.fats, fs.sectors_per_fat, fs.reserved_sectors, fs.hidden_sectors
    ));
    for f in &fs.files {
        s.push_str(&format!(
            "  {} {:>10} {} {}  {}{}\n",
            f.attributes,
            f.size,
            f.modified.split(' ').next().unwrap_or(""),
            f.sha256
                .as_deref()
                .map(|h| &h[..16])
                .unwrap_or("                "),
            f.path,
            if f.kind == "directory" { "/" } else { "" }
        ));
        if let Some(a) = &f.archive {
            render_archive(s, "      ", a);
        }
    }
}

fn render_archive(s: &mut String, indent: &str, a: &ArchiveInspection) {
    let gz = a
        .gzip
        .as_ref()
        .map(|g| {
            format!(
                " in gzip (mtime {}, OS {}, {} bytes decompressed)",
                g.mtime, g.os, g.decompressed_size
            )
        })
        .unwrap_or_default();
    s.push_str(&format!(
        "{indent}{} archive{gz}, {} entries\n",
        a.format,
        a.entries.len()
    ));
    for e in &a.entries {
        let extra = match (&e.link_target, &e.device) {
            (Some(t), _) => format!(" -> {t}"),
            (_, Some(d)) => format!(" (device {d})"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "{indent}  {:>7} {:>5}/{:<5} {:>10} {:>10} {}  {}{extra}\n",
            e.mode,
            e.uid,
            e.gid,
            e.size,
            e.mtime,
            e.sha256
                .as_deref()
                .map(|h| &h[..16])
                .unwrap_or("                "),
            e.path
        ));
    }
    if let Some(e) = &a.error {
        s.push_str(&format!("{indent}  error: {e}\n"));
    }
}
