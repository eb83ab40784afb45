//! What the FAT writer and reader share: the variant and its thresholds, the sector and entry
//! sizes, attribute bits and the on-disk date and time words.

use crate::epoch::{civil_from_days, days_from_civil};
use serde::Serialize;
use std::fmt;

pub use crate::codec::SECTOR_SIZE;
/// Bytes per directory entry.
pub const DIR_ENTRY_SIZE: u64 = 32;
/// Fewest clusters a FAT16 volume has; fewer make it FAT12.
pub const FAT16_MIN_CLUSTERS: u64 = 4085;
/// Fewest clusters a FAT32 volume has; fewer make it FAT16.
pub const FAT32_MIN_CLUSTERS: u64 = 65525;

/// Attribute bits.
pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LONG_NAME: u8 = 0x0F;

/// 1980-01-01T00:00:00Z, the earliest instant FAT can store.
pub const FAT_EPOCH_MIN: i64 = days_from_civil(1980, 1, 1) * 86_400;
/// 2107-12-31T23:59:58Z, the latest instant FAT can store (2-second resolution).
pub const FAT_EPOCH_MAX: i64 = days_from_civil(2107, 12, 31) * 86_400 + 86_398;

/// The FAT variant: chosen by the profile when writing, decided by the cluster count (as the
/// specification says) when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    /// 12-bit FAT, fewer than 4085 clusters.
    Fat12,
    /// 16-bit FAT, 4085 to 65524 clusters.
    Fat16,
    /// 32-bit FAT, at least 65525 clusters.
    Fat32,
}

impl fmt::Display for FatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        })
    }
}

impl FatType {
    /// The variant a volume of `clusters` data clusters is.
    pub fn for_clusters(clusters: u64) -> FatType {
        if clusters < FAT16_MIN_CLUSTERS {
            FatType::Fat12
        } else if clusters < FAT32_MIN_CLUSTERS {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }

    /// Bits per allocation-table entry.
    pub fn bits_per_entry(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
}

/// A civil UTC instant inside FAT's range, seconds even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatTimestamp {
    pub year: u16,
    pub month: u16,
    pub day: u16,
    pub hour: u16,
    pub minute: u16,
    pub second: u16,
}

impl FatTimestamp {
    /// Clamps `epoch` into FAT's range, rounds down to 2 seconds and converts it to civil UTC.
    /// Returns the clamped value as well when clamping changed it.
    pub fn from_epoch(epoch: i64) -> (FatTimestamp, Option<i64>) {
        let clamped = epoch.clamp(FAT_EPOCH_MIN, FAT_EPOCH_MAX);
        let secs = clamped - clamped.rem_euclid(2);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let of_day = secs.rem_euclid(86_400);
        // In range by construction: year 1980..=2107, month 1..=12, day 1..=31, time < 86400.
        let stamp = FatTimestamp {
            year: year as u16,
            month: month as u16,
            day: day as u16,
            hour: (of_day / 3600) as u16,
            minute: (of_day / 60 % 60) as u16,
            second: (of_day % 60) as u16,
        };
        (stamp, (clamped != epoch).then_some(clamped))
    }

