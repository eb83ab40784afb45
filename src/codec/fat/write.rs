//! FAT boot partition writer: a pure function of (sorted tree, params) to bytes.
//!
//! No clock, no environment, no `read_dir`: every timestamp is `params.epoch` (UTC), every
//! identifier comes from `params`, and entries are created in the tree's bytewise order on
//! zero-filled storage. That is what makes lamfat's output byte-identical across machines.
//! Everything that can fail on the input is checked before the first byte is written.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::layout::{FatTimestamp, DIR_ENTRY_SIZE};
pub use super::layout::{FatType, FAT_EPOCH_MAX, FAT_EPOCH_MIN, SECTOR_SIZE};
use crate::tree::{NodeKind, Tree, TreePath};

const LFN_UNITS_PER_ENTRY: u64 = 13;
const MAX_NAME_UNITS: usize = 255;
/// lamfat's defaults, mirrored here so sizes can be computed before formatting.
const FATS: u64 = 2;
const FAT1216_ROOT_ENTRIES: u64 = 512;
const FAT1216_RESERVED_SECTORS: u64 = 1;
const FAT32_RESERVED_SECTORS: u64 = 8;
const FAT32_MAX_CLUSTERS: u64 = 0x0FFF_FFF4;
const MIN_CLUSTER_SIZE: u32 = 512;
const MAX_CLUSTER_SIZE: u32 = 65536;
const MIB: u64 = 1024 * 1024;

/// What only the writer needs of each variant.
trait Geometry {
    fn cluster_range(self) -> &'static str;
    fn reserved_sectors(self) -> u64;
    fn root_dir_sectors(self) -> u64;
    fn to_lamfat(self) -> lamfat::FatType;
}

impl Geometry for FatType {
    fn cluster_range(self) -> &'static str {
        match self {
            FatType::Fat12 => "fewer than 4085 clusters",
            FatType::Fat16 => "4085 to 65524 clusters",
            FatType::Fat32 => "65525 to 268435444 clusters",
        }
    }

    fn reserved_sectors(self) -> u64 {
        match self {
            FatType::Fat32 => FAT32_RESERVED_SECTORS,
            _ => FAT1216_RESERVED_SECTORS,
        }
    }

    fn root_dir_sectors(self) -> u64 {
        match self {
            FatType::Fat32 => 0,
            _ => FAT1216_ROOT_ENTRIES * DIR_ENTRY_SIZE / SECTOR_SIZE,
        }
    }

    fn to_lamfat(self) -> lamfat::FatType {
        match self {
            FatType::Fat12 => lamfat::FatType::Fat12,
            FatType::Fat16 => lamfat::FatType::Fat16,
            FatType::Fat32 => lamfat::FatType::Fat32,
        }
    }
}

/// Everything that decides the bytes of a FAT volume besides the tree and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatParams {
    /// FAT variant; the volume's cluster count must fit it.
    pub fat_type: FatType,
    /// Cluster size: a power of two from 512 to 65536.
    pub bytes_per_cluster: u32,
    /// Volume serial number in the boot sector.
    pub volume_id: u32,
    /// Volume label: 1 to 11 characters from A-Z, 0-9, space, `_` and `-`.
    pub label: String,
    /// Unix seconds; every timestamp on the volume is this instant in UTC (clamped to FAT's range).
    pub epoch: i64,
}

/// What the writer did that the caller should record or tell the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatReport {
    /// The epoch actually stored when `params.epoch` was outside 1980..=2107, else `None`.
    pub clamped_epoch: Option<i64>,
    /// Data clusters on the volume.
    pub clusters_total: u32,
    /// Data clusters in use (files, directories, the FAT32 root directory).
    pub clusters_used: u32,
}

