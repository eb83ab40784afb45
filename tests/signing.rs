//! `pimg build --sign-key` and `pimg verify --key`: SHA256SUMS.asc judged by gpg and sqv, the
//! same bytes for the same key, checked by pimg before it trusts SHA256SUMS, and refused
//! cleanly for keys it cannot use.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

const GPG: &str = "gpg";
const SQV: &str = "sqv";
/// When the test keys are made: before EPOCH (2023-11-14).
const KEY_TIME: &str = "20230101T000000!";

/// A throwaway GnuPG home holding one new key; its exported files sit beside it.
struct TestKey {
    home: PathBuf,
    /// The armored secret key (`gpg --export-secret-keys --armor`).
    secret: PathBuf,
    /// The armored public key.
    public: PathBuf,
    /// The binary public key, as a keyring for sqv.
    keyring: PathBuf,
    fingerprint: String,
}

fn gpg(home: &Path) -> Referee {
    let mut r = referee(GPG, "gpg");
    r.env("GNUPGHOME", home.to_str().unwrap()).args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
    ]);
    r
}

/// Makes a key with gpg: `algo` as `--quick-gen-key` takes it (ed25519, rsa2048), and an
/// optional passphrase. The key is dated before EPOCH, as a release key is older than the
/// builds it signs.
fn make_key(dir: &Path, name: &str, algo: &str, passphrase: &str) -> TestKey {
    make_key_at(dir, name, algo, passphrase, KEY_TIME)
}

/// A key made at `time` (gpg's `--faked-system-time` form).
fn make_key_at(dir: &Path, name: &str, algo: &str, passphrase: &str, time: &str) -> TestKey {
    let home = dir.join(format!("{name}.gnupg"));
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let uid = format!("{name} <{name}@example.org>");
    gpg(&home)
        .args(["--faked-system-time", time, "--passphrase", passphrase])
        .args(["--quick-gen-key", &uid, algo, "sign", "never"])
        .run();
    let secret = dir.join(format!("{name}.sec.asc"));
    let public = dir.join(format!("{name}.pub.asc"));
    let keyring = dir.join(format!("{name}.pub.gpg"));
    let out = gpg(&home)
        .args([
            "--passphrase",
            passphrase,
            "--armor",
            "--export-secret-keys",
            &uid,
        ])
        .run();
    fs::write(&secret, &out.stdout).unwrap();
    let out = gpg(&home).args(["--armor", "--export", &uid]).run();
    fs::write(&public, &out.stdout).unwrap();
    let out = gpg(&home)
        .args(["--with-colons", "--list-keys", &uid])
        .run();
    let fingerprint = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_string())
        .expect("gpg lists the key's fingerprint");
    let bin = gpg(&home).args(["--export", &uid]).bytes();
    fs::write(&keyring, bin).unwrap();
    TestKey {
        home,
        secret,
        public,
        keyring,
        fingerprint,
    }
}

/// A signed fixture build in `dir/out` (inputs in `dir/inputs`).
fn signed_build(dir: &Path, key: &Path) -> PathBuf {
    fixture_build(dir)
        .epoch(EPOCH)
        .arg("--sign-key")
        .arg(key)
        .built()
}

/// `gpg --verify SIG FILE` in a fresh home that holds only `key`'s public half.
fn gpg_verify(dir: &Path, key: &TestKey, sig: &Path, file: &Path) -> Ran {
    let home = dir.join("verifier.gnupg");
    if !home.exists() {
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        gpg(&home)
            .args(["--import", key.public.to_str().unwrap()])
            .run();
    }
    let mut r = referee(GPG, "gpg");
    r.env("GNUPGHOME", home.to_str().unwrap())
        .args(["--batch", "--no-tty", "--verify"])
        .arg(sig)
        .arg(file);
    r.output()
}

fn sqv(key: &TestKey, sig: &Path, file: &Path) -> Ran {
    referee(SQV, "sqv")
        .arg("--keyring")
        .arg(&key.keyring)
        .arg(sig)
        .arg(file)
        .output()
}

/// sqv accepts `out`'s SHA256SUMS.asc over its SHA256SUMS with `key`.
fn assert_sqv_accepts(key: &TestKey, out: &Path) {
    let o = sqv(key, &out.join("SHA256SUMS.asc"), &out.join("SHA256SUMS"));
    assert!(o.success(), "sqv: {}", o.text());
}

fn verify(dir: &Path, args: &[&str]) -> Ran {
    run(dir, &[&["verify"], args].concat(), &[])
}

