//! Independent tools as referees (fsck.vfat, mtools, sfdisk, cpio, busybox, gzip, tar…). A
//! missing tool fails the test with the Debian package that brings it: these checks are the
//! point of the tests that use them, so they are never skipped.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{command_line, Ran};

/// Where `tool` is: on PATH, or in the sbin folders a non-root PATH may lack.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// `tool`'s path; fails the test saying how to install it (`how`, a command) when missing.
pub fn need_tool_from(tool: &str, how: &str) -> PathBuf {
    find_tool(tool).unwrap_or_else(|| {
        panic!("the referee tool '{tool}' is missing: run `sudo qemu/setup.sh` or {how}")
    })
}

/// `tool`'s path; fails the test naming the Debian `package` to install when missing.
pub fn need_tool(tool: &str, package: &str) -> PathBuf {
    need_tool_from(tool, &format!("`apt-get install {package}`"))
}

/// A referee tool to run, from the Debian `package` (checked before anything runs).
pub fn referee(tool: &str, package: &str) -> Referee {
    Referee::at(need_tool(tool, package))
}

/// A referee tool to run that `how` installs (checked before anything runs).
pub fn referee_from(tool: &str, how: &str) -> Referee {
    Referee::at(need_tool_from(tool, how))
}

/// `script` run by sh in `dir`; its exit status is the caller's to judge.
pub fn shell(dir: &Path, script: &str) -> Ran {
    Referee::at("sh").args(["-c", script]).cwd(dir).output()
}

/// A referee tool with its arguments, directory, environment and standard input.
pub struct Referee {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Referee {
    fn at(program: impl AsRef<OsStr>) -> Referee {
        Referee {
            cmd: Command::new(program),
            stdin: None,
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Referee {
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Referee {
        self.cmd.args(args);
        self
    }

    pub fn cwd(&mut self, dir: &Path) -> &mut Referee {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut Referee {
        self.cmd.env(key, value);
        self
    }

    /// Bytes fed to the tool's standard input (none by default).
    pub fn stdin(&mut self, data: &[u8]) -> &mut Referee {
        self.stdin = Some(data.to_vec());
        self
    }

    fn raw(&mut self) -> (String, Output) {
        let what = command_line(&self.cmd);
        let mut child = self
            .cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let writer = self.stdin.clone().map(|data| {
            let mut input = child.stdin.take().unwrap();
            std::thread::spawn(move || input.write_all(&data))
        });
        let out = child.wait_with_output().unwrap();
        if let Some(w) = writer {
            w.join().unwrap().ok();
        }
        (what, out)
    }

    /// Runs the tool, echoing what it printed to the test's stderr; its exit status is the
    /// caller's to judge.
    pub fn output(&mut self) -> Ran {
        let (what, out) = self.raw();
        let ran = Ran::from_output(what, out, PathBuf::new());
        eprintln!("$ {}\n{}", ran.what, ran.text());
        ran
    }

    /// Runs the tool and fails the test unless it exits 0.
    pub fn run(&mut self) -> Ran {
        self.output().expect_success()
    }

    /// Runs the tool and fails the test unless it exits 0; the bytes it wrote to stdout.
    pub fn bytes(&mut self) -> Vec<u8> {
        let (what, out) = self.raw();
        if !out.status.success() {
            Ran::from_output(what, out.clone(), PathBuf::new()).expect_success();
        }
        out.stdout
    }
}
