//! Builds under pressure: killed with SIGKILL at random points and at each rename while
//! publishing, the output disk full, a read-only output folder, inputs replaced, truncated or
//! deleted while pimg reads them, and two builds into one folder at once. After each, the
//! output paths hold nothing but a complete earlier build, and the next build succeeds and
//! removes what the killed one left (its staging folder `.<out>.pimg-stage-*` beside the
//! output folder).
//!
//! Needs root (tmpfs and bind mounts, chattr) and strace (to stop pimg at an exact system
//! call: `-e inject=…:delay_enter=` / `:signal=KILL`).
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Two epochs, so that consecutive builds differ in every output and a mix is visible.
const EPOCH_A: &str = "1700000000";
const EPOCH_B: &str = "1710000000";

/// The board profile variant used here: the shipped rpi3b plus every file of the `extra`
/// directory input copied to `extra/` on the boot partition.
const PROFILE_FILE: &str = "pimg-faults.toml";

/// The fixture packages with a directory input `extra` that the profile copies to the boot
/// partition. `blob` bytes of incompressible data in `extra/blob.bin` make a build take
/// about a second (for kills and overlaps).
fn fixture(root: &Path, blob: usize) -> Fixture {
    let mut extra = vec![("notes.txt", pattern("notes", 4_000))];
    if blob > 0 {
        extra.push(("blob.bin", pattern("blob", blob)));
    }
    Fixture::with_extra(root, PROFILE_FILE, &extra, false)
}

/// `pimg build` of the fixture into `out` with the given epoch (not yet run).
fn build(fx: &Fixture, out: &Path, epoch: &str) -> Build {
    let mut b = fx.build();
    // The faults are aimed at publishing's system calls; the cache's own renames would shift
    // them (the cache's damage and concurrency tests are in tests/cache.rs).
    b.out(out).epoch(epoch).arg("--no-cache");
    b
}

/// Starts a build with its output thrown away (it is to be killed).
fn spawn_quiet(b: &Build) -> std::process::Child {
    let mut c = b.command();
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The build after a failed one succeeds, publishes `sums` (a reference's SHA256SUMS) and
/// cleans up what the failed one left.
fn recovers(fx: &Fixture, out: &Path, epoch: &str, sums: &str, what: &str) {
    build(fx, out, epoch).expect_success();
    assert_state(out, Some(sums), what);
    assert_no_leftovers(out, what);
}

/// The fixture (see `fixture`) and complete reference builds of both epochs in `ref-a` and
/// `ref-b`: their SHA256SUMS, which differ.
fn with_references(tmp: &Path, blob: usize) -> (Fixture, String, String) {
    let fx = fixture(tmp, blob);
    let ref_a = reference(&fx, &tmp.join("ref-a"), EPOCH_A);
    let ref_b = reference(&fx, &tmp.join("ref-b"), EPOCH_B);
    assert_ne!(ref_a, ref_b);
    (fx, ref_a, ref_b)
}

/// A complete reference build into `out`; returns its SHA256SUMS.
fn reference(fx: &Fixture, out: &Path, epoch: &str) -> String {
    build(fx, out, epoch).expect_success();
    assert_complete(out);
    fs::read_to_string(out.join("SHA256SUMS")).unwrap()
}

/// What sits in an output folder: (final outputs, pimg's own files: `.pimg.lock` and
/// `.*.pimg-partial`, which only output folders that cannot be swapped hold while a build
/// runs).
fn contents(dir: &Path) -> (Vec<String>, Vec<String>) {
    list_files(dir)
        .into_iter()
        .partition(|n| n != ".pimg.lock" && !(n.starts_with('.') && n.ends_with(".pimg-partial")))
}

/// The folder holds one complete build: every file SHA256SUMS lists (and nothing else)
/// with the listed hash.
fn assert_complete(dir: &Path) {
    let (finals, _) = contents(dir);
    let listed: Vec<String> = sums(dir).into_iter().map(|(n, _)| n).collect();
    let mut want = listed.clone();
    want.push("SHA256SUMS".into());
    want.sort();
    assert_eq!(
        finals,
        want,
        "outputs in {} are not one build",
        dir.display()
    );
    let o = referee("sha256sum", "coreutils")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .cwd(dir)
        .output();
    assert!(
        o.success(),
        "outputs in {} do not match their SHA256SUMS (a mix of two builds?):\n{}",
        dir.display(),
        o.report()
    );
}

/// The folder holds exactly the build whose SHA256SUMS is `expected`, or no outputs at all
/// when it is None.
fn assert_state(dir: &Path, expected: Option<&str>, what: &str) {
    assert_state_in(dir, &[expected], what)
}

/// The folder is in one of the `allowed` states (see `assert_state`).
fn assert_state_in(dir: &Path, allowed: &[Option<&str>], what: &str) {
    let (finals, _) = contents(dir);
    if finals.is_empty() {
        assert!(
            allowed.contains(&None),
            "{what}: the outputs are gone from the final paths"
        );
        return;
    }
    assert!(
        allowed.iter().any(|a| a.is_some()),
        "{what}: outputs appeared at the final paths: {finals:?}"
    );
    assert_complete(dir);
    let got = fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert!(
        allowed.contains(&Some(got.as_str())),
        "{what}: the folder holds a complete build, but not an expected one:\n{got}"
    );
}

/// Nothing of pimg's left behind: no partial files or lock file in the folder, no staging
/// folder beside it.
fn assert_no_leftovers(dir: &Path, what: &str) {
    let (_, own) = contents(dir);
    assert!(
        own.is_empty(),
        "{what}: pimg's files left in the folder: {own:?}"
    );
    assert_nothing_beside(dir, what);
}

/// A small seeded generator (xorshift64*), so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("PIMG_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("fault schedule seed {seed} (replay with PIMG_FAULT_SEED={seed})");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kill9(child: &mut std::process::Child) {
    let st = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success() || child.try_wait().unwrap().is_some());
}

