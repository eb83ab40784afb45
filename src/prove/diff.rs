//! `pimg diff`: the structural difference between two images or archives, reported at the
//! deepest level that explains it (partition table field, FAT boot sector field, FAT entry,
//! directory entry field, file content offset, archive entry field).
//!
//! Both sides are parsed with the readers and compared level by level. A byte-by-byte pass
//! (streamed, never the whole image in memory) finds every differing range; ranges that no
//! compared structure accounts for (unallocated space, slack after a file's end, padding) are
//! then named by where they sit in A's layout, so no difference goes unreported.

use crate::codec::cpio::read::{self as cpio, CpioHeader};
use crate::codec::detect::ArtifactKind;
use crate::codec::fat::read::{BootSector, FatEntry, FatVolume, Slot};
use crate::codec::gzip::read::{self as gzip, GzipHeader, GzipTrailer};
use crate::codec::partition::{gpt, mbr};
use crate::codec::reader::{Device, Field, ReadError, SECTOR_SIZE};
use crate::codec::squashfs::read::{self as squashfs, SquashfsEntryKind, SquashfsListing};
use crate::codec::tar::read::{self as tar, TarEntry};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Most differences kept in a report; the rest are counted in `omitted`.
pub const MAX_DIFFERENCES: usize = 10_000;
/// Most differing byte ranges the byte pass records.
const MAX_RANGES: usize = 100_000;
/// Differing bytes closer than this are one range.
const RANGE_GAP: u64 = 64;
/// Most FAT entries listed one by one per FAT copy.
const MAX_FAT_ENTRIES_LISTED: usize = 8;
/// Nesting of archives inside archives that diff follows.
const MAX_NESTING: usize = 4;
/// Largest file (inside an image) or archive diff loads to compare as an archive.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// Decompressed bytes diff holds at once, both sides and every nesting level together. A
/// gzip stream that would take more is compared as one byte stream instead, not member by
/// member, so memory stays bounded whatever the streams declare or expand to.
const DECOMPRESSED_IN_MEMORY: u64 = 160 << 20;
/// Decompressed bytes compared per side when streaming (a bound on time, not memory).
const MAX_STREAMED: u64 = 1 << 30;

/// One difference: where (outermost first), which field, and the two values.
///
/// `offset` counts from the start of the innermost byte container on the path: the image for
/// partition-table and FAT structures, the file for file content, the decompressed stream for
/// archive entries (A's side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub path: Vec<String>,
    pub field: String,
    pub a: Option<String>,
    pub b: Option<String>,
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Difference {
    /// `path › field: a vs b (note)` on one line.
    pub fn line(&self, root: &str) -> String {
        let mut s = String::from(root);
        for p in &self.path {
            s.push_str(" › ");
            s.push_str(p);
        }
        s.push_str(" › ");
        s.push_str(&self.field);
        if self.a.is_some() || self.b.is_some() {
            let shown = |v: &Option<String>| v.as_deref().unwrap_or("(absent)").to_string();
            s.push_str(&format!(": {} vs {}", shown(&self.a), shown(&self.b)));
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" ({n})"));
        }
        s
    }
}

/// The result of comparing two files.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: String,
    pub b: String,
    pub kind_a: ArtifactKind,
    pub kind_b: ArtifactKind,
    pub identical: bool,
    pub differences: Vec<Difference>,
    /// Differences found beyond `MAX_DIFFERENCES`.
    pub omitted: u64,
}

impl DiffReport {
    /// Short human output: one line per difference, long runs of the same field grouped.
    pub fn render(&self) -> String {
        if self.identical {
            return String::new();
        }
        let root = Path::new(&self.a)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.a.clone());
        let mut out = String::new();
        // Group differences with the same parent path and field when there are many.
        let mut groups: BTreeMap<(Vec<String>, String), Vec<usize>> = BTreeMap::new();
        for (i, d) in self.differences.iter().enumerate() {
            let parent = d.path[..d.path.len().saturating_sub(1)].to_vec();
            groups.entry((parent, d.field.clone())).or_default().push(i);
        }
        let mut printed = vec![false; self.differences.len()];
        for (i, d) in self.differences.iter().enumerate() {
            if printed[i] {
                continue;
            }
            let parent = d.path[..d.path.len().saturating_sub(1)].to_vec();
            let members = &groups[&(parent.clone(), d.field.clone())];
            if members.len() > 4 {
                for &m in members.iter().take(2) {
                    out.push_str(&self.differences[m].line(&root));
                    out.push('\n');
                }
                let mut p = root.clone();
                for c in &parent {
                    p.push_str(" › ");
                    p.push_str(c);
                }
                out.push_str(&format!(
                    "{p} › … {} more with a different {}\n",
                    members.len() - 2,
                    d.field
                ));
                for &m in members {
                    printed[m] = true;
                }
            } else {
                out.push_str(&d.line(&root));
                out.push('\n');
                printed[i] = true;
            }
        }
        if self.omitted > 0 {
            out.push_str(&format!(
                "… and {} more differences not listed\n",
                self.omitted
            ));
        }
        out
    }
}

/// Why two files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Collects differences up to the cap.
struct Collector {
    out: Vec<Difference>,
    omitted: u64,
    /// Decompressed bytes held by the comparisons under way (see `DECOMPRESSED_IN_MEMORY`).
    held: u64,
}

impl Collector {
    fn new() -> Self {
        Collector {
            out: Vec::new(),
            omitted: 0,
            held: 0,
        }
    }

    fn push(&mut self, d: Difference) {
        if self.out.len() < MAX_DIFFERENCES {
            self.out.push(d);
        } else {
            self.omitted += 1;
        }
    }

    fn add(
        &mut self,
        path: &[String],
        field: impl Into<String>,
        a: Option<String>,
        b: Option<String>,
        offset: Option<u64>,
        note: Option<String>,
    ) {
        self.push(Difference {
            path: path.to_vec(),
            field: field.into(),
            a,
            b,
            offset,
            note,
        });
    }

    fn count(&self) -> u64 {
        self.out.len() as u64 + self.omitted
    }
}

fn join(path: &[String], more: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(more.to_string());
    p
}

/// One named value compared by name with the other side's value of that name: a header field,
/// or a value with no single stored place (one assembled from several headers).
struct Value {
    name: String,
    shown: String,
    /// Compared along with `shown` but left out of the report: what the shown text omits.
    unshown: String,
    /// Where A's value is stored (None when it is assembled from several places).
    at: Option<u64>,
    /// Follows from the other values of its group (a checksum): reported only when they agree.
    derived: bool,
}

impl Value {
    fn new(name: impl Into<String>, shown: impl ToString, at: Option<u64>) -> Self {
        Value {
            name: name.into(),
            shown: shown.to_string(),
            unshown: String::new(),
            at,
            derived: false,
        }
    }

    /// A header field as stored, `base` added to its offset.
    fn field(f: &Field, base: u64) -> Self {
        Value::new(f.name.clone(), f.value.clone(), Some(base + f.offset))
    }
}

/// Compares values by name, only those `keep` selects.
fn compare_values(
    c: &mut Collector,
    path: &[String],
    va: &[Value],
    vb: &[Value],
    keep: impl Fn(&Value) -> bool,
) {
    for a in va.iter().filter(|v| keep(v)) {
        match vb.iter().filter(|v| keep(v)).find(|b| b.name == a.name) {
            Some(b) if b.shown == a.shown && b.unshown == a.unshown => {}
            Some(b) => c.add(
                path,
                &a.name,
                Some(a.shown.clone()),
                Some(b.shown.clone()),
                a.at,
                None,
            ),
            None => c.add(path, &a.name, Some(a.shown.clone()), None, a.at, None),
        }
    }
    for b in vb.iter().filter(|v| keep(v)) {
        if !va.iter().filter(|v| keep(v)).any(|a| a.name == b.name) {
            c.add(path, &b.name, None, Some(b.shown.clone()), None, None);
        }
    }
}

/// Compares fields by name; `base` is added to A's field offsets.
fn compare_fields(c: &mut Collector, path: &[String], fa: &[Field], fb: &[Field], base: u64) {
    let values = |f: &[Field]| f.iter().map(|f| Value::field(f, base)).collect::<Vec<_>>();
    compare_values(c, path, &values(fa), &values(fb), |_| true);
}

/// Differing byte ranges [start, end) of two streams, coalesced, and both lengths.
struct ByteDiff {
    ranges: Vec<(u64, u64)>,
    /// The list was cut at `MAX_RANGES`.
    cut: bool,
    len_a: u64,
    len_b: u64,
}

