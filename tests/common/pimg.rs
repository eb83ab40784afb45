//! Running the pimg binary: `Build` for `pimg build` and `pimg lock` with everything a test
//! varies about them, `run` for the other subcommands, and `Ran`, what a run gave back.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use super::{assert_nothing_published, need_tool, release_inputs, Release};

/// The pimg binary under test.
pub fn pimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pimg"))
}

/// Runs pimg with `args` in `cwd`, without the caller's SOURCE_DATE_EPOCH, plus `envs`.
pub fn run(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Ran {
    let mut c = pimg();
    c.current_dir(cwd)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    Ran::of(&mut c, PathBuf::new())
}

/// The options of `pimg build` a `Build` sets, in the order it passes them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Opt {
    Board,
    Table,
    Inputs,
    Out,
    Overlay,
}

impl Opt {
    fn flag(self) -> &'static str {
        match self {
            Opt::Board => "--board",
            Opt::Table => "--table",
            Opt::Inputs => "--inputs",
            Opt::Out => "--out",
            Opt::Overlay => "--overlay",
        }
    }
}

/// One `pimg build` (or `pimg lock`): its options, environment, umask, working directory and
/// the commands it runs under (faketime, setpriv, strace…). The caller's SOURCE_DATE_EPOCH
/// never leaks in: without `epoch` the build derives its own.
#[derive(Clone)]
pub struct Build {
    subcommand: &'static str,
    bin: PathBuf,
    cwd: Option<PathBuf>,
    /// pimg's options that take a value (`--board`, `--out`…), in pimg's order.
    options: BTreeMap<Opt, OsString>,
    args: Vec<OsString>,
    /// Variables to set (Some) or to remove (None).
    env: BTreeMap<OsString, Option<OsString>>,
    clear_env: bool,
    umask: Option<String>,
    prelude: Option<String>,
    wrapper: Vec<OsString>,
}

/// The input cache the tests' builds share, under cargo's target folder.
pub fn test_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pimg-cache")
}

impl Default for Build {
    fn default() -> Build {
        Build::new()
    }
}

impl Build {
    /// `pimg build` with pimg's defaults (board rpi3b, inputs `inputs`, no `--out`).
    pub fn new() -> Build {
        Build::subcommand("build")
    }

    /// `pimg lock`, which takes the same board, inputs and environment as a build.
    pub fn lock() -> Build {
        Build::subcommand("lock")
    }

    /// `pimg build --board BOARD` from the real Debian 13 inputs (see `real_inputs`).
    pub fn real(board: &str) -> Build {
        Build::release(board, Release::Debian13)
    }

    /// `pimg build --board BOARD` from one release's real inputs.
    pub fn release(board: &str, release: Release) -> Build {
        let mut b = Build::new();
        b.board(board).inputs(release_inputs(release));
        b
    }

    fn subcommand(subcommand: &'static str) -> Build {
        Build {
            subcommand,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_pimg")),
            cwd: None,
            options: BTreeMap::new(),
            args: Vec::new(),
            // One input cache for every test's builds: the first build of an input fills it,
            // the rest read from it, as a release engineer's builds do.
            env: BTreeMap::from([
                ("SOURCE_DATE_EPOCH".into(), None),
                ("PIMG_CACHE".into(), Some(test_cache().into())),
            ]),
            clear_env: false,
            umask: None,
            prelude: None,
            wrapper: Vec::new(),
        }
    }

    fn option(&mut self, option: Opt, value: impl AsRef<OsStr>) -> &mut Build {
        self.options.insert(option, value.as_ref().into());
        self
    }

    pub fn board(&mut self, board: impl AsRef<OsStr>) -> &mut Build {
        self.option(Opt::Board, board)
    }

    /// `--table`.
    pub fn table(&mut self, table: &str) -> &mut Build {
        self.option(Opt::Table, table)
    }

    pub fn inputs(&mut self, inputs: impl AsRef<OsStr>) -> &mut Build {
        self.option(Opt::Inputs, inputs)
    }

    /// `--out`, relative to the working directory unless absolute.
    pub fn out(&mut self, out: impl AsRef<Path>) -> &mut Build {
        self.option(Opt::Out, out.as_ref())
    }

