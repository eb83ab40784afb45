//! `pimg build`: resolve the profile, overlay and inputs into sorted trees, run every writer,
//! and publish the outputs atomically with SHA256SUMS and the buildinfo.

use crate::archive;
use crate::board::{self, BoardProfile, LoadedProfile, TableKind};
use crate::disk::{self, DiskLayout};
use crate::epoch::{EpochError, EpochSource, SourceDateEpoch};
use crate::error::Error;
use crate::fat::{self, FatParams, FatType, Window};
use crate::ids::{self, IdentitySeed};
use crate::initramfs::{self, InitramfsContent};
use crate::inputs::deb::MemberKind;
use crate::inputs::{self, Input, InputError, InputSet};
use crate::modules::{self, ModInfo};
use crate::output::{OutputDir, OutputFile};
use crate::overlay::{self, hex, Overlay};
use crate::progress::Progress;
use crate::tree::{Node, Tree, TreePath};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// What to build, from the command line.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Board name or profile path.
    pub board: String,
    pub inputs: PathBuf,
    /// Overlay name or directory; the profile's default when absent.
    pub overlay: Option<String>,
    pub out: PathBuf,
    /// From `--source-date-epoch` or `SOURCE_DATE_EPOCH`; derived from the inputs when absent.
    pub epoch: Option<SourceDateEpoch>,
}

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub board: String,
    pub out_dir: String,
    pub source_date_epoch: i64,
    pub epoch_source: String,
    pub outputs: Vec<OutputFile>,
    pub warnings: Vec<String>,
}

/// A boot-partition file: destination, bytes, and where it came from.
type BootFile = (TreePath, Arc<Vec<u8>>, String);

/// Everything resolved from the inputs before any output is written.
struct Resolved {
    loaded: LoadedProfile,
    overlay: Overlay,
    used_inputs: Vec<(Input, String)>,
    boot_files: Vec<BootFile>,
    initramfs: InitramfsContent,
    builtin_modules: Vec<String>,
    epoch: SourceDateEpoch,
    epoch_source: EpochSource,
}

/// Runs a whole build. On error nothing is left at the output paths.
pub fn build(req: &BuildRequest, progress: &Progress) -> Result<BuildReport, Error> {
    progress.phase("reading the board profile and overlay");
    let loaded = board::load(&req.board)?;
    let overlay = overlay::load(
        req.overlay
            .as_deref()
            .unwrap_or(&loaded.profile.overlay.default),
    )?;
    let set = InputSet::discover(&req.inputs)?;
    let resolved = resolve(loaded, overlay, &set, req.epoch, progress)?;
    assemble_and_write(resolved, &req.out, progress)
}

/// Which parts of one input the profile needs.
#[derive(Default)]
struct Needs {
    rules: Vec<(usize, globset::GlobMatcher)>,
    busybox: Option<TreePath>,
    modules: bool,
}

