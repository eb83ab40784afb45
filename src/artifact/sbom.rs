//! The SPDX 2.3 JSON software bill of materials written with every build (`<board>.spdx.json`).
//!
//! A pure function of what the build used and made: no clock (`created` is the epoch), no
//! random namespace (it is derived from the content), fixed key order, inputs and outputs in
//! the order given (the caller sorts), so two builds of the same inputs give the same bytes.

use crate::digest::{hex, FileSum};
use crate::epoch::{iso8601, SourceDateEpoch};
use crate::inputs::{Input, InputKind};
use crate::profile::lock::PinnedInput;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One input package as the SBOM lists it.
#[derive(Debug, Clone)]
pub struct SbomInput {
    pub pinned: PinnedInput,
    /// The licence the package states (an `.apk`'s `license`); `None` for NOASSERTION.
    pub license: Option<String>,
    /// What kind of input it is, for the comment (".deb package", ...).
    pub kind: &'static str,
}

/// One output file.
#[derive(Debug, Clone)]
pub struct SbomOutput {
    pub name: String,
    pub sha256: String,
    /// SPDX primaryPackagePurpose: INSTALL, ARCHIVE, FILE, ...
    pub purpose: &'static str,
    /// File names of the inputs it was generated from.
    pub generated_from: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: Option<String>,
    package_file_name: String,
    download_location: &'static str,
    files_analyzed: bool,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    primary_package_purpose: Option<&'static str>,
    built_date: Option<String>,
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
}

/// The SBOM's view of the inputs a build used (with their SHA-256) and their licences.
pub fn inputs(used: &[(Input, String)], licenses: &BTreeMap<String, String>) -> Vec<SbomInput> {
    used.iter()
        .map(|(i, sha)| SbomInput {
            pinned: super::pinned(i, sha.clone()),
            license: licenses.get(&i.file).cloned(),
            kind: match i.kind {
                InputKind::Deb => "Debian package",
                InputKind::Apk => "Alpine package",
                InputKind::Tarball => "tar archive",
                InputKind::Dir => "directory",
            },
        })
        .collect()
}

/// The SBOM's view of the outputs written so far: the image is for installing, the rest are
/// archives; the apkovl comes from the overlay alone, the initramfs from its own inputs.
pub fn outputs(
    files: &[FileSum],
    apkovl_name: &str,
    initramfs_inputs: &[String],
    all_inputs: &[String],
) -> Vec<SbomOutput> {
    files
        .iter()
        .map(|o| {
            let (purpose, from) = if o.name == apkovl_name {
                ("ARCHIVE", Vec::new())
            } else if o.name.ends_with(".initramfs.cpio.gz") {
                ("ARCHIVE", initramfs_inputs.to_vec())
            } else if o.name.ends_with(".img")
                || [".img.gz", ".img.xz", ".img.zst"]
                    .iter()
                    .any(|ext| o.name.ends_with(ext))
            {
                ("INSTALL", all_inputs.to_vec())
            } else {
                ("ARCHIVE", all_inputs.to_vec())
            };
            SbomOutput {
                name: o.name.clone(),
                sha256: o.sha256.clone(),
                purpose,
                generated_from: from,
            }
        })
        .collect()
}

