//! Opening what the readers read: a file named on the command line, or one a published
//! folder names (SHA256SUMS, a buildinfo's outputs and inputs). Everything a stranger
//! publishes is hostile, so a name from a folder must stay inside it (relative, no `..`, no
//! symbolic link on the way or at the end) and every file must be a regular file: a FIFO or
//! a device would block or never end. Files are opened non-blocking and checked with
//! `fstat` on the open descriptor, so what is checked is what is read.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a name from a published folder is refused, or `None` for a plain relative path.
pub fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.contains('\0') {
        return Some("is empty or holds a NUL byte");
    }
    let path = Path::new(name);
    if path.is_absolute() {
        return Some("is an absolute path; a published folder may name only its own files");
    }
    let odd_part = name
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..");
    if odd_part
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Some(
            "has '..', '.' or empty parts; a published folder may name only its own files",
        );
    }
    None
}

/// `dir/name` for a name a published folder gives: refused when the name is not a plain
/// relative path or a folder on its way is a symbolic link (or not a folder).
pub fn inside(dir: &Path, name: &str) -> io::Result<PathBuf> {
    if let Some(why) = bad_name(name) {
        return Err(refused(format!("the name {name:?} {why}")));
    }
    let mut at = dir.to_path_buf();
    let parts: Vec<&str> = name.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at)?;
        if !meta.is_dir() {
            return Err(refused(format!(
                "{} is a symbolic link or not a folder; a published folder's names must stay inside it",
                at.display()
            )));
        }
    }
    at.push(parts[parts.len() - 1]);
    Ok(at)
}

/// Opens a file the user named (links followed) when it is a regular file.
pub fn regular(path: &Path) -> io::Result<File> {
    open(path, true)
}

/// Opens `dir/name` for a name a published folder gives (see [`inside`]); the file itself
/// must not be a symbolic link.
pub fn in_folder(dir: &Path, name: &str) -> io::Result<File> {
    open(&inside(dir, name)?, false)
}

/// Reads a whole text file of at most `cap` bytes that the user or a folder named.
pub fn read_text(f: File, cap: u64, path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    f.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(refused(format!(
            "{} is larger than the {cap} bytes a pimg text file can be",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|_| refused(format!("{} is not UTF-8 text", path.display())))
}

/// The buildinfo beside an image (`x.img` → `x.buildinfo.json`), when it is a regular file
/// that parses; it only names the board, so anything else is as if it were absent.
pub fn read_buildinfo_beside(image: &Path) -> Option<crate::artifact::buildinfo::Buildinfo> {
    let path = image.with_extension("buildinfo.json");
    let text = read_text(regular(&path).ok()?, 16 << 20, &path).ok()?;
    crate::artifact::buildinfo::Buildinfo::parse(&text).ok()
}

fn open(path: &Path, follow: bool) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    let file = {
        use rustix::fs::{Mode, OFlags};
        let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::LOOP) if !follow => {
                return Err(refused(format!(
                    "{} is a symbolic link; a published folder's names must be its own files",
                    path.display()
                )))
            }
            Err(e) => return Err(e.into()),
        }
    };
    #[cfg(not(target_os = "linux"))]
    let file = {
        let _ = follow;
        File::open(path)?
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused(format!(
            "{} is not a regular file (a folder, FIFO, socket or device); pimg reads files only",
            path.display()
        )));
    }
    Ok(file)
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
// The tests make their own files, FIFOs and links.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_folder_stay_inside_it() {
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\0b",
        ] {
            assert!(bad_name(bad).is_some(), "{bad:?} accepted");
        }
        for good in ["rpi3b.img", "sub/file.txt", "..hidden", "a..b"] {
            assert_eq!(bad_name(good), None, "{good:?} refused");
        }
    }

    #[test]
    fn only_regular_files_inside_the_folder_are_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("file"), b"x").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/inner"), b"y").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("link")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("dirlink")).unwrap();
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(in_folder(d, "file").is_ok());
        assert!(in_folder(d, "sub/inner").is_ok());
        for (name, words) in [
            ("link", "symbolic link"),
            ("dirlink/inner", "symbolic link or not a folder"),
            ("fifo", "not a regular file"),
            ("sub", "not a regular file"),
            ("/etc/hostname", "absolute path"),
        ] {
            let e = in_folder(d, name).unwrap_err().to_string();
            assert!(e.contains(words), "{name}: {e}");
        }
        // A FIFO or a device named on the command line is refused, not read for ever.
        assert!(regular(&fifo)
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
        assert!(regular(Path::new("/dev/zero")).is_err());
        assert!(regular(&d.join("link")).is_ok() || !Path::new("/etc/hostname").is_file());
    }
}