fn resolve(
    loaded: LoadedProfile,
    overlay: Overlay,
    set: &InputSet,
    given_epoch: Option<SourceDateEpoch>,
    progress: &Progress,
) -> Result<Resolved, Error> {
    let p: &BoardProfile = &loaded.profile;
    let profile_err = |field: String, message: String| Error::Profile {
        profile: loaded.origin.clone(),
        field,
        message,
    };

    // Map each needed input (by file name, which is unique) to what is needed from it.
    let mut needs: BTreeMap<String, (Input, Needs)> = BTreeMap::new();
    for (i, rule) in p.boot.files.iter().enumerate() {
        let field = format!("boot.files[{i}].input");
        let input = set.select(&rule.input, &field)?;
        let m = inputs::matcher(&rule.glob, &format!("boot.files[{i}].glob"))?;
        needs
            .entry(input.file.clone())
            .or_insert_with(|| (input.clone(), Needs::default()))
            .1
            .rules
            .push((i, m));
    }
    let bb = set.select(&p.initramfs.busybox.input, "initramfs.busybox.input")?;
    let bb_path = TreePath::new(&p.initramfs.busybox.path)
        .map_err(|e| profile_err("initramfs.busybox.path".into(), e.to_string()))?;
    needs
        .entry(bb.file.clone())
        .or_insert_with(|| (bb.clone(), Needs::default()))
        .1
        .busybox = Some(bb_path.clone());
    let kernel = set
        .select(&p.initramfs.kernel_input, "initramfs.kernel_input")?
        .clone();
    needs
        .entry(kernel.file.clone())
        .or_insert_with(|| (kernel.clone(), Needs::default()))
        .1
        .modules = true;

    let mut rule_hits: Vec<Vec<BootFile>> = vec![Vec::new(); p.boot.files.len()];
    let mut busybox: Option<Arc<Vec<u8>>> = None;
    let mut available: BTreeMap<String, (String, ModInfo)> = BTreeMap::new();
    let mut builtin_text: Option<String> = None;
    let mut kernel_versions: BTreeSet<String> = BTreeSet::new();
    let mut newest: Option<(i64, String)> = None;
    let mut used_inputs = Vec::new();

    for (input, need) in needs.values() {
        progress.phase(format!("reading {}", input.file));
        let label = input.label();
        let sha = input.sha256()?;
        used_inputs.push((input.clone(), sha));
        let mut input_newest = i64::MIN;
        input.scan(&mut |m, r| {
            input_newest = input_newest.max(m.mtime);
            let path = m.path.as_str();
            let rules: Vec<usize> =
                need.rules.iter().filter(|(_, g)| g.is_match(path)).map(|(i, _)| *i).collect();
            let is_busybox = need.busybox.as_ref() == Some(&m.path);
            let module_rel = if need.modules { module_path(path) } else { None };
            let is_builtin = need.modules && is_modules_builtin(path);
            if rules.is_empty() && !is_busybox && module_rel.is_none() && !is_builtin {
                return Ok(());
            }
            match &m.kind {
                MemberKind::File => {}
                MemberKind::Dir if module_rel.is_none() && !is_busybox => return Ok(()),
                other => {
                    return Err(InputError::Member {
                        input: label.clone(),
                        path: path.to_string(),
                        message: format!(
                            "is not a regular file ({other:?}); point the profile at the file it refers to"
                        ),
                    })
                }
            }
            let data = read_member(r, m.size, &label, path)?;
            if let Some((kver, rel)) = &module_rel {
                kernel_versions.insert(kver.clone());
                let info = modules::parse_modinfo(&data).map_err(|e| InputError::Member {
                    input: label.clone(),
                    path: path.to_string(),
                    message: e.to_string(),
                })?;
                available.insert(info.name.clone(), (rel.clone(), info));
            }
            if is_builtin {
                builtin_text = Some(String::from_utf8_lossy(&data).into_owned());
            }
            let data = Arc::new(data);
            if is_busybox {
                busybox = Some(data.clone());
            }
            for i in rules {
                rule_hits[i].push((m.path.clone(), data.clone(), format!("{label}: {path}")));
            }
            Ok(())
        })?;
        if input.kind == inputs::InputKind::Deb
            && input_newest > i64::MIN
            && newest.as_ref().is_none_or(|(t, _)| input_newest > *t)
        {
            newest = Some((input_newest, input.label()));
        }
    }

    // Boot files: each rule must match, and a file destination takes exactly one member.
    let mut boot_files = Vec::new();
    for (i, rule) in p.boot.files.iter().enumerate() {
        let hits = &rule_hits[i];
        if hits.is_empty() {
            return Err(profile_err(
                format!("boot.files[{i}].glob"),
                format!(
                    "'{}' matches no file in input '{}'; list the package with dpkg-deb -c",
                    rule.glob, rule.input
                ),
            ));
        }
        if rule.to.ends_with('/') {
            let dir = rule.to.trim_matches('/');
            for (member, data, origin) in hits {
                let dest = if dir.is_empty() {
                    member.file_name().to_string()
                } else {
                    format!("{dir}/{}", member.file_name())
                };
                let dest = TreePath::new(&dest)
                    .map_err(|e| profile_err(format!("boot.files[{i}].to"), e.to_string()))?;
                boot_files.push((dest, data.clone(), origin.clone()));
            }
        } else {
            if hits.len() != 1 {
                let names: Vec<&str> = hits.iter().map(|(m, _, _)| m.as_str()).collect();
                return Err(profile_err(
                    format!("boot.files[{i}]"),
                    format!(
                        "'{}' matches {} files ({}) but 'to = \"{}\"' is one file; narrow the glob or end 'to' with '/'",
                        rule.glob,
                        hits.len(),
                        names.join(", "),
                        rule.to
                    ),
                ));
            }
            let dest = TreePath::new(&rule.to)
                .map_err(|e| profile_err(format!("boot.files[{i}].to"), e.to_string()))?;
            boot_files.push((dest, hits[0].1.clone(), hits[0].2.clone()));
        }
    }

    let busybox = busybox.ok_or_else(|| {
        profile_err(
            "initramfs.busybox.path".into(),
            format!("'{}' is not in input '{}'", bb_path, bb.label()),
        )
    })?;

    // Kernel modules: the closure of the requested names, then their bytes (second pass).
    let kver = match kernel_versions.len() {
        1 => kernel_versions.into_iter().next().expect("one"),
        0 => {
            return Err(profile_err(
                "initramfs.kernel_input".into(),
                format!(
                    "input '{}' holds no kernel modules under lib/modules/",
                    kernel.label()
                ),
            ))
        }
        _ => {
            return Err(profile_err(
                "initramfs.kernel_input".into(),
                format!(
                    "input '{}' holds modules for several kernels ({}); use a package with one",
                    kernel.label(),
                    kernel_versions.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    };
    let builtin = modules::parse_builtin(builtin_text.as_deref().unwrap_or(""));
    let closure =
        modules::closure(&p.initramfs.modules, &available, &builtin).map_err(|source| {
            Error::Modules {
                input: kernel.label(),
                source,
            }
        })?;
    let modules_dep = modules::modules_dep(&closure, &available);
    let wanted: BTreeSet<String> = closure
        .load_order
        .iter()
        .map(|n| format!("lib/modules/{kver}/{}", available[n].0))
        .collect();
    let mut module_bytes: BTreeMap<String, Arc<Vec<u8>>> = BTreeMap::new();
    if !wanted.is_empty() {
        progress.phase(format!(
            "collecting {} kernel modules from {}",
            wanted.len(),
            kernel.file
        ));
        let label = kernel.label();
        kernel.scan(&mut |m, r| {
            if m.kind == MemberKind::File && wanted.contains(m.path.as_str()) {
                let data = read_member(r, m.size, &label, m.path.as_str())?;
                module_bytes.insert(m.path.as_str().to_string(), Arc::new(data));
            }
            Ok(())
        })?;
    }
    let prefix = format!("lib/modules/{kver}/");
    let modules_list: Vec<(String, Arc<Vec<u8>>)> = module_bytes
        .into_iter()
        .map(|(path, data)| (path[prefix.len()..].to_string(), data))
        .collect();
    let load_order = closure
        .load_order
        .iter()
        .map(|n| available[n].0.clone())
        .collect();

    let (epoch, epoch_source) = match (given_epoch, newest) {
        (Some(e), _) => (e, EpochSource::Given),
        (None, Some((t, input))) => (SourceDateEpoch::new(t)?, EpochSource::Inputs { input }),
        (None, None) => return Err(EpochError::Underivable.into()),
    };

    let initramfs = InitramfsContent {
        busybox,
        applets: p.initramfs.applets.clone(),
        kernel_version: kver,
        modules: modules_list,
        load_order,
        modules_dep,
        boot_label: p.boot.label.clone(),
    };
    Ok(Resolved {
        builtin_modules: closure.builtin,
        loaded,
        overlay,
        used_inputs,
        boot_files,
        initramfs,
        epoch,
        epoch_source,
    })
}

/// `lib/modules/<kver>/<rel>.ko` → (kver, rel).
fn module_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("lib/modules/")?;
    let (kver, rel) = rest.split_once('/')?;
    rel.ends_with(".ko")
        .then(|| (kver.to_string(), rel.to_string()))
}

fn is_modules_builtin(path: &str) -> bool {
    path.strip_prefix("lib/modules/")
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(_, rel)| rel == "modules.builtin")
}

/// Reads one member fully; the size from the header only bounds the first allocation.
fn read_member(
    r: &mut dyn Read,
    size: u64,
    input: &str,
    path: &str,
) -> Result<Vec<u8>, InputError> {
    let mut data = Vec::with_capacity(size.min(64 << 20) as usize);
    r.read_to_end(&mut data)
        .map_err(|source| InputError::Read {
            input: input.to_string(),
            path: path.to_string(),
            source,
        })?;
    Ok(data)
}

fn assemble_and_write(
    r: Resolved,
    out: &std::path::Path,
    progress: &Progress,
) -> Result<BuildReport, Error> {
    let p = &r.loaded.profile;
    let board = p.board.name.clone();
    let level = p.initramfs.compression_level;
    let profile_err = |field: &str, message: String| Error::Profile {
        profile: r.loaded.origin.clone(),
        field: field.to_string(),
        message,
    };
    let mut warnings = Vec::new();

    progress.phase("building the apkovl");
    let apkovl = r.overlay.apkovl(r.epoch, level)?;
    let apkovl_name = r.overlay.apkovl_name();

    progress.phase("building the initramfs");
    let initramfs_tree = initramfs::tree(&r.initramfs).map_err(|source| Error::Tree {
        what: "initramfs".into(),
        source,
    })?;
    let initramfs_bytes =
        initramfs::cpio_gz(&initramfs_tree, r.epoch, level).map_err(|source| Error::Archive {
            what: "initramfs".into(),
            source,
        })?;

    // The boot tree: files from inputs, generated text, the initramfs and the apkovl.
    let mut boot = Tree::new();
    let tree_err = |source| Error::Tree {
        what: "boot partition".into(),
        source,
    };
    for (path, data, origin) in &r.boot_files {
        boot.insert(path.clone(), Node::file(data.clone(), 0o644), origin)
            .map_err(tree_err)?;
    }
    for (i, t) in p.boot.text.iter().enumerate() {
        let path = TreePath::new(&t.path)
            .map_err(|e| profile_err(&format!("boot.text[{i}].path"), e.to_string()))?;
        let mut content = t.content.clone();
        if !content.ends_with('\n') {
            content.push('\n');
        }
        boot.insert(
            path,
            Node::file(content.into_bytes(), 0o644),
            "board profile",
        )
        .map_err(tree_err)?;
    }
    let initramfs_path = TreePath::new(&p.initramfs.path)
        .map_err(|e| profile_err("initramfs.path", e.to_string()))?;
    let initramfs_data = Arc::new(initramfs_bytes);
    boot.insert(
        initramfs_path,
        Node::file(initramfs_data.clone(), 0o644),
        "initramfs",
    )
    .map_err(tree_err)?;
    let apkovl_data = Arc::new(apkovl);
    let apkovl_path =
        TreePath::new(&apkovl_name).map_err(|e| profile_err("overlay", e.to_string()))?;
    let apkovl_origin = format!("overlay {}", r.overlay.name);
    boot.insert(
        apkovl_path,
        Node::file(apkovl_data.clone(), 0o644),
        &apkovl_origin,
    )
    .map_err(tree_err)?;

    // Identifiers: derived from the profile and the boot content unless fixed in the profile.
    let seed = {
        let mut h = Sha256::new();
        h.update(b"pimg seed v1\0");
        h.update(Sha256::digest(r.loaded.text.as_bytes()));
        h.update(overlay::tree_digest(&boot).as_bytes());
        IdentitySeed(h.finalize().into())
    };
    let volume_id = p
        .boot
        .volume_id
        .unwrap_or_else(|| seed.u32("fat/volume-id"));
    let disk_signature = p
        .image
        .disk_signature
        .unwrap_or_else(|| seed.u32("mbr/disk-signature"));
    let guid = |field: &str, fixed: &Option<String>, label: &str| match fixed {
        Some(text) => ids::parse_guid(text).ok_or_else(|| {
            profile_err(
                field,
                format!("'{text}' is not a GUID like 0fc63daf-8483-4772-8e79-3d69d8477de4"),
            )
        }),
        None => Ok(seed.guid(label)),
    };
    let disk_guid = guid("image.disk_guid", &p.image.disk_guid, "gpt/disk")?;
    let part_guid = guid("boot.part_guid", &p.boot.part_guid, "gpt/part/boot")?;

    let size = p.image.size.0;
    let offset = p.boot.offset.0;
    let reserve_end = if p.image.table == TableKind::Gpt {
        1 << 20
    } else {
        0
    };
    let part_size = match p.boot.size {
        Some(s) => s.0,
        None => size
            .checked_sub(offset + reserve_end)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                profile_err(
                    "boot.offset",
                    format!("{offset} leaves no room for the partition in a {size}-byte image"),
                )
            })?,
    };
    let layout = DiskLayout {
        size,
        table: match p.image.table {
            TableKind::Mbr => disk::TableKind::Mbr,
            TableKind::Gpt => disk::TableKind::Gpt,
        },
        part_offset: offset,
        part_size,
        mbr_type: p.boot.mbr_type,
        bootable: false,
        disk_signature,
        disk_guid,
        part_guid,
        part_name: p.boot.label.clone(),
    };
    disk::validate(&layout)?;
    let params = FatParams {
        fat_type: match p.boot.fat {
            12 => FatType::Fat12,
            16 => FatType::Fat16,
            _ => FatType::Fat32,
        },
        bytes_per_cluster: p.boot.cluster_size.0 as u32,
        volume_id,
        label: p.boot.label.clone(),
        epoch: r.epoch.seconds(),
    };
    let needed = fat::required_bytes(&boot, &params);
    if needed > part_size {
        return Err(profile_err(
            "image.size",
            format!(
                "the boot content needs {} but the partition holds {}; raise image.size (a power of two, e.g. {})",
                mib(needed),
                mib(part_size),
                mib((needed + offset + reserve_end).next_power_of_two())
            ),
        ));
    }

    // Outputs: staged in the output folder, published only when all are complete.
    let mut dir = OutputDir::open(out)?;
    let img_name = format!("{board}.img");
    progress.phase(format!("writing {img_name}"));
    let img_path = out.join(&img_name);
    let report = dir.write_with(&img_name, |file| {
        file.set_len(size).map_err(|source| Error::Output {
            path: img_path.display().to_string(),
            source,
        })?;
        disk::write_table(file, &layout).map_err(Error::from)?;
        let window = Window::new(&mut *file, offset, part_size);
        let report = fat::write_fat(window, part_size, &boot, &params).map_err(Error::from)?;
        Ok(report)
    })?;
    if let Some(clamped) = report.clamped_epoch {
        warnings.push(format!(
            "SOURCE_DATE_EPOCH {} is outside FAT's 1980..2107 range: FAT timestamps use {clamped}",
            r.epoch
        ));
    }

    progress.phase(format!("writing {board}.tar.gz"));
    let tarball = {
        let gz = archive::gzip::encoder(Vec::new(), level);
        let gz =
            archive::tar::write_tree(gz, &boot, r.epoch.seconds() as u64).map_err(|source| {
                Error::Archive {
                    what: "rpi tarball".into(),
                    source,
                }
            })?;
        gz.finish().map_err(|source| Error::Archive {
            what: "rpi tarball".into(),
            source: archive::ArchiveError::Io {
                format: "gzip",
                source,
            },
        })?
    };
    dir.write_bytes(&format!("{board}.tar.gz"), &tarball)?;
    dir.write_bytes(&apkovl_name, &apkovl_data)?;
    dir.write_bytes(&format!("{board}.initramfs.cpio.gz"), &initramfs_data)?;

    let buildinfo = Buildinfo {
        format: "pimg-buildinfo/1",
        pimg_version: env!("CARGO_PKG_VERSION"),
        cargo_lock_sha256: crate::embedded::CARGO_LOCK_SHA256,
        board: BuildinfoBoard {
            name: board.clone(),
            profile: stable_origin(&r.loaded.origin),
            profile_sha256: hex(&Sha256::digest(r.loaded.text.as_bytes())),
        },
        overlay: BuildinfoOverlay {
            name: r.overlay.name.clone(),
            hostname: r.overlay.hostname.clone(),
            sha256: r.overlay.digest(),
        },
        source_date_epoch: r.epoch.seconds(),
        epoch_source: r.epoch_source.to_string(),
        identifiers: BuildinfoIds {
            fat_volume_id: format!("{volume_id:08x}"),
            mbr_disk_signature: (p.image.table == TableKind::Mbr)
                .then(|| format!("{disk_signature:08x}")),
            gpt_disk_guid: (p.image.table == TableKind::Gpt)
                .then(|| ids::guid_to_string(&disk_guid)),
            gpt_boot_partition_guid: (p.image.table == TableKind::Gpt)
                .then(|| ids::guid_to_string(&part_guid)),
        },
        inputs: r
            .used_inputs
            .iter()
            .map(|(i, sha)| BuildinfoInput {
                name: i.name.clone(),
                version: i.version.clone(),
                arch: i.arch.clone(),
                file: i.file.clone(),
                sha256: sha.clone(),
            })
            .collect(),
        kernel_modules: BuildinfoModules {
            kernel_version: r.initramfs.kernel_version.clone(),
            requested: p.initramfs.modules.clone(),
            load_order: r.initramfs.load_order.clone(),
            builtin: r.builtin_modules.clone(),
        },
        boot_partition: boot
            .iter()
            .filter(|(_, n)| matches!(n.kind, crate::tree::NodeKind::File(_)))
            .map(|(path, n)| BuildinfoBootFile {
                path: path.to_string(),
                size: n.data().len() as u64,
                sha256: hex(&Sha256::digest(n.data())),
                from: boot.origin(path).unwrap_or("").to_string(),
            })
            .collect(),
        outputs: dir.files().to_vec(),
    };
    let mut json = serde_json::to_string_pretty(&buildinfo).expect("buildinfo serializes");
    json.push('\n');
    dir.write_bytes(&format!("{board}.buildinfo.json"), json.as_bytes())?;
    let outputs = dir.files().to_vec();
    let sums: String = outputs
        .iter()
        .map(|o| format!("{}  {}\n", o.sha256, o.name))
        .collect();
    dir.write_bytes("SHA256SUMS", sums.as_bytes())?;

    progress.phase("publishing");
    let out_dir = dir.commit()?;
    Ok(BuildReport {
        board,
        out_dir,
        source_date_epoch: r.epoch.seconds(),
        epoch_source: r.epoch_source.to_string(),
        outputs: dir_files_with_sums(outputs, &sums),
        warnings,
    })
}