#[test]
fn killed_at_random_points_leaves_the_previous_build() {
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, ref_b) = with_references(tmp.path(), 10 << 20);

    let out = tmp.path().join("out");
    let t0 = Instant::now();
    build(&fx, &out, EPOCH_A).expect_success();
    let full = t0.elapsed();
    eprintln!("one build takes {full:?}");
    let mut current = ref_a.clone();

    let mut rng = Rng::from_env();
    let runs = 8;
    let mut killed = 0;
    for run in 0..runs {
        let (epoch, sums) = if run % 2 == 0 {
            (EPOCH_B, &ref_b)
        } else {
            (EPOCH_A, &ref_a)
        };
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10));
        let mut child = spawn_quiet(&build(&fx, &out, epoch));
        std::thread::sleep(delay);
        kill9(&mut child);
        let status = child.wait().unwrap();
        let (_, own) = contents(&out);
        eprintln!(
            "run {run}: SIGKILL after {delay:?}: {}; pimg's files left: {own:?}",
            if status.success() {
                "the build had already finished"
            } else {
                "killed"
            }
        );
        let what = format!("run {run}, SIGKILL after {delay:?}");
        if status.success() {
            assert_state(&out, Some(sums), &what);
            current = sums.clone();
        } else {
            killed += 1;
            // Killed after the last rename but before exiting: the new build is complete.
            assert_state_in(&out, &[Some(&current), Some(sums)], &what);
            current = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
        }
    }
    assert!(killed > 0, "no run was killed before it finished");

    // The next build succeeds, publishes, and cleans up what the killed ones left.
    recovers(&fx, &out, EPOCH_B, &ref_b, "the build after the kills");
}

