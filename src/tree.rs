//! The file trees that flow from inputs to writers, kept sorted bytewise by normalized path.
//!
//! Every writer walks a `Tree` in its `BTreeMap` order, so output order never depends on
//! readdir order, hash seeds or thread timing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A relative path with `/` separators, no empty, `.` or `..` components, no leading `/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreePath(String);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path '{0}' is absolute; only paths relative to the tree root are allowed")]
    Absolute(String),
    #[error("path '{0}' contains '..'; paths may not leave the tree")]
    ParentComponent(String),
    #[error("path '{0}' is empty")]
    Empty(String),
    #[error("path '{0}' contains a NUL byte or a backslash")]
    BadCharacter(String),
}

impl TreePath {
    /// Normalizes a path as found in an archive or a profile: strips one leading `./`,
    /// drops `.` components and trailing slashes, refuses absolute paths and `..`.
    pub fn new(raw: &str) -> Result<Self, PathError> {
        Self::parse(raw, false)
    }

    /// Like [`TreePath::new`] but accepts a leading `/` (for archive members, which are
    /// rooted by convention, e.g. `./usr/lib` or `/usr/lib`).
    pub fn from_archive(raw: &str) -> Result<Self, PathError> {
        Self::parse(raw, true)
    }

    fn parse(raw: &str, allow_root: bool) -> Result<Self, PathError> {
        if raw.contains('\0') || raw.contains('\\') {
            return Err(PathError::BadCharacter(raw.to_string()));
        }
        if raw.starts_with('/') && !allow_root {
            return Err(PathError::Absolute(raw.to_string()));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::ParentComponent(raw.to_string())),
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(PathError::Empty(raw.to_string()));
        }
        Ok(TreePath(parts.join("/")))
    }

    /// The path as a string, without a leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent directory, or `None` at the top level.
    pub fn parent(&self) -> Option<TreePath> {
        self.0.rfind('/').map(|i| TreePath(self.0[..i].to_string()))
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// This path with `child` appended (both already normalized).
    pub fn join(&self, child: &TreePath) -> TreePath {
        TreePath(format!("{}/{}", self.0, child.0))
    }

    /// Every ancestor, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<TreePath> {
        let mut out = Vec::new();
        let mut end = 0;
        while let Some(i) = self.0[end..].find('/') {
            out.push(TreePath(self.0[..end + i].to_string()));
            end += i + 1;
        }
        out
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// What a tree entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file and its bytes (shared, never copied per writer).
    File(Arc<Vec<u8>>),
    /// A directory.
    Dir,
    /// A symbolic link and its target, stored verbatim.
    Symlink(String),
    /// A character device node.
    CharDevice { major: u32, minor: u32 },
}

/// One entry: kind plus normalized metadata (permission bits only in `mode`, numeric owner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask); no file-type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Node {
    /// A root-owned regular file.
    pub fn file(data: impl Into<Arc<Vec<u8>>>, mode: u32) -> Self {
        Node {
            kind: NodeKind::File(data.into()),
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
        }
    }

    /// A root-owned directory.
    pub fn dir(mode: u32) -> Self {
        Node {
            kind: NodeKind::Dir,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
        }
    }

    /// A root-owned symlink (mode 0777 as Linux reports it).
    pub fn symlink(target: impl Into<String>) -> Self {
        Node {
            kind: NodeKind::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }

    /// A root-owned character device node.
    pub fn char_device(major: u32, minor: u32, mode: u32) -> Self {
        Node {
            kind: NodeKind::CharDevice { major, minor },
            mode,
            uid: 0,
            gid: 0,
        }
    }

    /// The file's bytes, or an empty slice for anything else.
    pub fn data(&self) -> &[u8] {
        match &self.kind {
            NodeKind::File(d) => d,
            _ => &[],
        }
    }

    /// The POSIX file-type bits for this node (`S_IFREG` etc.).
    pub fn type_bits(&self) -> u32 {
        match self.kind {
            NodeKind::File(_) => 0o100000,
            NodeKind::Dir => 0o040000,
            NodeKind::Symlink(_) => 0o120000,
            NodeKind::CharDevice { .. } => 0o020000,
        }
    }
}

/// A conflicting insert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("'{0}' is placed twice in the tree (from {1} and {2})")]
    Duplicate(TreePath, String, String),
    #[error("'{0}' is needed as a directory but is a file or link (from {1})")]
    NotADirectory(TreePath, String),
}

