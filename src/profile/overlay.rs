//! Overlays (`overlays/<name>/`) and the apkovl built from them.
//!
//! Git carries neither owners nor most modes, so an overlay's `.attributes` file states them;
//! everything else is root:root, 0644 (0755 when owner-executable) and 0755 for directories.
//! This module and `inputs` are the only ones that read directories.

use crate::codec::archive;
use crate::codec::gzip::read::GzipReader;
use crate::codec::tar::read as tar;
use crate::digest::hex;
use crate::profile::embedded::{EmbeddedKind, OVERLAYS};
use crate::tree::{Node, NodeKind, Tree, TreeError, TreePath};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::Path;

/// The name of the attributes file at the top of an overlay.
pub const ATTRIBUTES_FILE: &str = ".attributes";

/// Most bytes an overlay's files may hold together. Alpine unpacks the apkovl into the
/// booted system's RAM, so an overlay is configuration, not payload; the limit also keeps a
/// sparse or huge file from being read into memory (sizes are checked before reading).
pub const MAX_OVERLAY_BYTES: u64 = 64 << 20;

/// A loaded overlay: its tree with final modes and owners, and the host name it sets.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The overlay's name (its directory name).
    pub name: String,
    /// `embedded:<name>` or the directory given.
    pub origin: String,
    pub tree: Tree,
    /// From `etc/hostname`; names the apkovl file.
    pub hostname: String,
}

/// An overlay that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("unknown overlay '{name}': shipped overlays are {known}; or pass a directory")]
    Unknown { name: String, known: String },
    #[error("overlay {origin}: cannot read {path}: {source}")]
    Read {
        origin: String,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "overlay {origin}: {path} is a {what}; overlays hold files, directories and symlinks only"
    )]
    Unsupported {
        origin: String,
        path: String,
        what: &'static str,
    },
    #[error(
        "overlay {origin}: {path} brings its files to {total} bytes, more than the {limit} an \
         overlay may hold (Alpine unpacks the apkovl into RAM); put large files in a package or \
         on the boot partition"
    )]
    TooLarge {
        origin: String,
        path: String,
        total: u64,
        limit: u64,
    },
    #[error("overlay {origin}: {path}: file names must be UTF-8")]
    NotUtf8 { origin: String, path: String },
    #[error("overlay {origin}: {file} line {line}: {message}")]
    Attributes {
        origin: String,
        file: String,
        line: usize,
        message: String,
    },
    #[error("overlay {origin}: {source}")]
    Tree { origin: String, source: TreeError },
    #[error("overlay {origin}: {source}")]
    BadPath {
        origin: String,
        source: crate::tree::PathError,
    },
    #[error("overlay {origin}: {path} is a {what}; it must be a regular file, as {why}")]
    NotAFile {
        origin: String,
        path: &'static str,
        what: &'static str,
        why: &'static str,
    },
    #[error(
        "overlay {origin}: etc/hostname is missing or empty; the apkovl is named after the host"
    )]
    NoHostname { origin: String },
    #[error("overlay {origin}: etc/hostname '{hostname}' is not a valid host name (letters, digits, '-', '.')")]
    BadHostname { origin: String, hostname: String },
    #[error("apkovl {origin}: {source}; it is not an apkovl pimg wrote")]
    Apkovl {
        origin: String,
        #[source]
        source: crate::codec::reader::ReadError,
    },
    #[error("overlay {origin}: building the apkovl failed: {source}")]
    Archive {
        origin: String,
        source: archive::ArchiveError,
    },
}