/// A build into an output folder that does not exist yet, killed before it publishes,
/// leaves nothing at the output path (it used to leave an empty folder); the next build
/// publishes there and removes the killed build's staging folder.
#[test]
fn killed_before_its_first_publish_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, _) = with_references(tmp.path(), 10 << 20);
    let out = tmp.path().join("fresh");
    let mut child = spawn_quiet(&build(&fx, &out, EPOCH_A));
    // Killed once it is writing its outputs: its staging folder exists by then.
    let staging = || {
        fs::read_dir(tmp.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".fresh.pimg-stage-")
        })
    };
    let t0 = Instant::now();
    while !staging() {
        assert!(
            t0.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none(),
            "the build made no staging folder"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    kill9(&mut child);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the build was killed before it finished");
    assert!(
        fs::symlink_metadata(&out).is_err(),
        "a killed first build left {} behind",
        out.display()
    );
    recovers(&fx, &out, EPOCH_A, &ref_a, "the build after the kill");
}

/// The build under strace following every thread, with `strace_args` (not yet run).
fn strace(fx: &Fixture, out: &Path, epoch: &str, strace_args: &[&str]) -> Build {
    let mut argv: Vec<OsString> = vec![need_tool("strace", "strace").into(), "-f".into()];
    argv.extend(strace_args.iter().map(OsString::from));
    argv.push("--".into());
    let mut b = build(fx, out, epoch);
    b.wrap(argv);
    b
}

/// pimg under strace, stopped or killed at one exact system call.
fn traced(fx: &Fixture, out: &Path, epoch: &str, strace_args: &[&str]) -> Build {
    let fast = ["--seccomp-bpf", "-qq", "-e", "signal=none"];
    strace(fx, out, epoch, &[&fast[..], strace_args].concat())
}

/// The rename family: the system calls that publish outputs.
const RENAMES: &str = "rename,renameat,renameat2";

/// pimg under strace following every thread, without --seccomp-bpf (with it, strace 6.1
/// does not deliver `signal=` injections).
fn straced(fx: &Fixture, out: &Path, epoch: &str, strace_args: &[&str]) -> Build {
    strace(fx, out, epoch, strace_args)
}

/// The rename-family calls a build of `epoch` into `out` makes, in order, each as (system
/// call, its number among that thread's calls of that name): strace counts `when=` per
/// system call and per thread, so that pair is what stops the build at exactly that call.
fn rename_calls(fx: &Fixture, out: &Path, epoch: &str) -> Vec<(String, usize)> {
    let trace = fx.root.join("renames.trace");
    straced(
        fx,
        out,
        epoch,
        &[
            "-o",
            trace.to_str().unwrap(),
            "-e",
            &format!("trace={RENAMES}"),
        ],
    )
    .expect_success();
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut calls = Vec::new();
    for line in fs::read_to_string(&trace).unwrap().lines() {
        let mut words = line.split_whitespace();
        let (Some(tid), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((name, _)) = call.split_once('(') else {
            continue;
        };
        if RENAMES.split(',').any(|r| r == name) {
            let n = seen.entry((tid.into(), name.into())).or_default();
            *n += 1;
            calls.push((name.to_string(), *n));
        }
    }
    calls
}

/// Whether `dir` holds exactly one complete build, and which of `builds` (label,
/// SHA256SUMS): the files at the final paths are exactly those SHA256SUMS lists,
/// `pimg verify` passes (every hash in SHA256SUMS and the buildinfo matches), and SHA256SUMS
/// is one of the expected builds'.
fn one_complete_build(dir: &Path, builds: &[(&str, &str)]) -> Result<String, String> {
    let (finals, _) = contents(dir);
    let sums = fs::read_to_string(dir.join("SHA256SUMS"))
        .map_err(|e| format!("no SHA256SUMS ({e}); outputs at the final paths: {finals:?}"))?;
    let mut listed: Vec<String> = sums
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(_, n)| n.to_string())
        .collect();
    listed.push("SHA256SUMS".into());
    listed.sort();
    if finals != listed {
        return Err(format!(
            "the files at the final paths {finals:?} are not those SHA256SUMS lists"
        ));
    }
    let v = run(Path::new("."), &["verify", dir.to_str().unwrap()], &[]);
    if !v.success() {
        let report: Vec<String> = v
            .stdout
            .lines()
            .filter(|l| {
                l.starts_with("pimg verify:")
                    || (l.starts_with("FAIL") && l.contains("(SHA256SUMS)"))
            })
            .map(str::to_string)
            .collect();
        return Err(format!(
            "`pimg verify {}` fails: the folder mixes two builds:\n{}{}",
            dir.display(),
            report.join("\n"),
            v.stderr
        ));
    }
    builds
        .iter()
        .find(|(_, s)| *s == sums)
        .map(|(label, _)| label.to_string())
        .ok_or_else(|| "a complete build, but neither the previous nor the new one".into())
}

#[test]
fn killed_at_each_rename_leaves_one_complete_build() {
    // SIGKILL (strace fault injection) exactly at the 1st, 2nd, … rename-family system call
    // of a build over a complete previous build, until a build runs to its end. After each
    // kill the folder must hold exactly one complete build, the previous or the new one and
    // never a mix; the next build must succeed and leave nothing of the killed one behind.
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, ref_b) = with_references(tmp.path(), 0);
    let builds = [("previous", ref_a.as_str()), ("new", ref_b.as_str())];
    let out = tmp.path().join("out");
    build(&fx, &out, EPOCH_A).expect_success();
    let calls = rename_calls(&fx, &out, EPOCH_B);
    assert!(
        !calls.is_empty(),
        "strace saw no {RENAMES} call in a whole build"
    );
    eprintln!("rename-family calls of one build: {calls:?}");
    let mut problems = Vec::new();
    let mut kills = 0;
    for n in 1..=calls.len() + 1 {
        build(&fx, &out, EPOCH_A).expect_success();
        assert_state(&out, Some(&ref_a), "the previous build");
        let inject = match calls.get(n - 1) {
            Some((call, k)) => format!("inject={call}:signal=KILL:when={k}"),
            // Past the last call: no call is reached that often, the build runs to its end.
            None => format!("inject={RENAMES}:signal=KILL:when={}", calls.len() + 1),
        };
        let o = straced(
            &fx,
            &out,
            EPOCH_B,
            &[
                "-o",
                "/dev/null",
                "-e",
                &format!("trace={RENAMES}"),
                "-e",
                &inject,
            ],
        )
        .run();
        let what = format!(
            "SIGKILL at rename-family call {n} of {} ({inject})",
            calls.len()
        );
        // A build that ran to its end holds the new build and nothing else of pimg's.
        let finished = |what: &str, problems: &mut Vec<String>| {
            if let Err(e) = one_complete_build(&out, &builds[1..]) {
                problems.push(format!("{what}: {e}"));
            }
            let (_, inside) = contents(&out);
            let beside = pimg_files_beside(&out);
            if !inside.is_empty() || !beside.is_empty() {
                problems.push(format!(
                    "{what}: pimg's files left in the folder {inside:?} and beside it {beside:?}"
                ));
            }
        };
        if n > calls.len() {
            assert!(
                o.status.success(),
                "{what}: the build should have run to its end:\n{}",
                o.report()
            );
            finished(&what, &mut problems);
            break;
        }
        if o.status.signal() != Some(9) {
            problems.push(format!("{what}: the build was not killed:\n{}", o.report()));
            continue;
        }
        kills += 1;
        match one_complete_build(&out, &builds) {
            Ok(which) => eprintln!("{what}: the folder holds the {which} build"),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
        // The next build succeeds and removes what the killed one left.
        let o = build(&fx, &out, EPOCH_B).run();
        if !o.status.success() {
            problems.push(format!("{what}: the next build failed:\n{}", o.report()));
            continue;
        }
        finished(&format!("{what}, then a build"), &mut problems);
    }
    assert!(
        kills > 0,
        "no build was killed by the injected SIGKILL, so nothing was tested"
    );
    assert!(
        problems.is_empty(),
        "publishing is not atomic across the outputs:\n\n{}",
        problems.join("\n\n")
    );
}

/// A tmpfs of `size` bytes at `path`, unmounted when dropped.
fn tmpfs(path: &Path, size: u64) -> Mount {
    Mount::tmpfs(path, &format!("size={size}")).unwrap_or_else(|e| {
        panic!("cannot mount a tmpfs for the disk-full test (run the tests as root): {e}")
    })
}

fn resize(m: &Mount, size: u64) {
    m.remount(&format!("size={size}"))
        .unwrap_or_else(|e| panic!("remount,size={size} failed: {e}"));
}

/// A read-only bind mount of `path` onto itself.
fn read_only_bind(path: &Path) -> Mount {
    Mount::read_only_bind(path).unwrap_or_else(|e| {
        panic!(
            "cannot bind-mount {} read-only (run the tests as root): {e}",
            path.display()
        )
    })
}

/// Bytes a file really occupies.
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).unwrap().blocks() * 512
}