/// Why a FAT volume could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    /// The volume label breaks FAT's rules.
    #[error(
        "FAT volume label {label:?} is invalid: {reason}; use 1 to 11 characters from A-Z, 0-9, \
         space, '_' and '-'"
    )]
    Label { label: String, reason: String },
    /// The cluster size is not a power of two in 512..=65536.
    #[error("FAT bytes_per_cluster {0} is invalid; use a power of two from 512 to 65536")]
    ClusterSize(u32),
    /// The volume size is not a whole number of sectors or too large for FAT.
    #[error("FAT volume size {size} bytes is invalid: {reason}")]
    VolumeSize { size: u64, reason: String },
    /// The storage handed in is not exactly `size` bytes.
    #[error("the storage holds {actual} bytes but the FAT volume size is {size} bytes; pass storage of exactly that size")]
    StorageSize { size: u64, actual: u64 },
    /// A tree entry FAT cannot represent (symlink, device node).
    #[error("'{path}' is a {kind}, which FAT cannot store; remove it from the boot tree")]
    Unsupported { path: String, kind: &'static str },
    /// A name FAT cannot store.
    #[error("'{path}' cannot be stored on FAT: {reason}; rename it")]
    Name { path: String, reason: String },
    /// Two names that FAT's case-insensitive lookup cannot tell apart.
    #[error(
        "'{first}' and '{second}' are the same name on FAT, which ignores case; rename one of them"
    )]
    Collision { first: String, second: String },
    /// A name equal to the short (8.3) alias FAT generated for an earlier entry.
    #[error("'{path}' equals the short (8.3) name FAT gave to '{existing}' in the same directory; rename one of them")]
    ShortNameAlias { path: String, existing: String },
    /// A file larger than FAT's 4 GiB - 1 limit.
    #[error("'{path}' is {size} bytes; FAT files hold at most 4294967295 bytes")]
    FileTooLarge { path: String, size: u64 },
    /// Too many entries for the fixed FAT12/FAT16 root directory.
    #[error(
        "the root directory needs {needed} directory entries but {fat_type} has room for {max}; \
         use FAT32 or move files into subdirectories"
    )]
    RootDirFull {
        fat_type: FatType,
        needed: u64,
        max: u64,
    },
    /// The tree does not fit in the partition.
    #[error(
        "the boot files need {needed} bytes ({} MiB) as {fat_type} with {bytes_per_cluster}-byte \
         clusters, but the partition has {available} bytes ({} MiB); the largest are {largest}; \
         make the partition larger",
        .needed.div_ceil(MIB),
        .available / MIB
    )]
    DoesNotFit {
        needed: u64,
        available: u64,
        fat_type: FatType,
        bytes_per_cluster: u32,
        /// The three largest files with their sizes, largest first.
        largest: String,
    },
    /// The volume's cluster count does not match the chosen FAT type.
    #[error(
        "a {size}-byte volume as {fat_type} with {bytes_per_cluster}-byte clusters has {clusters} \
         clusters, but {fat_type} needs {}; {hint}",
        .fat_type.cluster_range()
    )]
    ClusterCount {
        size: u64,
        fat_type: FatType,
        bytes_per_cluster: u32,
        clusters: u64,
        hint: String,
    },
    /// lamfat refused to format or mount the volume.
    #[error("formatting the FAT volume failed: {source}")]
    Format { source: lamfat::Error<io::Error> },
    /// lamfat failed while writing one tree entry.
    #[error("writing '{path}' into the FAT volume failed: {source}")]
    Write {
        path: String,
        source: lamfat::Error<io::Error>,
    },
    /// lamfat failed while finishing the volume (free-cluster count, final flush).
    #[error("finishing the FAT volume failed: {source}")]
    Unmount { source: lamfat::Error<io::Error> },
    /// The storage failed outside lamfat (size probe, label entry stamp).
    #[error("{what} failed: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// Bytes the tree needs at these params (clusters for every file and directory, FATs, reserved sectors, root dir), for "content larger than the partition" errors that say how much is needed.
///
/// This is the smallest volume size from which every larger size also fits the content; it
/// does not include the minimum cluster count of the FAT type (see `FatError::ClusterCount`).
pub fn required_bytes(tree: &Tree, params: &FatParams) -> u64 {
    let fat_type = params.fat_type;
    let spc = sectors_per_cluster(params.bytes_per_cluster);
    let clusters = clusters_needed(tree, fat_type, spc * SECTOR_SIZE);
    let fixed = fat_type.reserved_sectors() + fat_type.root_dir_sectors();
    // One spare sector: when a volume grows by one sector, lamfat's FAT may grow by one sector
    // and take two (two FATs), so data space can shrink by one sector; the spare covers that.
    let data_needed = clusters * spc + 1;
    let mut total = fixed + data_needed;
    loop {
        let data = (total - fixed).saturating_sub(FATS * sectors_per_fat(total, fat_type, spc));
        if data >= data_needed {
            break;
        }
        total += data_needed - data;
    }
    // lamfat refuses volumes with fewer than 9 sectors beyond the reserved and root regions.
    total.max(fixed + 9) * SECTOR_SIZE
}

