//! The variation suite: the same fixture built twice, the second time with one thing about
//! the host changed, must give byte-identical outputs. Each test first shows that its
//! variation really took effect (a probe run in the very shell that then execs pimg), so a
//! silently ignored `TZ` or umask cannot make the suite pass. On a difference the suite names
//! the artifact and prints the structural diff (`pimg diff` when the binary has it, else
//! `cmp -l`; `diff -u` for the buildinfo and SHA256SUMS).
//!
//! Needs root for the unprivileged-user, tmpfs directory-order and hostname cases; tools:
//! tzdata, locales (localedef), faketime, util-linux (setpriv, unshare, taskset).
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The board profile variant every build here uses (same file name everywhere: the
/// buildinfo records only the file name of a profile given by path).
const PROFILE_FILE: &str = "pimg-variations.toml";

/// Files of the `extra` directory input: (path, size). Mixed case and a space so bytewise
/// sorting, LFN entries and readdir order all matter; `sub/` is not selected by the profile.
const EXTRA_FILES: &[(&str, usize)] = &[
    ("B.txt", 1_000),
    ("a.txt", 5_000),
    ("c d.txt", 300),
    ("zz.bin", 70_000),
    ("sub/deep.txt", 10),
    ("sub/Aa.txt", 20),
];

/// How the fixture is laid out on disk for one build.
#[derive(Clone, Copy)]
struct Shape {
    /// Create every file in the opposite order.
    reverse: bool,
}

/// Lays out the fixture in `root`: the inputs folder (three .debs and the `extra` directory
/// input) and, in `board/`, the board profile variant that pulls `extra/*` onto the boot
/// partition.
fn lay_out(root: &Path, shape: Shape) -> Fixture {
    let extra: Vec<(&str, Vec<u8>)> = EXTRA_FILES
        .iter()
        .map(|(name, len)| (*name, pattern(name, *len)))
        .collect();
    Fixture::with_extra(
        root,
        &format!("board/{PROFILE_FILE}"),
        &extra,
        shape.reverse,
    )
}

const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One way of running `pimg build`: the whole environment, umask, working directory, argv
/// prefix (faketime, taskset, setpriv, unshare). The reference environment: UTC, C locale,
/// umask 022, a fixed HOME, absolute paths, nothing else.
fn baseline(root: &Path, fx: &Fixture) -> Build {
    let home = root.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut run = Build::new();
    run.cwd(root)
        .inputs(&fx.inputs)
        .board(&fx.board)
        .out(root.join("out"))
        .env_clear()
        .env("PATH", BASE_PATH)
        .env("HOME", &home)
        .env("TZ", "UTC")
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .umask("022");
    run
}

/// A build whose environment a probe shows.
trait Probed {
    /// Runs `probe` in exactly this environment (without building) and returns its stdout.
    fn probe(&self, probe: &str) -> String;
    /// Builds; `probe` runs in the same shell just before it execs pimg, and its output is
    /// returned with the build's output.
    fn build(&self, probe: &str) -> (Ran, String);
    /// Builds, requires success, returns the probe's output.
    fn build_ok(&self, probe: &str) -> String;
}

impl Probed for Build {
    fn probe(&self, probe: &str) -> String {
        let o = Ran::of(&mut self.shell(probe), PathBuf::new());
        assert!(o.success(), "probe `{probe}` failed: {}", o.stderr);
        o.stdout.trim().to_string()
    }

    fn build(&self, probe: &str) -> (Ran, String) {
        let o = self
            .clone()
            .prelude(&format!(
                "{{ echo '<<<probe'; {probe}; echo 'probe>>>'; }} >&2"
            ))
            .run();
        let seen = o
            .stderr
            .split_once("<<<probe\n")
            .and_then(|(_, rest)| rest.split_once("probe>>>"))
            .map(|(p, _)| p.trim().to_string())
            .unwrap_or_else(|| panic!("probe output missing from:\n{}", o.stderr));
        (o, seen)
    }

    fn build_ok(&self, probe: &str) -> String {
        let (o, seen) = Probed::build(self, probe);
        o.expect_success();
        seen
    }
}

/// A test's working area: a baseline build and room for variants.
struct Case {
    tmp: tempfile::TempDir,
    base: Build,
}

impl Case {
    /// Lays out and builds the baseline.
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("base");
        let fx = lay_out(&root, Shape { reverse: false });
        let base = baseline(&root, &fx);
        base.build_ok("true");
        Case { tmp, base }
    }

    /// A fresh copy of the fixture under `sub` of the test's temp dir, with a baseline run.
    fn variant(&self, sub: &str, shape: Shape) -> (Fixture, Build) {
        let root = self.tmp.path().join(sub);
        let fx = lay_out(&root, shape);
        let run = baseline(&root, &fx);
        (fx, run)
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Every output of `run` must equal the baseline's.
    fn assert_same(&self, label: &str, run: &Build) {
        assert_identical(label, &self.base.out_dir(), &run.out_dir());
    }
}

/// Output file names; pimg's lock, partial files or staging folders left behind are an error.
fn outputs(dir: &Path) -> Vec<String> {
    let names = list_files(dir);
    let own: Vec<&String> = names
        .iter()
        .filter(|n| *n == ".pimg.lock" || n.ends_with(".pimg-partial"))
        .collect();
    assert!(
        own.is_empty(),
        "pimg's files left in {}: {own:?}",
        dir.display()
    );
    assert_nothing_beside(dir, "the build");
    names
}

/// Compares two output folders byte for byte; on a difference panics with the structural
/// diff of every differing artifact.
fn assert_identical(label: &str, a: &Path, b: &Path) {
    let (na, nb) = (outputs(a), outputs(b));
    assert!(
        na.len() >= 6,
        "baseline {} is incomplete: {na:?}",
        a.display()
    );
    let mut report = String::new();
    if na != nb {
        report += &format!("output names differ:\n  baseline: {na:?}\n  variant:  {nb:?}\n");
    }
    let differing: Vec<&String> = na
        .iter()
        .filter(|n| nb.contains(n))
        .filter(|n| !same_bytes(&a.join(n), &b.join(n)))
        .collect();
    if !differing.is_empty() {
        report += &format!("differing artifacts: {differing:?}\n");
    }
    for name in &differing {
        report += &explain(&a.join(name), &b.join(name));
    }
    assert!(
        report.is_empty(),
        "variation '{label}': outputs differ from the baseline ({} vs {}).\n{report}",
        a.display(),
        b.display()
    );
    eprintln!(
        "variation '{label}': {} outputs byte-identical to the baseline",
        na.len()
    );
}

/// Streams two files and compares them (the images are 256 MiB).
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Lines of each tool's output kept in a difference report.
const REPORT_LINES: usize = 60;

/// Whether this pimg has the `diff` subcommand.
fn pimg_has_diff() -> bool {
    pimg()
        .args(["diff", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The structural diff of two versions of one artifact.
fn explain(a: &Path, b: &Path) -> String {
    let name = a.file_name().unwrap().to_string_lossy().into_owned();
    let sh = |cmd: &mut Command| {
        let o = cmd.output().expect("run diff tool");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let mut s = format!("\n=== artifact {name} differs ===\n");
    let shell = |cmd: &str| {
        sh(Command::new("sh")
            .args([
                "-c",
                &format!("{cmd} \"$0\" \"$1\" | head -n {REPORT_LINES}"),
            ])
            .arg(a)
            .arg(b))
    };
    if name.ends_with(".json") || name == "SHA256SUMS" {
        s += "$ diff -u A B\n";
        s += &shell("diff -u");
        return s;
    }
    if pimg_has_diff() {
        let o = pimg()
            .arg("diff")
            .arg(a)
            .arg(b)
            .output()
            .expect("run pimg diff");
        s += "$ pimg diff A B\n";
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        s += &text
            .lines()
            .take(REPORT_LINES)
            .collect::<Vec<_>>()
            .join("\n");
        s.push('\n');
        // 1: the files differ (the structural diff above); anything else: pimg diff could
        // not read them, so show the bytes too.
        if o.status.code() == Some(1) {
            return s;
        }
    } else {
        s += "(pimg diff is not available in this build: byte-level view)\n";
    }
    s += "$ cmp -l A B   (1-based offset, octal bytes)\n";
    s += &shell("cmp -l");
    s
}

/// Mode bits of a path.
fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// Every file and directory under `dir` (the folder itself excluded).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn time_zone_with_dst_and_odd_offsets() {
    let case = Case::new();
    let base_z = case.base.probe("date +%z");
    assert_eq!(base_z, "+0000");
    // Kathmandu +05:45; St John's -03:30/-02:30 with DST; Lord Howe +10:30/+11 (a
    // half-hour DST shift); a POSIX rule needing no tzdata, +13:45 with DST.
    for (i, (tz, offsets)) in [
        ("Asia/Kathmandu", &["+0545"][..]),
        ("America/St_Johns", &["-0330", "-0230"][..]),
        ("Australia/Lord_Howe", &["+1030", "+1100"][..]),
        (
            "<+1345>-13:45<+1445>,M9.5.0,M4.1.0/3",
            &["+1345", "+1445"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, mut run) = case.variant(&format!("tz{i}"), Shape { reverse: false });
        run.env("TZ", tz);
        let z = run.build_ok("date +%z");
        assert!(
            offsets.contains(&z.as_str()),
            "TZ={tz} did not take effect (date +%z printed {z:?}, expected one of {offsets:?}); \
             install tzdata"
        );
        case.assert_same(&format!("TZ={tz} ({z})"), &run);
    }
}

#[test]
fn locale() {
    let case = Case::new();
    // A real Turkish locale compiled into the test's own LOCPATH (dotless i, ş), so the
    // host's installed locales do not matter.
    let locpath = case.root().join("locales");
    fs::create_dir_all(&locpath).unwrap();
    let st = Command::new("localedef")
        .args(["-i", "tr_TR", "-f", "UTF-8"])
        .arg(locpath.join("tr_TR.UTF-8"))
        .status()
        .expect("localedef (package libc-bin) is missing");
    assert!(
        st.success(),
        "localedef -i tr_TR failed: install the 'locales' package (locale sources)"
    );
    let base_day = case.base.probe("date -d @0 +%A");
    assert_eq!(base_day, "Thursday");
    let (_, mut run) = case.variant("tr", Shape { reverse: false });
    run.env("LOCPATH", locpath.display().to_string())
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "tr_TR.UTF-8");
    let day = run.build_ok("date -d @0 +%A");
    assert_eq!(day, "Perşembe", "the tr_TR locale did not take effect");
    case.assert_same("LANG=LC_ALL=tr_TR.UTF-8", &run);

    let (_, mut run) = case.variant("cutf8", Shape { reverse: false });
    run.env_remove("LC_ALL");
    run.env("LANG", "C.UTF-8").env("LC_CTYPE", "C.UTF-8");
    let cs = run.build_ok("locale charmap");
    assert_eq!(cs, "UTF-8", "C.UTF-8 did not take effect");
    case.assert_same("LANG=C.UTF-8", &run);
}

#[test]
fn umask() {
    let case = Case::new();
    assert_eq!(mode(&case.base.out_dir().join("SHA256SUMS")), 0o644);
    for (i, (mask, want)) in [("077", 0o600), ("000", 0o666), ("027", 0o640)]
        .into_iter()
        .enumerate()
    {
        let (_, mut run) = case.variant(&format!("umask{i}"), Shape { reverse: false });
        run.umask(mask);
        let seen = run.build_ok("umask");
        assert_eq!(seen, format!("0{mask}"), "umask did not apply in the shell");
        assert_eq!(
            mode(&run.out_dir().join("SHA256SUMS")),
            want,
            "umask {mask} did not reach the files pimg wrote"
        );
        case.assert_same(&format!("umask {mask}"), &run);
    }
}

#[test]
fn build_directory_depth_and_path_spelling() {
    let case = Case::new();
    let base_depth = case.base.dir().components().count();
    // Deep working directory, spaces and non-ASCII in it, every path relative and spelled
    // with ./ and trailing slashes.
    let deep_rel = "v/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/Verzeichnis mit ä/x y";
    let (fx, mut run) = case.variant("v", Shape { reverse: false });
    let cwd = case.root().join(deep_rel);
    fs::create_dir_all(&cwd).unwrap();
    let up = "../".repeat(deep_rel.split('/').count() - 1);
    let inputs = format!("./{up}inputs/");
    let board = format!("{up}board/./{PROFILE_FILE}");
    run.cwd(&cwd).inputs(&inputs).board(&board).out("o u t/");
    assert!(Path::new(&cwd).join(&inputs).join("extra").is_dir());
    assert_eq!(cwd.join(&board).canonicalize().unwrap(), fx.board);
    let pwd = run.build_ok("pwd");
    assert_eq!(
        Path::new(&pwd),
        cwd,
        "the build did not run in the deep directory"
    );
    assert!(cwd.components().count() > base_depth + 20);
    assert_eq!(run.out_dir(), cwd.join("o u t/"));
    case.assert_same("deep relative build directory", &run);

    // The output folder on another file system (tmpfs), when the machine lets us mount one.
    let (_, mut run) = case.variant("t", Shape { reverse: false });
    let mnt = tmpfs(&case.root().join("tmpfs-out"));
    match mnt {
        Some(m) => {
            run.out(m.path.join("out"));
            let fstype = run.build_ok(&format!("stat -f -c %T '{}'", m.path.display()));
            assert_eq!(fstype, "tmpfs");
            case.assert_same("output folder on tmpfs", &run);
        }
        None => eprintln!(
            "NOTE: could not mount a tmpfs (not root?): output-on-another-file-system case skipped"
        ),
    }
}

#[test]
fn home() {
    let case = Case::new();
    let base_home = case.base.probe("echo \"${HOME-unset}\"");
    let (_, mut run) = case.variant("h1", Shape { reverse: false });
    let other = case.root().join("h1/another home");
    fs::create_dir_all(other.join(".config")).unwrap();
    fs::write(other.join(".config/pimg.toml"), "board = 'nonsense'\n").unwrap();
    run.env("HOME", other.display().to_string());
    let seen = run.build_ok("echo \"${HOME-unset}\"");
    assert_ne!(seen, base_home);
    assert_eq!(Path::new(&seen), other);
    case.assert_same("HOME elsewhere", &run);

    let (_, mut run) = case.variant("h2", Shape { reverse: false });
    run.env_remove("HOME");
    let seen = run.build_ok("echo \"${HOME-unset}\"");
    assert_eq!(seen, "unset");
    case.assert_same("HOME unset", &run);
}

#[test]
fn input_mtimes_and_atimes() {
    let case = Case::new();
    let (fx, run) = case.variant("m", Shape { reverse: false });
    for (i, p) in walk(&fx.inputs).iter().enumerate() {
        touch(
            p,
            "-m",
            if i % 2 == 0 {
                "2031-05-06 07:08:09"
            } else {
                "1981-02-03 04:05:06"
            },
        );
        touch(p, "-a", "1999-12-31 23:59:59");
    }
    touch(&fx.inputs, "-m", "2040-01-01 00:00:00");
    for p in walk(&fx.inputs) {
        let m = fs::metadata(&p).unwrap();
        let base_m = fs::metadata(
            case.base
                .dir()
                .join("inputs")
                .join(p.strip_prefix(&fx.inputs).unwrap()),
        )
        .unwrap();
        assert_ne!(
            m.modified().unwrap(),
            base_m.modified().unwrap(),
            "{}",
            p.display()
        );
        use std::os::unix::fs::MetadataExt;
        if !p.is_dir() {
            // (Listing a directory may update its atime; files are only stat'ed here.)
            assert_eq!(m.atime(), 946_684_799, "{}", p.display());
        }
    }
    run.build_ok("true");
    case.assert_same("input mtimes and atimes", &run);
}

/// A 64 MiB tmpfs at `path`, when the machine lets us mount one.
fn tmpfs(path: &Path) -> Option<Mount> {
    Mount::tmpfs(path, "size=64m,mode=0755").ok()
}

/// Names in raw readdir order, recursively, relative to `dir`.
fn readdir_order(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.strip_prefix(dir).unwrap().display().to_string());
        if p.is_dir() {
            out.extend(
                readdir_order(&p)
                    .into_iter()
                    .map(|n| format!("{}/{n}", p.file_name().unwrap().to_string_lossy())),
            );
        }
    }
    out
}

#[test]
fn input_creation_order_and_directory_order() {
    let case = Case::new();
    // Created in the opposite order on the same kind of file system.
    let (_, run) = case.variant("rev", Shape { reverse: true });
    run.build_ok("true");
    case.assert_same("inputs created in reverse order", &run);

    // readdir order: ext4 hashes names, so creation order alone may not change it; tmpfs
    // lists newest first. Lay out both orders on tmpfs and check readdir really differs.
    let Some(m) = tmpfs(&case.root().join("tmpfs-in")) else {
        panic!("cannot mount a tmpfs to vary readdir order: run the tests as root");
    };
    let fwd = lay_out(&m.path.join("fwd"), Shape { reverse: false });
    let rev = lay_out(&m.path.join("rev"), Shape { reverse: true });
    let (of, or) = (readdir_order(&fwd.inputs), readdir_order(&rev.inputs));
    let mut sf = of.clone();
    sf.sort();
    let mut sr = or.clone();
    sr.sort();
    assert_eq!(sf, sr);
    assert_ne!(
        of, or,
        "readdir order did not differ between the two layouts"
    );
    eprintln!("readdir order A: {of:?}\nreaddir order B: {or:?}");
    for (sub, fx) in [("fwd", &fwd), ("rev", &rev)] {
        let mut run = baseline(&m.path.join(sub), fx);
        run.out(case.root().join(format!("out-{sub}")));
        run.build_ok("true");
        case.assert_same(&format!("tmpfs readdir order ({sub})"), &run);
    }
}

#[test]
fn group_and_other_permission_bits_of_inputs() {
    let case = Case::new();
    let (fx, run) = case.variant("perm", Shape { reverse: false });
    // Owner bits are kept (owner-execute is content for directory inputs); group and other
    // bits are all changed.
    for (i, p) in walk(&fx.inputs).iter().enumerate() {
        let new = if p.is_dir() {
            [0o700, 0o777, 0o751][i % 3]
        } else {
            [0o600, 0o677, 0o640, 0o666][i % 4]
        };
        chmod(p, new);
        let rel = p.strip_prefix(&fx.inputs).unwrap();
        let old = mode(&case.base.dir().join("inputs").join(rel));
        assert_eq!(old & 0o700, new & 0o700);
        assert_ne!(old, new, "{}", rel.display());
    }
    chmod(&fx.inputs, 0o700);
    run.build_ok("true");
    case.assert_same("group/other permission bits of inputs", &run);
}

/// The unprivileged user the builds run as; created once (needs root).
fn pimg_test_user() -> (u32, u32) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap();
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, "pimg-test"]).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let me = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&me.stdout).trim(),
            "0",
            "the user 'pimg-test' is missing and only root can create it: run the tests as \
             root or `useradd --system pimg-test`"
        );
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("pimg-test")
            .status()
            .expect("useradd (package passwd)");
        assert!(st.success(), "useradd --system pimg-test failed");
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// Whether every ancestor of `p` lets other users through.
fn traversable(p: &Path) -> bool {
    p.ancestors()
        .skip(1)
        .all(|a| a.as_os_str().is_empty() || mode(a) & 0o001 != 0)
}

