//! An image's boot partition as the readers' side sees it: the first FAT partition of an MBR
//! or GPT disk, opened with pimg's own hostile-input-safe readers.

use crate::codec::fat::read::{FatEntry, FatVolume};
use crate::codec::reader::{ReadError, SECTOR_SIZE};
use crate::digest::hex;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The first FAT partition of an image.
pub struct BootPartition {
    volume: FatVolume<fs::File>,
    files: BTreeMap<String, FatEntry>,
}

/// MBR partition types of FAT file systems, and GPT's Microsoft basic data type.
const FAT_MBR_TYPES: &[u8] = &[0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e];
const BASIC_DATA_GUID: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";

impl BootPartition {
    pub fn open(image: &Path) -> Result<Self, ReadError> {
        let io = |source| ReadError::Io {
            what: "the image".into(),
            offset: 0,
            source,
        };
        let file = crate::prove::open::regular(image).map_err(io)?;
        let table = crate::codec::partition::partitions(file.try_clone().map_err(io)?)?;
        // A card whose partition table is damaged is not judged or booted, even where one
        // intact copy let it be read.
        if !table.problems.is_empty() {
            return Err(ReadError::invalid(
                "the partition table",
                SECTOR_SIZE,
                table.problems.join("; "),
            ));
        }
        let part = table
            .partitions
            .iter()
            .find(|p| {
                p.mbr_type.is_some_and(|t| FAT_MBR_TYPES.contains(&t))
                    || p.type_guid
                        .as_deref()
                        .is_some_and(|g| g.eq_ignore_ascii_case(BASIC_DATA_GUID))
            })
            .ok_or_else(|| {
                ReadError::invalid("the partition table", 0, "no FAT partition found")
            })?;
        let mut volume = FatVolume::open(file, part.start, part.size)?;
        let files = volume
            .entries()?
            .into_iter()
            .filter(|e| !e.is_dir)
            .map(|e| (e.path.clone(), e))
            .collect();
        Ok(BootPartition { volume, files })
    }

    /// FAT names are case-insensitive: an exact match first, then one ignoring case.
    fn entry(&self, path: &str) -> Option<&FatEntry> {
        self.files.get(path).or_else(|| {
            self.files
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(path))
                .map(|(_, e)| e)
        })
    }

    pub fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>, ReadError> {
        match self.entry(path).cloned() {
            Some(e) => self.volume.read_entry(&e).map(Some),
            None => Ok(None),
        }
    }

    pub fn file_paths(&self) -> Result<Vec<String>, ReadError> {
        Ok(self.files.keys().cloned().collect())
    }

    pub fn sha256(&mut self, path: &str) -> Result<String, ReadError> {
        let e = self
            .entry(path)
            .cloned()
            .ok_or(ReadError::NotFound { path: path.into() })?;
        Ok(hex(&self.volume.sha256_file(&e)?))
    }
}

impl crate::firmware::BootFiles for BootPartition {
    fn size(&mut self, path: &str) -> Option<u64> {
        self.entry(path.trim_start_matches('/'))
            .map(|e| e.size as u64)
    }
    fn head(&mut self, path: &str, max: usize) -> Option<Vec<u8>> {
        let e = self.entry(path.trim_start_matches('/'))?.clone();
        // Only small files are read whole; of a kernel only its header is needed.
        if e.size as usize <= max {
            return self.volume.read_entry(&e).ok();
        }
        let mut head = Head(Vec::with_capacity(max), max);
        self.volume.copy_file(&e, &mut head).ok()?;
        Some(head.0)
    }
}

/// A `Write` that keeps the first `.1` bytes and drops the rest.
struct Head(Vec<u8>, usize);

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.1 - self.0.len();
        self.0.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