/// The `n` largest files of `tree`, largest first (ties by path), as `path (N MiB)`.
pub fn largest_files(tree: &Tree, n: usize) -> String {
    let mut files: Vec<(usize, &TreePath)> = tree
        .iter()
        .filter(|(_, node)| matches!(node.kind, NodeKind::File(_)))
        .map(|(path, node)| (node.data().len(), path))
        .collect();
    files.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    files
        .iter()
        .take(n)
        .map(|(len, path)| format!("{} ({:.1} MiB)", path.as_str(), *len as f64 / MIB as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks what depends on the params and the volume size alone (label, cluster size, sector
/// count), before any content is known. Returns the label bytes and the sector count. (The
/// cluster count the FAT type needs is checked once the content is known, so that content
/// too large for the volume is reported as that.)
pub fn check_params(size: u64, params: &FatParams) -> Result<([u8; 11], u32), FatError> {
    let label = label_bytes(&params.label)?;
    if !params.bytes_per_cluster.is_power_of_two()
        || !(MIN_CLUSTER_SIZE..=MAX_CLUSTER_SIZE).contains(&params.bytes_per_cluster)
    {
        return Err(FatError::ClusterSize(params.bytes_per_cluster));
    }
    let total_sectors = volume_sectors(size)?;
    Ok((label, total_sectors))
}

/// Formats `storage` (exactly `size` bytes, starting zero-filled) and writes every entry of `tree` in tree order.
pub fn write_fat<S: Read + Write + Seek>(
    mut storage: S,
    size: u64,
    tree: &Tree,
    params: &FatParams,
) -> Result<FatReport, FatError> {
    let (label, total_sectors) = check_params(size, params)?;
    check_tree(tree)?;
    check_root_entries(tree, params.fat_type)?;
    let needed = required_bytes(tree, params);
    if needed > size {
        return Err(FatError::DoesNotFit {
            needed,
            available: size,
            fat_type: params.fat_type,
            bytes_per_cluster: params.bytes_per_cluster,
            largest: largest_files(tree, 3),
        });
    }
    check_cluster_count(total_sectors, size, params)?;

    let io_err = |what| move |source| FatError::Io { what, source };
    let actual = storage
        .seek(SeekFrom::End(0))
        .map_err(io_err("probing the storage size"))?;
    if actual != size {
        return Err(FatError::StorageSize { size, actual });
    }
    storage
        .seek(SeekFrom::Start(0))
        .map_err(io_err("rewinding the storage"))?;

    let (stamp, clamped_epoch) = FatTimestamp::from_epoch(params.epoch);
    let options = lamfat::FormatVolumeOptions::new()
        .fat_type(params.fat_type.to_lamfat())
        .bytes_per_cluster(params.bytes_per_cluster)
        .total_sectors(total_sectors)
        .volume_id(params.volume_id)
        .volume_label(label);
    let mut io = lamfat::StdIoWrapper::new(&mut storage);
    lamfat::format_volume(&mut io, options).map_err(|source| FatError::Format { source })?;
    let fs_options = lamfat::FsOptions::new()
        .update_accessed_date(false)
        .time_provider(FixedTime(stamp));
    let fs =
        lamfat::FileSystem::new(io, fs_options).map_err(|source| FatError::Format { source })?;
    write_entries(&fs, tree)?;
    let stats = fs.stats().map_err(|source| FatError::Unmount { source })?;
    fs.unmount()
        .map_err(|source| FatError::Unmount { source })?;

    stamp_label_entry(&mut storage, &label, stamp)?;
    storage.flush().map_err(io_err("flushing the FAT volume"))?;
    Ok(FatReport {
        clamped_epoch,
        clusters_total: stats.total_clusters(),
        clusters_used: stats.total_clusters() - stats.free_clusters(),
    })
}

/// A window [offset, offset+len) of an inner Read+Write+Seek, seen as its own device (so the FAT can be written straight into the disk image file at the partition offset).
#[derive(Debug)]
pub struct Window<T> {
    inner: T,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<T: Read + Write + Seek> Window<T> {
    /// A view of `len` bytes of `inner` starting at `offset`, positioned at its start.
    pub fn new(inner: T, offset: u64, len: u64) -> Self {
        Window {
            inner,
            offset,
            len,
            pos: 0,
        }
    }

    /// Gives the inner device back.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn seek_inner(&mut self) -> io::Result<()> {
        self.inner
            .seek(SeekFrom::Start(self.offset + self.pos))
            .map(|_| ())
    }
}

impl<T: Read + Write + Seek> Read for Window<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        self.seek_inner()?;
        let read = self.inner.read(&mut buf[..n])?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl<T: Read + Write + Seek> Write for Window<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if buf.len() as u64 > self.len - self.pos {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "writing {} bytes at offset {} would pass the end of the {}-byte window",
                    buf.len(),
                    self.pos,
                    self.len
                ),
            ));
        }
        self.seek_inner()?;
        let written = self.inner.write(buf)?;
        self.pos += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read + Write + Seek> Seek for Window<T> {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        let target = match from {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "seek {from:?} from {} leaves the {}-byte window",
                    self.pos, self.len
                ),
            )),
        }
    }
}

/// A lamfat time source that always answers the build's epoch.
#[derive(Debug, Clone, Copy)]
struct FixedTime(FatTimestamp);

impl lamfat::TimeProvider for FixedTime {
    fn get_current_date(&self) -> lamfat::Date {
        lamfat::Date::new(self.0.year, self.0.month, self.0.day)
    }

    fn get_current_date_time(&self) -> lamfat::DateTime {
        let time = lamfat::Time::new(self.0.hour, self.0.minute, self.0.second, 0);
        lamfat::DateTime::new(self.get_current_date(), time)
    }
}

/// The 11 space-padded label bytes, or why the label is refused.
pub fn label_bytes(label: &str) -> Result<[u8; 11], FatError> {
    let refuse = |reason: String| FatError::Label {
        label: label.to_string(),
        reason,
    };
    if label.is_empty() {
        return Err(refuse("it is empty".into()));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, ' ' | '_' | '-')))
    {
        return Err(refuse(format!("it contains {c:?}")));
    }
    if label.len() > 11 {
        return Err(refuse(format!("it has {} characters", label.len())));
    }
    if label.starts_with(' ') {
        return Err(refuse("it starts with a space".into()));
    }
    let mut out = [b' '; 11];
    out[..label.len()].copy_from_slice(label.as_bytes());
    Ok(out)
}

fn volume_sectors(size: u64) -> Result<u32, FatError> {
    let refuse = |reason: String| FatError::VolumeSize { size, reason };
    if !size.is_multiple_of(SECTOR_SIZE) {
        return Err(refuse(format!("not a multiple of {SECTOR_SIZE}")));
    }
    u32::try_from(size / SECTOR_SIZE)
        .map_err(|_| refuse("FAT addresses at most 2^32 - 1 sectors (2 TiB)".into()))
}

fn sectors_per_cluster(bytes_per_cluster: u32) -> u64 {
    (u64::from(bytes_per_cluster) / SECTOR_SIZE).max(1)
}