/// Loads a shipped overlay by name, or a directory when `spec` contains a `/` or exists.
pub fn load(spec: &str) -> Result<Overlay, OverlayError> {
    let as_dir = Path::new(spec);
    if spec.contains('/') || as_dir.is_dir() {
        return from_dir(as_dir);
    }
    shipped(spec).unwrap_or_else(|| {
        Err(OverlayError::Unknown {
            name: spec.to_string(),
            known: OVERLAYS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
    })
}

/// The shipped overlay of that name, if there is one (nothing is read from disk).
pub fn shipped(name: &str) -> Option<Result<Overlay, OverlayError>> {
    let (name, entries) = OVERLAYS.iter().find(|(n, _)| *n == name)?;
    let origin = format!("overlays/{name}");
    let mut raw = Vec::new();
    for e in entries.iter() {
        let kind = match e.kind {
            EmbeddedKind::File(bytes, exec) => RawKind::File(bytes.to_vec(), exec),
            EmbeddedKind::Dir => RawKind::Dir,
            EmbeddedKind::Symlink(t) => RawKind::Symlink(t.to_string()),
        };
        raw.push((e.path.to_string(), kind));
    }
    Some(assemble(name, origin, raw))
}

/// The overlay an apkovl holds, as the build that wrote it had it: every entry's path, type,
/// mode, owner and content (the apkovl is that tree, written in tree order). `origin` names
/// the apkovl in errors; `name` is the overlay's recorded name. The apkovl may come from
/// anywhere: its decompressed size is capped, and only files, directories and symlinks at
/// relative paths without `..` are taken.
pub fn from_apkovl(bytes: &[u8], origin: &str, name: &str) -> Result<Overlay, OverlayError> {
    // The overlay's limit on file bytes plus room for one header and padding per entry.
    const LIMIT: u64 = MAX_OVERLAY_BYTES + (16 << 20);
    let unreadable = |source| OverlayError::Apkovl {
        origin: origin.to_string(),
        source,
    };
    let gz = GzipReader::new(bytes, LIMIT).map_err(unreadable)?;
    let mut tree = Tree::new();
    let mut refused: Option<OverlayError> = None;
    let mut total = 0u64;
    let end = tar::read(gz, |entry, data| {
        if refused.is_some() {
            return Ok(());
        }
        let path = match TreePath::from_archive(&entry.path) {
            Ok(p) => p,
            Err(source) => {
                refused = Some(OverlayError::BadPath {
                    origin: origin.to_string(),
                    source,
                });
                return Ok(());
            }
        };
        let kind = match entry.typeflag {
            b'0' | 0 => {
                total += entry.size;
                if total > MAX_OVERLAY_BYTES {
                    refused = Some(OverlayError::TooLarge {
                        origin: origin.to_string(),
                        path: entry.path.clone(),
                        total,
                        limit: MAX_OVERLAY_BYTES,
                    });
                    return Ok(());
                }
                let mut content = Vec::new();
                data.take(entry.size)
                    .read_to_end(&mut content)
                    .map_err(|e| crate::codec::reader::ReadError::Io {
                        what: "apkovl member".into(),
                        offset: entry.data_offset,
                        source: e,
                    })?;
                NodeKind::File(content.into())
            }
            b'5' => NodeKind::Dir,
            b'2' => NodeKind::Symlink(entry.link_name.clone()),
            _ => {
                refused = Some(OverlayError::Unsupported {
                    origin: origin.to_string(),
                    path: entry.path.clone(),
                    what: entry.kind(),
                });
                return Ok(());
            }
        };
        let node = Node {
            kind,
            mode: (entry.mode & 0o7777) as u32,
            uid: entry.uid.min(u64::from(u32::MAX)) as u32,
            gid: entry.gid.min(u64::from(u32::MAX)) as u32,
        };
        if let Err(source) = tree.insert(path, node, origin) {
            refused = Some(OverlayError::Tree {
                origin: origin.to_string(),
                source,
            });
        }
        Ok(())
    });
    if let Some(e) = refused {
        return Err(e);
    }
    end.map_err(unreadable)?;
    finish(name, origin.to_string(), tree)
}

enum RawKind {
    File(Vec<u8>, bool),
    Dir,
    Symlink(String),
}

fn from_dir(dir: &Path) -> Result<Overlay, OverlayError> {
    let origin = dir.display().to_string();
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| origin.clone());
    let mut raw = Vec::new();
    let mut total = 0;
    walk(dir, dir, &origin, &mut raw, &mut total)?;
    assemble(&name, origin, raw)
}

fn walk(
    base: &Path,
    dir: &Path,
    origin: &str,
    out: &mut Vec<(String, RawKind)>,
    total: &mut u64,
) -> Result<(), OverlayError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |p: &Path, source| OverlayError::Read {
        origin: origin.to_string(),
        path: p.display().to_string(),
        source,
    };
    for child in crate::tree::sorted_children(dir).map_err(|e| read_err(dir, e))? {
        let rel = child.strip_prefix(base).expect("child of base");
        let rel = rel.to_str().ok_or_else(|| OverlayError::NotUtf8 {
            origin: origin.to_string(),
            path: rel.display().to_string(),
        })?;
        let meta = fs::symlink_metadata(&child).map_err(|e| read_err(&child, e))?;
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            let target = fs::read_link(&child).map_err(|e| read_err(&child, e))?;
            let target = target.to_str().ok_or_else(|| OverlayError::NotUtf8 {
                origin: origin.to_string(),
                path: rel.to_string(),
            })?;
            RawKind::Symlink(target.to_string())
        } else if ft.is_dir() {
            walk(base, &child, origin, out, total)?;
            RawKind::Dir
        } else if ft.is_file() {
            *total = total.saturating_add(meta.len());
            if *total > MAX_OVERLAY_BYTES {
                return Err(OverlayError::TooLarge {
                    origin: origin.to_string(),
                    path: rel.to_string(),
                    total: *total,
                    limit: MAX_OVERLAY_BYTES,
                });
            }
            let data = read_at_most(&child, meta.len()).map_err(|e| read_err(&child, e))?;
            RawKind::File(data, meta.permissions().mode() & 0o100 != 0)
        } else {
            return Err(OverlayError::Unsupported {
                origin: origin.to_string(),
                path: rel.to_string(),
                what: "device, FIFO or socket",
            });
        };
        out.push((rel.to_string(), kind));
    }
    Ok(())
}