/// Compares two streams chunk by chunk.
fn differing_ranges<A: Read, B: Read>(mut a: A, mut b: B) -> io::Result<ByteDiff> {
    const CHUNK: usize = 1 << 20;
    let mut ba = vec![0u8; CHUNK];
    let mut bb = vec![0u8; CHUNK];
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut cut = false;
    let (mut len_a, mut len_b) = (0u64, 0u64);
    let mut pos = 0u64;
    loop {
        let na = fill(&mut a, &mut ba)?;
        let nb = fill(&mut b, &mut bb)?;
        len_a += na as u64;
        len_b += nb as u64;
        let n = na.min(nb);
        if ba[..n] != bb[..n] {
            let mut i = 0;
            while i < n {
                // Skip equal 64-byte blocks quickly.
                if i + 64 <= n && ba[i..i + 64] == bb[i..i + 64] {
                    i += 64;
                    continue;
                }
                if ba[i] != bb[i] {
                    let at = pos + i as u64;
                    let full = ranges.len() >= MAX_RANGES;
                    match ranges.last_mut() {
                        Some(last) if at <= last.1 + RANGE_GAP => last.1 = at + 1,
                        _ if full => cut = true,
                        _ => ranges.push((at, at + 1)),
                    }
                }
                i += 1;
            }
        }
        if na != nb {
            // One side ended: the rest of the longer one is one range.
            let start = pos + n as u64;
            let mut rest = (na.max(nb) - n) as u64;
            let longer_a = na > nb;
            loop {
                let (buf, r): (&mut Vec<u8>, &mut dyn Read) = if longer_a {
                    (&mut ba, &mut a)
                } else {
                    (&mut bb, &mut b)
                };
                let k = fill(r, buf)?;
                if k == 0 {
                    break;
                }
                rest += k as u64;
            }
            if longer_a {
                len_a = start + rest;
            } else {
                len_b = start + rest;
            }
            match ranges.last_mut() {
                Some(last) if start <= last.1 + RANGE_GAP => last.1 = start + rest,
                _ => ranges.push((start, start + rest)),
            }
            return Ok(ByteDiff {
                ranges,
                cut,
                len_a,
                len_b,
            });
        }
        if n == 0 {
            return Ok(ByteDiff {
                ranges,
                cut,
                len_a,
                len_b,
            });
        }
        pos += n as u64;
    }
}

fn fill<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    match crate::codec::reader::fill_until_error(r, buf) {
        (got, None) => Ok(got),
        (_, Some(e)) => Err(e),
    }
}

/// Compares two files on disk.
pub fn diff_paths(a: &Path, b: &Path) -> Result<DiffReport, DiffError> {
    let open = |p: &Path| {
        crate::prove::open::regular(p).map_err(|source| DiffError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let (fa, fb) = (open(a)?, open(b)?);
    let io_a = |source| DiffError::Io {
        path: a.display().to_string(),
        source,
    };
    let ByteDiff {
        ranges,
        cut,
        len_a,
        len_b,
    } = differing_ranges(
        io::BufReader::with_capacity(1 << 20, &fa),
        io::BufReader::with_capacity(1 << 20, &fb),
    )
    .map_err(io_a)?;
    let kind_a = crate::codec::detect::detect(&mut &fa).unwrap_or(ArtifactKind::Unknown);
    let kind_b = crate::codec::detect::detect(&mut &fb).unwrap_or(ArtifactKind::Unknown);
    let mut report = DiffReport {
        a: a.display().to_string(),
        b: b.display().to_string(),
        kind_a,
        kind_b,
        identical: ranges.is_empty() && len_a == len_b,
        differences: Vec::new(),
        omitted: 0,
    };
    if report.identical {
        return Ok(report);
    }
    let mut c = Collector::new();
    if len_a != len_b {
        c.add(
            &[],
            "size",
            Some(len_a.to_string()),
            Some(len_b.to_string()),
            None,
            None,
        );
    }
    if kind_a != kind_b {
        c.add(
            &[],
            "file type",
            Some(kind_a.to_string()),
            Some(kind_b.to_string()),
            None,
            None,
        );
    }
    let before = c.count();
    let kind = if kind_a == ArtifactKind::Unknown {
        kind_b
    } else {
        kind_a
    };
    match kind {
        ArtifactKind::DiskImage => diff_disk(&mut c, &fa, &fb, &ranges, len_a, len_b),
        ArtifactKind::FatVolume => {
            let len = len_a.min(len_b);
            diff_volume(&mut c, &[], &fa, &fb, 0, len, len, &ranges);
        }
        ArtifactKind::Unknown => {}
        _ => {
            let load = |f: &File, len: u64| -> Option<Vec<u8>> {
                if len > MAX_ARCHIVE_BYTES {
                    return None;
                }
                let mut v = Vec::with_capacity(len as usize);
                (&mut &*f).seek(SeekFrom::Start(0)).ok()?;
                (&mut &*f).read_to_end(&mut v).ok()?;
                Some(v)
            };
            match (load(&fa, len_a), load(&fb, len_b)) {
                (Some(da), Some(db)) => diff_bytes(&mut c, &[], &da, &db, 0),
                _ => c.add(
                    &[],
                    "content",
                    None,
                    None,
                    ranges.first().map(|r| r.0),
                    Some(format!(
                        "archives larger than {MAX_ARCHIVE_BYTES} bytes are compared byte by byte only"
                    )),
                ),
            }
        }
    }
    if c.count() == before {
        // Nothing structural explains the bytes: name each range by offset.
        if let Some(&(s, e)) = ranges.first() {
            let text = text_context(&fa, &fb, s);
            c.add(
                &[],
                "content",
                None,
                None,
                Some(s),
                Some(format!(
                    "{} byte range(s) differ, the first at offset {s}..{e}{text}",
                    ranges.len()
                )),
            );
        }
    }
    if cut {
        c.add(
            &[],
            "content",
            None,
            None,
            None,
            Some(format!(
                "more than {MAX_RANGES} differing byte ranges; the rest are not classified"
            )),
        );
    }
    report.differences = c.out;
    report.omitted = c.omitted;
    Ok(report)
}

/// For text files: the line number of `offset` and both lines.
fn text_context(fa: &File, fb: &File, offset: u64) -> String {
    let line_of = |f: &File| -> Option<(usize, String)> {
        let mut r = f;
        r.seek(SeekFrom::Start(0)).ok()?;
        let mut head = Vec::new();
        r.take(offset.saturating_add(4096).min(16 << 20))
            .read_to_end(&mut head)
            .ok()?;
        let text = std::str::from_utf8(&head).ok()?;
        let at = (offset as usize).min(text.len());
        let line_no = text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let line = text.lines().nth(line_no - 1).unwrap_or("").to_string();
        Some((line_no, line))
    };
    match (line_of(fa), line_of(fb)) {
        (Some((n, la)), Some((_, lb))) => format!(" (line {n}: {la:?} vs {lb:?})"),
        _ => String::new(),
    }
}

/// A partition as either table describes it: (index, start, size).
fn table_partitions(m: &mbr::Mbr, g: Option<&gpt::Gpt>) -> Vec<(u32, u64, u64)> {
    match g {
        Some(g) => g
            .entries
            .iter()
            .filter(|e| e.is_used() && e.last_lba >= e.first_lba)
            .map(|e| {
                (
                    e.index,
                    e.first_lba.saturating_mul(SECTOR_SIZE),
                    (e.last_lba - e.first_lba + 1).saturating_mul(SECTOR_SIZE),
                )
            })
            .collect(),
        None => m
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_used())
            .map(|(i, e)| {
                (
                    i as u32 + 1,
                    u64::from(e.start_lba) * SECTOR_SIZE,
                    u64::from(e.sectors) * SECTOR_SIZE,
                )
            })
            .collect(),
    }
}

fn diff_disk(
    c: &mut Collector,
    fa: &File,
    fb: &File,
    ranges: &[(u64, u64)],
    len_a: u64,
    len_b: u64,
) {
    let pt = vec!["partition table".to_string()];
    let (Ok(mut da), Ok(mut db)) = (
        Device::new(fa, 0, len_a, "the disk image"),
        Device::new(fb, 0, len_b, "the disk image"),
    ) else {
        return;
    };
    let (ma, mb) = match (mbr::read(&mut da), mbr::read(&mut db)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            let err = |r: Result<mbr::Mbr, ReadError>| r.err().map(|e| e.to_string());
            c.add(
                &pt,
                "MBR",
                err(a),
                err(b),
                Some(0),
                Some("unreadable".into()),
            );
            return;
        }
    };
    compare_fields(c, &join(&pt, "MBR"), &ma.fields(), &mb.fields(), 0);
    let mut ga = None;
    if ma.is_protective() || mb.is_protective() {
        ga = gpt::read(&mut da).ok();
        let gb = gpt::read(&mut db).ok();
        if let (Some(a), Some(b)) = (&ga, &gb) {
            diff_gpt(c, &pt, a, b);
        }
    }
    let parts = table_partitions(&ma, ga.as_ref());
    let len = len_a.min(len_b);
    for &(index, start, size) in &parts {
        let path = vec![format!("partition {index}")];
        let end = start.saturating_add(size).min(len);
        if start >= end {
            continue;
        }
        if !ranges.iter().any(|r| r.0 < end && r.1 > start) {
            continue;
        }
        let kind_a =
            read_sector(fa, start).map(|s| crate::codec::fat::read::looks_like_boot_sector(&s));
        let kind_b =
            read_sector(fb, start).map(|s| crate::codec::fat::read::looks_like_boot_sector(&s));
        let local: Vec<(u64, u64)> = ranges
            .iter()
            .filter(|r| r.0 < end && r.1 > start)
            .map(|r| (r.0.max(start) - start, r.1.min(end) - start))
            .collect();
        if kind_a == Some(true) || kind_b == Some(true) {
            diff_volume(c, &path, fa, fb, start, end - start, end - start, &local);
        } else {
            for (s, e) in &local {
                c.add(
                    &path,
                    "content",
                    None,
                    None,
                    Some(start + s),
                    Some(format!(
                        "bytes {}..{} differ (no FAT file system at the partition's start)",
                        start + s,
                        start + e
                    )),
                );
            }
        }
    }
    // Differing bytes outside every structure compared above.
    let gpt_regions: Vec<(u64, u64)> = ga
        .as_ref()
        .map(|g| {
            let mut v = Vec::new();
            for h in [&g.primary, &g.backup].into_iter().flatten() {
                v.push((h.offset, h.offset + SECTOR_SIZE));
                let off = h.entries_lba.saturating_mul(SECTOR_SIZE);
                v.push((off, off.saturating_add(h.entry_array_len().unwrap_or(0))));
            }
            v
        })
        .unwrap_or_default();
    let mut unexplained: Vec<(u64, u64)> = Vec::new();
    for &(s, e) in ranges {
        let mut at = s;
        while at < e {
            // Partition contents were classified by diff_volume; the MBR and GPT by fields.
            let inside = parts
                .iter()
                .map(|&(_, ps, pz)| (ps, ps.saturating_add(pz)))
                .chain(std::iter::once((0, SECTOR_SIZE)))
                .chain(gpt_regions.iter().copied())
                .find(|&(rs, re)| at >= rs && at < re);
            match inside {
                Some((_, re)) => at = re.min(e),
                None => {
                    let next = parts
                        .iter()
                        .map(|&(_, ps, _)| ps)
                        .chain(gpt_regions.iter().map(|r| r.0))
                        .filter(|&ps| ps > at)
                        .min()
                        .unwrap_or(u64::MAX)
                        .min(e);
                    unexplained.push((at, next));
                    at = next;
                }
            }
        }
    }
    for (s, e) in unexplained {
        c.add(
            &[],
            "unallocated region",
            None,
            None,
            Some(s),
            Some(format!(
                "bytes {s}..{e} differ outside the partition table and every partition"
            )),
        );
    }
}