#[test]
fn gpg_and_sqv_accept_the_signature_and_a_changed_byte_fails_all_three() {
    let tmp = tempfile::tempdir().unwrap();
    let key = make_key(tmp.path(), "release", "ed25519", "");
    let out = signed_build(tmp.path(), &key.secret);
    let asc = out.join("SHA256SUMS.asc");
    let sums_file = out.join("SHA256SUMS");
    let text = fs::read_to_string(&asc).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP SIGNATURE-----\n"),
        "{text}"
    );
    // SHA256SUMS cannot list its own signature; the buildinfo names the key.
    assert!(sums(&out).iter().all(|(n, _)| n != "SHA256SUMS.asc"));
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    assert_eq!(
        info["signature"]["key_fingerprint"],
        key.fingerprint.as_str()
    );
    assert_eq!(info["signature"]["file"], "SHA256SUMS.asc");

    let ok = gpg_verify(tmp.path(), &key, &asc, &sums_file);
    assert!(ok.success(), "gpg --verify: {}", ok.report());
    assert!(ok.stderr.contains("Good signature"), "{}", ok.report());
    let ok = sqv(&key, &asc, &sums_file);
    assert!(ok.success(), "sqv: {}", ok.report());
    assert!(ok.stdout.contains(&key.fingerprint), "{}", ok.report());

    // The signature's own fields, as gpg decodes them: created at the epoch, SHA-256 (8),
    // a binary-document signature (0x00), the issuer fingerprint subpacket (33).
    let packets = gpg(&key.home)
        .args(["--list-packets", asc.to_str().unwrap()])
        .run()
        .stdout;
    for want in [
        format!("created {EPOCH}"),
        "digest algo 8".to_string(),
        "sigclass 0x00".to_string(),
        format!("subpkt 33 len 21 (issuer fpr v4 {})", key.fingerprint),
    ] {
        assert!(packets.contains(&want), "no {want:?} in {packets}");
    }

    let good = verify(tmp.path(), &["out", "--key", key.public.to_str().unwrap()]).expect_success();
    assert!(
        good.stdout
            .contains(&format!("good signature by {}", key.fingerprint))
            && good.stdout.contains("release <release@example.org>"),
        "{}",
        good.report()
    );
    // Without --key the signature is reported, not trusted.
    let unchecked = verify(tmp.path(), &["out"]).expect_success();
    assert!(
        unchecked.stdout.contains("signature present, not checked"),
        "{}",
        unchecked.report()
    );

    // One changed byte of SHA256SUMS: all three refuse.
    let mut bytes = fs::read(&sums_file).unwrap();
    bytes[3] = if bytes[3] == b'0' { b'1' } else { b'0' };
    fs::write(&sums_file, &bytes).unwrap();
    let bad = gpg_verify(tmp.path(), &key, &asc, &sums_file);
    assert!(
        !bad.success() && bad.stderr.contains("BAD signature"),
        "{}",
        bad.report()
    );
    assert!(!sqv(&key, &asc, &sums_file).success());
    let bad = verify(tmp.path(), &["out", "--key", key.public.to_str().unwrap()]).expect_failure(1);
    assert!(
        bad.stdout.contains("BAD signature") && bad.stdout.contains("nothing else was checked"),
        "{}",
        bad.report()
    );
}

/// A key younger than the epoch signs at its own creation time, which gpg accepts.
#[test]
fn a_key_younger_than_the_epoch_signs_at_its_creation() {
    let tmp = tempfile::tempdir().unwrap();
    let key = make_key_at(tmp.path(), "young", "ed25519", "", "20240101T000000!");
    let out = signed_build(tmp.path(), &key.secret);
    let asc = out.join("SHA256SUMS.asc");
    let ok = gpg_verify(tmp.path(), &key, &asc, &out.join("SHA256SUMS"));
    assert!(ok.success(), "gpg --verify: {}", ok.report());
    let packets = gpg(&key.home).arg("--list-packets").arg(&asc).run().stdout;
    // 2024-01-01 00:00:00 UTC.
    assert!(packets.contains("created 1704067200"), "{packets}");
    let info = read_json(&out.join("rpi3b.buildinfo.json"));
    assert_eq!(info["signature"]["created"], 1704067200);
}

#[test]
fn the_same_key_gives_the_same_signature_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, algo) in [("ed", "ed25519"), ("rsa", "rsa2048")] {
        let key = make_key(tmp.path(), name, algo, "");
        let a = tmp.path().join(format!("{name}-a"));
        let b = tmp.path().join(format!("{name}-b"));
        let out_a = signed_build(&a, &key.secret);
        let out_b = fixture_build(&b)
            .epoch(EPOCH)
            .arg("--sign-key")
            .arg(&key.secret)
            .env("TZ", "Pacific/Kiritimati")
            .umask("0077")
            .built();
        assert_same_outputs(&out_a, &out_b);
        assert_eq!(
            fs::read(out_a.join("SHA256SUMS.asc")).unwrap(),
            fs::read(out_b.join("SHA256SUMS.asc")).unwrap(),
            "{algo}: two signatures by one key over the same SHA256SUMS differ"
        );
        assert_sqv_accepts(&key, &out_b);
    }
}

