//! The last check before publishing: every input used is still what was read.

use super::error::Error;
use crate::inputs::{Input, InputSet};
use std::collections::BTreeMap;

/// Inputs are opened several times (listing, hashing, scanning); one replaced meanwhile would
/// leave a buildinfo that describes other bytes than the image holds, so before publishing
/// every input used must still have the name, version and SHA-256 that were recorded.
pub(super) fn recheck_inputs(
    dir: &std::path::Path,
    used: &[(Input, String)],
    dir_members: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), Error> {
    let changed = |input: &Input| {
        // For a directory, name the first file that differs from what was read.
        let file = dir_members.get(&input.file).and_then(|before| {
            let now = input.member_digests().unwrap_or_default();
            before
                .iter()
                .find(|(p, d)| now.get(*p) != Some(*d))
                .map(|(p, _)| p.clone())
                .or_else(|| now.keys().find(|p| !before.contains_key(*p)).cloned())
        });
        Error::InputChanged {
            input: match file {
                Some(f) => format!("{}/{f}", input.file),
                None => input.file.clone(),
            },
        }
    };
    let now = InputSet::discover(dir)?;
    for (input, sha) in used {
        let same = now.inputs.iter().find(|i| {
            i.file == input.file
                && i.name == input.name
                && i.version == input.version
                && i.arch == input.arch
        });
        match same {
            Some(i) if i.sha256().ok().as_ref() == Some(sha) => {}
            _ => return Err(changed(input)),
        }
    }
    Ok(())
}