fn read_sector(f: &File, offset: u64) -> Option<Vec<u8>> {
    let mut r = f;
    r.seek(SeekFrom::Start(offset)).ok()?;
    let mut s = vec![0u8; 512];
    r.read_exact(&mut s).ok()?;
    Some(s)
}

fn diff_gpt(c: &mut Collector, pt: &[String], a: &gpt::Gpt, b: &gpt::Gpt) {
    type Side<'a> = (
        &'a str,
        &'a Option<gpt::GptHeader>,
        &'a Option<gpt::GptHeader>,
        &'a Vec<gpt::GptEntry>,
        &'a Vec<gpt::GptEntry>,
    );
    let sides: [Side; 2] = [
        ("GPT header", &a.primary, &b.primary, &a.entries, &b.entries),
        (
            "backup GPT header",
            &a.backup,
            &b.backup,
            &a.backup_entries,
            &b.backup_entries,
        ),
    ];
    for (name, ha, hb, ea, eb) in sides {
        let path = join(pt, name);
        match (ha, hb) {
            (Some(x), Some(y)) => compare_fields(c, &path, &x.fields(), &y.fields(), 0),
            (Some(x), None) => c.add(
                &path,
                "header",
                Some("present".into()),
                Some("missing or unreadable".into()),
                Some(x.offset),
                None,
            ),
            (None, Some(_)) => c.add(
                &path,
                "header",
                Some("missing or unreadable".into()),
                Some("present".into()),
                None,
                None,
            ),
            (None, None) => {}
        }
        let entries_name = if name == "GPT header" {
            "GPT entries"
        } else {
            "backup GPT entries"
        };
        for i in 0..ea.len().max(eb.len()) {
            let (x, y) = (ea.get(i), eb.get(i));
            let path = join(&join(pt, entries_name), &format!("partition {}", i + 1));
            match (x, y) {
                (Some(x), Some(y)) => compare_fields(c, &path, &x.fields(), &y.fields(), 0),
                (Some(x), None) if x.is_used() => c.add(
                    &path,
                    "entry",
                    Some("used".into()),
                    None,
                    Some(x.offset),
                    None,
                ),
                (None, Some(y)) if y.is_used() => {
                    c.add(&path, "entry", None, Some("used".into()), None, None)
                }
                _ => {}
            }
        }
    }
    for (label, err_a, err_b) in [
        ("GPT header", &a.primary_error, &b.primary_error),
        ("backup GPT header", &a.backup_error, &b.backup_error),
    ] {
        if err_a != err_b {
            c.add(
                &join(pt, label),
                "validity",
                Some(err_a.clone().unwrap_or_else(|| "valid".into())),
                Some(err_b.clone().unwrap_or_else(|| "valid".into())),
                None,
                None,
            );
        }
    }
}

/// What owns each cluster of A's volume, for naming bytes in the data area.
enum Owner {
    Free,
    File { path: String, index: u64, size: u64 },
    Dir(String),
}

/// Compares the FAT volumes at [offset, offset+len) of both files. `ranges` are differing byte
/// ranges relative to the volume start.
#[allow(clippy::too_many_arguments)]
fn diff_volume(
    c: &mut Collector,
    path: &[String],
    fa: &File,
    fb: &File,
    offset: u64,
    len: u64,
    region_len: u64,
    ranges: &[(u64, u64)],
) {
    let fat_path = join(path, "FAT");
    let boot_path = join(&fat_path, "boot sector");
    let sa = read_sector(fa, offset);
    let sb = read_sector(fb, offset);
    let (Some(sa), Some(sb)) = (sa, sb) else {
        return;
    };
    let arr = |s: &[u8]| -> [u8; 512] {
        let mut a = [0u8; 512];
        a.copy_from_slice(&s[..512]);
        a
    };
    let (ba, bb) = (BootSector::parse(&arr(&sa)), BootSector::parse(&arr(&sb)));
    let before = c.count();
    compare_fields(c, &boot_path, &ba.fields(), &bb.fields(), offset);
    let layout_fields = [
        "bytes per sector",
        "sectors per cluster",
        "reserved sectors",
        "number of FATs",
        "root directory entries",
        "total sectors (16-bit)",
        "total sectors (32-bit)",
        "sectors per FAT (16-bit)",
        "sectors per FAT (32-bit)",
        "root directory cluster",
    ];
    let layout_differs = c.out[(before as usize).min(c.out.len())..]
        .iter()
        .any(|d| d.path == boot_path && layout_fields.contains(&d.field.as_str()));
    if layout_differs {
        c.add(
            &fat_path,
            "layout",
            None,
            None,
            Some(offset),
            Some(
                "the boot sectors describe different layouts; the volumes are not compared further"
                    .into(),
            ),
        );
        return;
    }
    let va = FatVolume::open(fa, offset, len);
    let vb = FatVolume::open(fb, offset, len);
    let (mut va, mut vb) = match (va, vb) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            let e =
                |r: &Result<FatVolume<&File>, ReadError>| r.as_ref().err().map(|e| e.to_string());
            c.add(
                &fat_path,
                "readable",
                e(&a).or(Some("yes".into())),
                e(&b).or(Some("yes".into())),
                Some(offset),
                None,
            );
            return;
        }
    };
    let g = va.geometry;
    // FAT32 backup boot sector and FSInfo.
    let bps = g.bytes_per_sector;
    let backup = u64::from(ba.backup_boot_sector);
    if g.kind == crate::codec::fat::read::FatType::Fat32
        && backup > 0
        && backup < u64::from(ba.reserved_sectors)
    {
        let at = backup * bps;
        if let (Some(x), Some(y)) = (read_sector(fa, offset + at), read_sector(fb, offset + at)) {
            let (x, y) = (BootSector::parse(&arr(&x)), BootSector::parse(&arr(&y)));
            compare_fields(
                c,
                &join(&fat_path, "backup boot sector"),
                &x.fields(),
                &y.fields(),
                offset + at,
            );
        }
    }
    if let (Some(x), Some(y)) = (&va.fsinfo, &vb.fsinfo) {
        compare_fields(
            c,
            &join(&fat_path, "FSInfo"),
            &x.fields(),
            &y.fields(),
            offset,
        );
    }
    // Who owns which cluster in A.
    let walk_a = va.walk();
    let walk_b = vb.walk();
    let owners = owners_of(&va, walk_a.as_ref().ok());
    // B's layout too: bytes that only B's files use are compared as B's content.
    let owners_b = owners_of(&vb, walk_b.as_ref().ok());
    let owner_name = |cl: u32| -> String {
        match owners.get(cl as usize) {
            Some(Owner::File { path, .. }) => format!(" (in {path})"),
            Some(Owner::Dir(p)) if p.is_empty() => " (root directory)".into(),
            Some(Owner::Dir(p)) => format!(" (directory {p})"),
            _ if cl < 2 => " (reserved)".into(),
            _ => " (free)".into(),
        }
    };
    // FAT copies, entry by entry.
    let mut fat_diff: Vec<u32> = Vec::new();
    for copy in 0..g.fat_count {
        let (Ok(ta), Ok(tb)) = (va.read_fat(copy), vb.read_fat(copy)) else {
            continue;
        };
        let differing: Vec<usize> = (0..ta.len()).filter(|&i| ta.get(i) != tb.get(i)).collect();
        fat_diff.extend(differing.iter().map(|&i| i as u32));
        let p = join(&fat_path, &format!("FAT {}", copy + 1));
        for &i in differing.iter().take(MAX_FAT_ENTRIES_LISTED) {
            let (at, _) = g.fat_entry_range(copy, i as u32);
            c.add(
                &p,
                format!("entry for cluster {i}{}", owner_name(i as u32)),
                Some(fat_value(ta[i], &g)),
                Some(fat_value(tb[i], &g)),
                Some(offset + at),
                None,
            );
        }
        if differing.len() > MAX_FAT_ENTRIES_LISTED {
            c.add(
                &p,
                "entries",
                None,
                None,
                None,
                Some(format!(
                    "{} entries differ in all, from cluster {} to {}",
                    differing.len(),
                    differing[0],
                    differing[differing.len() - 1]
                )),
            );
        }
    }
    // Directory trees, slot by slot, then file contents.
    // Compared listing by listing even when one tree is damaged further down.
    fat_diff.sort_unstable();
    fat_diff.dedup();
    let untouched = Untouched { ranges, fat_diff };
    let (la, lb) = (va.dir_listing(None), vb.dir_listing(None));
    if let (Ok(la), Ok(lb)) = (la, lb) {
        let mut budget = crate::codec::fat::read::MAX_ENTRIES;
        diff_dir(
            c,
            &fat_path,
            &mut va,
            &mut vb,
            &la,
            &lb,
            offset,
            0,
            &mut budget,
            &untouched,
        );
    }
    if walk_a.is_err() || walk_b.is_err() {
        let e = |r: &Result<_, ReadError>| r.as_ref().err().map(|e: &ReadError| e.to_string());
        c.add(
            &fat_path,
            "directory tree",
            e(&walk_a).or(Some("readable".into())),
            e(&walk_b).or(Some("readable".into())),
            None,
            None,
        );
    }
    // Bytes no structure above compared.
    let mut last: Option<(String, u64, u64)> = None;
    let flush = |c: &mut Collector, last: &mut Option<(String, u64, u64)>| {
        if let Some((what, s, e)) = last.take() {
            c.add(
                path,
                &what,
                None,
                None,
                Some(offset + s),
                Some(format!(
                    "bytes {}..{} of the image differ; nothing reads them",
                    offset + s,
                    offset + e
                )),
            );
        }
    };
    for &(s, e) in ranges {
        let mut at = s;
        while at < e {
            let (region, end) = classify_volume(&va, &owners, at, region_len);
            let (region_b, _) = classify_volume(&vb, &owners_b, at, region_len);
            let region = region.filter(|_| region_b.is_some());
            let end = end.min(e).max(at + 1);
            if let Some(what) = region {
                match &mut last {
                    Some((w, _, le)) if *w == what && *le + RANGE_GAP >= at => *le = end,
                    _ => {
                        flush(c, &mut last);
                        last = Some((what, at, end));
                    }
                }
            }
            at = end;
        }
    }
    flush(c, &mut last);
}

