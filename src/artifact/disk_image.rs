//! `<board>.img`: the partition table and the FAT boot partition. Planned from the profile
//! alone (sizes, offsets, label, cluster size, fixed identifiers), written once the boot tree
//! is known; identifiers the profile leaves open are derived from the content.

use super::FieldError;
use crate::codec::fat::write::{self as fat, FatError, FatParams, FatReport, FatType, Window};
use crate::codec::partition::write::{self as disk, DiskError, DiskLayout};
use crate::codec::partition::TableKind;
use crate::ids::{self, IdentitySeed};
use crate::profile::board::BoardProfile;
use crate::tree::Tree;
use std::io::{Read, Seek, Write};

/// Why the image cannot be made from this profile and content.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("partition table: {0}")]
    Disk(#[from] DiskError),
    #[error("boot partition: {0}")]
    Fat(#[from] FatError),
}

/// The image as the profile fixes it.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    pub size: u64,
    pub offset: u64,
    pub part_size: u64,
    /// Bytes kept free at the end (GPT's backup table).
    reserve_end: u64,
    table: TableKind,
    mbr_type: u8,
    label: String,
    fat_type: FatType,
    bytes_per_cluster: u32,
    volume_id: Option<u32>,
    disk_signature: Option<u32>,
    disk_guid: Option<[u8; 16]>,
    part_guid: Option<[u8; 16]>,
}

/// The identifiers written into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identities {
    pub volume_id: u32,
    pub disk_signature: u32,
    pub disk_guid: [u8; 16],
    pub part_guid: [u8; 16],
}

fn fixed_guid(field: &str, text: &Option<String>) -> Result<Option<[u8; 16]>, FieldError> {
    text.as_ref()
        .map(|t| {
            ids::parse_guid(t).ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("'{t}' is not a GUID like 0fc63daf-8483-4772-8e79-3d69d8477de4"),
                )
            })
        })
        .transpose()
}

/// Checks everything about the image that the profile alone decides: fixed GUIDs, the
/// partition's place and size, the table's limits, the FAT label, cluster and volume size.
pub fn plan(p: &BoardProfile) -> Result<DiskPlan, ImageError> {
    let (size, offset) = (p.image.size.0, p.boot.offset.0);
    let reserve_end = if p.image.table == TableKind::Gpt {
        1 << 20
    } else {
        0
    };
    let disk_guid = fixed_guid("image.disk_guid", &p.image.disk_guid)?;
    let part_guid = fixed_guid("boot.part_guid", &p.boot.part_guid)?;
    let part_size = match p.boot.size {
        Some(s) => s.0,
        None => size
            .checked_sub(offset + reserve_end)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                FieldError::new(
                    "boot.offset",
                    format!("{offset} leaves no room for the partition in a {size}-byte image"),
                )
            })?,
    };
    let plan = DiskPlan {
        size,
        offset,
        part_size,
        reserve_end,
        table: p.image.table,
        mbr_type: p.boot.mbr_type,
        label: p.boot.label.clone(),
        fat_type: p.boot.fat,
        bytes_per_cluster: p.boot.cluster_size.0 as u32,
        volume_id: p.boot.volume_id,
        disk_signature: p.image.disk_signature,
        disk_guid,
        part_guid,
    };
    // Placeholder identifiers: what is checked here does not depend on them.
    let ids = plan.identities(&IdentitySeed([1; 32]));
    disk::validate(&plan.layout(&ids))?;
    fat::check_params(part_size, &plan.fat_params(&ids, 0))?;
    Ok(plan)
}

impl DiskPlan {
    /// The profile's fixed identifiers, the others derived from `seed` by label.
    pub fn identities(&self, seed: &IdentitySeed) -> Identities {
        Identities {
            volume_id: self.volume_id.unwrap_or_else(|| seed.u32("fat/volume-id")),
            disk_signature: self
                .disk_signature
                .unwrap_or_else(|| seed.u32("mbr/disk-signature")),
            disk_guid: self.disk_guid.unwrap_or_else(|| seed.guid("gpt/disk")),
            part_guid: self.part_guid.unwrap_or_else(|| seed.guid("gpt/part/boot")),
        }
    }

    /// The partition table's layout with these identifiers.
    pub fn layout(&self, ids: &Identities) -> DiskLayout {
        DiskLayout {
            size: self.size,
            table: self.table,
            part_offset: self.offset,
            part_size: self.part_size,
            mbr_type: self.mbr_type,
            bootable: false,
            disk_signature: ids.disk_signature,
            disk_guid: ids.disk_guid,
            part_guid: ids.part_guid,
            part_name: self.label.clone(),
        }
    }

    /// The boot partition's FAT parameters.
    pub fn fat_params(&self, ids: &Identities, epoch: i64) -> FatParams {
        FatParams {
            fat_type: self.fat_type,
            bytes_per_cluster: self.bytes_per_cluster,
            volume_id: ids.volume_id,
            label: self.label.clone(),
            epoch,
        }
    }

    /// The table the image carries.
    pub fn table(&self) -> TableKind {
        self.table
    }

    /// Refuses content the partition cannot hold, saying how large the image should be.
    pub fn check_fits(&self, boot: &Tree, params: &FatParams) -> Result<(), FieldError> {
        let needed = fat::required_bytes(boot, params);
        if needed <= self.part_size {
            return Ok(());
        }
        let suggested = (needed + self.offset + self.reserve_end).next_power_of_two();
        Err(FieldError::new(
            "image.size",
            format!(
                "the boot content needs {} but the partition holds {}; the largest files are {}; \
                 raise image.size (a power of two, e.g. {})",
                mib(needed),
                mib(self.part_size),
                fat::largest_files(boot, 3),
                mib(suggested)
            ),
        ))
    }
}

/// Writes the table and the FAT volume onto `dev`, which is exactly the image's size and
/// zero-filled.
pub fn write<D: Read + Write + Seek>(
    dev: &mut D,
    plan: &DiskPlan,
    layout: &DiskLayout,
    boot: &Tree,
    params: &FatParams,
) -> Result<FatReport, ImageError> {
    disk::write_table(&mut *dev, layout)?;
    let window = Window::new(&mut *dev, plan.offset, plan.part_size);
    Ok(fat::write_fat(window, plan.part_size, boot, params)?)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
