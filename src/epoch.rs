//! The one source of time: `SOURCE_DATE_EPOCH` (flag or environment) or the inputs.
//!
//! Parsed once, then passed explicitly to every writer; nothing in pimg reads the clock.

use std::fmt;

/// Latest instant any of pimg's formats can hold (tar and cpio mtime fields; FAT clamps further).
pub const MAX_EPOCH: i64 = 0xFFFF_FFFF;

/// A validated build timestamp in seconds since 1970-01-01 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceDateEpoch(i64);

/// Where the epoch came from, recorded in the buildinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochSource {
    /// `--source-date-epoch` or `SOURCE_DATE_EPOCH` (the same value gives the same bytes either way).
    Given,
    /// The newest member mtime inside the named input package.
    Inputs { input: String },
}

impl fmt::Display for EpochSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochSource::Given => f.write_str("SOURCE_DATE_EPOCH"),
            EpochSource::Inputs { input } => write!(f, "newest mtime inside input {input}"),
        }
    }
}

/// A malformed or out-of-range epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error(
        "SOURCE_DATE_EPOCH '{0}' is not a whole number of seconds since 1970 (e.g. 1700000000)"
    )]
    Malformed(String),
    #[error(
        "SOURCE_DATE_EPOCH {0} is out of range: it must be between 0 and {MAX_EPOCH} (year 2106)"
    )]
    /// The value as given (it may not fit any integer type).
    OutOfRange(String),
    #[error(
        "no SOURCE_DATE_EPOCH given and none can be derived: no input package has a timestamp; \
         pass --source-date-epoch N or set SOURCE_DATE_EPOCH"
    )]
    Underivable,
}

impl SourceDateEpoch {
    /// Parses a decimal seconds value as `SOURCE_DATE_EPOCH` is specified: digits only.
    pub fn parse(text: &str) -> Result<Self, EpochError> {
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(rest) = t.strip_prefix('-') {
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(EpochError::OutOfRange(t.to_string()));
                }
            }
            return Err(EpochError::Malformed(text.to_string()));
        }
        match t.parse::<i64>() {
            Ok(v) => Self::new(v),
            Err(_) => Err(EpochError::OutOfRange(t.to_string())),
        }
    }

    /// Checks the range every output format can represent.
    pub fn new(seconds: i64) -> Result<Self, EpochError> {
        if (0..=MAX_EPOCH).contains(&seconds) {
            Ok(SourceDateEpoch(seconds))
        } else {
            Err(EpochError::OutOfRange(seconds.to_string()))
        }
    }

    /// Seconds since the Unix epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SourceDateEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since 1970 as `YYYY-MM-DDThh:mm:ssZ` (UTC; civil-from-days, no time zone database).
pub fn iso8601(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let secs = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(0xFFFF_FFFF), "2106-02-07T06:28:15Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_digits_only() {
        assert_eq!(
            SourceDateEpoch::parse("1700000000").unwrap().seconds(),
            1_700_000_000
        );
        assert_eq!(SourceDateEpoch::parse(" 0\n").unwrap().seconds(), 0);
        assert!(matches!(
            SourceDateEpoch::parse("17e8"),
            Err(EpochError::Malformed(_))
        ));
        assert!(matches!(
            SourceDateEpoch::parse(""),
            Err(EpochError::Malformed(_))
        ));
        assert!(matches!(
            SourceDateEpoch::parse("+5"),
            Err(EpochError::Malformed(_))
        ));
        assert!(matches!(
            SourceDateEpoch::parse("-5"),
            Err(EpochError::OutOfRange(ref v)) if v == "-5"
        ));
        assert!(matches!(
            SourceDateEpoch::parse("4294967296"),
            Err(EpochError::OutOfRange(_))
        ));
        let e = SourceDateEpoch::parse("18446744073709551616").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SOURCE_DATE_EPOCH 18446744073709551616 is out of range"),
            "{e}"
        );
    }
}