/// The file's bytes, no more than the `len` its metadata gave (a file growing meanwhile is
/// an error, not a larger read).
fn read_at_most(path: &Path, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::with_capacity(len as usize);
    fs::File::open(path)?.take(len + 1).read_to_end(&mut data)?;
    if data.len() as u64 > len {
        return Err(std::io::Error::other("it grew while pimg read it"));
    }
    Ok(data)
}

fn assemble(
    name: &str,
    origin: String,
    raw: Vec<(String, RawKind)>,
) -> Result<Overlay, OverlayError> {
    let mut tree = Tree::new();
    let mut attributes = None;
    let tree_err = |source| OverlayError::Tree {
        origin: origin.clone(),
        source,
    };
    for (path, kind) in raw {
        // What a folder named .attributes holds is not looked at: the folder itself is
        // refused below (its entry comes after its children's).
        if path.starts_with(".attributes/") {
            continue;
        }
        if path == ATTRIBUTES_FILE {
            let what = match kind {
                RawKind::File(data, _) => {
                    attributes = Some(data);
                    continue;
                }
                RawKind::Dir => "directory",
                RawKind::Symlink(_) => "symlink",
            };
            return Err(OverlayError::NotAFile {
                origin,
                path: ATTRIBUTES_FILE,
                what,
                why: "it states the owners and modes of the overlay's files",
            });
        }
        let tp = TreePath::new(&path).map_err(|source| OverlayError::BadPath {
            origin: origin.clone(),
            source,
        })?;
        let node = match kind {
            RawKind::File(data, exec) => Node::file(data, if exec { 0o755 } else { 0o644 }),
            RawKind::Dir => Node::dir(0o755),
            RawKind::Symlink(t) => Node::symlink(t),
        };
        tree.insert(tp, node, &origin).map_err(tree_err)?;
    }
    if let Some(data) = attributes {
        apply_attributes(&mut tree, &data, &origin)?;
    }
    finish(name, origin, tree)
}

/// The overlay of a finished tree: its host name from `etc/hostname`, checked.
fn finish(name: &str, origin: String, tree: Tree) -> Result<Overlay, OverlayError> {
    let hostname = match tree.get(&TreePath::new("etc/hostname").expect("valid")) {
        Some(Node {
            kind: NodeKind::File(d),
            ..
        }) => String::from_utf8_lossy(d)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Some(other) => {
            return Err(OverlayError::NotAFile {
                origin,
                path: "etc/hostname",
                what: match other.kind {
                    NodeKind::Symlink(_) => "symlink",
                    NodeKind::Dir => "directory",
                    _ => "device node",
                },
                why: "the apkovl is named after the host it holds",
            })
        }
        None => String::new(),
    };
    if hostname.is_empty() {
        return Err(OverlayError::NoHostname { origin });
    }
    let valid = hostname.len() <= 253
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !hostname.starts_with(['-', '.']);
    if !valid {
        return Err(OverlayError::BadHostname { origin, hostname });
    }
    Ok(Overlay {
        name: name.to_string(),
        origin,
        tree,
        hostname,
    })
}

