//! `<board>.intoto.json`: an in-toto Statement v1 with an SLSA Provenance v1 predicate. Its
//! required fields are checked by hand against the two specifications (neither publishes a
//! JSON schema: in-toto defines the statement in protobuf, SLSA the predicate in CUE and
//! protobuf); its subjects against `sha256sum` of the published files, its dependencies
//! against `sha256sum` of the inputs; the same bytes under another time zone, umask and
//! directory; and `pimg verify` refuses a statement its buildinfo does not make.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const STATEMENT: &str = "rpi3b.intoto.json";

/// `sha256sum` over `files` in `dir`: name → hash, as a referee outside pimg computes them.
fn sha256sum(dir: &Path, files: &[String]) -> BTreeMap<String, String> {
    let o = referee("sha256sum", "coreutils").cwd(dir).args(files).run();
    o.stdout
        .lines()
        .map(|l| {
            let (h, n) = l.split_once("  ").unwrap();
            (n.to_string(), h.to_string())
        })
        .collect()
}

fn str_at<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} must be a string: {v}"))
}

/// A ResourceDescriptor as in-toto v1 defines it: at least one of uri, digest, content; a
/// digest maps algorithm names to lowercase hex; annotations is a map.
fn check_descriptor(d: &Value, what: &str) -> (String, String) {
    let obj = d
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object"));
    assert!(
        ["uri", "digest", "content"]
            .iter()
            .any(|k| obj.contains_key(*k)),
        "{what}: a ResourceDescriptor needs uri, digest or content: {d}"
    );
    for k in obj.keys() {
        assert!(
            [
                "name",
                "uri",
                "digest",
                "content",
                "downloadLocation",
                "mediaType",
                "annotations"
            ]
            .contains(&k.as_str()),
            "{what}: {k} is not a ResourceDescriptor field"
        );
    }
    let sha = str_at(&d["digest"]["sha256"], &format!("{what}.digest.sha256"));
    assert!(
        sha.len() == 64
            && sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{what}: sha256 must be 64 lowercase hex digits: {sha}"
    );
    if let Some(a) = d.get("annotations") {
        assert!(a.is_object(), "{what}: annotations must be a map");
    }
    (
        str_at(&d["name"], &format!("{what}.name")).to_string(),
        sha.to_string(),
    )
}

/// Names and SHA-256 digests, in order.
type Digests = Vec<(String, String)>;

/// Statement v1 and Provenance v1, field by field: the subjects and the dependencies.
fn check_shape(s: &Value) -> (Digests, Digests) {
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects = s["subject"].as_array().expect("subject is a list");
    assert!(!subjects.is_empty(), "a statement has at least one subject");
    let subjects: Digests = subjects
        .iter()
        .enumerate()
        .map(|(i, d)| check_descriptor(d, &format!("subject[{i}]")))
        .collect();
    let p = &s["predicate"];
    let def = &p["buildDefinition"];
    let build_type = str_at(&def["buildType"], "buildType");
    assert!(
        build_type.contains(':'),
        "buildType must be a URI: {build_type}"
    );
    assert!(
        def["externalParameters"].is_object(),
        "externalParameters is required and a map"
    );
    let deps: Digests = def["resolvedDependencies"]
        .as_array()
        .expect("resolvedDependencies is a list")
        .iter()
        .enumerate()
        .map(|(i, d)| check_descriptor(d, &format!("resolvedDependencies[{i}]")))
        .collect();
    let builder = &p["runDetails"]["builder"];
    assert!(
        str_at(&builder["id"], "builder.id").contains(':'),
        "builder.id must be a URI"
    );
    for (k, v) in builder["version"].as_object().expect("builder.version map") {
        str_at(v, &format!("builder.version.{k}"));
    }
    // No wall-clock time anywhere: the statement is the same bytes on every machine.
    assert!(p["runDetails"].get("metadata").is_none(), "{p:#}");
    (subjects, deps)
}

