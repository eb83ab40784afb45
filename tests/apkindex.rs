//! The boot repository's `APKINDEX.tar.gz` and the `.apk` signature checks, against referees:
//! an independent reading of the same `.apk` files (python3's zlib, hashlib and base64, since
//! Debian packages no apk-tools), `tar`, and `openssl dgst -verify` for the signed index.
//! Every test drives the real binary on the fixture packages, signed with the test key.
// Tests make their fixtures and read their results with the file system directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

const BOARD: &str = ALPINE_BOARD;
const INDEX: &str = "apks/aarch64/APKINDEX.tar.gz";

/// Writes APKINDEX text for the .apk files named on the command line, read without pimg:
/// gzip members split by zlib, the control member's SHA-1, `.PKGINFO` fields in apk-tools'
/// order (package.c, apk_pkg_write_index_header).
const INDEPENDENT_INDEX: &str = r#"
import sys, zlib, hashlib, base64
def members(b):
    out = []
    while b:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = d.decompress(b) + d.flush()
        used = len(b) - len(d.unused_data)
        out.append((b[:used], data))
        b = d.unused_data
    return out
def tar_files(t):
    off, files = 0, {}
    while off + 512 <= len(t) and t[off:off + 512] != bytes(512):
        h = t[off:off + 512]
        name = h[:100].rstrip(b'\0').decode()
        size = int(h[124:136].rstrip(b'\0 ') or b'0', 8)
        files[name] = t[off + 512:off + 512 + size]
        off += 512 + (size + 511) // 512 * 512
    return files
recs = []
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    ms = members(raw)
    first = tar_files(ms[0][1])
    ctrl_raw, ctrl_tar = ms[1] if any(n.startswith('.SIGN.') for n in first) else ms[0]
    info = tar_files(ctrl_tar)['.PKGINFO'].decode()
    kv, multi = {}, {'depend': [], 'provides': [], 'install_if': []}
    for line in info.splitlines():
        if line.startswith('#') or ' = ' not in line:
            continue
        k, v = line.split(' = ', 1)
        if k in multi:
            multi[k] += v.split()
        else:
            kv[k] = v
    r = 'C:Q1' + base64.b64encode(hashlib.sha1(ctrl_raw).digest()).decode() + '\n'
    r += 'P:%s\nV:%s\n' % (kv['pkgname'], kv['pkgver'])
    if 'arch' in kv:
        r += 'A:%s\n' % kv['arch']
    r += 'S:%d\nI:%s\nT:%s\nU:%s\nL:%s\n' % (len(raw), kv.get('size', '0'),
        kv.get('pkgdesc', ''), kv.get('url', ''), kv.get('license', ''))
    for k, l in (('origin', 'o'), ('maintainer', 'm')):
        if k in kv:
            r += '%s:%s\n' % (l, kv[k])
    if int(kv.get('builddate', '0')):
        r += 't:%s\n' % kv['builddate']
    if 'commit' in kv:
        r += 'c:%s\n' % kv['commit']
    if int(kv.get('provider_priority', '0')):
        r += 'k:%s\n' % kv['provider_priority']
    for k, l in (('depend', 'D'), ('provides', 'p'), ('install_if', 'i')):
        if multi[k]:
            r += '%s:%s\n' % (l, ' '.join(multi[k]))
    recs.append(((kv['pkgname'].lower(), kv['pkgname']), r + '\n'))
recs.sort()
sys.stdout.write(''.join(r for _, r in recs))
"#;

/// Splits a signed index: writes the signature member's bytes to `sig` and the rest (the
/// gzip bytes it signs) to `index`, and prints the signature member's name.
const SPLIT_SIGNED: &str = r#"
import sys, zlib
b = open(sys.argv[1], 'rb').read()
d = zlib.decompressobj(16 + zlib.MAX_WBITS)
t = d.decompress(b) + d.flush()
size = int(t[124:136].rstrip(b'\0 '), 8)
open(sys.argv[2], 'wb').write(t[512:512 + size])
open(sys.argv[3], 'wb').write(d.unused_data)
print(t[:100].rstrip(b'\0').decode())
"#;

/// A build of the Alpine fixture in `dir` (keys in `dir/apk-keys`).
fn alpine(dir: &Path) -> Build {
    let mut b = alpine_build(dir);
    b.epoch("1700000000");
    b
}

/// The index out of the built rpi tarball, extracted with `tar`.
fn index_bytes(out: &Path) -> Vec<u8> {
    need_tool("tar", "tar");
    let dest = out.join("index-check");
    fs::create_dir_all(&dest).unwrap();
    shell(
        out,
        &format!("tar -xzf {BOARD}.tar.gz -C index-check {INDEX}"),
    )
    .expect_success();
    fs::read(dest.join(INDEX)).unwrap()
}