fn allocated_total(dir: &Path) -> u64 {
    list_files(dir)
        .iter()
        .map(|n| allocated(&dir.join(n)))
        .sum()
}

const PAGE: u64 = 4096;

/// A build that must fail because of the output: exit 1, a message naming `names` (any
/// one of them) and saying `why`.
fn assert_output_failure(o: &Ran, names: &[&str], why: &str, what: &str) {
    let err = &o.stderr;
    assert!(!o.success(), "{what}: the build succeeded:\n{}", o.report());
    assert!(
        err.contains(why) && names.iter().any(|n| err.contains(n)),
        "{what}: the message should say {why:?} and name the output ({names:?}):\n{}",
        o.report()
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit status 1 means 'writing the outputs failed' (2 is for input the user \
         must fix):\n{}",
        o.report()
    );
}

/// A build into `out` that must fail because of the output folder itself: exit 1 and a
/// message naming the folder and saying `why`.
fn assert_folder_failure(fx: &Fixture, out: &Path, epoch: &str, why: &str, what: &str) {
    let o = build(fx, out, epoch).run();
    assert_output_failure(&o, &[out.to_str().unwrap()], why, what);
}

#[test]
fn disk_full_while_staging_keeps_the_previous_build() {
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, ref_b) = with_references(tmp.path(), 0);
    let m = tmpfs(&tmp.path().join("disk"), 64 << 20);
    let out = m.path.join("out");
    build(&fx, &out, EPOCH_A).expect_success();
    let used = allocated_total(&out);
    let img = allocated(&out.join("rpi3b.img"));
    let tar = allocated(&out.join("rpi3b.tar.gz"));

    // Room for the new image but only half of the new rpi tarball.
    resize(&m, (used + img + tar / 2).div_ceil(PAGE) * PAGE);
    let o = build(&fx, &out, EPOCH_B).run();
    assert_output_failure(
        &o,
        &["rpi3b.tar.gz"],
        "No space left",
        "disk full at the tarball",
    );
    assert_state(&out, Some(&ref_a), "disk full at the tarball");
    assert_no_leftovers(&out, "disk full at the tarball");

    // The next build, with room again, succeeds.
    resize(&m, 64 << 20);
    recovers(
        &fx,
        &out,
        EPOCH_B,
        &ref_b,
        "the build after the disk was full",
    );
}