/// The SPDX document for a build of `board` as pretty JSON with a final newline.
pub fn document(
    board: &str,
    epoch: SourceDateEpoch,
    inputs: &[SbomInput],
    outputs: &[SbomOutput],
) -> Vec<u8> {
    let mut ids = IdSet::default();
    let mut extracted: Vec<ExtractedLicense> = Vec::new();
    let (mut packages, input_ids) = input_packages(inputs, &mut ids, &mut extracted);
    let created = iso8601(epoch.seconds());
    let (output_packages, relationships) = output_packages(outputs, &mut ids, &input_ids, &created);
    packages.extend(output_packages);
    let doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("pimg-{board}"),
        document_namespace: namespace(board, epoch, inputs, outputs),
        creation_info: CreationInfo {
            created,
            creators: vec![format!("Tool: pimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        relationships,
        has_extracted_licensing_infos: extracted,
    };
    let mut json = serde_json::to_string_pretty(&doc).expect("SBOM serializes");
    json.push('\n');
    json.into_bytes()
}

/// One package per input, and (input file, SPDX id) for the relationships.
fn input_packages(
    inputs: &[SbomInput],
    ids: &mut IdSet,
    extracted: &mut Vec<ExtractedLicense>,
) -> (Vec<Package>, Vec<(String, String)>) {
    let mut packages = Vec::new();
    let mut input_ids = Vec::new();
    for input in inputs {
        let i = &input.pinned;
        let id = ids.unique(&format!("SPDXRef-Input-{}", idstring(&i.name)));
        input_ids.push((i.file.clone(), id.clone()));
        let declared = match &input.license {
            Some(raw) => license_expression(raw, extracted),
            None => "NOASSERTION".to_string(),
        };
        let mut comment = input.kind.to_string();
        if let Some(a) = &i.arch {
            comment.push_str(&format!(", arch {a}"));
        }
        packages.push(Package {
            spdx_id: id,
            name: i.name.clone(),
            version_info: i.version.clone(),
            package_file_name: i.file.clone(),
            download_location: "NOASSERTION",
            files_analyzed: false,
            checksums: vec![sha256(&i.sha256)],
            license_concluded: "NOASSERTION",
            license_declared: declared,
            copyright_text: "NOASSERTION",
            primary_package_purpose: None,
            built_date: None,
            comment: Some(comment),
        });
    }
    (packages, input_ids)
}

/// One package per output, described by the document and generated from its inputs.
fn output_packages(
    outputs: &[SbomOutput],
    ids: &mut IdSet,
    input_ids: &[(String, String)],
    created: &str,
) -> (Vec<Package>, Vec<Relationship>) {
    let mut relationships = Vec::new();
    let mut packages = Vec::new();
    for o in outputs {
        let id = ids.unique(&format!("SPDXRef-Output-{}", idstring(&o.name)));
        relationships.push(Relationship {
            spdx_element_id: "SPDXRef-DOCUMENT".into(),
            relationship_type: "DESCRIBES",
            related_spdx_element: id.clone(),
        });
        for from in &o.generated_from {
            if let Some((_, input)) = input_ids.iter().find(|(f, _)| f == from) {
                relationships.push(Relationship {
                    spdx_element_id: id.clone(),
                    relationship_type: "GENERATED_FROM",
                    related_spdx_element: input.clone(),
                });
            }
        }
        packages.push(Package {
            spdx_id: id,
            name: o.name.clone(),
            version_info: None,
            package_file_name: o.name.clone(),
            download_location: "NOASSERTION",
            files_analyzed: false,
            checksums: vec![sha256(&o.sha256)],
            license_concluded: "NOASSERTION",
            license_declared: "NOASSERTION".into(),
            copyright_text: "NOASSERTION",
            primary_package_purpose: Some(o.purpose),
            built_date: Some(created.to_string()),
            comment: None,
        });
    }
    (packages, relationships)
}

/// The document namespace, derived from the content.
fn namespace(
    board: &str,
    epoch: SourceDateEpoch,
    inputs: &[SbomInput],
    outputs: &[SbomOutput],
) -> String {
    let mut h = Sha256::new();
    h.update(b"pimg spdx namespace v1\0");
    h.update(board.as_bytes());
    h.update(format!("\0{}\0", epoch.seconds()));
    for i in inputs {
        h.update(format!("in\0{}\0{}\0", i.pinned.file, i.pinned.sha256));
    }
    for o in outputs {
        h.update(format!("out\0{}\0{}\0", o.name, o.sha256));
    }
    format!("https://spdx.invalid/pimg/{board}/{}", hex(&h.finalize()))
}

fn sha256(value: &str) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        checksum_value: value.to_string(),
    }
}

