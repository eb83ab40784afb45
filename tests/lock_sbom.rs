//! `pimg lock` / `pimg build --locked` and the SPDX SBOM: the lock is stable text that is
//! byte-identical across machines, a locked build refuses (naming it) any input, profile or
//! overlay that differs, and the SBOM has SPDX 2.3's required fields, lists every input and
//! output with its hash, is byte-identical across builds and passes spdx-tools as a referee.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

const BOARD: &str = "alpine-rpi-aarch64";

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn lock(cwd: &Path, inputs: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["lock", "--board", BOARD, "--inputs", inputs];
    args.extend_from_slice(extra);
    run(cwd, &args, &[])
}

fn locked_build(cwd: &Path, inputs: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "build", "--board", BOARD, "--inputs", inputs, "--out", out, "--locked",
    ];
    args.extend_from_slice(extra);
    run(cwd, &args, &[("SOURCE_DATE_EPOCH", EPOCH)])
}

/// Checks exit code 2, every expected word, and that nothing was published in `out`.
fn refused(o: &std::process::Output, out: &Path, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for w in words {
        assert!(stderr.contains(w), "expected {w:?} in:\n{stderr}");
    }
    assert_nothing_published(out, "refused build");
}

#[test]
fn locked_build_succeeds_and_records_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_alpine_fixture(&t.join("inputs"), false);
    ok(&lock(t, "inputs", &[]));
    let text = fs::read_to_string(t.join("pimg.lock")).unwrap();
    ok(&locked_build(t, "inputs", "out", &[]));
    let info: Value =
        serde_json::from_slice(&fs::read(t.join(format!("out/{BOARD}.buildinfo.json"))).unwrap())
            .unwrap();
    assert_eq!(info["lock"]["file"], "pimg.lock");
    assert_eq!(info["lock"]["sha256"], sha256_hex(text.as_bytes()));

    // The lock lists exactly the inputs the build used, with the same hashes.
    let lock: toml::Value = toml::from_str(&text).unwrap();
    let locked: Vec<(String, String)> = lock["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let used: Vec<(String, String)> = info["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(locked, used);
    assert_eq!(
        lock["profile_sha256"],
        info["board"]["profile_sha256"].as_str().unwrap().into()
    );
    assert_eq!(
        lock["overlay_sha256"],
        info["overlay"]["sha256"].as_str().unwrap().into()
    );

    // --lock FILE names another lock; the outputs are the same as an unlocked build's.
    fs::rename(t.join("pimg.lock"), t.join("elsewhere.lock")).unwrap();
    ok(&locked_build(
        t,
        "inputs",
        "out2",
        &["--lock", "elsewhere.lock"],
    ));
    let o = run(
        t,
        &[
            "build", "--board", BOARD, "--inputs", "inputs", "--out", "out3",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    ok(&o);
    for (name, hash) in sums(&t.join("out3")) {
        if !name.ends_with(".buildinfo.json") {
            let (_, h2) = sums(&t.join("out2"))
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap();
            assert_eq!(hash, h2, "{name}");
        }
    }
    // No lock file at all: a clear error.
    let o = locked_build(t, "inputs", "out4", &[]);
    refused(&o, &t.join("out4"), &["pimg.lock", "pimg lock"]);
}

#[test]
fn locked_build_names_what_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_alpine_fixture(&t.join("inputs"), false);
    ok(&lock(t, "inputs", &[]));

    // One input file replaced by another valid package of the same name and version.
    let other = apk(
        "busybox-static",
        "1.36.1-r15",
        "aarch64",
        "GPL-2.0-only",
        ALPINE_NEWEST_BUILDDATE - 3_600,
        &[
            Entry::Dir("bin"),
            Entry::File("bin/busybox.static", pattern("rebuilt", 900_000), 0o755),
        ],
    );
    fs::write(t.join("inputs/busybox-static-1.36.1-r15.apk"), &other).unwrap();
    let o = locked_build(t, "inputs", "out", &[]);
    refused(
        &o,
        &t.join("out"),
        &[
            "pimg.lock does not match",
            "input busybox-static",
            "busybox-static-1.36.1-r15.apk",
            &sha256_hex(&other),
            "replaced",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("input linux-rpi"), "{stderr}");

    // Put it back: the build goes through.
    write_alpine_fixture(&t.join("inputs"), false);
    ok(&locked_build(t, "inputs", "out", &[]));

    // A changed profile and a changed overlay are named too.
    let profile = fs::read_to_string(repo().join(format!("boards/{BOARD}.toml")))
        .unwrap()
        .replace("alpine_release = \"3.19.1\"", "alpine_release = \"3.19.2\"");
    fs::write(t.join("changed.toml"), profile).unwrap();
    let o = run(
        t,
        &[
            "build",
            "--board",
            "changed.toml",
            "--inputs",
            "inputs",
            "--out",
            "o2",
            "--locked",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    refused(
        &o,
        &t.join("o2"),
        &[
            "board profile",
            "boards/alpine-rpi-aarch64.toml",
            "file changed.toml",
        ],
    );

    let ov = t.join("ov");
    fs::create_dir_all(ov.join("etc")).unwrap();
    fs::write(ov.join("etc/hostname"), "other\n").unwrap();
    let o = locked_build(t, "inputs", "o3", &["--overlay", ov.to_str().unwrap()]);
    refused(&o, &t.join("o3"), &["overlay: the lock has 'default'"]);

    // An extra input the profile picks up (the repository takes every .apk).
    let extra = apk(
        "extra-tool",
        "1-r0",
        "aarch64",
        "MIT",
        1_600_000_000,
        &[Entry::Dir("usr")],
    );
    fs::write(t.join("inputs/extra-tool-1-r0.apk"), extra).unwrap();
    let o = locked_build(t, "inputs", "o4", &[]);
    refused(&o, &t.join("o4"), &["input extra-tool", "not in the lock"]);
}

#[test]
fn lock_is_byte_identical_across_machines() {
    let a = tempfile::tempdir().unwrap();
    write_alpine_fixture(&a.path().join("inputs"), false);
    ok(&lock(a.path(), "inputs", &[]));
    let want = fs::read(a.path().join("pimg.lock")).unwrap();

    // Another "machine": other folder depth and names, reversed creation order, other
    // mtimes, TZ, locale and umask, absolute input path, lock written elsewhere.
    let b = tempfile::tempdir().unwrap();
    let deep = b.path().join("x/y z");
    let inputs = deep.join("pkgs");
    write_alpine_fixture(&inputs, true);
    for e in fs::read_dir(&inputs).unwrap() {
        let st = Command::new("touch")
            .args(["-d", "2029-01-02 03:04:05"])
            .arg(e.unwrap().path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let script = format!(
        "umask 077 && exec {} lock --board {BOARD} --inputs '{}' --lock 'my lock'",
        env!("CARGO_BIN_EXE_pimg"),
        inputs.display()
    );
    let o = Command::new("sh")
        .current_dir(&deep)
        .args(["-c", &script])
        .env("TZ", "Asia/Kathmandu")
        .env("LC_ALL", "tr_TR.UTF-8")
        .output()
        .unwrap();
    ok(&o);
    let got = fs::read(deep.join("my lock")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );

    // Stable text: newline-terminated, no paths, no times, inputs sorted by name.
    let text = String::from_utf8(want).unwrap();
    assert!(text.ends_with('\n'));
    assert!(!text.contains(&*a.path().to_string_lossy()) && !text.contains("/tmp"));
    assert!(!text.contains("2029") && !text.contains("created"));
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("name = "))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 4);
    assert!(text.starts_with("# pimg.lock"), "{text}");
    assert!(text.contains("\nformat = \"pimg-lock/1\"\n"), "{text}");

    // A Debian build locks too (only the inputs the profile selects).
    let c = tempfile::tempdir().unwrap();
    write_fixture(&c.path().join("inputs"), false);
    ok(&run(c.path(), &["lock", "--inputs", "inputs"], &[]));
    let text = fs::read_to_string(c.path().join("pimg.lock")).unwrap();
    assert!(text.contains("name = \"raspi-firmware\""), "{text}");
    ok(&run(
        c.path(),
        &["build", "--inputs", "inputs", "--out", "out", "--locked"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    ));
}

#[test]
fn lock_refuses_a_tampered_apk() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_alpine_fixture(&t.join("inputs"), false);
    let good = apk_parts(
        "busybox-static",
        "1.36.1-r15",
        "aarch64",
        "GPL-2.0-only",
        1,
        &[Entry::File("bin/busybox.static", b"a".to_vec(), 0o755)],
        true,
    );
    let evil = apk_parts(
        "busybox-static",
        "1.36.1-r15",
        "aarch64",
        "GPL-2.0-only",
        1,
        &[Entry::File("bin/busybox.static", b"b".to_vec(), 0o755)],
        true,
    );
    let spliced = [good.signature, good.control, evil.data].concat();
    fs::write(t.join("inputs/busybox-static-1.36.1-r15.apk"), spliced).unwrap();
    let o = lock(t, "inputs", &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("datahash"), "{stderr}");
    assert!(!t.join("pimg.lock").exists());
}

/// Builds the Alpine fixture into `out` under `envs`; returns the SBOM's bytes.
fn sbom_of(cwd: &Path, envs: &[(&str, &str)]) -> Vec<u8> {
    write_alpine_fixture(&cwd.join("inputs"), false);
    ok(&run(
        cwd,
        &[
            "build", "--board", BOARD, "--inputs", "inputs", "--out", "out",
        ],
        envs,
    ));
    fs::read(cwd.join(format!("out/{BOARD}.spdx.json"))).unwrap()
}

fn is_hex64(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The fields SPDX 2.3's JSON schema requires (and the spec's idstring and URI rules).
fn check_spdx_required(doc: &Value) {
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert!(doc["name"].as_str().is_some_and(|n| !n.is_empty()));
    let ns = doc["documentNamespace"].as_str().unwrap();
    assert!(
        ns.starts_with("https://") && !ns.contains('#') && !ns.contains(' '),
        "{ns}"
    );
    let created = doc["creationInfo"]["created"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(
        created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    let creators = doc["creationInfo"]["creators"].as_array().unwrap();
    assert!(!creators.is_empty());
    for c in creators {
        let c = c.as_str().unwrap();
        assert!(
            c.starts_with("Tool: ") || c.starts_with("Organization: ") || c.starts_with("Person: ")
        );
    }
    let mut ids = BTreeSet::new();
    ids.insert("SPDXRef-DOCUMENT".to_string());
    for p in doc["packages"].as_array().unwrap() {
        let id = p["SPDXID"].as_str().unwrap();
        assert!(
            id.strip_prefix("SPDXRef-").is_some_and(|r| !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')),
            "{id}"
        );
        assert!(ids.insert(id.to_string()), "duplicate SPDXID {id}");
        assert!(p["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(p["downloadLocation"].is_string());
        assert_eq!(p["filesAnalyzed"], false);
        let sums = p["checksums"].as_array().unwrap();
        assert!(sums
            .iter()
            .any(|c| c["algorithm"] == "SHA256" && is_hex64(&c["checksumValue"])));
        assert!(p["licenseConcluded"].is_string() && p["licenseDeclared"].is_string());
        assert!(p["copyrightText"].is_string());
    }
    let extracted: BTreeSet<&str> = doc["hasExtractedLicensingInfos"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    assert!(e["extractedText"].is_string());
                    e["licenseId"].as_str().unwrap()
                })
                .collect()
        })
        .unwrap_or_default();
    for p in doc["packages"].as_array().unwrap() {
        let l = p["licenseDeclared"].as_str().unwrap();
        for word in l.split([' ', '(', ')']) {
            if word.starts_with("LicenseRef-") {
                assert!(
                    extracted.contains(word),
                    "{word} has no extracted licensing info"
                );
            }
        }
    }
    let rels = doc["relationships"].as_array().unwrap();
    assert!(rels.iter().any(|r| r["relationshipType"] == "DESCRIBES"));
    for r in rels {
        for k in ["spdxElementId", "relatedSpdxElement"] {
            let id = r[k].as_str().unwrap();
            assert!(ids.contains(id), "relationship names unknown {id}");
        }
    }
}

#[test]
fn sbom_has_the_required_fields_and_every_input_and_output() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = sbom_of(tmp.path(), &[("SOURCE_DATE_EPOCH", EPOCH)]);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    check_spdx_required(&doc);
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let out = tmp.path().join("out");
    let packages = doc["packages"].as_array().unwrap();
    let pkg = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the SBOM"))
    };
    for (file, data) in fixture_apks() {
        let p = packages
            .iter()
            .find(|p| p["packageFileName"] == file.as_str())
            .unwrap();
        assert_eq!(
            p["checksums"][0]["checksumValue"],
            sha256_hex(&data),
            "{file}"
        );
        assert!(p["versionInfo"].is_string(), "{file}");
        assert!(p["comment"].as_str().unwrap().contains("arch "), "{file}");
    }
    assert_eq!(pkg("linux-rpi")["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(pkg("linux-rpi")["versionInfo"], "6.6.31-r0");
    assert_eq!(pkg("alpine-keys")["licenseDeclared"], "MIT");
    assert_eq!(
        pkg("raspberrypi-bootloader")["licenseDeclared"],
        "LicenseRef-custom"
    );
    // Every artifact, with the hash SHA256SUMS has.
    let sums = sums(&out);
    for artifact in [
        format!("{BOARD}.img"),
        format!("{BOARD}.tar.gz"),
        format!("{BOARD}.initramfs.cpio.gz"),
        "pimg.apkovl.tar.gz".to_string(),
    ] {
        let p = pkg(&artifact);
        let (_, h) = sums.iter().find(|(n, _)| *n == artifact).unwrap();
        assert_eq!(p["checksums"][0]["checksumValue"], h.as_str(), "{artifact}");
        assert!(p["primaryPackagePurpose"].is_string());
    }
    // The image is generated from every input; the apkovl from none.
    let rels = doc["relationships"].as_array().unwrap();
    let from = |id: &str| {
        rels.iter()
            .filter(|r| r["spdxElementId"] == id && r["relationshipType"] == "GENERATED_FROM")
            .count()
    };
    assert_eq!(from(&format!("SPDXRef-Output-{BOARD}.img")), 4);
    assert_eq!(
        from(&format!("SPDXRef-Output-{BOARD}.initramfs.cpio.gz")),
        2
    );
    assert_eq!(from("SPDXRef-Output-pimg.apkovl.tar.gz"), 0);
    // The SBOM itself is an output, listed in SHA256SUMS and the buildinfo.
    let name = format!("{BOARD}.spdx.json");
    let (_, h) = sums.iter().find(|(n, _)| *n == name).unwrap();
    assert_eq!(*h, sha256_hex(&bytes));
    let info: Value =
        serde_json::from_slice(&fs::read(out.join(format!("{BOARD}.buildinfo.json"))).unwrap())
            .unwrap();
    assert!(info["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["name"] == name.as_str()));

    // Debian inputs state no licence: NOASSERTION.
    let d = tempfile::tempdir().unwrap();
    write_fixture(&d.path().join("inputs"), false);
    ok(&run(
        d.path(),
        &["build", "--inputs", "inputs", "--out", "out"],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    ));
    let doc: Value =
        serde_json::from_slice(&fs::read(d.path().join("out/rpi3b.spdx.json")).unwrap()).unwrap();
    check_spdx_required(&doc);
    for p in doc["packages"].as_array().unwrap() {
        assert_eq!(p["licenseDeclared"], "NOASSERTION", "{p}");
    }
}

#[test]
fn sbom_is_byte_identical_across_builds() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let deep = b.path().join("p/q");
    fs::create_dir_all(&deep).unwrap();
    let x = sbom_of(a.path(), &[("TZ", "UTC")]);
    let y = sbom_of(&deep, &[("TZ", "Pacific/Chatham"), ("LC_ALL", "C")]);
    assert_eq!(String::from_utf8_lossy(&x), String::from_utf8_lossy(&y));
    let doc: Value = serde_json::from_slice(&x).unwrap();
    // No wall clock: created is the epoch derived from the inputs (linux-rpi's builddate).
    assert_eq!(doc["creationInfo"]["created"], "2024-03-09T16:00:00Z");
    // The namespace follows the content: another epoch gives another namespace.
    let c = tempfile::tempdir().unwrap();
    let z = sbom_of(c.path(), &[("SOURCE_DATE_EPOCH", EPOCH)]);
    let other: Value = serde_json::from_slice(&z).unwrap();
    assert_ne!(doc["documentNamespace"], other["documentNamespace"]);
}

#[test]
fn spdx_tools_accept_the_sbom() {
    let found = Command::new("sh")
        .args(["-c", "command -v pyspdxtools"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the referee tool 'pyspdxtools' is missing: run `sudo qemu/setup.sh` or \
         `pip install spdx-tools==0.8.5` (it works offline once installed)"
    );
    let tmp = tempfile::tempdir().unwrap();
    sbom_of(tmp.path(), &[("SOURCE_DATE_EPOCH", EPOCH)]);
    let o = Command::new("pyspdxtools")
        .arg("-i")
        .arg(tmp.path().join(format!("out/{BOARD}.spdx.json")))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pyspdxtools rejected the SBOM:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // The referee is awake: a document missing a required field is refused.
    let mut doc: Value = serde_json::from_slice(
        &fs::read(tmp.path().join(format!("out/{BOARD}.spdx.json"))).unwrap(),
    )
    .unwrap();
    doc["packages"][0]
        .as_object_mut()
        .unwrap()
        .remove("downloadLocation");
    let bad = tmp.path().join("bad.spdx.json");
    fs::write(&bad, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "pyspdxtools accepted a broken document"
    );
}
