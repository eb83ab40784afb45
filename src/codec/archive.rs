//! Byte-exact archive writers: cpio newc, tar, gzip. No clock, no filesystem, no policy.
//!
//! The caller sorts the entries and decides every header field; these modules only encode
//! them, and refuse (with the entry's path) anything a field cannot hold.

use std::io;

/// Why an entry could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{format} entry '{path}': name is {len} bytes, the limit is {max}; shorten the path")]
    NameTooLong {
        format: &'static str,
        path: String,
        len: usize,
        max: usize,
    },
    #[error("{format} entry '{path}': {reason}")]
    BadName {
        format: &'static str,
        path: String,
        reason: &'static str,
    },
    #[error(
        "{format} entry '{path}': {field} is {value}, the format holds at most {max}; \
         change the value or leave this entry out"
    )]
    FieldTooLarge {
        format: &'static str,
        path: String,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("writing the {format} stream: {source}")]
    Io {
        format: &'static str,
        #[source]
        source: io::Error,
    },
}