/// Applies `PATH MODE UID GID` lines; every named path must exist.
fn apply_attributes(tree: &mut Tree, data: &[u8], origin: &str) -> Result<(), OverlayError> {
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.lines().enumerate() {
        let bad = |message: String| OverlayError::Attributes {
            origin: origin.to_string(),
            file: ATTRIBUTES_FILE.to_string(),
            line: i + 1,
            message,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [path, mode, uid, gid] = fields[..] else {
            return Err(bad(
                "expected PATH MODE UID GID, e.g. 'etc/shadow 0640 0 42'".into(),
            ));
        };
        let tp = TreePath::new(path).map_err(|e| bad(e.to_string()))?;
        let mode = u32::from_str_radix(mode, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| bad(format!("mode '{mode}' is not an octal mode like 0640")))?;
        let id = |what: &str, text: &str| -> Result<u32, OverlayError> {
            match text.parse::<u32>() {
                Ok(v) => Ok(v),
                Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Err(bad(
                    format!("{what} {text} is out of range (0 to {})", u32::MAX),
                )),
                Err(_) => Err(bad(format!("{what} '{text}' is not a number"))),
            }
        };
        let uid = id("uid", uid)?;
        let gid = id("gid", gid)?;
        let node = tree.get_mut(&tp).ok_or_else(|| {
            bad(format!(
                "'{path}' is not in the overlay; remove the line or add the file"
            ))
        })?;
        if matches!(node.kind, NodeKind::Symlink(_)) {
            return Err(bad(format!(
                "'{path}' is a symlink; links carry no mode of their own"
            )));
        }
        node.mode = mode;
        node.uid = uid;
        node.gid = gid;
    }
    Ok(())
}

impl Overlay {
    /// A digest of the overlay's content and metadata, for the buildinfo.
    pub fn digest(&self) -> String {
        tree_digest(&self.tree)
    }
}

/// SHA-256 over every entry's path, type, mode, owner and content, in tree order.
pub fn tree_digest(tree: &Tree) -> String {
    let mut h = Sha256::new();
    h.update(b"pimg tree v1\0");
    for (path, node) in tree.iter() {
        h.update(path.as_str().as_bytes());
        h.update([0]);
        h.update(format!(
            "{:o} {} {}\0",
            node.type_bits() | node.mode,
            node.uid,
            node.gid
        ));
        match &node.kind {
            NodeKind::File(d) => h.update(Sha256::digest(d.as_slice())),
            NodeKind::Symlink(t) => h.update(t.as_bytes()),
            NodeKind::CharDevice { major, minor } => h.update(format!("{major}:{minor}")),
            NodeKind::Dir => {}
        }
        h.update([0]);
    }
    hex(&h.finalize())
}

#[cfg(test)]
// The tests make their own overlay folders.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn apkovl_of(tree: &Tree) -> Vec<u8> {
        crate::codec::gzip::write::gzip_bytes(
            &crate::codec::tar::write::write_tree(Vec::new(), tree, 1_700_000_000).unwrap(),
            6,
        )
    }

    #[test]
    fn an_apkovl_gives_back_the_overlay_it_was_made_from() {
        let o = load("default").unwrap();
        let back = from_apkovl(&apkovl_of(&o.tree), "pimg.apkovl.tar.gz", "default").unwrap();
        assert_eq!(back.digest(), o.digest());
        assert_eq!(back.hostname, "pimg");
        assert_eq!(back.name, "default");
        // Owners and modes come back: etc/shadow is 0640 root:shadow.
        let shadow = back
            .tree
            .get(&TreePath::new("etc/shadow").unwrap())
            .unwrap();
        assert_eq!((shadow.mode, shadow.uid, shadow.gid), (0o640, 0, 42));
    }

    #[test]
    fn an_apkovl_that_is_not_an_overlay_is_refused() {
        let mut t = Tree::new();
        t.insert(TreePath::new("etc").unwrap(), Node::dir(0o755), "t")
            .unwrap();
        t.insert(
            TreePath::new("etc/console").unwrap(),
            Node::char_device(5, 1, 0o600),
            "t",
        )
        .unwrap();
        let e = from_apkovl(&apkovl_of(&t), "x.apkovl.tar.gz", "x").unwrap_err();
        assert!(e.to_string().contains("etc/console"), "{e}");
        // No host name.
        let mut t = Tree::new();
        t.insert(TreePath::new("etc").unwrap(), Node::dir(0o755), "t")
            .unwrap();
        let e = from_apkovl(&apkovl_of(&t), "x.apkovl.tar.gz", "x").unwrap_err();
        assert!(e.to_string().contains("etc/hostname is missing"), "{e}");
        // Not gzip, and a truncated archive.
        let e = from_apkovl(b"not gzip", "x.apkovl.tar.gz", "x").unwrap_err();
        assert!(e.to_string().contains("apkovl x.apkovl.tar.gz"), "{e}");
        let good = apkovl_of(&load("default").unwrap().tree);
        assert!(from_apkovl(&good[..good.len() / 2], "x", "x").is_err());
    }

    #[test]
    fn default_overlay_loads_with_attributes() {
        let o = load("default").unwrap();
        assert_eq!(o.hostname, "pimg");
        let shadow = o.tree.get(&TreePath::new("etc/shadow").unwrap()).unwrap();
        assert_eq!((shadow.mode, shadow.uid, shadow.gid), (0o640, 0, 42));
        assert!(o
            .tree
            .get(&TreePath::new(ATTRIBUTES_FILE).unwrap())
            .is_none());
        let link = o
            .tree
            .get(&TreePath::new("etc/runlevels/boot/hostname").unwrap())
            .unwrap();
        assert_eq!(link.kind, NodeKind::Symlink("/etc/init.d/hostname".into()));
    }

    #[test]
    fn attributes_errors_name_the_line() {
        let mut t = Tree::new();
        t.insert(
            TreePath::new("etc/a").unwrap(),
            Node::file(vec![], 0o644),
            "x",
        )
        .unwrap();
        let cases: [(&[u8], &[&str]); 6] = [
            (
                &b"# c\netc/b 0600 0 0\n"[..],
                &["line 2", "'etc/b' is not in the overlay"][..],
            ),
            (&b"etc/a 0999 0 0\n"[..], &["not an octal mode"][..]),
            (&b"../etc/a 0600 0 0\n"[..], &[".."][..]),
            (&b"etc/a 0600\n"[..], &["expected PATH MODE UID GID"][..]),
            (
                &b"etc/a 0600 4294967296 0\n"[..],
                &["uid 4294967296 is out of range"][..],
            ),
            (&b"etc/a 0600 0 x1\n"[..], &["gid 'x1' is not a number"][..]),
        ];
        for (text, wanted) in cases {
            let e = apply_attributes(&mut t, text, "o").unwrap_err().to_string();
            assert!(wanted.iter().all(|w| e.contains(w)), "{e}");
        }
    }

    /// A minimal overlay directory: etc/hostname and etc/shadow.
    fn overlay_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(d.path().join("etc/hostname"), "h\n").unwrap();
        fs::write(d.path().join("etc/shadow"), "root:*::0:::::\n").unwrap();
        d
    }

    #[test]
    fn attributes_that_are_not_a_file_are_refused() {
        let d = overlay_dir();
        fs::write(d.path().join("attrs"), "etc/shadow 0640 0 42\n").unwrap();
        std::os::unix::fs::symlink("attrs", d.path().join(ATTRIBUTES_FILE)).unwrap();
        let e = from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains(".attributes is a symlink; it must be a regular file"),
            "{e}"
        );

        let d = overlay_dir();
        fs::create_dir(d.path().join(ATTRIBUTES_FILE)).unwrap();
        fs::write(d.path().join(".attributes/x"), "etc/shadow 0640 0 42\n").unwrap();
        std::os::unix::fs::symlink("x", d.path().join(".attributes/y")).unwrap();
        let e = from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains(".attributes is a directory; it must be a regular file"),
            "{e}"
        );

        let d = overlay_dir();
        fs::write(d.path().join(ATTRIBUTES_FILE), "etc/shadow 0640 0 42\n").unwrap();
        let o = from_dir(d.path()).unwrap();
        let shadow = o.tree.get(&TreePath::new("etc/shadow").unwrap()).unwrap();
        assert_eq!((shadow.mode, shadow.gid), (0o640, 42));
    }

    #[test]
    fn an_overlay_too_large_is_refused_before_it_is_read() {
        let d = overlay_dir();
        let f = fs::File::create(d.path().join("etc/sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        let e = from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("etc/sparse brings its files to 10737418")
                && e.contains("bytes, more than the 67108864 an overlay may hold"),
            "{e}"
        );
    }

    #[test]
    fn a_hostname_that_is_not_a_file_is_named_as_such() {
        let d = overlay_dir();
        fs::remove_file(d.path().join("etc/hostname")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("etc/hostname")).unwrap();
        let e = from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("etc/hostname is a symlink; it must be a regular file"),
            "{e}"
        );
        fs::remove_file(d.path().join("etc/hostname")).unwrap();
        let e = from_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("etc/hostname is missing or empty"), "{e}");
    }
}