fn dir_files_with_sums(mut outputs: Vec<OutputFile>, sums: &str) -> Vec<OutputFile> {
    outputs.push(OutputFile {
        name: "SHA256SUMS".into(),
        size: sums.len() as u64,
        sha256: hex(&Sha256::digest(sums.as_bytes())),
    });
    outputs
}

/// Shipped profiles keep their `boards/` path; a profile file is named by its file name only,
/// so the buildinfo does not depend on the directory it was built from.
fn stable_origin(origin: &str) -> String {
    if origin.starts_with("boards/") {
        origin.to_string()
    } else {
        let name = std::path::Path::new(origin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        format!("file {}", name.unwrap_or_default())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[derive(Serialize)]
struct Buildinfo {
    format: &'static str,
    pimg_version: &'static str,
    cargo_lock_sha256: &'static str,
    board: BuildinfoBoard,
    overlay: BuildinfoOverlay,
    source_date_epoch: i64,
    epoch_source: String,
    identifiers: BuildinfoIds,
    inputs: Vec<BuildinfoInput>,
    kernel_modules: BuildinfoModules,
    boot_partition: Vec<BuildinfoBootFile>,
    outputs: Vec<OutputFile>,
}

#[derive(Serialize)]
struct BuildinfoBoard {
    name: String,
    profile: String,
    profile_sha256: String,
}

#[derive(Serialize)]
struct BuildinfoOverlay {
    name: String,
    hostname: String,
    sha256: String,
}

#[derive(Serialize)]
struct BuildinfoIds {
    fat_volume_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mbr_disk_signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpt_disk_guid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpt_boot_partition_guid: Option<String>,
}

#[derive(Serialize)]
struct BuildinfoInput {
    name: String,
    version: Option<String>,
    arch: Option<String>,
    file: String,
    sha256: String,
}

#[derive(Serialize)]
struct BuildinfoModules {
    kernel_version: String,
    requested: Vec<String>,
    load_order: Vec<String>,
    builtin: Vec<String>,
}

#[derive(Serialize)]
struct BuildinfoBootFile {
    path: String,
    size: u64,
    sha256: String,
    from: String,
}