    /// The on-disk (date, time) words of a directory entry.
    pub fn encode(self) -> (u16, u16) {
        let date = ((self.year - 1980) << 9) | (self.month << 5) | self.day;
        let time = (self.hour << 11) | (self.minute << 5) | (self.second / 2);
        (date, time)
    }
}

/// Decodes on-disk date and time words (and a creation stamp's 10 ms units) to Unix seconds,
/// or `None` when they are not a valid date and time.
pub fn decode_time(date: u16, time: u16, tenths: u8) -> Option<i64> {
    let year = 1980 + i64::from(date >> 9);
    let month = i64::from((date >> 5) & 0x0F);
    let day = i64::from(date & 0x1F);
    let hour = i64::from(time >> 11);
    let minute = i64::from((time >> 5) & 0x3F);
    let second = i64::from(time & 0x1F) * 2 + i64::from(tenths / 100);
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(epoch: i64) -> (u16, u16, u16, u16, u16, u16) {
        let s = FatTimestamp::from_epoch(epoch).0;
        (s.year, s.month, s.day, s.hour, s.minute, s.second)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(FAT_EPOCH_MIN, 315_532_800);
        assert_eq!(FAT_EPOCH_MAX, 4_354_819_198);
        assert_eq!(civil(315_532_800), (1980, 1, 1, 0, 0, 0));
        // 2000-02-29 12:34:56 UTC, a leap day in a year divisible by 400
        assert_eq!(civil(951_827_696), (2000, 2, 29, 12, 34, 56));
        assert_eq!(civil(951_868_799), (2000, 2, 29, 23, 59, 58)); // 59 rounds down
        assert_eq!(civil(951_868_800), (2000, 3, 1, 0, 0, 0));
        // 2100 is not a leap year: Feb 28 is followed by Mar 1
        assert_eq!(
            civil(days_from_civil(2100, 2, 28) * 86_400 + 86_400),
            (2100, 3, 1, 0, 0, 0)
        );
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(civil(1_709_208_000), (2024, 2, 29, 12, 0, 0));
        assert_eq!(civil(FAT_EPOCH_MAX), (2107, 12, 31, 23, 59, 58));
        for days in [-800_000, -1, 0, 11_016, 59, 60, 50_402] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn epoch_clamping() {
        assert_eq!(
            FatTimestamp::from_epoch(0),
            (
                FatTimestamp::from_epoch(FAT_EPOCH_MIN).0,
                Some(FAT_EPOCH_MIN)
            )
        );
        assert_eq!(FatTimestamp::from_epoch(-5).1, Some(FAT_EPOCH_MIN));
        assert_eq!(FatTimestamp::from_epoch(FAT_EPOCH_MIN).1, None);
        assert_eq!(
            FatTimestamp::from_epoch(FAT_EPOCH_MIN + 1).1,
            None,
            "rounding is not clamping"
        );
        assert_eq!(
            FatTimestamp::from_epoch(FAT_EPOCH_MAX + 1).1,
            Some(FAT_EPOCH_MAX)
        );
        assert_eq!(
            FatTimestamp::from_epoch(i64::MAX),
            (
                FatTimestamp::from_epoch(FAT_EPOCH_MAX).0,
                Some(FAT_EPOCH_MAX)
            )
        );
    }

    /// What the writer encodes, the reader decodes to the same instant (rounded down to two
    /// seconds, clamped into 1980..2107), across leap days, centuries and both ends.
    #[test]
    fn timestamps_round_trip() {
        let cases = [
            (FAT_EPOCH_MIN, FAT_EPOCH_MIN),
            (FAT_EPOCH_MAX, FAT_EPOCH_MAX),
            (FAT_EPOCH_MAX + 1, FAT_EPOCH_MAX),
            (0, FAT_EPOCH_MIN),
            (951_782_400, 951_782_400),     // 2000-02-29
            (1_700_000_001, 1_700_000_000), // odd second rounds down
            (4_107_542_399, 4_107_542_398), // 2100-02-28T23:59:59
            (4_107_542_400, 4_107_542_400), // 2100-03-01, no leap day in 2100
        ];
        for (epoch, want) in cases {
            let (stamp, clamped) = FatTimestamp::from_epoch(epoch);
            let (date, time) = stamp.encode();
            assert_eq!(decode_time(date, time, 0), Some(want), "epoch {epoch}");
            let in_range = (FAT_EPOCH_MIN..=FAT_EPOCH_MAX).contains(&epoch);
            assert_eq!(clamped.is_some(), !in_range, "epoch {epoch}");
        }
        for t in (FAT_EPOCH_MIN..FAT_EPOCH_MAX).step_by(86_400 * 97 + 3_601 * 2) {
            let (date, time) = FatTimestamp::from_epoch(t).0.encode();
            assert_eq!(decode_time(date, time, 0), Some(t - t.rem_euclid(2)));
        }
    }

    #[test]
    fn invalid_words_decode_to_none() {
        assert_eq!(decode_time(0, 0, 0), None); // month 0
        assert_eq!(decode_time((1 << 5) | 1, 24 << 11, 0), None); // hour 24
        assert_eq!(decode_time(13 << 5 | 1, 0, 0), None); // month 13
    }

    #[test]
    fn variant_by_cluster_count() {
        assert_eq!(FatType::for_clusters(4084), FatType::Fat12);
        assert_eq!(FatType::for_clusters(4085), FatType::Fat16);
        assert_eq!(FatType::for_clusters(65524), FatType::Fat16);
        assert_eq!(FatType::for_clusters(65525), FatType::Fat32);
    }
}
