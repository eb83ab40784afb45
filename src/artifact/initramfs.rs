//! The initramfs: busybox with its applet links, an init script, and the kernel modules the
//! board needs with their dependency closure, as cpio newc + gzip.
//!
//! Inode numbers follow path order, dev is 0, rdev is kept for device nodes, every mtime is
//! the epoch and every owner is root: nothing of the build host reaches the archive.

use crate::codec::archive::ArchiveError;
use crate::codec::cpio::write::{CpioEntry, CpioWriter};
use crate::codec::gzip::write as gzip;
use crate::epoch::SourceDateEpoch;
use crate::tree::{Node, NodeKind, Tree, TreeError, TreePath};
use std::sync::Arc;

/// The init script run by the kernel (`/init`).
pub const INIT_SCRIPT: &str = include_str!("init.sh");

/// What goes into the initramfs, resolved from the inputs.
#[derive(Debug, Clone)]
pub struct InitramfsContent {
    pub busybox: Arc<Vec<u8>>,
    pub applets: Vec<String>,
    pub kernel_version: String,
    /// Module files: path relative to `lib/modules/<kernel_version>/`, bytes.
    pub modules: Vec<(String, Arc<Vec<u8>>)>,
    /// Paths (as in `modules`) in an order where dependencies load first.
    pub load_order: Vec<String>,
    /// Generated `modules.dep`.
    pub modules_dep: String,
    /// The FAT label the init looks for.
    pub boot_label: String,
    /// The modloop's path on the boot partition, which the init mounts.
    pub modloop: Option<String>,
    /// The module the self-check loads from the modloop.
    pub check_module: Option<String>,
}

/// Builds the initramfs file tree.
pub fn tree(c: &InitramfsContent) -> Result<Tree, TreeError> {
    let mut t = Tree::new();
    let origin = "initramfs";
    let p = |s: &str| TreePath::new(s).expect("static initramfs path");
    for d in [
        "dev",
        "etc/pimg",
        "media/boot",
        "newroot",
        "proc",
        "sys",
        "run",
    ] {
        t.insert(p(d), Node::dir(0o755), origin)?;
    }
    t.insert(p("tmp"), Node::dir(0o1777), origin)?;
    let dev = Node::char_device;
    t.insert(p("dev/console"), dev(5, 1, 0o600), origin)?;
    t.insert(p("dev/null"), dev(1, 3, 0o666), origin)?;
    t.insert(
        p("init"),
        Node::file(INIT_SCRIPT.as_bytes().to_vec(), 0o755),
        origin,
    )?;
    t.insert(
        p("bin/busybox"),
        Node::file(c.busybox.clone(), 0o755),
        origin,
    )?;
    for a in &c.applets {
        let path = TreePath::new(&format!("bin/{a}")).expect("applet names are checked at load");
        t.insert(path, Node::symlink("busybox"), origin)?;
    }
    let mut conf = format!(
        "KERNEL_VERSION={}\nBOOT_LABEL={}\n",
        c.kernel_version, c.boot_label
    );
    // Only with a modloop, so media without one keep their bytes.
    if let Some(m) = &c.modloop {
        conf.push_str(&format!("MODLOOP={m}\n"));
    }
    if let Some(m) = &c.check_module {
        conf.push_str(&format!("CHECK_MODULE={m}\n"));
    }
    t.insert(
        p("etc/pimg/initramfs.conf"),
        Node::file(conf.into_bytes(), 0o644),
        origin,
    )?;
    let mut order = c.load_order.join("\n");
    if !order.is_empty() {
        order.push('\n');
    }
    t.insert(
        p("etc/pimg/modules"),
        Node::file(order.into_bytes(), 0o644),
        origin,
    )?;
    let moddir = format!("lib/modules/{}", c.kernel_version);
    for (rel, data) in &c.modules {
        let path =
            TreePath::new(&format!("{moddir}/{rel}")).expect("module paths come from TreePaths");
        t.insert(path, Node::file(data.clone(), 0o644), origin)?;
    }
    t.insert(
        TreePath::new(&format!("{moddir}/modules.dep")).expect("valid"),
        Node::file(c.modules_dep.clone().into_bytes(), 0o644),
        origin,
    )?;
    Ok(t)
}

/// Serializes a tree as gzip-compressed cpio newc, inodes numbered from 1 in path order.
pub fn cpio_gz(t: &Tree, epoch: SourceDateEpoch, level: u32) -> Result<Vec<u8>, ArchiveError> {
    let mtime = u32::try_from(epoch.seconds()).expect("the epoch range fits u32");
    let gz = write_cpio(t, mtime, gzip::encoder(Vec::new(), level))?;
    gz.finish().map_err(|source| ArchiveError::Io {
        format: "gzip",
        source,
    })
}

/// Writes a tree as cpio newc into `out`: inodes numbered from 1 in path order, every mtime
/// `mtime`, device numbers 0 but a device node's own.
pub fn write_cpio<W: std::io::Write>(t: &Tree, mtime: u32, out: W) -> Result<W, ArchiveError> {
    let mut w = CpioWriter::new(out);
    for (i, (path, node)) in t.iter().enumerate() {
        let (rdev_major, rdev_minor) = match node.kind {
            NodeKind::CharDevice { major, minor } => (major, minor),
            _ => (0, 0),
        };
        let data: &[u8] = match &node.kind {
            NodeKind::File(d) => d,
            NodeKind::Symlink(target) => target.as_bytes(),
            _ => &[],
        };
        w.append(&CpioEntry {
            name: path.as_str(),
            ino: i as u32 + 1,
            mode: node.type_bits() | node.mode,
            uid: node.uid,
            gid: node.gid,
            nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
            mtime,
            dev_major: 0,
            dev_minor: 0,
            rdev_major,
            rdev_minor,
            data,
        })?;
    }
    w.finish()
}