#[test]
fn verify_key_refuses_missing_unknown_huge_and_garbage_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let key = make_key(tmp.path(), "release", "ed25519", "");
    let other = make_key(tmp.path(), "stranger", "ed25519", "");
    signed_build(tmp.path(), &key.secret);
    let pub_key = key.public.to_str().unwrap();
    let asc = tmp.path().join("out/SHA256SUMS.asc");

    let unknown = verify(
        tmp.path(),
        &["out", "--key", other.public.to_str().unwrap()],
    )
    .expect_failure(1);
    assert!(
        unknown.stdout.contains("not among the --key files")
            && unknown.stdout.contains(&key.fingerprint),
        "{}",
        unknown.report()
    );
    // Several --key files: the one that signed is found.
    verify(
        tmp.path(),
        &[
            "out",
            "--key",
            other.public.to_str().unwrap(),
            "--key",
            pub_key,
        ],
    )
    .expect_success();

    let good = fs::read(&asc).unwrap();
    for (what, bytes, words) in [
        ("huge", vec![b'A'; 8 << 20], "larger than"),
        (
            "garbage",
            b"not a signature\n".to_vec(),
            "not an OpenPGP signature",
        ),
        (
            "a key instead",
            fs::read(&key.public).unwrap(),
            "not an OpenPGP signature",
        ),
    ] {
        fs::write(&asc, &bytes).unwrap();
        let r = verify(tmp.path(), &["out", "--key", pub_key]).expect_failure(1);
        assert!(r.stdout.contains(words), "{what}: {}", r.report());
    }
    fs::remove_file(&asc).unwrap();
    let r = verify(tmp.path(), &["out", "--key", pub_key]).expect_failure(1);
    assert!(r.stdout.contains("has no SHA256SUMS.asc"), "{}", r.report());
    fs::write(&asc, good).unwrap();
    verify(tmp.path(), &["out", "--key", pub_key]).expect_success();
    // A --key file that is no key is an error of the arguments.
    let r = verify(tmp.path(), &["out", "--key", "out/SHA256SUMS"]).expect_failure(2);
    assert!(r.stderr.contains("--key out/SHA256SUMS"), "{}", r.report());
}

#[test]
fn unusable_keys_and_passphrases_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let locked = make_key(tmp.path(), "locked", "ed25519", "hunter2");
    let plain = make_key(tmp.path(), "plain", "ed25519", "");
    write_fixture(&tmp.path().join("inputs"), false);
    let build = |args: &[&str], env: &[(&str, &str)]| {
        let mut b = Build::new();
        b.cwd(tmp.path())
            .inputs("inputs")
            .out("out")
            .epoch(EPOCH)
            .args(args);
        for (k, v) in env {
            b.env(k, v);
        }
        b
    };
    let locked_key = locked.secret.to_str().unwrap();
    let wrong = tmp.path().join("wrong.pass");
    fs::write(&wrong, "letmein\n").unwrap();
    let right = tmp.path().join("right.pass");
    fs::write(&right, "hunter2\n").unwrap();
    // (arguments, environment, words the refusal must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec!["--sign-key", "missing.asc"],
            vec![],
            vec!["--sign-key missing.asc", "No such file"],
        ),
        (
            vec!["--sign-key", "inputs"],
            vec![],
            vec!["--sign-key inputs", "not a regular file"],
        ),
        (
            vec!["--sign-key", plain.public.to_str().unwrap()],
            vec![],
            vec!["--sign-key", "is a public key"],
        ),
        (
            vec![
                "--sign-key",
                "inputs/raspi-firmware_1.20220830+ds-1_all.deb",
            ],
            vec![],
            vec!["--sign-key", "not an OpenPGP key"],
        ),
        (
            vec!["--sign-key", locked_key],
            vec![],
            vec!["--sign-key", "passphrase", "PIMG_SIGN_PASSPHRASE"],
        ),
        (
            vec![
                "--sign-key",
                locked_key,
                "--sign-passphrase-file",
                wrong.to_str().unwrap(),
            ],
            vec![],
            vec!["--sign-key", "passphrase does not unlock"],
        ),
        (
            vec!["--sign-key", locked_key],
            vec![("PIMG_SIGN_PASSPHRASE", "letmein")],
            vec!["--sign-key", "passphrase does not unlock"],
        ),
    ];
    for (args, env, words) in cases {
        build(&args, &env).expect_refused(&words);
    }
    // The right passphrase, from a file and from the environment, signs.
    let out = build(
        &[
            "--sign-key",
            locked_key,
            "--sign-passphrase-file",
            right.to_str().unwrap(),
        ],
        &[],
    )
    .built();
    let from_file = fs::read(out.join("SHA256SUMS.asc")).unwrap();
    fs::remove_dir_all(&out).unwrap();
    let out = build(
        &["--sign-key", locked_key],
        &[("PIMG_SIGN_PASSPHRASE", "hunter2")],
    )
    .built();
    assert_eq!(fs::read(out.join("SHA256SUMS.asc")).unwrap(), from_file);
    assert_sqv_accepts(&locked, &out);
}