/// Makes a case's tree usable by another user (tempdirs are 0700).
fn open_up(p: &Path) {
    for a in walk(p).into_iter().chain(std::iter::once(p.to_path_buf())) {
        let m = mode(&a);
        chmod(&a, if a.is_dir() { m | 0o755 } else { m | 0o444 });
    }
    for a in p.ancestors().skip(1) {
        if mode(a) & 0o001 == 0 {
            chmod(a, mode(a) | 0o711);
        }
    }
}

/// Wraps a run so pimg runs as `uid:gid` with no supplementary groups.
fn as_user(case: &Case, run: &mut Build, uid: u32, gid: u32) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_pimg"));
    if !traversable(&bin) {
        let copy = case.root().join("bin/pimg");
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        fs::copy(&bin, &copy).unwrap();
        eprintln!(
            "{} is not reachable by other users: using a copy",
            bin.display()
        );
        run.bin(&copy);
    }
    open_up(case.root());
    let out = run.out_dir();
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
    let home = PathBuf::from(run.env_value("HOME").unwrap());
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    run.wrap([
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
    ]);
}

#[test]
fn unprivileged_user() {
    let case = Case::new();
    assert_eq!(
        case.base.probe("id -u"),
        "0",
        "the baseline must run as root"
    );
    let (uid, gid) = pimg_test_user();
    let (_, mut run) = case.variant("user", Shape { reverse: false });
    as_user(&case, &mut run, uid, gid);
    let seen = run.build_ok("id -u; id -G");
    assert_eq!(
        seen,
        format!("{uid}\n{gid}"),
        "setpriv did not drop to pimg-test"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(run.out_dir().join("SHA256SUMS"))
            .unwrap()
            .uid(),
        uid
    );
    case.assert_same("unprivileged user pimg-test", &run);
}

