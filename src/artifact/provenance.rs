//! `<board>.intoto.json`: an in-toto Statement v1 whose predicate is SLSA Provenance v1, made
//! from the buildinfo alone, so anyone holding the published buildinfo can make it again and
//! compare (`pimg verify` does).
//!
//! - **subject**: every output the buildinfo lists, and the buildinfo itself, with SHA-256.
//! - **buildDefinition**: `buildType` [`BUILD_TYPE`]; `externalParameters` are the choices
//!   that decided the bytes (board, profile name and digest, overlay name and digest, epoch and
//!   its source, partition table, compression, lock, signing); `resolvedDependencies` are
//!   every input with its SHA-256 and the file it came from in the inputs folder.
//! - **runDetails**: the builder is pimg ([`BUILDER_ID`]) with its version and the digest of
//!   the `Cargo.lock` it was built from. No `metadata`: its times would be wall-clock times,
//!   and the statement must be the same bytes on every machine.
//!
//! JSON keys in a fixed order, two-space indentation, a final newline.

use super::buildinfo::Buildinfo;
use crate::digest::FileSum;
use serde::Serialize;
use std::collections::BTreeMap;

/// The statement's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate's type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// How to read `externalParameters`: a pimg build, its parameters as written here and its
/// inputs in the buildinfo's format (`pimg-buildinfo/1`).
pub const BUILD_TYPE: &str = "urn:pimg:build:v1";
/// The builder: pimg itself, run by whoever published the folder.
pub const BUILDER_ID: &str = "urn:pimg:builder";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The statement's file name for a board.
pub fn name(board: &str) -> String {
    format!("{board}.intoto.json")
}

/// The DSSE envelope's file name for a board (written when the build signs).
pub fn envelope_name(board: &str) -> String {
    format!("{board}.intoto.dsse.json")
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: Vec<Descriptor>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    build_definition: BuildDefinition<'a>,
    run_details: RunDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition<'a> {
    build_type: &'static str,
    external_parameters: Parameters<'a>,
    resolved_dependencies: Vec<Descriptor>,
}

/// What the person building chose, and the epoch that follows from it.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Parameters<'a> {
    board: &'a str,
    profile: Named<'a>,
    overlay: Named<'a>,
    hostname: &'a str,
    source_date_epoch: i64,
    epoch_source: &'a str,
    /// `--table`, when it overrode the profile's.
    table: Option<&'a str>,
    /// `--compress`, in the order written.
    compress: Vec<&'a str>,
    /// The lock file (`--locked`): its name and digest.
    lock: Option<Named<'a>>,
    /// The signing key's fingerprint (`--sign-key`).
    signing_key: Option<&'a str>,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    sha256: &'a str,
}

#[derive(Serialize)]
struct RunDetails {
    builder: Builder,
}

#[derive(Serialize)]
struct Builder {
    id: &'static str,
    version: BTreeMap<&'static str, String>,
}

/// An in-toto ResourceDescriptor: a name, its digest, and what else is known of it.
#[derive(Serialize)]
struct Descriptor {
    name: String,
    digest: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

impl Descriptor {
    fn new(name: &str, sha256: &str) -> Descriptor {
        Descriptor {
            name: name.to_string(),
            digest: BTreeMap::from([("sha256", sha256.to_string())]),
            annotations: BTreeMap::new(),
        }
    }
}

/// The statement for the build `info` describes; `info_file` is the buildinfo as published.
pub fn statement(info: &Buildinfo, info_file: &FileSum) -> String {
    let subject = info
        .outputs
        .iter()
        .chain([info_file])
        .map(|o| Descriptor::new(&o.name, &o.sha256))
        .collect();
    let resolved_dependencies = info
        .inputs
        .iter()
        .map(|i| {
            let mut d = Descriptor::new(&i.file, &i.sha256);
            d.annotations.insert("name", i.name.clone());
            for (key, value) in [
                ("version", &i.version),
                ("architecture", &i.arch),
                ("apk_signature", &i.apk_signature),
            ] {
                if let Some(v) = value {
                    d.annotations.insert(key, v.clone());
                }
            }
            d
        })
        .collect();
    let external_parameters = Parameters {
        board: &info.board.name,
        profile: Named {
            name: &info.board.profile,
            sha256: &info.board.profile_sha256,
        },
        overlay: Named {
            name: &info.overlay.name,
            sha256: &info.overlay.sha256,
        },
        hostname: &info.overlay.hostname,
        source_date_epoch: info.source_date_epoch,
        epoch_source: &info.epoch_source,
        table: info.board.table.as_deref(),
        compress: info
            .release
            .iter()
            .flat_map(|r| r.compress.iter().map(String::as_str))
            .collect(),
        lock: info.lock.as_ref().map(|l| Named {
            name: &l.file,
            sha256: &l.sha256,
        }),
        signing_key: info.signature.as_ref().map(|s| s.key_fingerprint.as_str()),
    };
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject,
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters,
                resolved_dependencies,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: BUILDER_ID,
                    version: BTreeMap::from([
                        ("pimg", info.pimg_version.clone()),
                        ("Cargo.lock sha256", info.cargo_lock_sha256.clone()),
                    ]),
                },
            },
        },
    };
    let mut json = serde_json::to_string_pretty(&statement).expect("a statement serializes");
    json.push('\n');
    json
}

/// DSSE's pre-authentication encoding of a payload: what the envelope's signature signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    payload_type: &'static str,
    payload: String,
    signatures: [EnvelopeSignature<'a>; 1],
}

#[derive(Serialize)]
struct EnvelopeSignature<'a> {
    keyid: &'a str,
    sig: String,
}

/// The DSSE envelope around `statement`: `signature` is a binary OpenPGP signature over
/// [`pae`] of it, by the key with fingerprint `keyid` (`gpg --verify` checks it against the
/// PAE bytes).
pub fn envelope(statement: &str, keyid: &str, signature: &[u8]) -> String {
    let e = Envelope {
        payload_type: PAYLOAD_TYPE,
        payload: base64(statement.as_bytes()),
        signatures: [EnvelopeSignature {
            keyid,
            sig: base64(signature),
        }],
    };
    let mut json = serde_json::to_string_pretty(&e).expect("an envelope serializes");
    json.push('\n');
    json
}

fn base64(data: &[u8]) -> String {
    crate::codec::apkindex::base64(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DSSE's specification gives this encoding of a payload "hello world" of type
    /// "http://example.com/HelloWorld".
    #[test]
    fn pae_as_the_specification_spells_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn statement_has_every_output_and_input_and_no_time() {
        let info: Buildinfo = crate::artifact::buildinfo::tests::sample();
        let file = FileSum::of("x.buildinfo.json", b"{}");
        let text = statement(&info, &file);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        let names: Vec<&str> = v["subject"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
        want.push("x.buildinfo.json");
        assert_eq!(names, want);
        let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert_eq!(deps.len(), info.inputs.len());
        assert!(v["predicate"]["runDetails"].get("metadata").is_none());
        assert_eq!(text, statement(&info, &file), "the same bytes twice");
    }
}