/// Which file or directory owns each cluster of a volume (from a finished walk).
fn owners_of<R: Read + Seek>(
    v: &FatVolume<R>,
    walk: Option<&Vec<(crate::codec::fat::read::DirListing, Vec<FatEntry>)>>,
) -> Vec<Owner> {
    let g = v.geometry;
    let mut owners: Vec<Owner> = (0..g.cluster_count as usize + 2)
        .map(|_| Owner::Free)
        .collect();
    let Some(w) = walk else {
        return owners;
    };
    let mark = |owners: &mut Vec<Owner>, o: u64, who: Owner| {
        if let Some(slot) = g.cluster_at(o).and_then(|cl| owners.get_mut(cl as usize)) {
            *slot = who;
        }
    };
    if let Ok(ext) = v.dir_extents(None, "root directory") {
        for (o, _) in ext {
            mark(&mut owners, o, Owner::Dir(String::new()));
        }
    }
    for (_, entries) in w {
        for e in entries {
            if e.is_dir {
                if let Ok(ext) = v.dir_extents(Some(e.first_cluster), &e.path) {
                    for (o, _) in ext {
                        mark(&mut owners, o, Owner::Dir(e.path.clone()));
                    }
                }
            } else if let Ok(chain) = v.file_clusters(e) {
                for (i, cl) in chain.iter().enumerate() {
                    let who = Owner::File {
                        path: e.path.clone(),
                        index: i as u64,
                        size: u64::from(e.size),
                    };
                    mark(&mut owners, g.cluster_offset(*cl), who);
                }
            }
        }
    }
    owners
}

fn fat_value(v: u32, g: &crate::codec::fat::read::Geometry) -> String {
    if v == 0 {
        "free".into()
    } else if v >= g.end_of_chain() {
        format!("end of chain (0x{v:x})")
    } else if v == g.bad_cluster() {
        "bad cluster".into()
    } else {
        format!("next cluster {v}")
    }
}

/// Names an uncompared region of A's volume at volume offset `at`: `(Some(name), end)`, or
/// `(None, end)` when a structure compared above covers it.
fn classify_volume<R: Read + Seek>(
    v: &FatVolume<R>,
    owners: &[Owner],
    at: u64,
    region_len: u64,
) -> (Option<String>, u64) {
    let g = &v.geometry;
    let bps = g.bytes_per_sector;
    let reserved_end = g.fat_offset;
    if at < 512 {
        return (None, 512);
    }
    if at < reserved_end {
        let sector = at / bps;
        let end = (sector + 1) * bps;
        let covered = (v
            .fsinfo
            .as_ref()
            .is_some_and(|f| f.offset / bps == sector && at < f.offset + 512))
            || (g.kind == crate::codec::fat::read::FatType::Fat32
                && sector == u64::from(v.boot.backup_boot_sector)
                && sector > 0
                && at % bps < 512);
        if covered {
            return (None, end);
        }
        return (Some(format!("reserved sector {sector}")), end);
    }
    let fats_end = g.fat_offset + u64::from(g.fat_count) * g.fat_len;
    if at < fats_end {
        let copy = (at - g.fat_offset) / g.fat_len;
        let start = g.fat_offset + copy * g.fat_len;
        let (last, len) = g.fat_entry_range(copy as u8, g.cluster_count + 1);
        let used_end = last + len;
        if at < used_end {
            return (None, used_end);
        }
        return (
            Some(format!("FAT {} after the last cluster entry", copy + 1)),
            start + g.fat_len,
        );
    }
    if at < g.data_offset {
        return (None, g.data_offset);
    }
    if let Some(cl) = g.cluster_at(at) {
        let cstart = g.cluster_offset(cl);
        let cend = cstart + g.cluster_size;
        return match owners.get(cl as usize) {
            Some(Owner::File { path, index, size }) => {
                let file_off = index * g.cluster_size + (at - cstart);
                if file_off < *size {
                    (None, (cstart + (size - index * g.cluster_size)).min(cend))
                } else {
                    (
                        Some(format!("slack after the end of {path} (cluster {cl})")),
                        cend,
                    )
                }
            }
            Some(Owner::Dir(_)) => (None, cend),
            _ => (Some(format!("unallocated cluster {cl}")), cend),
        };
    }
    if at < g.volume_len {
        return (Some("sectors after the last cluster".into()), g.volume_len);
    }
    (
        Some("partition space after the FAT volume".into()),
        region_len.max(at + 1),
    )
}