#[test]
fn disk_full_inside_the_image_is_an_output_error() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture(tmp.path(), 0);
    let ref_a = reference(&fx, &tmp.path().join("ref-a"), EPOCH_A);
    let img = allocated(&tmp.path().join("ref-a/rpi3b.img"));
    let mut problems = Vec::new();

    // An empty small disk, and a disk that holds a previous build plus half an image.
    for previous in [false, true] {
        let what = if previous {
            "disk full inside the image, previous build present"
        } else {
            "disk full inside the image, empty 1 MiB disk"
        };
        let m = tmpfs(&tmp.path().join(format!("disk{previous}")), 64 << 20);
        let out = m.path.join("out");
        let expected = if previous {
            build(&fx, &out, EPOCH_A).expect_success();
            resize(&m, (allocated_total(&out) + img / 2).div_ceil(PAGE) * PAGE);
            Some(ref_a.as_str())
        } else {
            resize(&m, 1 << 20);
            None
        };
        let o = build(&fx, &out, EPOCH_B).run();
        // Nothing published, nothing left behind: these hold today.
        assert!(!o.status.success(), "{what}: the build succeeded");
        assert_state(&out, expected, what);
        assert_no_leftovers(&out, what);
        let err = o.stderr.as_str();
        if !(o.status.code() == Some(1)
            && err.contains("No space left")
            && err.contains("rpi3b.img"))
        {
            problems.push(format!(
                "{what}: expected exit 1 and a message naming rpi3b.img and 'No space left', got \
                 {}: {}",
                o.status,
                err.trim()
            ));
        }
        // The next build, with room again, succeeds.
        resize(&m, 64 << 20);
        build(&fx, &out, EPOCH_A).expect_success();
        assert_state(&out, Some(&ref_a), "the build after the disk was full");
    }
    assert!(
        problems.is_empty(),
        "a full disk while writing the FAT is reported as a boot-partition (input) problem:\n{}",
        problems.join("\n")
    );
}