/// lamfat's `determine_sectors_per_fat`: FAT sectors for a volume of `total` sectors.
fn sectors_per_fat(total: u64, fat_type: FatType, spc: u64) -> u64 {
    let t0 = total.saturating_sub(fat_type.reserved_sectors() + fat_type.root_dir_sectors());
    let t1 = t0 + 2 * spc;
    let t2 = spc * SECTOR_SIZE * 8 / fat_type.bits_per_entry() + FATS;
    t1.div_ceil(t2)
}

/// Data clusters lamfat lays out on a volume of `total` sectors, or `None` if it is too small.
fn clusters_on_volume(total: u64, fat_type: FatType, spc: u64) -> Option<u64> {
    let fixed = fat_type.reserved_sectors() + fat_type.root_dir_sectors();
    if total <= fixed + 8 {
        return None;
    }
    let data = total.checked_sub(fixed + FATS * sectors_per_fat(total, fat_type, spc))?;
    Some(data / spc)
}

fn layout_fits(total: u64, fat_type: FatType, bytes_per_cluster: u32) -> bool {
    clusters_on_volume(total, fat_type, sectors_per_cluster(bytes_per_cluster))
        .is_some_and(|c| FatType::for_clusters(c) == fat_type && c <= FAT32_MAX_CLUSTERS)
}

fn check_cluster_count(total_sectors: u32, size: u64, params: &FatParams) -> Result<(), FatError> {
    let total = u64::from(total_sectors);
    let (fat_type, bpc) = (params.fat_type, params.bytes_per_cluster);
    if layout_fits(total, fat_type, bpc) {
        return Ok(());
    }
    let sizes: Vec<String> = (9..=16)
        .map(|shift| 1u32 << shift)
        .filter(|&b| layout_fits(total, fat_type, b))
        .map(|b| b.to_string())
        .collect();
    let types: Vec<String> = [FatType::Fat12, FatType::Fat16, FatType::Fat32]
        .into_iter()
        .filter(|&t| t != fat_type && layout_fits(total, t, bpc))
        .map(|t| t.to_string())
        .collect();
    let mut hints = Vec::new();
    if !sizes.is_empty() {
        hints.push(format!(
            "{fat_type} fits with bytes_per_cluster {}",
            sizes.join(" or ")
        ));
    }
    if !types.is_empty() {
        hints.push(format!(
            "{} fits with {bpc}-byte clusters",
            types.join(" or ")
        ));
    }
    let hint = if hints.is_empty() {
        format!("no cluster size fits {fat_type} at this size; change the partition size or the FAT type")
    } else {
        hints.join("; ")
    };
    Err(FatError::ClusterCount {
        size,
        fat_type,
        bytes_per_cluster: bpc,
        clusters: clusters_on_volume(total, fat_type, sectors_per_cluster(bpc)).unwrap_or(0),
        hint,
    })
}

/// Directory entries a name takes: lamfat writes LFN entries for every name, plus the 8.3 entry.
fn entries_for_name(name: &str) -> u64 {
    1 + (name.encode_utf16().count() as u64).div_ceil(LFN_UNITS_PER_ENTRY)
}

/// Directory entries per directory (key `None` is the root), excluding `.`/`..` and the label.
fn child_entries(tree: &Tree) -> BTreeMap<Option<TreePath>, u64> {
    let mut entries: BTreeMap<Option<TreePath>, u64> = BTreeMap::new();
    for (path, node) in tree.iter() {
        *entries.entry(path.parent()).or_default() += entries_for_name(path.file_name());
        if node.kind == NodeKind::Dir {
            entries.entry(Some(path.clone())).or_default();
        }
    }
    entries
}

fn clusters_needed(tree: &Tree, fat_type: FatType, cluster_size: u64) -> u64 {
    let dir_clusters = |entries: u64| (entries * DIR_ENTRY_SIZE).div_ceil(cluster_size).max(1);
    let files: u64 = tree
        .iter()
        .map(|(_, n)| (n.data().len() as u64).div_ceil(cluster_size))
        .sum();
    let dirs: u64 = child_entries(tree)
        .into_iter()
        .map(|(dir, entries)| match (dir, fat_type) {
            // `.` and `..`
            (Some(_), _) => dir_clusters(entries + 2),
            // the volume label entry
            (None, FatType::Fat32) => dir_clusters(entries + 1),
            // FAT12/16 root lives in its fixed region
            (None, _) => 0,
        })
        .sum();
    let root_fat32 = u64::from(fat_type == FatType::Fat32 && tree.is_empty());
    files + dirs + root_fat32
}

fn check_root_entries(tree: &Tree, fat_type: FatType) -> Result<(), FatError> {
    if fat_type == FatType::Fat32 {
        return Ok(());
    }
    let needed = child_entries(tree).get(&None).copied().unwrap_or(0) + 1;
    if needed > FAT1216_ROOT_ENTRIES {
        return Err(FatError::RootDirFull {
            fat_type,
            needed,
            max: FAT1216_ROOT_ENTRIES,
        });
    }
    Ok(())
}

/// lamfat's name comparison: Unicode uppercase, character by character.
fn fold(name: &str) -> String {
    name.chars().flat_map(char::to_uppercase).collect()
}