#[test]
fn the_statement_names_every_output_and_input_with_the_digests_sha256sum_computes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fixture_build(tmp.path())
        .epoch(EPOCH)
        .args(["--compress", "gz"])
        .built();
    let s = read_json(&out.join(STATEMENT));
    let (subjects, deps) = check_shape(&s);

    // Subjects: SHA256SUMS's files but the statement and SHA256SUMS itself, hashed here.
    let listed: Vec<String> = sums(&out)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n != STATEMENT)
        .collect();
    let names: Vec<String> = subjects.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, listed);
    let hashed = sha256sum(&out, &listed);
    for (name, sha) in &subjects {
        assert_eq!(Some(sha), hashed.get(name), "subject {name}");
    }
    assert!(names.contains(&"rpi3b.img.gz".to_string()), "{names:?}");

    // Dependencies: every input the buildinfo records, with the hash of its file.
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    let inputs: Vec<String> = info["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deps.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        inputs
    );
    let hashed = sha256sum(&tmp.path().join("inputs"), &inputs);
    for (name, sha) in &deps {
        assert_eq!(Some(sha), hashed.get(name), "input {name}");
    }

    // The parameters that decided the bytes.
    let params = &s["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(params["board"], "rpi3b");
    assert_eq!(params["source_date_epoch"], EPOCH.parse::<i64>().unwrap());
    assert_eq!(params["profile"]["sha256"], info["board"]["profile_sha256"]);
    assert_eq!(params["overlay"]["sha256"], info["overlay"]["sha256"]);
    assert_eq!(params["compress"], serde_json::json!(["gz"]));
    assert_eq!(
        s["predicate"]["runDetails"]["builder"]["version"]["pimg"],
        info["pimg_version"]
    );
    // Listed in SHA256SUMS, so `sha256sum -c` covers it.
    let o = referee("sha256sum", "coreutils")
        .cwd(&out)
        .args(["-c", "SHA256SUMS"])
        .run();
    assert!(
        o.stdout.contains(&format!("{STATEMENT}: OK")),
        "{}",
        o.stdout
    );
}

#[test]
fn the_statement_is_the_same_bytes_in_another_time_zone_umask_and_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(&tmp.path().join("inputs"), false);
    let a = build_in(tmp.path()).out("a").epoch(EPOCH).built();
    let deep = tmp.path().join("x/y");
    fs::create_dir_all(&deep).unwrap();
    let b = Build::new()
        .cwd(&deep)
        .inputs(tmp.path().join("inputs"))
        .out("b")
        .epoch(EPOCH)
        .env("TZ", "Asia/Kathmandu")
        .umask("077")
        .built();
    assert_eq!(
        fs::read(a.join(STATEMENT)).unwrap(),
        fs::read(b.join(STATEMENT)).unwrap()
    );
}

/// A statement that is not the one its buildinfo makes fails `pimg verify`, even when
/// SHA256SUMS was edited to match it.
#[test]
fn verify_refuses_a_statement_the_buildinfo_does_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fixture_build(tmp.path()).epoch(EPOCH).built();
    let o = run(&out, &["verify", "."], &[]);
    assert!(o.success(), "{}", o.text());
    assert!(o.stdout.contains(STATEMENT), "{}", o.stdout);

    let path = out.join(STATEMENT);
    let text = fs::read_to_string(&path).unwrap();
    let forged = text.replacen("\"rpi3b.img\"", "\"rpi3b-forged.img\"", 1);
    assert_ne!(forged, text);
    fs::write(&path, &forged).unwrap();
    let sums_text = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let old = sha256_hex(text.as_bytes());
    let new = sha256_hex(forged.as_bytes());
    fs::write(out.join("SHA256SUMS"), sums_text.replace(&old, &new)).unwrap();
    let o = run(&out, &["verify", "."], &[]);
    assert_eq!(o.code(), Some(1), "{}", o.text());
    assert!(
        o.stdout.contains(&format!(
            "FAIL  {STATEMENT} (the statement rpi3b.buildinfo.json makes)"
        )),
        "{}",
        o.stdout
    );
}