/// An argv prefix that runs the rest in a new UTS namespace with hostname `name` (set while
/// still root, before any later wrapper drops privileges).
fn with_hostname(name: &str) -> Vec<String> {
    [
        "unshare",
        "-u",
        "sh",
        "-c",
        &format!("hostname {name} && exec \"$@\""),
        "sh",
    ]
    .map(String::from)
    .to_vec()
}

/// Whether this machine lets us make a UTS namespace.
fn uts_namespace_works() -> bool {
    Command::new("unshare")
        .args(["-u", "sh", "-c", "hostname pimg-probe-host"])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn hostname() {
    if !uts_namespace_works() {
        eprintln!(
            "\n*** NOT TESTED: hostname variation: `unshare -u` is not permitted here (no UTS \
             namespace). Run the tests as root on a machine that allows it. ***\n"
        );
        return;
    }
    let case = Case::new();
    let base_host = case.base.probe("hostname");
    let (_, mut run) = case.variant("host", Shape { reverse: false });
    run.wrap(with_hostname("pimg-other-host.example"));
    let seen = run.build_ok("hostname");
    assert_eq!(seen, "pimg-other-host.example");
    assert_ne!(seen, base_host);
    case.assert_same("hostname (UTS namespace)", &run);
}

#[test]
fn clock() {
    need_tool("faketime", "faketime");
    let case = Case::new();
    // Far future (after 2038 and FAT's 2107 limit is not reached by it), the epoch itself,
    // and a clock running 100 times too fast.
    for (i, (spec, year)) in [
        ("2099-06-15 12:00:00", "2099"),
        ("1970-01-02 00:00:00", "1970"),
        ("@2001-02-03 04:05:06 x100", "2001"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, mut run) = case.variant(&format!("clock{i}"), Shape { reverse: false });
        let args: Vec<String> = if let Some(rest) = spec.strip_prefix('@') {
            let (t, speed) = rest.rsplit_once(' ').unwrap();
            vec!["faketime".into(), "-f".into(), format!("@{t} {speed}")]
        } else {
            vec!["faketime".into(), spec.into()]
        };
        run.wrap(args);
        let seen = run.build_ok("date -u +%Y");
        assert_eq!(seen, year, "faketime did not change the clock for {spec}");
        case.assert_same(&format!("clock faked to {spec}"), &run);
    }
}

#[test]
fn threads_and_cpu_affinity() {
    let case = Case::new();
    let base_cpus: usize = case.base.probe("nproc").parse().unwrap();
    // gzip compresses on as many threads as pimg may use CPUs (taskset -c 0: one); neither
    // that nor a thread-pool variable may change a byte.
    let (_, mut run) = case.variant("t1", Shape { reverse: false });
    run.wrap(["taskset", "-c", "0"]);
    run.env("RAYON_NUM_THREADS", "1");
    let seen = run.build_ok("nproc; echo $RAYON_NUM_THREADS");
    assert_eq!(seen, "1\n1");
    if base_cpus == 1 {
        eprintln!("NOTE: one CPU here: taskset -c 0 does not change the CPU count");
    }
    case.assert_same("taskset -c 0, RAYON_NUM_THREADS=1", &run);

    let (_, mut run) = case.variant("t64", Shape { reverse: false });
    run.env("RAYON_NUM_THREADS", "64");
    let seen = run.build_ok("echo $RAYON_NUM_THREADS");
    assert_eq!(seen, "64");
    case.assert_same("RAYON_NUM_THREADS=64", &run);
}

#[test]
fn everything_at_once() {
    need_tool("faketime", "faketime");
    let case = Case::new();
    let (fx, mut run) = case.variant("all/deep er/dir", Shape { reverse: true });
    for (i, p) in walk(&fx.inputs).iter().enumerate() {
        touch(p, "-m", "2035-01-01 00:00:00");
        if !p.is_dir() {
            chmod(p, [0o604, 0o640][i % 2]);
        }
    }
    run.env("TZ", "Australia/Lord_Howe")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("RAYON_NUM_THREADS", "3");
    run.umask("0007");
    let (uid, gid) = pimg_test_user();
    as_user(&case, &mut run, uid, gid);
    // Outside of setpriv: faketime, taskset, then (outermost) the hostname.
    run.wrap(["faketime", "2077-07-07 07:07:07", "taskset", "-c", "0"]);
    let uts = uts_namespace_works();
    if uts {
        run.wrap(with_hostname("everything-else"));
    } else {
        eprintln!("*** NOT TESTED in everything_at_once: hostname (no UTS namespace) ***");
    }
    let seen = run.build_ok("date +%z; date +%Y; id -u; umask; nproc; hostname");
    let lines: Vec<&str> = seen.lines().collect();
    assert!(lines[0] == "+1030" || lines[0] == "+1100", "{seen}");
    assert_eq!(lines[1], "2077", "{seen}");
    assert_eq!(lines[2], uid.to_string(), "{seen}");
    assert_eq!(lines[3], "0007", "{seen}");
    assert_eq!(lines[4], "1", "{seen}");
    if uts {
        assert_eq!(lines[5], "everything-else", "{seen}");
    }
    case.assert_same("everything at once", &run);
}

#[test]
fn a_difference_is_reported_by_artifact() {
    // The suite's own failure path: a copy of the baseline with one byte changed inside the
    // image's FAT partition and one field changed in the buildinfo must be reported by name.
    let case = Case::new();
    let copy = case.root().join("tampered");
    let st = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(case.base.out_dir())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(copy.join("rpi3b.img"))
            .unwrap();
        f.seek(SeekFrom::Start((4 << 20) + 3)).unwrap();
        f.write_all(b"X").unwrap();
    }
    let info = fs::read_to_string(copy.join("rpi3b.buildinfo.json")).unwrap();
    fs::write(
        copy.join("rpi3b.buildinfo.json"),
        info.replacen("\"source_date_epoch\": ", "\"source_date_epoch\": 1", 1),
    )
    .unwrap();
    let base = case.base.out_dir();
    let err = std::panic::catch_unwind(|| assert_identical("tampered copy", &base, &copy))
        .expect_err("a tampered copy passed as identical");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("=== artifact rpi3b.img differs ==="), "{msg}");
    assert!(
        msg.contains("=== artifact rpi3b.buildinfo.json differs ==="),
        "{msg}"
    );
    assert!(!msg.contains("artifact rpi3b.tar.gz"), "{msg}");
    if !pimg_has_diff() {
        assert!(
            msg.contains("cmp -l") && msg.contains("source_date_epoch"),
            "{msg}"
        );
    }
    eprintln!("the report the suite prints on a difference:\n{msg}");
}