/// SPDX element ids, made unique by a numeric suffix in the order asked.
#[derive(Default)]
struct IdSet(std::collections::BTreeSet<String>);

impl IdSet {
    fn unique(&mut self, base: &str) -> String {
        let mut id = base.to_string();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// SPDX idstring characters: letters, digits, `.` and `-`; anything else becomes `-`.
fn idstring(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

/// Turns a package's licence field into an SPDX licence expression: operators and ids that
/// look like SPDX ids pass through; anything else (Alpine's `custom`, `custom:...`, free text)
/// becomes a `LicenseRef-` with the original text recorded as an extracted licence.
fn license_expression(raw: &str, extracted: &mut Vec<ExtractedLicense>) -> String {
    let spaced = raw.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    if tokens.is_empty() {
        return "NOASSERTION".into();
    }
    let mut out: Vec<String> = Vec::new();
    let mut expect_license = true;
    let mut depth = 0i32;
    let mut well_formed = true;
    for t in &tokens {
        let upper = t.to_ascii_uppercase();
        match (*t, upper.as_str()) {
            ("(", _) if expect_license => {
                depth += 1;
                out.push("(".into());
            }
            (")", _) if !expect_license && depth > 0 => {
                depth -= 1;
                out.push(")".into());
            }
            (_, "AND" | "OR" | "WITH") if !expect_license => {
                out.push(upper.clone());
                expect_license = true;
            }
            (id, _) if expect_license => {
                out.push(license_id(id, extracted));
                expect_license = false;
            }
            _ => {
                well_formed = false;
                break;
            }
        }
    }
    if !well_formed || expect_license || depth != 0 {
        // Not an expression at all (e.g. "Public Domain"): one LicenseRef for the whole text.
        return license_ref(raw, extracted);
    }
    out.join(" ").replace("( ", "(").replace(" )", ")")
}

fn license_id(id: &str, extracted: &mut Vec<ExtractedLicense>) -> String {
    let core = id.strip_suffix('+').unwrap_or(id);
    let spdx_like = !core.is_empty()
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && core.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !core.to_ascii_lowercase().starts_with("custom");
    if spdx_like || id.starts_with("LicenseRef-") {
        id.to_string()
    } else {
        license_ref(id, extracted)
    }
}

fn license_ref(text: &str, extracted: &mut Vec<ExtractedLicense>) -> String {
    let id = format!("LicenseRef-{}", idstring(text.trim()));
    if !extracted.iter().any(|e| e.license_id == id) {
        extracted.push(ExtractedLicense {
            license_id: id.clone(),
            extracted_text: text.trim().to_string(),
            name: text.trim().to_string(),
        });
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses() {
        let mut x = Vec::new();
        assert_eq!(license_expression("GPL-2.0-only", &mut x), "GPL-2.0-only");
        assert_eq!(
            license_expression("MIT and (BSD-2-Clause OR Apache-2.0)", &mut x),
            "MIT AND (BSD-2-Clause OR Apache-2.0)"
        );
        assert!(x.is_empty());
        assert_eq!(
            license_expression("GPL-2.0-or-later AND custom", &mut x),
            "GPL-2.0-or-later AND LicenseRef-custom"
        );
        assert_eq!(
            license_expression("custom:multiple", &mut x),
            "LicenseRef-custom-multiple"
        );
        assert_eq!(
            license_expression("Public Domain", &mut x),
            "LicenseRef-Public-Domain"
        );
        let ids: Vec<&str> = x.iter().map(|e| e.license_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "LicenseRef-custom",
                "LicenseRef-custom-multiple",
                "LicenseRef-Public-Domain"
            ]
        );
        assert_eq!(idstring("busybox_static+x"), "busybox-static-x");
    }
}