/// A directory entry pair's label: A's path, else B's.
fn entry_label(a: Option<&FatEntry>, b: Option<&FatEntry>) -> String {
    a.or(b).map(|e| e.path.clone()).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn diff_dir(
    c: &mut Collector,
    fat_path: &[String],
    va: &mut FatVolume<&File>,
    vb: &mut FatVolume<&File>,
    la: &crate::codec::fat::read::DirListing,
    lb: &crate::codec::fat::read::DirListing,
    offset: u64,
    depth: usize,
    budget: &mut usize,
    untouched: &Untouched,
) {
    if depth > crate::codec::fat::read::MAX_DEPTH || *budget == 0 {
        return;
    }
    let ea = va.entries_in(la);
    let eb = vb.entries_in(lb);
    *budget = budget.saturating_sub(ea.len());
    // Pair entries that sit in the same slot with the same name, then by name, then by slot
    // (a damaged name stays paired with its entry); the rest are only on one side.
    let mut compared_slots: Vec<u64> = Vec::new();
    let mut used_b = vec![false; eb.len()];
    let mut pairs: Vec<(Option<&FatEntry>, Option<&FatEntry>)> = Vec::new();
    let mut pending: Vec<&FatEntry> = Vec::new();
    for a in &ea {
        match eb
            .iter()
            .enumerate()
            .find(|(j, b)| !used_b[*j] && b.entry_offset == a.entry_offset && b.path == a.path)
        {
            Some((j, b)) => {
                used_b[j] = true;
                pairs.push((Some(a), Some(b)));
            }
            None => pending.push(a),
        }
    }
    let mut still: Vec<&FatEntry> = Vec::new();
    for a in pending {
        let key = a.path.to_ascii_lowercase();
        match eb
            .iter()
            .enumerate()
            .find(|(j, b)| !used_b[*j] && b.path.to_ascii_lowercase() == key)
        {
            Some((j, b)) => {
                used_b[j] = true;
                pairs.push((Some(a), Some(b)));
            }
            None => still.push(a),
        }
    }
    for a in still {
        match eb
            .iter()
            .enumerate()
            .find(|(j, b)| !used_b[*j] && b.entry_offset == a.entry_offset)
        {
            Some((j, b)) => {
                used_b[j] = true;
                pairs.push((Some(a), Some(b)));
            }
            None => pairs.push((Some(a), None)),
        }
    }
    for (j, b) in eb.iter().enumerate() {
        if !used_b[j] {
            pairs.push((None, Some(b)));
        }
    }
    for (a, b) in pairs {
        let label = entry_label(a, b);
        let p = join(fat_path, &format!("directory entry {label}"));
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => {
                c.add(
                    &p,
                    "presence",
                    Some("present".into()),
                    None,
                    Some(offset + a.entry_offset),
                    None,
                );
                // What B holds in that slot instead, field by field.
                let raw_b = slot_bytes(lb, a.entry_offset);
                let b = FatEntry::from_slot(&raw_b, a.entry_offset);
                compare_fields(c, &p, &a.fields(), &b.fields(), offset);
                compared_slots.push(a.entry_offset);
                continue;
            }
            (None, Some(_)) => {
                c.add(&p, "presence", None, Some("present".into()), None, None);
                continue;
            }
            (None, None) => continue,
        };
        compared_slots.push(a.entry_offset);
        compared_slots.extend(a.lfn_offsets.iter().copied());
        if a.long_name != b.long_name || a.long_name_problem != b.long_name_problem {
            let show = |e: &FatEntry| match (&e.long_name, &e.long_name_problem) {
                (Some(n), _) => format!("{n:?}"),
                (None, Some(why)) => format!("none ({why})"),
                (None, None) => "none".into(),
            };
            c.add(
                &p,
                "long name",
                Some(show(a)),
                Some(show(b)),
                a.lfn_offsets.first().map(|o| offset + o),
                None,
            );
        }
        // LFN slots whose bytes differ beyond the name they spell.
        if a.long_name == b.long_name {
            for (k, (oa, ob)) in a.lfn_offsets.iter().zip(b.lfn_offsets.iter()).enumerate() {
                let ra = slot_bytes(la, *oa);
                let rb = slot_bytes(lb, *ob);
                if ra != rb {
                    let i = ra
                        .iter()
                        .zip(rb.iter())
                        .position(|(x, y)| x != y)
                        .unwrap_or(0);
                    c.add(
                        &p,
                        format!("long-name entry {} byte {i}", k + 1),
                        Some(format!("0x{:02x}", ra[i])),
                        Some(format!("0x{:02x}", rb[i])),
                        Some(offset + oa + i as u64),
                        None,
                    );
                }
            }
        }
        compare_fields(c, &p, &a.fields(), &b.fields(), offset);
        let content_path = join(fat_path, &label);
        if a.is_dir && b.is_dir {
            if let (Ok(x), Ok(y)) = (va.dir_listing(Some(a)), vb.dir_listing(Some(b))) {
                diff_dir(
                    c,
                    fat_path,
                    va,
                    vb,
                    &x,
                    &y,
                    offset,
                    depth + 1,
                    budget,
                    untouched,
                );
            }
        } else if !a.is_dir && !b.is_dir {
            diff_file(c, &content_path, va, vb, a, b, untouched);
        }
    }
    // Every other slot (label, dot entries, deleted and free slots) byte by byte.
    let n = la.slots.len().min(lb.slots.len());
    let dir_name = if la.path.is_empty() {
        "root directory".to_string()
    } else {
        format!("directory {}", la.path)
    };
    for i in 0..n {
        let (oa, kind, ra) = &la.slots[i];
        let (_, _, rb) = &lb.slots[i];
        if compared_slots.contains(oa) || ra == rb {
            continue;
        }
        let what = match kind {
            Slot::Short
                if ra[11] & crate::codec::fat::read::ATTR_VOLUME_ID != 0
                    && ra[11] & 0x3F != 0x0F =>
            {
                "volume label entry".to_string()
            }
            Slot::Short if ra[0] == b'.' => {
                format!("'{}' entry", String::from_utf8_lossy(&ra[..2]).trim_end())
            }
            Slot::Short => "entry".to_string(),
            Slot::LongName { .. } => "orphaned long-name entry".to_string(),
            Slot::Deleted => "deleted entry".to_string(),
            Slot::Free => "unused entry".to_string(),
        };
        if matches!(kind, Slot::Short) {
            let mk = |b: &[u8; 32], o: u64| {
                let mut e = FatEntry::from_slot(b, o);
                e.path = String::new();
                e
            };
            let (x, y) = (mk(ra, *oa), mk(rb, *oa));
            compare_fields(
                c,
                &join(fat_path, &format!("{dir_name} {what}")),
                &x.fields(),
                &y.fields(),
                offset,
            );
        } else {
            let k = ra
                .iter()
                .zip(rb.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            c.add(
                &join(fat_path, &dir_name),
                format!("{what} slot {i} byte {k}"),
                Some(format!("0x{:02x}", ra[k])),
                Some(format!("0x{:02x}", rb[k])),
                Some(offset + oa + k as u64),
                None,
            );
        }
    }
    if la.slots.len() != lb.slots.len() {
        c.add(
            &join(fat_path, &dir_name),
            "size in slots",
            Some(la.slots.len().to_string()),
            Some(lb.slots.len().to_string()),
            None,
            None,
        );
    }
}

fn slot_bytes(l: &crate::codec::fat::read::DirListing, offset: u64) -> [u8; 32] {
    l.slots
        .iter()
        .find(|s| s.0 == offset)
        .map(|s| s.2)
        .unwrap_or([0; 32])
}

/// What the byte pass found, to skip files whose clusters and FAT links no difference touches.
struct Untouched<'a> {
    /// Differing ranges, volume-relative, sorted.
    ranges: &'a [(u64, u64)],
    /// Clusters whose entry differs in some FAT copy, sorted.
    fat_diff: Vec<u32>,
}

impl Untouched<'_> {
    fn file<R: Read + Seek>(&self, v: &FatVolume<R>, a: &FatEntry, b: &FatEntry) -> bool {
        if a.first_cluster != b.first_cluster || a.size != b.size {
            return false;
        }
        let Ok(chain) = v.file_clusters(a) else {
            return false;
        };
        let g = &v.geometry;
        chain.iter().all(|&cl| {
            let (s, e) = (g.cluster_offset(cl), g.cluster_offset(cl) + g.cluster_size);
            let i = self.ranges.partition_point(|r| r.1 <= s);
            self.fat_diff.binary_search(&cl).is_err() && self.ranges.get(i).is_none_or(|r| r.0 >= e)
        })
    }
}

/// Compares two files' contents; archives are compared as archives. Files that no differing
/// byte touches (same start and size, same FAT links, same clusters) are not read.
fn diff_file(
    c: &mut Collector,
    path: &[String],
    va: &mut FatVolume<&File>,
    vb: &mut FatVolume<&File>,
    a: &FatEntry,
    b: &FatEntry,
    untouched: &Untouched,
) {
    if untouched.file(va, a, b) {
        return;
    }
    let (ra, rb) = (va.read_entry(a), vb.read_entry(b));
    match (ra, rb) {
        (Ok(x), Ok(y)) => {
            if x != y {
                diff_bytes(c, path, &x, &y, 0);
            }
        }
        (x, y) => {
            let e = |r: &Result<Vec<u8>, ReadError>| r.as_ref().err().map(|e| e.to_string());
            if e(&x) != e(&y) {
                c.add(
                    path,
                    "content",
                    e(&x).or(Some("readable".into())),
                    e(&y).or(Some("readable".into())),
                    None,
                    None,
                );
            }
        }
    }
}

/// Compares two byte strings: as gzip/cpio/tar when both are, else by first differing offset.
fn diff_bytes(c: &mut Collector, path: &[String], a: &[u8], b: &[u8], depth: usize) {
    if a == b {
        return;
    }
    // Judge by A (the reference) when B is too damaged to be recognized, and vice versa.
    let (ka, kb) = (kind_of(a), kind_of(b));
    let kind = match (ka, kb) {
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(x), None) | (None, Some(x)) => Some(x),
        _ => None,
    };
    if depth < MAX_NESTING {
        match kind {
            Some(Kind::Gzip) => return diff_gzip(c, path, a, b, depth),
            Some(Kind::Cpio) => return diff_archive::<CpioHeader>(c, path, a, b, depth),
            Some(Kind::Tar) => return diff_archive::<TarEntry>(c, path, a, b, depth),
            Some(Kind::Squashfs) => return diff_archive::<SquashfsMember>(c, path, a, b, depth),
            None => {}
        }
    }
    raw_difference(c, path, "content", a, b);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Cpio,
    Tar,
    Squashfs,
}

fn kind_of(b: &[u8]) -> Option<Kind> {
    if b.starts_with(&gzip::MAGIC) {
        return Some(Kind::Gzip);
    }
    if b.starts_with(&crate::codec::squashfs::MAGIC) {
        return Some(Kind::Squashfs);
    }
    match crate::codec::detect::payload_kind(b) {
        ArtifactKind::Cpio => Some(Kind::Cpio),
        ArtifactKind::Tar => Some(Kind::Tar),
        _ => None,
    }
}

