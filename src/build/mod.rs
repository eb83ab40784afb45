//! `pimg build`: resolve the profile, overlay and inputs into sorted trees, run every writer,
//! and publish the outputs atomically with SHA256SUMS and the buildinfo.

pub mod error;
pub mod lock;

use crate::artifact::initramfs::{self, InitramfsContent};
use crate::artifact::modules::{self, ModInfo};
use crate::artifact::sbom::{self, SbomInput, SbomOutput};
use crate::build::error::Error;
use crate::codec::archive;
use crate::codec::fat::write::{self as fat, FatParams, FatType, Window};
use crate::codec::partition::write::{self as disk, DiskLayout};
use crate::digest::hex;
use crate::epoch::{EpochError, EpochSource, SourceDateEpoch};
use crate::ids::{self, IdentitySeed};
use crate::inputs::deb::MemberKind;
use crate::inputs::{self, apk, Input, InputError, InputKind, InputSet};
use crate::profile::board::{self, BoardProfile, LoadedProfile, TableKind};
use crate::profile::lock::LockRecord;
use crate::profile::overlay::{self, Overlay};
use crate::progress::Progress;
use crate::publish::{OutputDir, OutputFile, PublishError, RecordIo};
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
    /// `--table`: the partition table instead of the profile's (GPT for the Pi 4 family).
    pub table: Option<TableKind>,
}

/// How to build, beyond what to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Refuse to build unless the profile, overlay and inputs match this lock file.
    pub lock: Option<PathBuf>,
}

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub board: String,
    pub out_dir: String,
    pub source_date_epoch: i64,
    pub epoch_source: String,
    /// The lock the build was checked against (`--locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRecord>,
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
    /// Per-file digests of directory inputs, to name the file when one changes mid-build.
    dir_members: BTreeMap<String, BTreeMap<String, String>>,
    boot_files: Vec<BootFile>,
    initramfs: InitramfsContent,
    builtin_modules: Vec<String>,
    epoch: SourceDateEpoch,
    /// Where the epoch came from, as the buildinfo says it.
    epoch_source: String,
    /// Licence stated by each used input (by file name), for the SBOM.
    licenses: BTreeMap<String, String>,
    /// File names of the inputs the initramfs is made from (busybox, kernel).
    initramfs_inputs: Vec<String>,
    lock: Option<LockRecord>,
}

/// Runs a whole build. On error nothing is left at the output paths.
pub fn build(req: &BuildRequest, progress: &Progress) -> Result<BuildReport, Error> {
    build_with(req, &BuildOptions::default(), progress)
}