fn python(dir: &Path, script: &str, args: &[&Path]) -> String {
    let py = need_tool("python3", "python3");
    let mut c = std::process::Command::new(py);
    c.arg("-c").arg(script).args(args).current_dir(dir);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn gunzip_member_text(gz: &[u8]) -> String {
    use std::io::Read;
    let mut s = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut s)
        .unwrap();
    // The APKINDEX member follows the DESCRIPTION header and data block.
    let tar = s;
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&h[124..135]).trim_matches(|c| c == '\0' || c == ' '),
            8,
        )
        .unwrap();
        if name == "APKINDEX" {
            return String::from_utf8(tar[off + 512..off + 512 + size].to_vec()).unwrap();
        }
        off += 512 + size.div_ceil(512) * 512;
    }
    panic!("no APKINDEX member");
}

/// An openssl key pair in `dir`: `<name>` (PKCS#1 private) and `<name>.pub` (public).
fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    need_tool("openssl", "openssl");
    fs::create_dir_all(dir).unwrap();
    shell(
        dir,
        &format!(
            "openssl genrsa -traditional -out {name} 2048 2>/dev/null && \
             openssl rsa -in {name} -pubout -out {name}.pub 2>/dev/null"
        ),
    )
    .expect_success();
    (dir.join(name), dir.join(format!("{name}.pub")))
}

#[test]
fn index_text_equals_an_independent_reading_of_the_apks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = alpine(tmp.path()).built();
    let ours = gunzip_member_text(&index_bytes(&out));
    let mut apks: Vec<PathBuf> = fs::read_dir(tmp.path().join("inputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    apks.sort();
    let args: Vec<&Path> = apks.iter().map(PathBuf::as_path).collect();
    let theirs = python(tmp.path(), INDEPENDENT_INDEX, &args);
    assert_eq!(ours, theirs);
    assert_eq!(ours.matches("\n\n").count(), 5, "{ours}");
    assert!(
        ours.contains("\nP:busybox-static\nV:1.36.1-r15\nA:aarch64\n"),
        "{ours}"
    );

    // tar lists DESCRIPTION then APKINDEX; the description names the board and release.
    let list = shell(&out, &format!("tar -tzf index-check/{INDEX}")).expect_success();
    assert_eq!(list.stdout, "DESCRIPTION\nAPKINDEX\n");
    let desc = shell(&out, &format!("tar -xzOf index-check/{INDEX} DESCRIPTION")).expect_success();
    assert_eq!(
        desc.stdout,
        "alpine-rpi-aarch64 boot repository (Alpine 3.19.1)"
    );
    let verbose = shell(&out, &format!("tar -tvzf index-check/{INDEX}")).expect_success();
    for line in verbose.stdout.lines() {
        assert!(line.starts_with("-rw-r--r-- 0/0"), "{line}");
    }
}

#[test]
fn index_is_identical_across_tz_and_umask_and_signed_deterministically() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let x = index_bytes(&alpine(a.path()).env("TZ", "UTC").umask("022").built());
    let y = index_bytes(
        &alpine(b.path())
            .env("TZ", "Asia/Kathmandu")
            .umask("077")
            .built(),
    );
    assert_eq!(x, y);

    // Signed with an openssl key: the same key gives the same bytes; openssl verifies it.
    let (key, public) = openssl_key(&a.path().join("signer"), "release.rsa");
    let signed = |dir: &Path| {
        let out = alpine(dir)
            .arg("--apk-sign-key")
            .arg(&key)
            .out("signed")
            .built();
        (index_bytes(&out), out)
    };
    let (s1, out) = signed(a.path());
    let (s2, _) = signed(b.path());
    assert_eq!(s1, s2, "PKCS#1 v1.5 signing is deterministic");
    assert!(s1.ends_with(&x), "the unsigned index follows the signature");
    let name = python(
        &out,
        SPLIT_SIGNED,
        &[
            &out.join("index-check").join(INDEX),
            Path::new("sig"),
            Path::new("index.gz"),
        ],
    );
    assert_eq!(name.trim(), ".SIGN.RSA.release.rsa.pub");
    let verified = shell(
        &out,
        &format!(
            "openssl dgst -sha1 -verify {} -signature sig index.gz",
            public.display()
        ),
    )
    .expect_success();
    assert!(
        verified.stdout.contains("Verified OK"),
        "{}",
        verified.stdout
    );
    let list = shell(&out, &format!("tar -tzf index-check/{INDEX}")).expect_success();
    assert_eq!(
        list.stdout,
        ".SIGN.RSA.release.rsa.pub\nDESCRIPTION\nAPKINDEX\n"
    );
    let info = read_json(&out.join(format!("{BOARD}.buildinfo.json")));
    assert_eq!(info["apk_index"]["signing_key"], "release.rsa.pub");
}

/// The fixture with busybox-static replaced by `bytes`, in `dir/inputs`.
fn with_busybox(dir: &Path, bytes: &[u8]) {
    let d = dir.join("inputs");
    write_alpine_fixture(&d, false);
    fs::write(d.join("busybox-static-1.36.1-r15.apk"), bytes).unwrap();
}