fn raw_difference(c: &mut Collector, path: &[String], field: &str, a: &[u8], b: &[u8]) {
    let i = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let byte = |s: &[u8]| {
        s.get(i)
            .map(|v| format!("0x{v:02x}"))
            .unwrap_or_else(|| "end".into())
    };
    let note = if a.len() != b.len() {
        Some(format!("sizes {} vs {}", a.len(), b.len()))
    } else {
        None
    };
    c.add(
        path,
        format!("{field} at offset {i}"),
        Some(byte(a)),
        Some(byte(b)),
        Some(i as u64),
        note,
    );
}

/// A gzip stream decompressed as far as it goes, up to a limit.
struct Gunzipped {
    header: Option<GzipHeader>,
    header_error: Option<String>,
    data: Vec<u8>,
    trailer: Option<GzipTrailer>,
    error: Option<String>,
    /// The stream goes on past `room`: `data` holds only its start.
    over: bool,
}

/// Decompresses `b`, holding at most `room` bytes of its output.
fn gunzip(b: &[u8], room: u64) -> Gunzipped {
    let most = (b.len() as u64).saturating_mul(gzip::MAX_RATIO);
    let limit = most.min(room);
    match gzip::GzipReader::new(b, limit) {
        Err(e) => Gunzipped {
            header: None,
            header_error: Some(e.to_string()),
            data: Vec::new(),
            trailer: None,
            error: None,
            over: false,
        },
        Ok(mut r) => {
            // The trailer's size (modulo 2^32, and the stranger's word) only sizes the buffer
            // and, when it is already too large, spares decompressing what cannot be held.
            let declared = b.len().checked_sub(4).map_or(0, |i| {
                u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
            });
            let mut data = Vec::new();
            // A size beyond what the ratio allows is no size at all: it does not steer.
            let (error, over) = if declared > limit && declared <= most && limit < most {
                (None, true)
            } else {
                data.reserve_exact(declared.min(limit) as usize);
                let error = read_within(&mut r, &mut data, limit).err();
                (error.map(|e| e.to_string()), r.hit_limit() && limit < most)
            };
            Gunzipped {
                header: Some(r.header().clone()),
                header_error: None,
                data,
                trailer: r.trailer().cloned(),
                error,
                over,
            }
        }
    }
}

/// Reads `r` to its end into `data`, growing it (at most doubling) but never past `limit`
/// plus one read's worth, so that a stream stopped at the limit costs no more than it.
fn read_within(r: &mut impl Read, data: &mut Vec<u8>, limit: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if data.capacity() - data.len() < n {
            let most = usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_add(buf.len());
            let want = data.capacity().saturating_mul(2).max(1 << 20).min(most);
            data.reserve_exact(want.saturating_sub(data.len()).max(n));
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// Compares two gzip streams too large to hold as one byte stream each, a megabyte at a
/// time: the first decompressed offset where they differ, or that they agree.
fn diff_gzip_streamed(c: &mut Collector, path: &[String], a: &[u8], b: &[u8]) {
    let why = format!(
        "the decompressed streams are larger than the {} MiB pimg diff holds in memory, so they \
         are compared as byte streams, not member by member",
        DECOMPRESSED_IN_MEMORY >> 20
    );
    // One limit for both sides, so that neither stops where the other goes on.
    let (Ok(mut ra), Ok(mut rb)) = (
        gzip::GzipReader::new(a, MAX_STREAMED),
        gzip::GzipReader::new(b, MAX_STREAMED),
    ) else {
        return;
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        // What was read before an error is compared too.
        let (na, ea) = fill_until_error(&mut ra, &mut ba);
        let (nb, eb) = fill_until_error(&mut rb, &mut bb);
        let n = na.min(nb);
        if let Some(i) = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y) {
            let at = at + i as u64;
            c.add(
                path,
                format!("decompressed data at offset {at}"),
                Some(format!("0x{:02x}", ba[i])),
                Some(format!("0x{:02x}", bb[i])),
                Some(at),
                Some(why),
            );
            return;
        }
        let start = at;
        at += n as u64;
        if ea.is_none() && eb.is_none() && na == nb && na == ba.len() {
            continue;
        }
        let note = if ra.hit_limit() && rb.hit_limit() {
            format!(
                "both decompress identically for their first {at} bytes; the rest is not \
                 compared (pimg diff streams at most {} MiB of each)",
                MAX_STREAMED >> 20
            )
        } else if ea.is_none() && eb.is_none() && na == nb {
            // Both streams ended together with identical output.
            if let (Some(x), Some(y)) = (ra.trailer(), rb.trailer()) {
                let before = c.count();
                compare_fields(c, &join(path, "gzip trailer"), &x.fields(), &y.fields(), 0);
                // Bytes after the first member (another member, say) are compared as bytes.
                let tail = |d: &'_ [u8], t: u64| -> Vec<u8> {
                    d[d.len().saturating_sub(t as usize)..].to_vec()
                };
                let (ta, tb) = (tail(a, x.trailing), tail(b, y.trailing));
                if ta != tb {
                    raw_difference(c, path, "bytes after the gzip trailer", &ta, &tb);
                }
                if c.count() > before {
                    return;
                }
            }
            format!(
                "the deflate streams differ but decompress to identical bytes ({at} bytes); {why}"
            )
        } else {
            let side = |e: Option<String>, got: usize| match e {
                Some(e) => e,
                None if got == ba.len() => "goes on".to_string(),
                None => format!("ends after {} bytes", start + got as u64),
            };
            format!(
                "A: {}; B: {}; the decompressed output agrees up to byte {at}; {why}",
                side(ea, na),
                side(eb, nb)
            )
        };
        c.add(path, "decompressed data", None, None, Some(at), Some(note));
        return;
    }
}

/// Like `fill`, but an error ends the filling instead of losing what was read before it.
fn fill_until_error<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> (usize, Option<String>) {
    let (got, e) = crate::codec::reader::fill_until_error(r, buf);
    (got, e.map(|e| e.to_string()))
}

/// The ten fixed header bytes as fields, parsed without judging them.
fn gzip_fixed_fields(b: &[u8]) -> Vec<Field> {
    let g = |i: usize| b.get(i).copied().unwrap_or(0);
    vec![
        Field::new("magic", 0, 2, format!("{:02x} {:02x}", g(0), g(1))),
        Field::new("compression method", 2, 1, g(2)),
        Field::new("flags", 3, 1, format!("0x{:02x}", g(3))),
        Field::new("mtime", 4, 4, u32::from_le_bytes([g(4), g(5), g(6), g(7)])),
        Field::new("extra flags", 8, 1, g(8)),
        Field::new("OS", 9, 1, g(9)),
    ]
}

fn diff_gzip(c: &mut Collector, path: &[String], a: &[u8], b: &[u8], depth: usize) {
    let hp = join(path, "gzip header");
    let before = c.count();
    compare_fields(c, &hp, &gzip_fixed_fields(a), &gzip_fixed_fields(b), 0);
    let room = DECOMPRESSED_IN_MEMORY.saturating_sub(c.held) / 2;
    let (ga, gb) = (gunzip(a, room), gunzip(b, room));
    // A header that cannot be read is reported below, streams or no streams.
    let readable = ga.header_error.is_none() && gb.header_error.is_none();
    if (ga.over || gb.over) && readable {
        if let (Some(x), Some(y)) = (&ga.header, &gb.header) {
            let fx: Vec<Field> = x.fields().into_iter().skip(6).collect();
            let fy: Vec<Field> = y.fields().into_iter().skip(6).collect();
            compare_fields(c, &hp, &fx, &fy, 0);
        }
        drop((ga, gb));
        return diff_gzip_streamed(c, path, a, b);
    }
    if let (Some(x), Some(y)) = (&ga.header, &gb.header) {
        let fx: Vec<Field> = x.fields().into_iter().skip(6).collect();
        let fy: Vec<Field> = y.fields().into_iter().skip(6).collect();
        compare_fields(c, &hp, &fx, &fy, 0);
    }
    if ga.header_error.is_some() || gb.header_error.is_some() {
        if c.count() == before {
            c.add(
                &hp,
                "readable",
                ga.header_error.clone().or(Some("yes".into())),
                gb.header_error.clone().or(Some("yes".into())),
                Some(0),
                None,
            );
        }
        return;
    }
    let before_trailer = c.count();
    // CRC32 and size follow from the payload: reported when the payloads agree.
    if let (Some(x), Some(y)) = (&ga.trailer, &gb.trailer) {
        if ga.data == gb.data
            || x.crc32 != x.computed_crc32
            || y.crc32 != y.computed_crc32
            || u64::from(y.isize) != y.data_len & 0xFFFF_FFFF
            || u64::from(x.isize) != x.data_len & 0xFFFF_FFFF
        {
            compare_fields(c, &join(path, "gzip trailer"), &x.fields(), &y.fields(), 0);
        }
    }
    let trailer_differs = c.count() > before_trailer;
    let complete = ga.trailer.is_some() && gb.trailer.is_some();
    if !complete {
        // One stream breaks: name where the decompressed output stops agreeing.
        let n = ga.data.len().min(gb.data.len());
        let d = ga.data[..n]
            .iter()
            .zip(gb.data[..n].iter())
            .position(|(x, y)| x != y)
            .unwrap_or(n);
        let first = (0..a.len().min(b.len()))
            .find(|&i| a[i] != b[i])
            .unwrap_or(a.len().min(b.len()));
        let note = format!(
            "A: {}; B: {}; decompressed output diverges at byte {d}",
            ga.error.clone().unwrap_or_else(|| "decompresses".into()),
            gb.error.clone().unwrap_or_else(|| "decompresses".into())
        );
        c.add(
            path,
            format!("compressed data at offset {first}"),
            None,
            None,
            Some(first as u64),
            Some(note),
        );
        if let Some((p, field)) = locate_payload(&ga.data, d) {
            c.add(
                &join(path, &p),
                field,
                None,
                None,
                Some(d as u64),
                Some("first decompressed byte that differs or is missing".into()),
            );
        }
        return;
    }
    if (ga.error.is_some() || gb.error.is_some()) && !trailer_differs {
        let t = ga.trailer.as_ref().map(|t| t.offset);
        c.add(
            path,
            "gzip trailer check",
            ga.error.clone().or(Some("ok".into())),
            gb.error.clone().or(Some("ok".into())),
            t,
            None,
        );
    }
    if ga.data == gb.data {
        let tail_a = a.len() as u64 - ga.trailer.as_ref().map_or(0, |t| t.trailing);
        let first = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]);
        if let Some(i) = first.filter(|&i| (i as u64) < tail_a.saturating_sub(8)) {
            if c.count() == before {
                c.add(
                    path,
                    format!("compressed data at offset {i}"),
                    None,
                    None,
                    Some(i as u64),
                    Some("the deflate streams differ but decompress to identical bytes".into()),
                );
            }
        }
        if a.len() != b.len() && c.count() == before {
            raw_difference(c, path, "bytes after the gzip trailer", a, b);
        }
        return;
    }
    let held = (ga.data.len() + gb.data.len()) as u64;
    c.held += held;
    diff_bytes(c, path, &ga.data, &gb.data, depth + 1);
    c.held -= held;
}

