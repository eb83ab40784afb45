//! The select stage: which inputs of the inputs folder the profile takes.

use crate::inputs::{self, Input, InputError, InputKind, InputSet};
use crate::profile::board::{BoardProfile, LoadedProfile};
use std::collections::BTreeMap;
use std::path::Path;

/// The inputs folder's inputs that run on the board.
pub fn input_set(dir: &Path, loaded: &LoadedProfile) -> Result<InputSet, InputError> {
    let (debian, alpine) = loaded.profile.board.package_arches();
    InputSet::discover(dir)?.for_arches(debian, alpine)
}

/// Every input the profile selects (boot files, busybox, kernel, modloop firmware, boot
/// repository), each once, sorted by name: what a build reads and what `pimg lock` records.
pub fn selected_inputs(p: &BoardProfile, set: &InputSet) -> Result<Vec<Input>, InputError> {
    let mut chosen: BTreeMap<String, Input> = BTreeMap::new();
    let mut add = |i: &Input| {
        chosen.entry(i.name.clone()).or_insert_with(|| i.clone());
    };
    for (i, rule) in p.boot.files.iter().enumerate() {
        add(set.select(&rule.input, &format!("boot.files[{i}].input"))?);
    }
    add(set.select(&p.initramfs.busybox.input, "initramfs.busybox.input")?);
    add(set.select(&p.initramfs.kernel_input, "initramfs.kernel_input")?);
    for (i, rule) in p.modloop.iter().flat_map(|m| &m.firmware).enumerate() {
        add(set.select(&rule.input, &format!("modloop.firmware[{i}].input"))?);
    }
    for i in repository_apks(p, set)? {
        add(i);
    }
    Ok(chosen.into_values().collect())
}

/// The `.apk` inputs `[boot.apks]` puts into the boot repository, sorted by name.
pub(super) fn repository_apks<'a>(
    p: &BoardProfile,
    set: &'a InputSet,
) -> Result<Vec<&'a Input>, InputError> {
    let Some(repo) = &p.boot.apks else {
        return Ok(Vec::new());
    };
    let apks: Vec<&Input> = set
        .inputs
        .iter()
        .filter(|i| i.kind == InputKind::Apk)
        .collect();
    let mut chosen: BTreeMap<&str, &Input> = BTreeMap::new();
    for (n, pattern) in repo.inputs.iter().enumerate() {
        let field = format!("boot.apks.inputs[{n}]");
        let m = inputs::matcher(pattern, &field)?;
        let hits: Vec<&&Input> = apks.iter().filter(|i| m.is_match(&i.name)).collect();
        if hits.is_empty() {
            return Err(InputError::NoMatch {
                field,
                pattern: pattern.clone(),
                dir: set.dir.display().to_string(),
                available: if apks.is_empty() {
                    "no .apk inputs".into()
                } else {
                    apks.iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        for i in hits {
            chosen.insert(&i.name, i);
        }
    }
    Ok(chosen.into_values().collect())
}