#[test]
fn read_only_output_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, ref_b) = with_references(tmp.path(), 0);

    // A read-only bind mount over a folder holding a complete build (chmod does not stop
    // root; a read-only mount does).
    let area = tmp.path().join("ro");
    let out = area.join("out");
    build(&fx, &out, EPOCH_A).expect_success();
    {
        let _ro = read_only_bind(&area);
        let probe = fs::write(out.join("probe"), b"x");
        assert!(probe.is_err(), "the bind mount is not read-only");
        let why = "Read-only file system";
        assert_folder_failure(&fx, &out, EPOCH_B, why, "read-only output folder");
        assert_state(&out, Some(&ref_a), "read-only output folder");
        // An output folder that does not exist yet, inside the read-only area.
        let new = area.join("new-out");
        assert_folder_failure(&fx, &new, EPOCH_B, why, "new folder in a read-only area");
        assert!(!new.exists());
    }
    build(&fx, &out, EPOCH_B).expect_success();
    assert_state(
        &out,
        Some(&ref_b),
        "the build after the folder was writable again",
    );

    // An immutable folder (chattr +i): it can be locked, but neither replaced nor written.
    let st = Command::new("chattr").arg("+i").arg(&out).output();
    match st {
        Ok(o) if o.status.success() => {
            struct Unfreeze(PathBuf);
            impl Drop for Unfreeze {
                fn drop(&mut self) {
                    let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
                }
            }
            let guard = Unfreeze(out.clone());
            let why = "Operation not permitted";
            assert_folder_failure(&fx, &out, EPOCH_A, why, "immutable output folder");
            assert_state(&out, Some(&ref_b), "immutable output folder");
            drop(guard);
            build(&fx, &out, EPOCH_A).expect_success();
            assert_state(&out, Some(&ref_a), "the build after chattr -i");
        }
        _ => eprintln!("NOTE: chattr +i is not supported here; immutable-folder case skipped"),
    }
}

/// A package rewritten: every data member passes through `change`, and the control file
/// gets `version`.
fn rewrite_deb(deb: &[u8], version: &str, change: &dyn Fn(&str, &mut Vec<u8>)) -> Vec<u8> {
    let rewrite_tgz = |tgz: &[u8], control: bool| -> Vec<u8> {
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::new(6),
        ));
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let path = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if control {
                let t = String::from_utf8(data).unwrap();
                let t: String = t
                    .lines()
                    .map(|l| {
                        if l.starts_with("Version: ") {
                            format!("Version: {version}\n")
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                data = t.into_bytes();
            } else if h.entry_type() == tar::EntryType::Regular {
                change(path.trim_start_matches("./"), &mut data);
            }
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data.as_slice()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    };
    let mut a = ar::Archive::new(deb);
    let mut out = ar::Builder::new(Vec::new());
    while let Some(e) = a.next_entry() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.header().identifier().to_vec()).unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let data = match name.as_str() {
            "control.tar.gz" => rewrite_tgz(&data, true),
            "data.tar.gz" => rewrite_tgz(&data, false),
            _ => data,
        };
        out.append(
            &ar::Header::new(name.into_bytes(), data.len() as u64),
            data.as_slice(),
        )
        .unwrap();
    }
    out.into_inner().unwrap()
}

/// One input and a second version of it.
struct Versions {
    label: &'static str,
    /// The input's file or directory name in the inputs folder, as the buildinfo lists it.
    input_file: String,
    /// The file pimg opens.
    path: PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
}