// Archives. Each format has an adapter over its reader that lists the archive's members in
// stored order with their header values, layout and content; one comparison serves them all,
// so a format added later (squashfs, say) needs its adapter and a `Kind`, nothing more.

/// Values compared together; `under` names them below the archive (the cpio trailer).
struct Group {
    under: Option<&'static str>,
    values: Vec<Value>,
}

impl Group {
    fn new(values: Vec<Value>) -> Self {
        Group {
            under: None,
            values,
        }
    }

    fn fields(fields: &[Field]) -> Self {
        Group::new(fields.iter().map(|f| Value::field(f, 0)).collect())
    }
}

/// How a member's content is compared.
#[derive(Clone, Copy)]
enum Content {
    /// Bytes, compared as a nested archive when they are one.
    Bytes,
    /// A symlink's target path, shown as text.
    LinkTarget,
}

/// One archive member as its format's adapter describes it.
trait Member: Clone {
    /// How the report names an archive of this format that does not read.
    const FORMAT: &'static str;
    /// Reads an archive of this format as far as it goes.
    fn list(data: &[u8]) -> Listing<Self>;

    /// The name that pairs members of the two sides and labels their differences.
    fn path(&self) -> &str;
    /// Where its own header starts (after any extension headers).
    fn offset(&self) -> u64;
    /// The bytes it owns: from its first extension header to the end of its padding.
    fn span(&self) -> (u64, u64);
    /// Its header values, compared group by group in this order.
    fn groups(&self) -> Vec<Group>;
    /// Named byte ranges outside its content (header fields, extensions, name padding).
    fn layout(&self) -> Vec<Field>;
    /// Where its content starts and how long it is.
    fn content_range(&self) -> (u64, u64);
    fn content_kind(&self) -> Content;

    /// The SHA-256 of its content when the listing computed it: equal digests need no
    /// content read.
    fn content_digest(&self) -> Option<[u8; 32]> {
        None
    }

    /// Its content. Stored in one piece by default; a format that compresses or scatters
    /// content returns it assembled.
    fn content<'d>(&self, archive: &'d [u8]) -> Cow<'d, [u8]> {
        let (offset, len) = self.content_range();
        Cow::Borrowed(slice(archive, offset, len))
    }

    /// What byte `at` of the archive is, when this member owns it.
    fn part_at(&self, at: u64) -> Option<String> {
        let (start, end) = self.span();
        if at < start || at >= end {
            return None;
        }
        if let Some(f) = self
            .layout()
            .iter()
            .find(|f| at >= f.offset && at < f.offset + f.len)
        {
            return Some(f.name.clone());
        }
        let (offset, len) = self.content_range();
        if at >= offset && at < offset.saturating_add(len) {
            return Some(format!("content at offset {}", at - offset));
        }
        Some("padding after the data".into())
    }
}

/// An archive read as far as it goes.
struct Listing<M> {
    members: Vec<M>,
    /// What follows the last member, as values; or why reading stopped.
    end: Result<Vec<Group>, String>,
}

impl<M: Clone> Listing<M> {
    /// Runs a reader that hands every member to its visitor, keeping the members and
    /// describing what follows the last with `tail`.
    fn of<End, E: std::fmt::Display>(
        read: impl FnOnce(&mut dyn FnMut(&M) -> Result<(), ReadError>) -> Result<End, E>,
        tail: impl FnOnce(End) -> Vec<Group>,
    ) -> Self {
        let mut members = Vec::new();
        let end = read(&mut |m: &M| {
            members.push(m.clone());
            Ok(())
        });
        let end = end.map_err(|e| e.to_string()).map(tail);
        Listing { members, end }
    }
}

impl Member for CpioHeader {
    const FORMAT: &'static str = "cpio archive";

    fn path(&self) -> &str {
        &self.name
    }
    fn offset(&self) -> u64 {
        self.offset
    }
    fn span(&self) -> (u64, u64) {
        (self.offset, self.data_end().1)
    }
    fn groups(&self) -> Vec<Group> {
        vec![Group::fields(&self.fields())]
    }
    fn layout(&self) -> Vec<Field> {
        let name_end = self.offset + cpio::HEADER_LEN + self.name_bytes.len() as u64 + 1;
        let mut f = self.fields();
        f.push(Field::new(
            "padding after the name",
            name_end,
            self.data_offset.saturating_sub(name_end),
            "",
        ));
        f
    }
    fn content_range(&self) -> (u64, u64) {
        (self.data_offset, u64::from(self.file_size()))
    }
    fn content_kind(&self) -> Content {
        // A symlink's data is its target.
        if self.mode() & 0o170000 == 0o120000 {
            Content::LinkTarget
        } else {
            Content::Bytes
        }
    }

    fn list(data: &[u8]) -> Listing<Self> {
        Listing::of(
            |visit| cpio::read(data, |h, _| visit(h)),
            |end| {
                let trailer = Group {
                    under: Some(cpio::TRAILER),
                    ..Group::fields(&end.trailer.fields())
                };
                let mut after = Value::new("bytes after the trailer", end.trailing, Some(end.end));
                after.unshown = end.trailing_nonzero.to_string();
                vec![trailer, Group::new(vec![after])]
            },
        )
    }
}

impl Member for TarEntry {
    const FORMAT: &'static str = "tar archive";

    fn path(&self) -> &str {
        &self.path
    }
    fn offset(&self) -> u64 {
        self.header_offset
    }
    fn span(&self) -> (u64, u64) {
        let start = self
            .extension_offsets
            .first()
            .copied()
            .unwrap_or(self.header_offset);
        (start, self.data_end().1)
    }
    fn groups(&self) -> Vec<Group> {
        // The effective path and link target (long names and pax applied) first: the header
        // fields alone may not show them.
        let names = Group::new(vec![
            Value::new("path", format!("{:?}", self.path), Some(self.header_offset)),
            Value::new(
                "link target",
                format!("{:?}", self.link_name),
                Some(self.header_offset + 157),
            ),
        ]);
        let mut header = Group::fields(&self.fields());
        for v in &mut header.values {
            v.derived = v.name == "checksum";
        }
        let pax = Group::new(vec![Value::new(
            "pax records",
            format!("{:?}", self.pax),
            None,
        )]);
        vec![names, header, pax]
    }
    fn layout(&self) -> Vec<Field> {
        let (start, _) = self.span();
        let mut f = vec![Field::new(
            "extension header (long name or pax)",
            start,
            self.header_offset.saturating_sub(start),
            "",
        )];
        f.extend(self.fields());
        f
    }
    fn content_range(&self) -> (u64, u64) {
        (self.data_offset, self.size)
    }
    fn content_kind(&self) -> Content {
        // A tar symlink's target is in its header, compared with the fields.
        Content::Bytes
    }

    fn list(data: &[u8]) -> Listing<Self> {
        Listing::of(
            |visit| tar::read(data, |e, _| visit(e)),
            |end| {
                let mut v = Value::new(
                    "end of archive",
                    format!(
                        "{} zero blocks, {} bytes after",
                        end.zero_blocks, end.trailing
                    ),
                    Some(end.end_offset),
                );
                v.unshown = end.trailing_nonzero.to_string();
                vec![Group::new(vec![v])]
            },
        )
    }
}

/// A squashfs entry with the digest of its content. Its bytes are scattered over compressed
/// blocks, so it claims no byte range: a difference is named by entry and field.
#[derive(Clone)]
struct SquashfsMember {
    entry: SquashfsListing,
    digest: Option<[u8; 32]>,
}

impl Member for SquashfsMember {
    const FORMAT: &'static str = "squashfs image";

