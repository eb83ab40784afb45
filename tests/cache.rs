//! The input cache: builds with it (cold and warm), without it and from a damaged one give the
//! same bytes; concurrent builds share one; `--no-cache` writes nothing outside the output.
// Integration tests lay out inputs, damage the cache and list folders as they need.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A build of the merged-/usr fixture (compressed modules) in `tmp` into `out`, with pimg's
/// default cache place.
fn build(tmp: &Path, out: &str) -> Build {
    let inputs = tmp.join("inputs");
    if !inputs.exists() {
        write_fixture_in(&inputs, false, Layout::MergedUsr);
    }
    let mut b = Build::new();
    b.inputs(&inputs).out(tmp.join(out));
    b
}

/// The same with the cache in `cache`.
fn cached(tmp: &Path, out: &str, cache: &Path) -> Build {
    let mut b = build(tmp, out);
    b.arg("--cache").arg(cache);
    b
}

/// The same with `--no-cache`.
fn uncached(tmp: &Path, out: &str) -> Build {
    let mut b = build(tmp, out);
    b.arg("--no-cache");
    b
}

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn under<'a>(files: &'a [PathBuf], folder: &str) -> Vec<&'a PathBuf> {
    files.iter().filter(|p| p.starts_with(folder)).collect()
}

#[test]
fn builds_with_without_and_from_the_cache_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = uncached(tmp.path(), "none").built();
    let cold = cached(tmp.path(), "cold", &cache).built();
    assert_same_outputs(&reference, &cold);
    let stored = files(&cache);
    // One manifest per input read (boot firmware, busybox, kernel, Wi-Fi firmware), and
    // derived module data.
    assert_eq!(under(&stored, "v1/inputs").len(), 4, "{stored:?}");
    assert!(under(&stored, "v1/blobs").len() > 10, "{stored:?}");
    assert!(
        !under(&stored, "v1/derived/modinfo-1-xz").is_empty(),
        "{stored:?}"
    );
    let warm = cached(tmp.path(), "warm", &cache).built();
    assert_same_outputs(&reference, &warm);
    assert_eq!(files(&cache), stored, "a warm build adds nothing");
}

#[test]
fn a_damaged_cache_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = uncached(tmp.path(), "none").built();
    cached(tmp.path(), "cold", &cache).built();
    let stored = files(&cache);
    // Flip one byte of every blob and every derived value.
    for p in under(&stored, "v1/blobs")
        .into_iter()
        .chain(under(&stored, "v1/derived"))
    {
        let p = cache.join(p);
        let mut bytes = fs::read(&p).unwrap();
        if let Some(b) = bytes.last_mut() {
            *b ^= 0x20;
        } else {
            bytes.push(b'x');
        }
        fs::write(&p, bytes).unwrap();
    }
    let after = cached(tmp.path(), "after", &cache).built();
    assert_same_outputs(&reference, &after);
    // The damaged entries were filled again: the next build is warm and right.
    let again = cached(tmp.path(), "again", &cache).built();
    assert_same_outputs(&reference, &again);
    assert_eq!(files(&cache), stored);
}

#[test]
fn concurrent_builds_share_one_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = uncached(tmp.path(), "none").built();
    let running: Vec<Running> = (0..3)
        .map(|n| cached(tmp.path(), &format!("out{n}"), &cache).spawn())
        .collect();
    for r in running {
        assert_same_outputs(&reference, &r.wait().expect_success().out);
    }
    let warm = cached(tmp.path(), "warm", &cache).built();
    assert_same_outputs(&reference, &warm);
}

#[test]
fn the_cache_lives_where_it_is_told_or_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let mut none = uncached(tmp.path(), "none");
    none.env_remove("PIMG_CACHE").env("HOME", &home);
    none.built();
    assert_eq!(
        files(&home),
        Vec::<PathBuf>::new(),
        "--no-cache writes nothing"
    );
    let mut default = build(tmp.path(), "default");
    default.env_remove("PIMG_CACHE").env("HOME", &home);
    default.built();
    assert_eq!(
        under(&files(&home), ".cache/pimg/v1/inputs").len(),
        4,
        "the default is ~/.cache/pimg"
    );
    let xdg = tmp.path().join("xdg");
    let mut by_xdg = build(tmp.path(), "xdg");
    by_xdg
        .env_remove("PIMG_CACHE")
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", &xdg);
    by_xdg.built();
    assert_eq!(under(&files(&xdg), "pimg/v1/inputs").len(), 4);
    // A cache that cannot be used costs only time: the build says so and reads the inputs.
    let blocked = tmp.path().join("file");
    fs::write(&blocked, b"not a folder").unwrap();
    let o = cached(tmp.path(), "blocked", &blocked.join("cache")).expect_success();
    o.expect_stderr(&[
        "pimg: warning: input cache",
        "reading every input from its file",
    ]);
    assert_same_outputs(&tmp.path().join("none"), &o.out);
}