impl Versions {
    fn put(&self, bytes: &[u8]) {
        let tmp = self.path.with_file_name(format!(
            ".{}.new",
            self.path.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&tmp, bytes).unwrap();
        fs::rename(&tmp, &self.path).unwrap();
    }
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The inputs that may change: the firmware package (read three times today: control,
/// hash, scan), the kernel package (four: control, hash, scan, module pass) and a file of a
/// directory input (twice: digest, scan).
fn versions(fx: &Fixture) -> Vec<Versions> {
    let find = |prefix: &str| {
        fs::read_dir(&fx.inputs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap()
    };
    let fw = find("raspi-firmware_");
    let fw_old = fs::read(&fw).unwrap();
    let fw_new = rewrite_deb(&fw_old, "1.20220830+ds-2", &|p, d| {
        if p.ends_with("bootcode.bin") {
            d[..8].copy_from_slice(b"CHANGED!");
        }
    });
    let k = find("linux-image-");
    let k_old = fs::read(&k).unwrap();
    let k_new = rewrite_deb(&k_old, "6.1.999-2", &|p, d| {
        if p.starts_with("boot/vmlinuz-") || p.ends_with(".ko") {
            let n = d.len();
            d[n - 1] ^= 0xff;
        }
    });
    let notes = fx.inputs.join("extra/notes.txt");
    let n_old = fs::read(&notes).unwrap();
    let mut n_new = n_old.clone();
    n_new[0] ^= 0xff;
    vec![
        Versions {
            label: "raspi-firmware .deb",
            input_file: name_of(&fw),
            path: fw,
            old: fw_old,
            new: fw_new,
        },
        Versions {
            label: "linux-image .deb",
            input_file: name_of(&k),
            path: k,
            old: k_old,
            new: k_new,
        },
        Versions {
            label: "directory input extra/notes.txt",
            input_file: "extra".into(),
            path: notes,
            old: n_old,
            new: n_new,
        },
    ]
}

/// Runs a build that is held for half a second when it is about to open `path` for the
/// `nth` time; `change` runs in that pause. Returns the result and whether the pause came.
fn race(fx: &Fixture, out: &Path, path: &Path, nth: usize, change: &dyn Fn()) -> (Ran, bool) {
    let trace = fx.root.join(format!("trace-{nth}"));
    let _ = fs::remove_file(&trace);
    let inject = format!("inject=openat:delay_enter=500000:when={nth}");
    let mut running = traced(
        fx,
        out,
        EPOCH_A,
        &[
            "-o",
            trace.to_str().unwrap(),
            "-P",
            path.to_str().unwrap(),
            "-e",
            "trace=openat",
            "-e",
            &inject,
        ],
    )
    .spawn();
    let mut reached = false;
    loop {
        let opens = fs::read_to_string(&trace)
            .unwrap_or_default()
            .matches("openat(")
            .count();
        if opens >= nth {
            change();
            reached = true;
            break;
        }
        if running.child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (running.wait(), reached)
}

/// Which version of the input each part of a build's buildinfo comes from: the recorded
/// version and SHA-256 of the input, and every boot file and output the two versions change.
fn provenance(v: &Versions, old: &Path, new: &Path, got: &Path) -> String {
    let load = |d: &Path| read_json(&d.join("rpi3b.buildinfo.json"));
    let (o, n, g) = (load(old), load(new), load(got));
    let which = |x: &serde_json::Value, a: &serde_json::Value, b: &serde_json::Value| {
        if x == a && x == b {
            "both"
        } else if x == a {
            "old"
        } else if x == b {
            "new"
        } else {
            "neither (a mix)"
        }
    };
    let input = |j: &serde_json::Value| -> serde_json::Value {
        j["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["file"] == v.input_file.as_str())
            .cloned()
            .unwrap_or_default()
    };
    let (io, inn, ig) = (input(&o), input(&n), input(&g));
    let mut lines = vec![format!(
        "  buildinfo input {}: version {} ({}), sha256 {}… (that of the {} file)",
        ig["name"],
        ig["version"],
        which(&ig["version"], &io["version"], &inn["version"]),
        &ig["sha256"].as_str().unwrap_or("")[..12.min(ig["sha256"].as_str().unwrap_or("").len())],
        which(&ig["sha256"], &io["sha256"], &inn["sha256"]),
    )];
    for (list, key) in [("boot_partition", "path"), ("outputs", "name")] {
        let by = |j: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
            j[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e[key].as_str().unwrap().to_string(), e["sha256"].clone()))
                .collect()
        };
        let (bo, bn, bg) = (by(&o), by(&n), by(&g));
        for (path, h) in &bg {
            let (ho, hn) = (
                bo.get(path).cloned().unwrap_or_default(),
                bn.get(path).cloned().unwrap_or_default(),
            );
            if ho != hn {
                lines.push(format!(
                    "  {list} {path}: from the {} input",
                    which(h, &ho, &hn)
                ));
            }
        }
    }
    lines.join("\n")
}

#[test]
fn input_replaced_during_the_build_is_used_consistently() {
    // A rename over the input while pimg works (how downloads and `apt-get download` replace
    // files). pimg may use the old or the new version, but only one: its outputs must equal a
    // clean build of the old or of the new inputs (the buildinfo's version and SHA-256 must
    // describe the bytes that went into the image). A failure with a clear message is fine too.
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture(tmp.path(), 0);
    let mut problems = Vec::new();
    let mut exercised = 0;
    for v in versions(&fx) {
        let ref_old = reference(&fx, &tmp.path().join("ref-old"), EPOCH_A);
        v.put(&v.new);
        let ref_new = reference(&fx, &tmp.path().join("ref-new"), EPOCH_A);
        v.put(&v.old);
        assert_ne!(
            ref_old, ref_new,
            "{}: the new version changes nothing",
            v.label
        );
        for nth in 1..=4 {
            let out = tmp.path().join(format!("out-{nth}"));
            let _ = fs::remove_dir_all(&out);
            let (o, reached) = race(&fx, &out, &v.path, nth, &|| v.put(&v.new));
            v.put(&v.old);
            if !reached {
                continue;
            }
            exercised += 1;
            let what = format!(
                "{} replaced just before pimg opens it for time #{nth}",
                v.label
            );
            if !o.status.success() {
                let err = o.stderr.as_str();
                let name = v.path.file_name().unwrap().to_string_lossy();
                if !err.contains(name.as_ref()) {
                    problems.push(format!("{what}: failed without naming {name}:\n{err}"));
                }
                assert_state(&out, None, &what);
                continue;
            }
            let got = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
            if got != ref_old && got != ref_new {
                let summary = provenance(
                    &v,
                    &tmp.path().join("ref-old"),
                    &tmp.path().join("ref-new"),
                    &out,
                );
                problems.push(format!(
                    "{what}: the build succeeded with outputs that match neither a clean build of \
                     the old nor of the new input:\n{summary}"
                ));
            }
        }
        fs::remove_dir_all(tmp.path().join("ref-old")).unwrap();
        fs::remove_dir_all(tmp.path().join("ref-new")).unwrap();
    }
    assert!(exercised >= 3, "the races were not exercised");
    assert!(
        problems.is_empty(),
        "pimg records an input's hash and version from other bytes than it builds from:\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn input_truncated_or_deleted_during_the_build_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixture(tmp.path(), 0);
    let v = versions(&fx).remove(0);
    let name = v.path.file_name().unwrap().to_string_lossy().into_owned();
    let truncate = || {
        let f = fs::OpenOptions::new().write(true).open(&v.path).unwrap();
        f.set_len(v.old.len() as u64 / 2).unwrap();
    };
    let delete = || fs::remove_file(&v.path).unwrap();
    let cases: [(&str, &dyn Fn()); 2] = [("truncated in place", &truncate), ("deleted", &delete)];
    for (how, change) in cases {
        for nth in [2, 3] {
            let out = tmp.path().join(format!("out-{nth}"));
            let _ = fs::remove_dir_all(&out);
            let (o, reached) = race(&fx, &out, &v.path, nth, change);
            v.put(&v.old);
            let what = format!("{} {how} before pimg opens it for time #{nth}", v.label);
            if !reached {
                eprintln!("{what}: pimg never opened it that often (nothing to test)");
                continue;
            }
            let err = o.stderr.as_str();
            assert!(
                !o.status.success(),
                "{what}: the build succeeded:\n{}",
                o.report()
            );
            assert!(
                err.contains(&name) || err.contains("raspi-firmware"),
                "{what}: the message does not name the input:\n{err}"
            );
            assert_eq!(o.status.code(), Some(2), "{what}: {err}");
            assert_state(&out, None, &what);
            assert_no_leftovers(&out, &what);
            eprintln!("{what}: {}", err.trim());
        }
    }
    // The inputs are whole again: the next build succeeds.
    build(&fx, &tmp.path().join("out-after"), EPOCH_A).expect_success();
}

#[test]
fn concurrent_builds_serialize_or_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (fx, ref_a, ref_b) = with_references(tmp.path(), 6 << 20);
    let out = tmp.path().join("out");
    let mut rng = Rng::from_env();
    let mut busy_seen = 0;
    for round in 0..3 {
        let stagger = Duration::from_millis(if round == 0 { 0 } else { rng.below(600) });
        let a = build(&fx, &out, EPOCH_A).spawn();
        std::thread::sleep(stagger);
        let b = build(&fx, &out, EPOCH_B).spawn();
        let (oa, ob) = (a.wait(), b.wait());
        let mut winners = Vec::new();
        for (o, sums) in [(&oa, &ref_a), (&ob, &ref_b)] {
            if o.status.success() {
                winners.push(sums.as_str());
                continue;
            }
            let err = o.stderr.as_str();
            assert!(
                err.contains("in use by another pimg build") && o.status.code() == Some(1),
                "round {round}: a concurrent build failed, but not with the lock message:\n{}",
                o.report()
            );
            busy_seen += 1;
        }
        eprintln!(
            "round {round}: second build {stagger:?} later; {} succeeded",
            winners.len()
        );
        assert!(!winners.is_empty(), "round {round}: both builds failed");
        assert_complete(&out);
        let got = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
        assert!(
            winners.contains(&got.as_str()),
            "round {round}: the folder holds a build that did not succeed"
        );
        assert_no_leftovers(&out, &format!("round {round}"));
    }
    assert!(
        busy_seen > 0,
        "the builds never overlapped; the lock was not exercised"
    );
}