fn check_name(path: &TreePath) -> Result<(), FatError> {
    let name = path.file_name();
    let refuse = |reason: String| {
        Err(FatError::Name {
            path: path.to_string(),
            reason,
        })
    };
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return refuse(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    if let Some(c) = name.chars().find(|c| "\"*/:<>?\\|".contains(*c)) {
        return refuse(format!("FAT names may not contain '{c}'"));
    }
    if let Some(c) = name.chars().find(|&c| c > '\u{FFFF}') {
        return refuse(format!(
            "it contains U+{:X}, outside the Basic Multilingual Plane, which lamfat cannot store",
            c as u32
        ));
    }
    let units = name.encode_utf16().count();
    if units > MAX_NAME_UNITS {
        return refuse(format!(
            "it is {units} UTF-16 units long; FAT names hold at most 255"
        ));
    }
    if name.len() > MAX_NAME_UNITS {
        return refuse(format!(
            "it is {} bytes long in UTF-8; lamfat accepts at most 255",
            name.len()
        ));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return refuse("it ends with a dot or a space, which FAT drops from names".into());
    }
    Ok(())
}

/// Everything about the tree that FAT cannot hold, found before anything is written.
fn check_tree(tree: &Tree) -> Result<(), FatError> {
    let mut seen: BTreeMap<(Option<TreePath>, String), &TreePath> = BTreeMap::new();
    for (path, node) in tree.iter() {
        match &node.kind {
            NodeKind::Dir => {}
            NodeKind::File(data) => {
                if data.len() as u64 > u64::from(u32::MAX) {
                    return Err(FatError::FileTooLarge {
                        path: path.to_string(),
                        size: data.len() as u64,
                    });
                }
            }
            NodeKind::Symlink(_) => {
                return Err(FatError::Unsupported {
                    path: path.to_string(),
                    kind: "symbolic link",
                })
            }
            NodeKind::CharDevice { .. } => {
                return Err(FatError::Unsupported {
                    path: path.to_string(),
                    kind: "character device",
                })
            }
        }
        check_name(path)?;
        if let Some(first) = seen.insert((path.parent(), fold(path.file_name())), path) {
            return Err(FatError::Collision {
                first: first.to_string(),
                second: path.to_string(),
            });
        }
    }
    Ok(())
}

type Fs<'s, S> = lamfat::FileSystem<lamfat::StdIoWrapper<&'s mut S>, FixedTime>;
type FsDir<'f, 's, S> =
    lamfat::Dir<'f, lamfat::StdIoWrapper<&'s mut S>, FixedTime, lamfat::LossyOemCpConverter>;

/// Creates every entry in tree order: directories before their children, one `write_all` per file.
fn write_entries<S: Read + Write + Seek>(fs: &Fs<'_, S>, tree: &Tree) -> Result<(), FatError> {
    let root = fs.root_dir();
    let mut dirs: BTreeMap<&TreePath, FsDir<'_, '_, S>> = BTreeMap::new();
    for (path, node) in tree.iter() {
        let fail = |source| FatError::Write {
            path: path.to_string(),
            source,
        };
        let parent = match path.parent() {
            None => &root,
            // The tree lists every parent before its children, so this only fails on a bug.
            Some(p) => dirs.get(&p).ok_or_else(|| fail(lamfat::Error::NotFound))?,
        };
        let name = path.file_name();
        for entry in parent.iter() {
            let entry = entry.map_err(fail)?;
            if fold(&entry.short_file_name()) == fold(name) {
                return Err(FatError::ShortNameAlias {
                    path: path.to_string(),
                    existing: entry.file_name(),
                });
            }
        }
        match &node.kind {
            NodeKind::Dir => {
                let dir = parent.create_dir(name).map_err(fail)?;
                dirs.insert(path, dir);
            }
            NodeKind::File(data) => {
                let mut file = parent.create_file(name).map_err(fail)?;
                lamfat::Write::write_all(&mut file, data).map_err(fail)?;
                lamfat::Write::flush(&mut file).map_err(fail)?;
            }
            // Refused by check_tree before formatting.
            NodeKind::Symlink(_) | NodeKind::CharDevice { .. } => {}
        }
    }
    Ok(())
}

/// lamfat writes the volume label entry with zero timestamps; give it the epoch like every other entry.
fn stamp_label_entry<S: Read + Write + Seek>(
    storage: &mut S,
    label: &[u8; 11],
    stamp: FatTimestamp,
) -> Result<(), FatError> {
    let io_err = |source| FatError::Io {
        what: "stamping the volume label entry",
        source,
    };
    let mut boot = [0u8; 512];
    storage.seek(SeekFrom::Start(0)).map_err(io_err)?;
    storage.read_exact(&mut boot).map_err(io_err)?;
    let le16 = |at: usize| u64::from(u16::from_le_bytes([boot[at], boot[at + 1]]));
    let le32 = |at: usize| {
        u64::from(u32::from_le_bytes([
            boot[at],
            boot[at + 1],
            boot[at + 2],
            boot[at + 3],
        ]))
    };
    let spc = u64::from(boot[0x0D]);
    let reserved = le16(0x0E);
    let fats = u64::from(boot[0x10]);
    let fat16_sectors = le16(0x16);
    let root_sector = if fat16_sectors == 0 {
        reserved + fats * le32(0x24) + le32(0x2C).saturating_sub(2) * spc
    } else {
        reserved + fats * fat16_sectors
    };
    let at = root_sector * SECTOR_SIZE;
    let mut entry = [0u8; 32];
    storage.seek(SeekFrom::Start(at)).map_err(io_err)?;
    storage.read_exact(&mut entry).map_err(io_err)?;
    if &entry[..11] != label || entry[11] != 0x08 {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidData,
            "lamfat did not put the volume label entry first in the root directory",
        )));
    }
    let (date, time) = stamp.encode();
    entry[13] = 0; // creation time, 10 ms units: seconds are even
    entry[14..16].copy_from_slice(&time.to_le_bytes());
    entry[16..18].copy_from_slice(&date.to_le_bytes());
    entry[18..20].copy_from_slice(&date.to_le_bytes());
    entry[22..24].copy_from_slice(&time.to_le_bytes());
    entry[24..26].copy_from_slice(&date.to_le_bytes());
    storage.seek(SeekFrom::Start(at)).map_err(io_err)?;
    storage.write_all(&entry).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Node;
    use std::io::Cursor;

    fn params(fat_type: FatType, bytes_per_cluster: u32) -> FatParams {
        FatParams {
            fat_type,
            bytes_per_cluster,
            volume_id: 0x1234_ABCD,
            label: "PIBOOT".into(),
            epoch: 1_700_000_000,
        }
    }

    fn tree(entries: &[(&str, Option<Vec<u8>>)]) -> Tree {
        let mut t = Tree::new();
        for (path, data) in entries {
            let node = match data {
                Some(d) => Node::file(d.clone(), 0o644),
                None => Node::dir(0o755),
            };
            t.insert(TreePath::new(path).unwrap(), node, "test")
                .unwrap();
        }
        t
    }

    fn write(t: &Tree, p: &FatParams, size: u64) -> Result<(Vec<u8>, FatReport), FatError> {
        let mut buf = Cursor::new(vec![0u8; size as usize]);
        let report = write_fat(&mut buf, size, t, p)?;
        Ok((buf.into_inner(), report))
    }

    #[test]
    fn a_clamped_epoch_is_reported() {
        let t = tree(&[("a", Some(vec![1]))]);
        let mut p = params(FatType::Fat16, 2048);
        p.epoch = 0;
        let (_, report) = write(&t, &p, 16 * MIB).unwrap();
        assert_eq!(report.clamped_epoch, Some(FAT_EPOCH_MIN));
    }

    #[test]
    fn labels() {
        assert_eq!(&label_bytes("PIBOOT").unwrap(), b"PIBOOT     ");
        assert_eq!(&label_bytes("A_B-1 2").unwrap(), b"A_B-1 2    ");
        assert_eq!(&label_bytes("ABCDEFGHIJK").unwrap(), b"ABCDEFGHIJK");
        for bad in ["", "piboot", "ABCDEFGHIJKL", " BOOT", "BOOT.X", "BÖÖT"] {
            let err = label_bytes(bad).unwrap_err();
            assert!(matches!(err, FatError::Label { .. }), "{bad:?}");
            assert!(err.to_string().contains("A-Z, 0-9"), "{err}");
        }
    }

    #[test]
    fn case_collisions_are_refused() {
        let t = tree(&[("Config.txt", Some(vec![1])), ("config.TXT", Some(vec![2]))]);
        let err = check_tree(&t).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'Config.txt'") && msg.contains("'config.TXT'"),
            "{msg}"
        );
        // Same name in different directories is fine; colliding directory names are not.
        assert!(check_tree(&tree(&[("a/x", Some(vec![])), ("b/X", Some(vec![]))])).is_ok());
        let err = check_tree(&tree(&[("Boot/x", Some(vec![])), ("boot", None)])).unwrap_err();
        assert!(matches!(err, FatError::Collision { .. }), "{err}");
        // Unicode case folding, as lamfat compares names
        let err = check_tree(&tree(&[("ä", Some(vec![])), ("Ä", Some(vec![]))])).unwrap_err();
        assert!(matches!(err, FatError::Collision { .. }), "{err}");
    }

    #[test]
    fn short_name_aliases_are_refused() {
        // "LONGFILENAME.TXT" gets the 8.3 alias LONGFI~1.TXT, sorted before the literal name.
        let t = tree(&[
            ("LONGFILENAME.TXT", Some(vec![1])),
            ("LONGFI~1.TXT", Some(vec![2])),
        ]);
        let err = write(&t, &params(FatType::Fat16, 2048), 16 * MIB).unwrap_err();
        assert!(
            matches!(&err, FatError::ShortNameAlias { path, existing }
                if path == "LONGFI~1.TXT" && existing == "LONGFILENAME.TXT"),
            "{err}"
        );
    }

    #[test]
    fn bad_entries_and_names_are_refused() {
        let mut t = Tree::new();
        t.insert(
            TreePath::new("boot/link").unwrap(),
            Node::symlink("x"),
            "test",
        )
        .unwrap();
        let err = check_tree(&t).unwrap_err();
        assert!(
            err.to_string().contains("'boot/link' is a symbolic link"),
            "{err}"
        );
        for bad in [
            "a:b",
            "what?",
            "tab\there",
            "dot.",
            "space ",
            "pipe|",
            "emoji\u{1F600}",
        ] {
            let err = check_tree(&tree(&[(bad, Some(vec![]))])).unwrap_err();
            assert!(matches!(err, FatError::Name { .. }), "{bad:?}: {err}");
        }
        let long = "x".repeat(256);
        assert!(matches!(
            check_tree(&tree(&[(&long, Some(vec![]))])),
            Err(FatError::Name { .. })
        ));
        let ok = "x".repeat(255);
        check_tree(&tree(&[
            (&ok, Some(vec![])),
            (".alpine-release", Some(vec![])),
        ]))
        .unwrap();
    }

    #[test]
    fn capacity_error_states_both_sizes() {
        let t = tree(&[
            ("big", Some(vec![7u8; 5 * MIB as usize])),
            ("a/small", Some(vec![1u8; 1000])),
            ("b/medium", Some(vec![2u8; MIB as usize / 2])),
            ("c/tiny", Some(vec![3u8; 10])),
        ]);
        let p = params(FatType::Fat16, 2048);
        let needed = required_bytes(&t, &p);
        assert!(needed > 5 * MIB + MIB / 2 && needed < 6 * MIB, "{needed}");
        let err = write(&t, &p, 4 * MIB).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, FatError::DoesNotFit { needed: n, available, .. } if n == needed && available == 4 * MIB),
            "{msg}"
        );
        assert!(msg.contains(&format!("{needed} bytes (6 MiB)")), "{msg}");
        assert!(
            msg.contains("the partition has 4194304 bytes (4 MiB)"),
            "{msg}"
        );
        assert!(
            msg.contains("the largest are big (5.0 MiB), b/medium (0.5 MiB), a/small (0.0 MiB);"),
            "{msg}"
        );
    }

    #[test]
    fn required_bytes_is_tight_and_sufficient() {
        // Fill a FAT16 volume of exactly the required size (rounded to a sector) and check
        // lamfat agrees: the tree fits, and it is nearly full.
        let mut entries: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for i in 0..40 {
            entries.push((
                format!("dir{}/file-with-a-long-name-{i}.bin", i % 3),
                Some(vec![i as u8; 1500 * i]),
            ));
        }
        let refs: Vec<(&str, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(p, d)| (p.as_str(), d.clone()))
            .collect();
        let t = tree(&refs);
        for (fat_type, bpc) in [
            (FatType::Fat12, 512),
            (FatType::Fat16, 512),
            (FatType::Fat32, 512),
        ] {
            let p = params(fat_type, bpc);
            let needed = required_bytes(&t, &p);
            let size = match fat_type {
                // The FAT type's own minimum cluster count dominates for FAT16/32.
                FatType::Fat12 => needed,
                FatType::Fat16 => needed.max(2200 * 1024),
                FatType::Fat32 => needed.max(34 * MIB),
            };
            let (_, report) = write(&t, &p, size).unwrap_or_else(|e| panic!("{fat_type}: {e}"));
            if fat_type == FatType::Fat12 {
                let spare = report.clusters_total - report.clusters_used;
                assert!(spare <= 1, "{fat_type}: {spare} clusters spare");
            }
        }
    }

    #[test]
    fn fixed_root_directory_overflow_is_refused() {
        // 255 short names take 2 entries each (LFN + 8.3); with the label that is 511 of 512.
        let names: Vec<String> = (0..256).map(|i| format!("f{i:03}")).collect();
        let entries: Vec<(&str, Option<Vec<u8>>)> =
            names.iter().map(|n| (n.as_str(), Some(vec![]))).collect();
        check_root_entries(&tree(&entries[..255]), FatType::Fat16).unwrap();
        let err = write(&tree(&entries), &params(FatType::Fat16, 2048), 16 * MIB).unwrap_err();
        assert!(
            matches!(
                err,
                FatError::RootDirFull {
                    needed: 513,
                    max: 512,
                    ..
                }
            ),
            "{err}"
        );
        check_root_entries(&tree(&entries), FatType::Fat32).unwrap();
        write(
            &tree(&entries[..255]),
            &params(FatType::Fat16, 2048),
            16 * MIB,
        )
        .unwrap();
    }

    #[test]
    fn every_size_from_required_bytes_up_fits() {
        let trees = [
            Tree::new(),
            tree(&[("empty", Some(vec![]))]),
            tree(&[
                ("a/b/c", Some(vec![1; 700])),
                ("d", Some(vec![2; 4096])),
                ("e", None),
            ]),
            tree(&[(
                "one-sector-less-than-a-long-name.bin",
                Some(vec![3; 100_000]),
            )]),
        ];
        for t in &trees {
            for bpc in [512, 1024, 4096] {
                let p = params(FatType::Fat12, bpc);
                let needed = required_bytes(t, &p);
                let mut written = 0;
                for size in (needed..needed + 200 * SECTOR_SIZE).step_by(SECTOR_SIZE as usize) {
                    match write(t, &p, size) {
                        Ok(_) => written += 1,
                        Err(FatError::ClusterCount { .. }) => {}
                        Err(e) => panic!("{bpc}-byte clusters, {size} bytes: {e}"),
                    }
                }
                assert_eq!(written, 200, "{bpc}-byte clusters");
            }
        }
    }

    #[test]
    fn cluster_count_must_match_type() {
        let t = tree(&[("a", Some(vec![1]))]);
        let err = write(&t, &params(FatType::Fat32, 4096), 64 * MIB).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FatError::ClusterCount { .. }), "{msg}");
        assert!(
            msg.contains("FAT32 fits with bytes_per_cluster 512"),
            "{msg}"
        );
        assert!(msg.contains("FAT16 fits with 4096-byte clusters"), "{msg}");
        assert!(matches!(
            write(&t, &params(FatType::Fat16, 3000), 16 * MIB),
            Err(FatError::ClusterSize(3000))
        ));
    }

    #[test]
    fn window_refuses_to_leave_its_range() {
        let mut w = Window::new(Cursor::new(vec![0u8; 16]), 4, 8);
        w.write_all(b"abcdefgh").unwrap();
        assert!(w.write(b"x").is_err());
        assert!(w.seek(SeekFrom::Start(9)).is_err());
        assert!(w.seek(SeekFrom::Current(-9)).is_err());
        assert_eq!(w.seek(SeekFrom::End(-2)).unwrap(), 6);
        let mut rest = Vec::new();
        w.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"gh");
        w.seek(SeekFrom::Start(7)).unwrap();
        assert!(
            w.write_all(b"yz").is_err(),
            "a write crossing the end must fail, not truncate"
        );
        assert_eq!(w.into_inner().into_inner(), b"\0\0\0\0abcdefgh\0\0\0\0");
    }

    #[test]
    fn boot_sector_fields() {
        let t = tree(&[
            ("config.txt", Some(b"arm_64bit=1\n".to_vec())),
            ("overlays", None),
        ]);
        // FAT32: 40 MiB at 512-byte clusters is ~81000 clusters.
        let (img, report) = write(&t, &params(FatType::Fat32, 512), 40 * MIB).unwrap();
        assert_eq!(&img[3..11], b"MSWIN4.1");
        assert_eq!(&img[11..13], &512u16.to_le_bytes()); // bytes per sector
        assert_eq!(img[13], 1); // sectors per cluster
        assert_eq!(&img[14..16], &8u16.to_le_bytes()); // reserved sectors (lamfat uses 8)
        assert_eq!(img[16], 2); // FATs
        assert_eq!(&img[32..36], &(40 * MIB as u32 / 512).to_le_bytes()); // total sectors
        assert_eq!(&img[44..48], &2u32.to_le_bytes()); // root cluster
        assert_eq!(img[0x42], 0x29); // extended boot signature
        assert_eq!(&img[0x43..0x47], &[0xCD, 0xAB, 0x34, 0x12]); // volume id, little-endian
        assert_eq!(&img[0x47..0x52], b"PIBOOT     ");
        assert_eq!(&img[0x52..0x5A], b"FAT32   ");
        assert_eq!(&img[510..512], &[0x55, 0xAA]);
        assert_eq!(&img[6 * 512..7 * 512], &img[..512], "backup boot sector");
        assert_eq!(report.clamped_epoch, None);
        // config.txt (1) + overlays (1) + root (1)
        assert_eq!(report.clusters_used, 3);
        // Label entry, first in the root directory (cluster 2), stamped with the epoch:
        // 2023-11-14 22:13:20 UTC
        let spf = u32::from_le_bytes(img[36..40].try_into().unwrap()) as usize;
        let root = (8 + 2 * spf) * 512;
        assert_eq!(&img[root..root + 11], b"PIBOOT     ");
        assert_eq!(img[root + 11], 0x08);
        let date = ((2023 - 1980) << 9) | (11 << 5) | 14u16;
        let time = (22 << 11) | (13 << 5) | (20 / 2u16);
        assert_eq!(&img[root + 22..root + 24], &time.to_le_bytes());
        assert_eq!(&img[root + 24..root + 26], &date.to_le_bytes());

        // FAT16: 16 MiB at 2 KiB clusters is ~8000 clusters.
        let (img, _) = write(&t, &params(FatType::Fat16, 2048), 16 * MIB).unwrap();
        assert_eq!(&img[11..13], &512u16.to_le_bytes());
        assert_eq!(img[13], 4);
        assert_eq!(&img[14..16], &1u16.to_le_bytes());
        assert_eq!(&img[17..19], &512u16.to_le_bytes()); // root entries
        assert_eq!(img[0x26], 0x29);
        assert_eq!(&img[0x27..0x2B], &[0xCD, 0xAB, 0x34, 0x12]);
        assert_eq!(&img[0x2B..0x36], b"PIBOOT     ");
        assert_eq!(&img[0x36..0x3E], b"FAT16   ");
        assert_eq!(&img[510..512], &[0x55, 0xAA]);
    }

    #[test]
    fn output_is_deterministic_and_follows_the_epoch() {
        let t = tree(&[
            ("a/b/c.txt", Some(vec![3; 5000])),
            ("cmdline.txt", Some(b"quiet".to_vec())),
        ]);
        let p = params(FatType::Fat16, 1024);
        let (one, _) = write(&t, &p, 8 * MIB).unwrap();
        let (two, _) = write(&t, &p, 8 * MIB).unwrap();
        assert!(one == two);
        let (later, _) = write(
            &t,
            &FatParams {
                epoch: p.epoch + 2,
                ..p.clone()
            },
            8 * MIB,
        )
        .unwrap();
        assert!(one != later);
    }
}