/// Like [`build`], with options (a lock to check against).
pub fn build_with(
    req: &BuildRequest,
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<BuildReport, Error> {
    progress.phase("reading the board profile and overlay");
    let mut loaded = board::load(&req.board)?;
    if let Some(t) = req.table {
        loaded = board::with_table(loaded, t)?;
    }
    let overlay = overlay::load(
        req.overlay
            .as_deref()
            .unwrap_or(&loaded.profile.overlay.default),
    )?;
    let set = {
        let (debian, alpine) = loaded.profile.board.package_arches();
        InputSet::discover(&req.inputs)?.for_arches(debian, alpine)?
    };
    let lock = match &opts.lock {
        Some(path) => {
            progress.phase(format!("checking the inputs against {}", path.display()));
            Some(lock::check(path, &loaded, &overlay, &set)?)
        }
        None => None,
    };
    let mut resolved = resolve(loaded, overlay, &set, req.epoch, progress)?;
    resolved.lock = lock;
    assemble_and_write(resolved, &req.out, &req.inputs, progress)
}

/// Every input the profile selects (boot files, busybox, kernel, boot repository), each
/// once, sorted by name: what a build reads and what `pimg lock` records.
pub fn selected_inputs(p: &BoardProfile, set: &InputSet) -> Result<Vec<Input>, InputError> {
    let mut chosen: BTreeMap<String, Input> = BTreeMap::new();
    let mut add = |i: &Input| {
        chosen.entry(i.name.clone()).or_insert_with(|| i.clone());
    };
    for (i, rule) in p.boot.files.iter().enumerate() {
        add(set.select(&rule.input, &format!("boot.files[{i}].input"))?);
    }
    add(set.select(&p.initramfs.busybox.input, "initramfs.busybox.input")?);
    add(set.select(&p.initramfs.kernel_input, "initramfs.kernel_input")?);
    for i in repository_apks(p, set)? {
        add(i);
    }
    Ok(chosen.into_values().collect())
}

/// The `.apk` inputs `[boot.apks]` puts into the boot repository, sorted by name.
fn repository_apks<'a>(p: &BoardProfile, set: &'a InputSet) -> Result<Vec<&'a Input>, InputError> {
    let Some(repo) = &p.boot.apks else {
        return Ok(Vec::new());
    };
    let apks: Vec<&Input> = set
        .inputs
        .iter()
        .filter(|i| i.kind == InputKind::Apk)
        .collect();
    let mut chosen: BTreeMap<&str, &Input> = BTreeMap::new();
    for (n, pattern) in repo.inputs.iter().enumerate() {
        let field = format!("boot.apks.inputs[{n}]");
        let m = inputs::matcher(pattern, &field)?;
        let hits: Vec<&&Input> = apks.iter().filter(|i| m.is_match(&i.name)).collect();
        if hits.is_empty() {
            return Err(InputError::NoMatch {
                field,
                pattern: pattern.clone(),
                dir: set.dir.display().to_string(),
                available: if apks.is_empty() {
                    "no .apk inputs".into()
                } else {
                    apks.iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        for i in hits {
            chosen.insert(&i.name, i);
        }
    }
    Ok(chosen.into_values().collect())
}

/// Which parts of one input the profile needs.
#[derive(Default)]
struct Needs {
    rules: Vec<(usize, globset::GlobMatcher)>,
    busybox: Option<TreePath>,
    modules: bool,
    /// The whole file goes into the boot repository (`[boot.apks]`).
    whole: bool,
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
    for input in repository_apks(p, set)? {
        needs
            .entry(input.file.clone())
            .or_insert_with(|| (input.clone(), Needs::default()))
            .1
            .whole = true;
    }

    let mut rule_hits: Vec<Vec<BootFile>> = vec![Vec::new(); p.boot.files.len()];
    let mut busybox: Option<Arc<Vec<u8>>> = None;
    let mut available: BTreeMap<String, (String, ModInfo)> = BTreeMap::new();
    let mut builtin_text: Option<String> = None;
    let mut kernel_versions: BTreeSet<String> = BTreeSet::new();
    let mut newest: Option<(i64, String)> = None;
    let mut used_inputs = Vec::new();
    let mut dir_members = BTreeMap::new();
    let mut licenses = BTreeMap::new();
    let mut repository_files: Vec<BootFile> = Vec::new();

    for (input, need) in needs.values() {
        progress.phase(format!("reading {}", input.file));
        let label = input.label();
        // A directory's digest and its per-file digests come from one reading.
        let sha = if input.kind == InputKind::Dir {
            let members = input.member_digests()?;
            let sha = inputs::dir_digest(&members);
            dir_members.insert(input.file.clone(), members);
            sha
        } else {
            input.sha256()?
        };
        used_inputs.push((input.clone(), sha));
        let mut builddate = None;
        if input.kind == InputKind::Apk {
            let info = if need.whole {
                // The bytes checked against the datahash are the bytes copied.
                let bytes = read_whole(input, p.image.size.0)?;
                let info = apk::verify_bytes(&input.path, &bytes).map_err(InputError::from)?;
                let repo_arch = p.boot.apks.as_ref().map(|r| r.arch.as_str()).unwrap_or("");
                if info.arch != repo_arch && info.arch != "noarch" {
                    return Err(profile_err(
                        "boot.apks.arch".into(),
                        format!(
                            "input {} is for arch '{}', not '{repo_arch}'; narrow boot.apks.inputs or use the {repo_arch} package",
                            input.file, info.arch
                        ),
                    ));
                }
                let dest = format!("apks/{repo_arch}/{}-{}.apk", info.pkgname, info.pkgver);
                let dest = TreePath::new(&dest)
                    .map_err(|e| profile_err("boot.apks".into(), e.to_string()))?;
                repository_files.push((dest, Arc::new(bytes), format!("{label}: {}", input.file)));
                info
            } else {
                apk::read_info(&input.path).map_err(InputError::from)?
            };
            builddate = info.builddate;
            if let Some(l) = info.license {
                licenses.insert(input.file.clone(), l);
            }
        }
        let scanned = !need.rules.is_empty() || need.busybox.is_some() || need.modules;
        let mut input_newest = i64::MIN;
        if scanned {
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
        }
        // An apk's time is its builddate (as apko does); a .deb's or tarball's the newest
        // mtime inside; a directory has none.
        let candidate = match (input.kind, builddate) {
            (InputKind::Apk, Some(t)) => Some((t, format!("builddate of input {label}"))),
            (InputKind::Deb | InputKind::Tarball | InputKind::Apk, _)
                if input_newest > i64::MIN =>
            {
                Some((
                    input_newest,
                    EpochSource::Inputs {
                        input: label.clone(),
                    }
                    .to_string(),
                ))
            }
            _ => None,
        };
        if let Some((t, source)) = candidate {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, source));
            }
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
        (Some(e), _) => (e, EpochSource::Given.to_string()),
        (None, Some((t, source))) => (SourceDateEpoch::new(t)?, source),
        (None, None) => return Err(EpochError::Underivable.into()),
    };
    boot_files.extend(repository_files);

    let initramfs = InitramfsContent {
        busybox,
        applets: p.initramfs.applets.clone(),
        kernel_version: kver,
        modules: modules_list,
        load_order,
        modules_dep,
        boot_label: p.boot.label.clone(),
    };
    let mut initramfs_inputs = vec![bb.file.clone(), kernel.file.clone()];
    initramfs_inputs.dedup();
    Ok(Resolved {
        builtin_modules: closure.builtin,
        loaded,
        overlay,
        used_inputs,
        dir_members,
        boot_files,
        initramfs,
        epoch,
        epoch_source,
        licenses,
        initramfs_inputs,
        lock: None,
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

/// Reads a whole input file that goes onto the boot partition (refused when larger than the
/// image, which could never hold it).
fn read_whole(input: &Input, image_size: u64) -> Result<Vec<u8>, InputError> {
    let read_err = |source| InputError::Read {
        input: input.label(),
        path: input.path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(&input.path).map_err(read_err)?;
    let len = f.metadata().map_err(read_err)?.len();
    if len > image_size {
        return Err(InputError::Member {
            input: input.label(),
            path: input.file.clone(),
            message: format!(
                "is {} bytes, more than the whole {image_size}-byte image; raise image.size",
                len
            ),
        });
    }
    let mut data = Vec::with_capacity(len as usize);
    f.take(image_size + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    Ok(data)
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
    inputs_dir: &std::path::Path,
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
    if let Some(release) = &p.boot.alpine_release {
        let text = format!("{}\n", release.trim_end_matches('\n'));
        let path = TreePath::new(".alpine-release").expect("a valid path");
        boot.insert(path, Node::file(text.into_bytes(), 0o644), "board profile")
            .map_err(tree_err)?;
    }
    if p.boot.apks.is_some() {
        // The marker Alpine's initramfs looks for to use apks/ as a package repository.
        let path = TreePath::new("apks/.boot_repository").expect("a valid path");
        boot.insert(path, Node::file(Vec::new(), 0o644), "board profile")
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

    // What the firmware reads first, checked before anything is written (`pimg check`).
    let models: Vec<&crate::firmware::Model> = p
        .board
        .models
        .iter()
        .filter_map(|m| crate::firmware::model_by_id(m))
        .collect();
    let fw = crate::firmware::check(&mut crate::firmware::TreeFiles(&boot), &models);
    if !fw.ok() {
        return Err(Error::FirmwareCheck {
            profile: r.loaded.origin.clone(),
            problems: fw
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n  "),
        });
    }

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
        table: p.image.table,
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

    // Outputs: staged beside the output folder, published all at once when all are complete.
    let mut dir = OutputDir::open(out)?;
    let img_name = format!("{board}.img");
    progress.phase(format!("writing {img_name}"));
    let img_path = out.join(&img_name);
    let report = dir.write_with(&img_name, |file| {
        file.set_len(size).map_err(|source| {
            Error::from(PublishError::Output {
                path: img_path.display().to_string(),
                source,
            })
        })?;
        // An I/O failure (a full disk) is an output error, whichever writer met it.
        let io_failure = std::cell::RefCell::new(None);
        let as_output = |e: Error| match io_failure.borrow_mut().take() {
            Some(source) => Error::from(PublishError::Output {
                path: img_path.display().to_string(),
                source,
            }),
            None => e,
        };
        disk::write_table(&mut RecordIo::new(&mut *file, &io_failure), &layout)
            .map_err(|e| as_output(e.into()))?;
        let window = Window::new(RecordIo::new(&mut *file, &io_failure), offset, part_size);
        fat::write_fat(window, part_size, &boot, &params).map_err(|e| as_output(e.into()))
    })?;
    if let Some(clamped) = report.clamped_epoch {
        warnings.push(format!(
            "SOURCE_DATE_EPOCH {} is outside FAT's 1980..2107 range: FAT timestamps use {clamped}",
            r.epoch
        ));
    }

    progress.phase(format!("writing {board}.tar.gz"));
    let tarball = {
        let gz = crate::codec::gzip::write::encoder(Vec::new(), level);
        let gz = crate::codec::tar::write::write_tree(gz, &boot, r.epoch.seconds() as u64)
            .map_err(|source| Error::Archive {
                what: "rpi tarball".into(),
                source,
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

    // The SBOM lists every input and the artifacts written so far.
    let all_inputs: Vec<String> = r.used_inputs.iter().map(|(i, _)| i.file.clone()).collect();
    let sbom_inputs: Vec<SbomInput> = r
        .used_inputs
        .iter()
        .map(|(i, sha)| SbomInput {
            name: i.name.clone(),
            version: i.version.clone(),
            arch: i.arch.clone(),
            file: i.file.clone(),
            sha256: sha.clone(),
            license: r.licenses.get(&i.file).cloned(),
            kind: match i.kind {
                InputKind::Deb => "Debian package",
                InputKind::Apk => "Alpine package",
                InputKind::Tarball => "tar archive",
                InputKind::Dir => "directory",
            },
        })
        .collect();
    let sbom_outputs: Vec<SbomOutput> = dir
        .files()
        .iter()
        .map(|o| {
            let (purpose, from) = if o.name == apkovl_name {
                ("ARCHIVE", Vec::new())
            } else if o.name.ends_with(".initramfs.cpio.gz") {
                ("ARCHIVE", r.initramfs_inputs.clone())
            } else if o.name.ends_with(".img") {
                ("INSTALL", all_inputs.clone())
            } else {
                ("ARCHIVE", all_inputs.clone())
            };
            SbomOutput {
                name: o.name.clone(),
                sha256: o.sha256.clone(),
                purpose,
                generated_from: from,
            }
        })
        .collect();
    let spdx = sbom::document(&board, r.epoch, &sbom_inputs, &sbom_outputs);
    dir.write_bytes(&format!("{board}.spdx.json"), &spdx)?;

    let buildinfo = Buildinfo {
        format: "pimg-buildinfo/1",
        pimg_version: env!("CARGO_PKG_VERSION"),
        cargo_lock_sha256: crate::profile::embedded::CARGO_LOCK_SHA256,
        board: BuildinfoBoard {
            name: board.clone(),
            profile: stable_origin(&r.loaded.origin),
            profile_sha256: hex(&Sha256::digest(r.loaded.text.as_bytes())),
            table: r.loaded.table_override.map(|t| t.name()),
        },
        overlay: BuildinfoOverlay {
            name: r.overlay.name.clone(),
            hostname: r.overlay.hostname.clone(),
            sha256: r.overlay.digest(),
        },
        source_date_epoch: r.epoch.seconds(),
        epoch_source: r.epoch_source.clone(),
        lock: r.lock.clone(),
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

    progress.phase("checking that the inputs did not change");
    recheck_inputs(inputs_dir, &r.used_inputs, &r.dir_members)?;
    progress.phase("publishing");
    let out_dir = dir.commit()?;
    warnings.extend(dir.warnings().iter().cloned());
    Ok(BuildReport {
        board,
        out_dir,
        source_date_epoch: r.epoch.seconds(),
        epoch_source: r.epoch_source.clone(),
        lock: r.lock.clone(),
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

/// Inputs are opened several times (listing, hashing, scanning); one replaced meanwhile would
/// leave a buildinfo that describes other bytes than the image holds, so before publishing
/// every input used must still have the name, version and SHA-256 that were recorded.
fn recheck_inputs(
    dir: &std::path::Path,
    used: &[(Input, String)],
    dir_members: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), Error> {
    let changed = |input: &Input| {
        // For a directory, name the first file that differs from what was read.
        let file = dir_members.get(&input.file).and_then(|before| {
            let now = input.member_digests().unwrap_or_default();
            before
                .iter()
                .find(|(p, d)| now.get(*p) != Some(*d))
                .map(|(p, _)| p.clone())
                .or_else(|| now.keys().find(|p| !before.contains_key(*p)).cloned())
        });
        Error::InputChanged {
            input: match file {
                Some(f) => format!("{}/{f}", input.file),
                None => input.file.clone(),
            },
        }
    };
    let now = InputSet::discover(dir)?;
    for (input, sha) in used {
        let same = now.inputs.iter().find(|i| {
            i.file == input.file
                && i.name == input.name
                && i.version == input.version
                && i.arch == input.arch
        });
        match same {
            Some(i) if i.sha256().ok().as_ref() == Some(sha) => {}
            _ => return Err(changed(input)),
        }
    }
    Ok(())
}

/// Shipped profiles keep their `boards/` path; a profile file is named by its file name only,
/// so the buildinfo does not depend on the directory it was built from.
pub(crate) fn stable_origin(origin: &str) -> String {
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
    /// The lock file the build was checked against (`--locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<LockRecord>,
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
    /// The partition table when `--table` overrode the profile's.
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<&'static str>,
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