    fn path(&self) -> &str {
        &self.entry.path
    }
    fn offset(&self) -> u64 {
        self.entry.inode_ref
    }
    fn span(&self) -> (u64, u64) {
        (0, 0)
    }
    fn groups(&self) -> Vec<Group> {
        let e = &self.entry;
        vec![Group::new(vec![
            Value::new("kind", format!("{:?}", e.kind), None),
            Value::new("mode", format!("0{:o}", e.mode), None),
            Value::new("uid", e.uid, None),
            Value::new("gid", e.gid, None),
            Value::new("mtime", e.mtime, None),
            Value::new("size", e.size, None),
            Value::new("link target", format!("{:?}", e.target), None),
            Value::new("device", format!("{:?}", e.rdev), None),
            Value::new("links", e.nlink, None),
        ])]
    }
    fn layout(&self) -> Vec<Field> {
        Vec::new()
    }
    fn content_range(&self) -> (u64, u64) {
        (0, self.entry.size)
    }
    fn content_kind(&self) -> Content {
        // A symlink's target is compared with the values.
        Content::Bytes
    }
    fn content_digest(&self) -> Option<[u8; 32]> {
        // Entries without content compare equal here; their values say the rest.
        Some(self.digest.unwrap_or_default())
    }
    fn content<'d>(&self, archive: &'d [u8]) -> Cow<'d, [u8]> {
        if self.digest.is_none() {
            return Cow::Borrowed(&[]);
        }
        let content = squashfs::open(io::Cursor::new(archive), archive.len() as u64)
            .and_then(|mut fs| fs.read_file(&self.entry, DECOMPRESSED_IN_MEMORY / 2));
        Cow::Owned(content.unwrap_or_default())
    }

    fn list(data: &[u8]) -> Listing<Self> {
        let mut members = Vec::new();
        let end = (|| {
            let mut fs = squashfs::open(io::Cursor::new(data), data.len() as u64)?;
            for entry in fs.entries()? {
                let digest = match entry.kind {
                    SquashfsEntryKind::File => {
                        let content = fs.read_file(&entry, DECOMPRESSED_IN_MEMORY / 2)?;
                        Some(<sha2::Sha256 as sha2::Digest>::digest(&content).into())
                    }
                    _ => None,
                };
                members.push(SquashfsMember { entry, digest });
            }
            Ok::<_, ReadError>(vec![Group {
                under: Some("superblock"),
                ..Group::fields(&fs.superblock().fields())
            }])
        })();
        Listing {
            members,
            end: end.map_err(|e| e.to_string()),
        }
    }
}

/// Compares a group; derived values only when the others agree, as they would differ with them.
fn compare_group(c: &mut Collector, path: &[String], ga: &Group, gb: &Group) {
    let under;
    let path = match ga.under {
        Some(u) => {
            under = join(path, u);
            &under[..]
        }
        None => path,
    };
    let before = c.count();
    compare_values(c, path, &ga.values, &gb.values, |v| !v.derived);
    let derived = ga.values.iter().chain(&gb.values).any(|v| v.derived);
    if derived && c.count() == before {
        compare_values(c, path, &ga.values, &gb.values, |_| true);
    }
}

/// Compares two archives of one format member by member, then their ends.
fn diff_archive<M: Member>(c: &mut Collector, path: &[String], a: &[u8], b: &[u8], depth: usize) {
    let (la, lb) = (M::list(a), M::list(b));
    let (erra, errb) = (la.end.as_ref().err(), lb.end.as_ref().err());
    let before = c.count();
    for (x, y) in pair_by(&la.members, &lb.members, |m| m.path().to_string()) {
        let label = x.or(y).map(|m| m.path().to_string()).unwrap_or_default();
        let p = join(path, &label);
        match (x, y) {
            (Some(x), Some(y)) => {
                for (gx, gy) in x.groups().iter().zip(&y.groups()) {
                    compare_group(c, &p, gx, gy);
                }
                if x.content_digest().is_some() && x.content_digest() == y.content_digest() {
                    continue;
                }
                let (dx, dy) = (x.content(a), y.content(b));
                if dx != dy {
                    match x.content_kind() {
                        Content::LinkTarget => c.add(
                            &p,
                            "symlink target",
                            Some(format!("{:?}", String::from_utf8_lossy(&dx))),
                            Some(format!("{:?}", String::from_utf8_lossy(&dy))),
                            Some(x.content_range().0),
                            None,
                        ),
                        Content::Bytes => diff_bytes(c, &p, &dx, &dy, depth + 1),
                    }
                }
            }
            // Members past a read failure are not "absent": the failure is reported once below.
            (Some(x), None) if errb.is_none() => c.add(
                &p,
                "presence",
                Some("present".into()),
                None,
                Some(x.offset()),
                None,
            ),
            (None, Some(_)) if erra.is_none() => {
                c.add(&p, "presence", None, Some("present".into()), None, None)
            }
            _ => {}
        }
    }
    match (&la.end, &lb.end) {
        (Ok(x), Ok(y)) => {
            for (gx, gy) in x.iter().zip(y) {
                compare_group(c, path, gx, gy);
            }
        }
        _ => {
            if erra != errb {
                let state = |e: Option<&String>| e.cloned().or(Some("readable".into()));
                c.add(path, M::FORMAT, state(erra), state(errb), None, None);
                locate_first(c, path, a, b);
            }
        }
    }
    if c.count() == before {
        uncovered_payload(c, path, a, b);
    }
}

/// Names the member and part of a cpio or tar payload at byte `at`, by its layout.
fn locate_payload(data: &[u8], at: usize) -> Option<(String, String)> {
    fn locate<M: Member>(data: &[u8], at: u64) -> Option<(String, String)> {
        M::list(data)
            .members
            .iter()
            .find_map(|m| m.part_at(at).map(|part| (m.path().to_string(), part)))
    }
    match kind_of(data)? {
        Kind::Cpio => locate::<CpioHeader>(data, at as u64),
        Kind::Tar => locate::<TarEntry>(data, at as u64),
        // Squashfs members are scattered over compressed blocks and claim no byte range.
        Kind::Gzip | Kind::Squashfs => None,
    }
}

/// Pairs entries by position when the counts agree, else by name.
fn pair_by<'a, T>(
    a: &'a [T],
    b: &'a [T],
    name: impl Fn(&T) -> String,
) -> Vec<(Option<&'a T>, Option<&'a T>)> {
    if a.len() == b.len() {
        return a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (Some(x), Some(y)))
            .collect();
    }
    let mut m: BTreeMap<String, (Option<&T>, Option<&T>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for x in a {
        let k = name(x);
        if !m.contains_key(&k) {
            order.push(k.clone());
        }
        m.entry(k).or_default().0 = Some(x);
    }
    for y in b {
        let k = name(y);
        if !m.contains_key(&k) {
            order.push(k.clone());
        }
        m.entry(k).or_default().1 = Some(y);
    }
    order.into_iter().filter_map(|k| m.remove(&k)).collect()
}

/// Names the first differing byte of two payloads by A's layout (when B does not parse).
fn locate_first(c: &mut Collector, path: &[String], a: &[u8], b: &[u8]) {
    let n = a.len().min(b.len());
    let i = (0..n).find(|&i| a[i] != b[i]).unwrap_or(n);
    if let Some((entry, field)) = locate_payload(a, i) {
        let byte = |s: &[u8]| {
            s.get(i)
                .map(|v| format!("0x{v:02x}"))
                .unwrap_or_else(|| "end".into())
        };
        c.add(
            &join(path, &entry),
            format!("{field} (byte {i})"),
            Some(byte(a)),
            Some(byte(b)),
            Some(i as u64),
            Some("first byte that differs".into()),
        );
    }
}

/// Bytes that differ where no compared field is: named by A's layout.
fn uncovered_payload(c: &mut Collector, path: &[String], a: &[u8], b: &[u8]) {
    let n = a.len().min(b.len());
    if let Some(i) = (0..n).find(|&i| a[i] != b[i]) {
        let what = locate_payload(a, i)
            .map(|(e, f)| format!("{e} › {f}"))
            .unwrap_or_else(|| "bytes outside every entry".into());
        c.add(
            path,
            format!("{what} (byte {i})"),
            Some(format!("0x{:02x}", a[i])),
            Some(format!("0x{:02x}", b[i])),
            Some(i as u64),
            None,
        );
    } else if a.len() != b.len() {
        c.add(
            path,
            "length",
            Some(a.len().to_string()),
            Some(b.len().to_string()),
            Some(n as u64),
            None,
        );
    }
}

fn slice(d: &[u8], offset: u64, len: u64) -> &[u8] {
    let s = (offset as usize).min(d.len());
    let e = (offset.saturating_add(len) as usize).min(d.len());
    &d[s..e]
}

/// Compares two in-memory artifacts (for verify, which has both in hand).
pub fn diff_buffers(name_a: &str, name_b: &str, a: &[u8], b: &[u8]) -> DiffReport {
    let mut c = Collector::new();
    diff_bytes(&mut c, &[], a, b, 0);
    let kind = |d: &[u8]| {
        crate::codec::detect::detect(&mut io::Cursor::new(d)).unwrap_or(ArtifactKind::Unknown)
    };
    DiffReport {
        a: name_a.to_string(),
        b: name_b.to_string(),
        kind_a: kind(a),
        kind_b: kind(b),
        identical: a == b,
        differences: c.out,
        omitted: c.omitted,
    }
}