    pub fn overlay(&mut self, overlay: impl AsRef<OsStr>) -> &mut Build {
        self.option(Opt::Overlay, overlay)
    }

    /// SOURCE_DATE_EPOCH.
    pub fn epoch(&mut self, epoch: &str) -> &mut Build {
        self.env("SOURCE_DATE_EPOCH", epoch)
    }

    pub fn cwd(&mut self, cwd: impl AsRef<Path>) -> &mut Build {
        self.cwd = Some(cwd.as_ref().into());
        self
    }

    /// Arguments after the options above.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Build {
        self.args.push(arg.as_ref().into());
        self
    }

    pub fn args<S: AsRef<OsStr>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Build {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Build {
        self.env.insert(key.into(), Some(value.as_ref().into()));
        self
    }

    pub fn env_remove(&mut self, key: &str) -> &mut Build {
        self.env.insert(key.into(), None);
        self
    }

    /// Starts from an empty environment: only the variables given with `env` reach pimg.
    pub fn env_clear(&mut self) -> &mut Build {
        self.clear_env = true;
        self
    }

    /// The umask pimg starts with (set by the shell that then execs pimg).
    pub fn umask(&mut self, umask: &str) -> &mut Build {
        self.umask = Some(umask.into());
        self
    }

    /// Shell commands run in the very shell that then execs pimg (after the umask).
    pub fn prelude(&mut self, script: &str) -> &mut Build {
        self.prelude = Some(script.into());
        self
    }

    /// Runs pimg under `prefix` (an argv such as `faketime 2099-01-01`), outside of any
    /// prefix given before.
    pub fn wrap<S: AsRef<OsStr>>(&mut self, prefix: impl IntoIterator<Item = S>) -> &mut Build {
        let mut argv: Vec<OsString> = prefix.into_iter().map(|a| a.as_ref().into()).collect();
        argv.append(&mut self.wrapper);
        self.wrapper = argv;
        self
    }

    /// Another pimg binary (a copy other users can reach).
    pub fn bin(&mut self, bin: impl AsRef<Path>) -> &mut Build {
        self.bin = bin.as_ref().into();
        self
    }

    /// The working directory (the test's own when none was given).
    pub fn dir(&self) -> PathBuf {
        self.cwd.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The output folder the build writes: `--out` against the working directory.
    pub fn out_dir(&self) -> PathBuf {
        let out = self.options.get(&Opt::Out).expect("the build has no --out");
        self.dir().join(out)
    }

    /// The value a variable will have for pimg, when this build sets it.
    pub fn env_value(&self, key: &str) -> Option<&OsStr> {
        self.env.get(OsStr::new(key))?.as_deref()
    }

    /// pimg's own arguments.
    fn pimg_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.subcommand.into()];
        for (option, value) in &self.options {
            a.push(option.flag().into());
            a.push(value.clone());
        }
        a.extend(self.args.iter().cloned());
        a
    }

    /// A command for `argv` under the wrapper, in this build's directory and environment.
    fn wrapped(&self, argv: Vec<OsString>) -> Command {
        let argv: Vec<OsString> = self.wrapper.iter().cloned().chain(argv).collect();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).stdin(Stdio::null());
        if let Some(cwd) = &self.cwd {
            c.current_dir(cwd);
        }
        if self.clear_env {
            c.env_clear();
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    fn umask_line(&self) -> String {
        self.umask
            .as_ref()
            .map(|m| format!("umask {m}\n"))
            .unwrap_or_default()
    }

    /// The command that runs this build (not yet started).
    pub fn command(&self) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if self.umask.is_some() || self.prelude.is_some() {
            let prelude = self
                .prelude
                .as_ref()
                .map(|p| format!("{p}\n"))
                .unwrap_or_default();
            let script = format!("{}{prelude}exec \"$0\" \"$@\"", self.umask_line());
            argv.extend(["sh".into(), "-c".into(), script.into()]);
        }
        argv.push(self.bin.clone().into());
        argv.extend(self.pimg_args());
        self.wrapped(argv)
    }

    /// `script` run by sh exactly where pimg would run: same wrapper, directory, environment
    /// and umask.
    pub fn shell(&self, script: &str) -> Command {
        let script = format!("{}{script}", self.umask_line());
        self.wrapped(vec!["sh".into(), "-c".into(), script.into()])
    }

    fn ran_out(&self) -> PathBuf {
        match self.options.contains_key(&Opt::Out) {
            true => self.out_dir(),
            false => PathBuf::new(),
        }
    }

    /// Runs the build to its end.
    pub fn run(&self) -> Ran {
        Ran::of(&mut self.command(), self.ran_out())
    }

    /// Runs the build and fails the test unless it succeeds; its output folder.
    pub fn built(&self) -> PathBuf {
        self.expect_success().out
    }

    /// Runs it and fails the test unless it succeeds.
    pub fn expect_success(&self) -> Ran {
        self.run().expect_success()
    }

    /// Runs the build and fails the test unless it is refused (see `Ran::expect_refused`).
    pub fn expect_refused(&self, words: &[&str]) -> Ran {
        self.run().expect_refused(words)
    }

    /// Starts the build, its stdout and stderr captured.
    pub fn spawn(&self) -> Running {
        let mut c = self.command();
        let what = command_line(&c);
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Running {
            child,
            what,
            out: self.ran_out(),
        }
    }
}