#[test]
fn real_inputs_as_another_user_on_another_clock() {
    // One real-input case (xz and zstd data members, real modules): the variations the
    // fixture cases cover one by one, at once. tests/real_rpi3b.rs covers TZ, locale,
    // umask, paths and input mtimes for the real inputs.
    need_tool("faketime", "faketime");
    let inputs = real_inputs();
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture {
        root: tmp.path().to_path_buf(),
        inputs: inputs.clone(),
        board: PathBuf::from("rpi3b"),
    };
    let base_root = tmp.path().join("base");
    fs::create_dir_all(&base_root).unwrap();
    let base = baseline(&base_root, &fx);
    base.build_ok("true");
    let case = Case { tmp, base };
    let var_root = case.root().join("var/a b");
    fs::create_dir_all(&var_root).unwrap();
    let mut run = baseline(&var_root, &fx);
    let (uid, gid) = pimg_test_user();
    assert!(
        traversable(&inputs.join("x")),
        "{} is not readable by other users",
        inputs.display()
    );
    as_user(&case, &mut run, uid, gid);
    run.env("TZ", "America/St_Johns")
        .env("RAYON_NUM_THREADS", "1");
    run.umask("077");
    // Outside of setpriv: faketime, taskset, then (outermost) the hostname.
    run.wrap(["faketime", "2100-02-28 23:59:59", "taskset", "-c", "0"]);
    if uts_namespace_works() {
        run.wrap(with_hostname("real-other-host"));
    }
    let seen = run.build_ok("id -u; date +%Y; nproc; umask");
    assert_eq!(seen, format!("{uid}\n2100\n1\n0077"));
    case.assert_same(
        "real inputs: pimg-test, faketime 2100, 1 CPU, St_Johns, umask 077",
        &run,
    );
}