/// A sorted file tree. Parent directories are created on demand with mode 0755, root:root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<TreePath, (Node, String)>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts a node, creating missing parent directories. `origin` says where it came
    /// from (for error messages). Inserting an identical directory twice is allowed; any
    /// other second insert at the same path is an error.
    pub fn insert(&mut self, path: TreePath, node: Node, origin: &str) -> Result<(), TreeError> {
        for dir in path.ancestors() {
            match self.nodes.get(&dir) {
                Some((n, from)) if n.kind != NodeKind::Dir => {
                    return Err(TreeError::NotADirectory(dir, from.clone()))
                }
                Some(_) => {}
                None => {
                    self.nodes
                        .insert(dir, (Node::dir(0o755), origin.to_string()));
                }
            }
        }
        match self.nodes.get_mut(&path) {
            Some((existing, _)) if existing.kind == NodeKind::Dir && node.kind == NodeKind::Dir => {
                // An explicit directory entry refines the implicit one's metadata.
                *existing = node;
                Ok(())
            }
            Some((_, from)) => Err(TreeError::Duplicate(path, from.clone(), origin.to_string())),
            None => {
                self.nodes.insert(path, (node, origin.to_string()));
                Ok(())
            }
        }
    }

    /// Looks up a path.
    pub fn get(&self, path: &TreePath) -> Option<&Node> {
        self.nodes.get(path).map(|(n, _)| n)
    }

    /// Mutable access, for applying attributes after the content is known.
    pub fn get_mut(&mut self, path: &TreePath) -> Option<&mut Node> {
        self.nodes.get_mut(path).map(|(n, _)| n)
    }

    /// Where an entry came from, as given on insert.
    pub fn origin(&self, path: &TreePath) -> Option<&str> {
        self.nodes.get(path).map(|(_, o)| o.as_str())
    }

    /// All entries in bytewise path order (parents always before their children).
    pub fn iter(&self) -> impl Iterator<Item = (&TreePath, &Node)> {
        self.nodes.iter().map(|(p, (n, _))| (p, n))
    }

    /// Number of entries, directories included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Total bytes of regular file content.
    pub fn content_bytes(&self) -> u64 {
        self.iter().map(|(_, n)| n.data().len() as u64).sum()
    }
}

/// The entries of a directory, sorted bytewise by path: the one directory listing the inputs
/// and overlay loaders walk, so no order ever comes from the file system.
// The loaders' listing: sorted before anyone sees it.
#[allow(clippy::disallowed_methods)]
pub fn sorted_children(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut children = Vec::new();
    for e in std::fs::read_dir(dir)? {
        children.push(e?.path());
    }
    children.sort();
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_archive_paths() {
        assert_eq!(
            TreePath::from_archive("./usr/lib/").unwrap().as_str(),
            "usr/lib"
        );
        assert_eq!(
            TreePath::from_archive("/boot//x").unwrap().as_str(),
            "boot/x"
        );
        assert!(matches!(TreePath::new("/etc"), Err(PathError::Absolute(_))));
        assert!(matches!(
            TreePath::new("a/../b"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(TreePath::new("./"), Err(PathError::Empty(_))));
    }

    #[test]
    fn creates_parents_and_rejects_duplicates() {
        let mut t = Tree::new();
        t.insert(
            TreePath::new("a/b/c").unwrap(),
            Node::file(vec![1], 0o644),
            "x",
        )
        .unwrap();
        let paths: Vec<_> = t.iter().map(|(p, _)| p.as_str().to_string()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c"]);
        let err = t.insert(
            TreePath::new("a/b/c").unwrap(),
            Node::file(vec![2], 0o644),
            "y",
        );
        assert!(matches!(err, Err(TreeError::Duplicate(..))));
        let err = t.insert(TreePath::new("a/b/c/d").unwrap(), Node::dir(0o755), "z");
        assert!(matches!(err, Err(TreeError::NotADirectory(..))));
    }

    #[test]
    fn order_is_bytewise() {
        let mut t = Tree::new();
        for p in ["b", "a.b", "a/b", "A"] {
            t.insert(TreePath::new(p).unwrap(), Node::file(vec![], 0o644), "x")
                .unwrap();
        }
        let paths: Vec<_> = t.iter().map(|(p, _)| p.as_str().to_string()).collect();
        // 'A' < 'a' and '.' (0x2e) < '/' (0x2f)
        assert_eq!(paths, ["A", "a", "a.b", "a/b", "b"]);
    }
}
