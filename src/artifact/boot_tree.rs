//! The boot partition's tree: files taken from inputs, the profile's text files, the
//! `.alpine-release` and boot-repository marker, the initramfs and the apkovl. Every path the
//! profile names is checked when the build is planned.

use super::FieldError;
use crate::profile::board::BoardProfile;
use crate::tree::{Node, Tree, TreeError, TreePath};
use std::sync::Arc;

/// A file for the boot partition: where it goes, its bytes, and where it came from.
#[derive(Debug, Clone)]
pub struct BootFile {
    pub path: TreePath,
    pub data: Arc<Vec<u8>>,
    pub origin: String,
}

/// What the profile puts into the tree itself, with every path checked.
#[derive(Debug, Clone)]
pub struct BootTreePlan {
    text: Vec<(TreePath, Vec<u8>)>,
    alpine_release: Option<Vec<u8>>,
    boot_repository: bool,
    initramfs: TreePath,
    apkovl: TreePath,
}

/// Checks the profile's own files and the places of the initramfs and the apkovl.
pub fn plan(p: &BoardProfile, apkovl_name: &str) -> Result<BootTreePlan, FieldError> {
    let mut text = Vec::new();
    for (i, t) in p.boot.text.iter().enumerate() {
        let path = TreePath::new(&t.path)
            .map_err(|e| FieldError::new(format!("boot.text[{i}].path"), e.to_string()))?;
        let mut content = t.content.clone();
        if !content.ends_with('\n') {
            content.push('\n');
        }
        text.push((path, content.into_bytes()));
    }
    let alpine_release = p
        .boot
        .alpine_release
        .as_ref()
        .map(|r| format!("{}\n", r.trim_end_matches('\n')).into_bytes());
    Ok(BootTreePlan {
        text,
        alpine_release,
        boot_repository: p.boot.apks.is_some(),
        initramfs: TreePath::new(&p.initramfs.path)
            .map_err(|e| FieldError::new("initramfs.path", e.to_string()))?,
        apkovl: TreePath::new(apkovl_name)
            .map_err(|e| FieldError::new("overlay", e.to_string()))?,
    })
}

/// The tree; two files at one path are an error naming both origins.
pub fn assemble(
    plan: &BootTreePlan,
    files: &[BootFile],
    initramfs: Arc<Vec<u8>>,
    apkovl: Arc<Vec<u8>>,
    apkovl_origin: &str,
) -> Result<Tree, TreeError> {
    let mut boot = Tree::new();
    for f in files {
        boot.insert(f.path.clone(), Node::file(f.data.clone(), 0o644), &f.origin)?;
    }
    for (path, content) in &plan.text {
        let node = Node::file(content.clone(), 0o644);
        boot.insert(path.clone(), node, "board profile")?;
    }
    if let Some(release) = &plan.alpine_release {
        let path = TreePath::new(".alpine-release").expect("a valid path");
        boot.insert(path, Node::file(release.clone(), 0o644), "board profile")?;
    }
    if plan.boot_repository {
        // The marker Alpine's initramfs looks for to use apks/ as a package repository.
        let path = TreePath::new("apks/.boot_repository").expect("a valid path");
        boot.insert(path, Node::file(Vec::new(), 0o644), "board profile")?;
    }
    let node = Node::file(initramfs, 0o644);
    boot.insert(plan.initramfs.clone(), node, "initramfs")?;
    boot.insert(
        plan.apkovl.clone(),
        Node::file(apkovl, 0o644),
        apkovl_origin,
    )?;
    Ok(boot)
}