/// What a run of pimg (or of a referee tool) gave back.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub what: String,
    /// A build's output folder (`--out` against its working directory); empty for other
    /// commands.
    pub out: PathBuf,
}

impl Ran {
    /// Runs `c` to its end.
    pub fn of(c: &mut Command, out: PathBuf) -> Ran {
        let what = command_line(c);
        let o = c
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Ran::from_output(what, o, out)
    }

    pub fn from_output(what: String, o: Output, out: PathBuf) -> Ran {
        Ran {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            what,
            out,
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout, then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Everything about the run, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "{} ({}):\nstdout:\n{}\nstderr:\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// Fails the test unless the run exited 0.
    pub fn expect_success(self) -> Ran {
        assert!(self.success(), "failed: {}", self.report());
        self
    }

    /// Fails the test unless the run failed with exit status `code`.
    pub fn expect_failure(self, code: i32) -> Ran {
        assert!(
            !self.success(),
            "expected failure, got success: {}",
            self.report()
        );
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit status {code}: {}",
            self.report()
        );
        self
    }

    /// Fails the test unless stderr holds every one of `words`.
    pub fn expect_stderr(&self, words: &[&str]) -> &Ran {
        for w in words {
            assert!(self.stderr.contains(w), "no {w:?} in {}", self.report());
        }
        self
    }

    /// A build refused as input the user must fix: exit 2, every one of `words` in the
    /// message, and nothing published at the output folder.
    pub fn expect_refused(self, words: &[&str]) -> Ran {
        let r = self.expect_failure(2);
        for w in words {
            assert!(
                r.stderr.contains(w),
                "{}: expected {w:?} in:\n{}",
                r.what,
                r.stderr
            );
        }
        assert!(!r.out.as_os_str().is_empty(), "{}: no --out", r.what);
        assert_nothing_published(&r.out, &r.what);
        r
    }
}

/// A command as a shell would spell it, for messages.
pub fn command_line(c: &Command) -> String {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A build started with `Build::spawn`, its output captured.
pub struct Running {
    pub child: Child,
    what: String,
    out: PathBuf,
}

impl Running {
    /// Waits for the build to end.
    pub fn wait(self) -> Ran {
        let o = self.child.wait_with_output().unwrap();
        Ran::from_output(self.what, o, self.out)
    }
}

/// Peak resident memory (KiB) of `pimg args`, as /usr/bin/time measures it, and its run.
pub fn peak_kib(cwd: &Path, args: &[&str]) -> (u64, Ran) {
    let mut c = std::process::Command::new(need_tool("time", "time"));
    c.args(["-f", "peak-kib %M"])
        .arg(need_tool("timeout", "coreutils"))
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_pimg"))
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    let r = Ran::of(&mut c, PathBuf::new());
    let kib = r
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-kib "))
        .and_then(|k| k.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from /usr/bin/time: {}", r.report()));
    (kib, r)
}