#[test]
fn rebuild_is_reproducible_except_for_the_signature_unless_it_signs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let key = make_key(tmp.path(), "release", "ed25519", "");
    signed_build(tmp.path(), &key.secret);
    let base = [
        "--rebuild",
        "out/rpi3b.buildinfo.json",
        "--inputs",
        "inputs",
    ];
    let r = verify(tmp.path(), &base).expect_success();
    assert!(
        r.stdout.contains("reproducible except for the signature")
            && r.stdout.contains("signature present, not checked"),
        "{}",
        r.report()
    );
    let pub_key = key.public.to_str().unwrap();
    let r = verify(tmp.path(), &[&base[..], &["--key", pub_key]].concat()).expect_success();
    assert!(
        r.stdout
            .contains("over the rebuilt SHA256SUMS): good signature by"),
        "{}",
        r.report()
    );
    let secret = key.secret.to_str().unwrap();
    let r = verify(tmp.path(), &[&base[..], &["--sign-key", secret]].concat()).expect_success();
    assert!(
        r.stdout.contains("OK    SHA256SUMS.asc (rebuilt)")
            && !r.stdout.contains("except for the signature"),
        "{}",
        r.report()
    );
    // A published signature that does not cover the rebuilt sums fails the rebuild check.
    let asc = tmp.path().join("out/SHA256SUMS.asc");
    let other = make_key(tmp.path(), "stranger", "ed25519", "");
    let sig = gpg(&other.home)
        .args(["--armor", "--detach-sign", "--output", "-"])
        .arg(&key.public)
        .bytes();
    fs::write(&asc, sig).unwrap();
    let r = verify(
        tmp.path(),
        &[
            &base[..],
            &["--key", pub_key, "--key", other.public.to_str().unwrap()],
        ]
        .concat(),
    )
    .expect_failure(1);
    assert!(r.stdout.contains("BAD signature"), "{}", r.report());
}

/// `base64 -d` of `text`, by coreutils.
fn unbase64(dir: &Path, text: &str) -> Vec<u8> {
    referee("base64", "coreutils")
        .arg("-d")
        .cwd(dir)
        .stdin(text.as_bytes())
        .bytes()
}

/// The provenance's DSSE envelope: its payload is the published statement, its signature an
/// OpenPGP signature over DSSE's pre-authentication encoding that gpg and sqv accept, and the
/// envelope stays out of SHA256SUMS (like SHA256SUMS.asc, it is a signature).
#[test]
fn the_provenance_envelope_is_signed_over_the_statement() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let key = make_key(t, "release", "ed25519", "");
    let out = signed_build(t, &key.secret);
    let env = read_json(&out.join("rpi3b.intoto.dsse.json"));
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    let statement = fs::read(out.join("rpi3b.intoto.json")).unwrap();
    let payload = unbase64(t, env["payload"].as_str().unwrap());
    assert_eq!(payload, statement, "the payload is the published statement");
    let sigs = env["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["keyid"], key.fingerprint.as_str());
    let sig = t.join("envelope.sig");
    fs::write(&sig, unbase64(t, sigs[0]["sig"].as_str().unwrap())).unwrap();
    let kind = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let pae_path = t.join("pae");
    fs::write(&pae_path, &pae).unwrap();
    let o = gpg_verify(t, &key, &sig, &pae_path);
    assert!(o.success(), "gpg: {}", o.text());
    let o = sqv(&key, &sig, &pae_path);
    assert!(o.success(), "sqv: {}", o.text());
    assert!(
        !sums(&out).iter().any(|(n, _)| n.ends_with(".dsse.json")),
        "SHA256SUMS must not list the envelope"
    );
    // One byte of the payload changed: the signature no longer holds.
    let last = pae.len() - 2;
    pae[last] ^= 1;
    fs::write(&pae_path, &pae).unwrap();
    assert!(!gpg_verify(t, &key, &sig, &pae_path).success());
}