/// A build of `dir/inputs` with the fixture keys and `args`.
fn build_with(dir: &Path, args: &[&str]) -> Build {
    let mut b = Build::new();
    b.cwd(dir)
        .board(BOARD)
        .inputs("inputs")
        .out("out")
        .epoch("1700000000")
        .args(args);
    b
}

#[test]
fn bad_signatures_unknown_keys_and_unsigned_apks_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let keys = write_apk_keys(&t.join("apk-keys"));
    let keys = keys.to_str().unwrap();
    let apk = "busybox-static-1.36.1-r15.apk";

    // One byte of the control member's gzip header (its mtime) flipped: the member still
    // decompresses, but its bytes are no longer the ones signed.
    let mut parts = alpine_busybox("busybox.static");
    parts.control[4] ^= 1;
    with_busybox(t, &parts.bytes());
    build_with(t, &["--apk-keys", keys]).expect_refused(&[apk, "BAD signature", APK_TEST_KEY]);

    // Signed by a key the folder does not hold.
    with_busybox(t, &alpine_busybox("busybox.static").bytes());
    let (_, other) = openssl_key(&t.join("other-keys"), "other.rsa");
    fs::remove_file(other.with_extension("")).unwrap();
    build_with(t, &["--apk-keys", "other-keys"]).expect_refused(&[
        "alpine-keys-2.4-r1.apk",
        APK_TEST_KEY,
        "not in",
        "other-keys",
    ]);

    // Not signed at all.
    let unsigned = alpine_busybox_of(pattern("unsigned", 9000), false).bytes();
    with_busybox(t, &unsigned);
    build_with(t, &["--apk-keys", keys]).expect_refused(&[apk, "not signed", "--allow-untrusted"]);

    // No keys folder: refused as apk refuses untrusted packages.
    build_with(t, &[]).expect_refused(&["--apk-keys", "--allow-untrusted"]);

    // --allow-untrusted takes it and says so; the others are still verified by the key.
    let out = build_with(t, &["--apk-keys", keys, "--allow-untrusted"]).built();
    let info = read_json(&out.join(format!("{BOARD}.buildinfo.json")));
    let verdicts = string_pairs(&info["inputs"], "file", "apk_signature");
    let key = format!("{APK_TEST_KEY}.pub");
    for (file, verdict) in verdicts {
        let want = if file == apk {
            "unverified"
        } else {
            key.as_str()
        };
        assert_eq!(verdict, want, "{file}");
    }
    // A signature the known key rejects fails even when untrusted packages are allowed.
    let mut parts = alpine_busybox("busybox.static");
    parts.control[5] ^= 1;
    with_busybox(t, &parts.bytes());
    fs::remove_dir_all(t.join("out")).unwrap();
    build_with(t, &["--apk-keys", keys, "--allow-untrusted"])
        .expect_refused(&[apk, "BAD signature"]);
}

#[test]
fn bad_keys_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_alpine_fixture(&t.join("inputs"), false);
    let keys = write_apk_keys(&t.join("apk-keys"));
    let keys = keys.to_str().unwrap();
    let (private, public) = openssl_key(&t.join("k"), "sign.rsa");

    // A public key given as the signing key, a missing one, a folder that is not there.
    let public_s = public.to_str().unwrap();
    build_with(t, &["--apk-keys", keys, "--apk-sign-key", public_s]).expect_refused(&[
        public_s,
        "'PUBLIC KEY'",
        "--apk-sign-key",
    ]);
    build_with(t, &["--apk-keys", keys, "--apk-sign-key", "k/none.rsa"])
        .expect_refused(&["k/none.rsa"]);
    build_with(t, &["--apk-keys", "no-such-folder"]).expect_refused(&["no-such-folder"]);

    // A private key, or garbage, in the keys folder.
    let bad_keys = t.join("bad-keys");
    fs::create_dir_all(&bad_keys).unwrap();
    fs::copy(&private, bad_keys.join("x.rsa.pub")).unwrap();
    build_with(t, &["--apk-keys", "bad-keys"]).expect_refused(&["x.rsa.pub", "RSA PRIVATE KEY"]);
    fs::write(bad_keys.join("x.rsa.pub"), "not a key").unwrap();
    build_with(t, &["--apk-keys", "bad-keys"]).expect_refused(&["x.rsa.pub", "not a PEM"]);

    // PKCS#8 (openssl pkcs8 -topk8) signs as well as PKCS#1, with the same bytes.
    shell(
        &t.join("k"),
        "mkdir -p p8 && openssl pkcs8 -topk8 -nocrypt -in sign.rsa -out p8/sign.rsa",
    )
    .expect_success();
    let a = build_with(t, &["--apk-keys", keys, "--apk-sign-key", "k/sign.rsa"])
        .out("a")
        .built();
    let b = build_with(t, &["--apk-keys", keys, "--apk-sign-key", "k/p8/sign.rsa"])
        .out("b")
        .built();
    assert_eq!(index_bytes(&a), index_bytes(&b));
}
