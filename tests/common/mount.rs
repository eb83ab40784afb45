//! File systems mounted for one test (needs root) and unmounted, lazily, when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Ran;

/// A mounted file system at `path`.
pub struct Mount {
    pub path: PathBuf,
}

/// Runs `mount` with `args` and then `path`s; its report when it fails.
fn mount(args: &[&str], paths: &[&Path]) -> Result<(), String> {
    let mut c = Command::new("mount");
    c.args(args).args(paths);
    let o = Ran::of(&mut c, PathBuf::new());
    if o.success() {
        Ok(())
    } else {
        Err(o.report())
    }
}

impl Mount {
    /// A tmpfs at `path` (created) with mount options `options` (such as `size=64m`).
    pub fn tmpfs(path: &Path, options: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(path).unwrap();
        mount(&["-t", "tmpfs", "-o", options, "tmpfs"], &[path])?;
        Ok(Mount {
            path: path.to_path_buf(),
        })
    }

    /// Changes the mount options (`size=…`) in place.
    pub fn remount(&self, options: &str) -> Result<(), String> {
        mount(&["-o", &format!("remount,{options}")], &[&self.path])
    }

    /// A read-only bind mount of `path` onto itself.
    pub fn read_only_bind(path: &Path) -> Result<Mount, String> {
        mount(&["--bind"], &[path, path])?;
        let m = Mount {
            path: path.to_path_buf(),
        };
        mount(&["-o", "remount,bind,ro"], &[path])?;
        Ok(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
