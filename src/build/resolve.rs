//! The resolve stage: read every selected input once, hashing it and taking the members the
//! profile needs (boot files, busybox, the kernel's modules), close the module dependencies
//! and fix the epoch.

use super::error::Error;
use super::select::repository_apks;
use crate::artifact::boot_tree::BootFile;
use crate::artifact::buildinfo::BuildinfoModuleFile;
use crate::artifact::initramfs::InitramfsContent;
use crate::artifact::modloop::{self, FirmwareFile, FirmwareNode, ModloopContent};
use crate::artifact::modules::{self, ModInfo};
use crate::codec::apkindex::IndexRecord;
use crate::codec::kmod::{self, Compression};
use crate::digest::sha256_hex;
use crate::epoch::{EpochError, EpochSource, SourceDateEpoch};
use crate::inputs::apk_keys::{ApkTrust, Verdict};
use crate::inputs::cache::Cache;
use crate::inputs::deb::{Member, MemberKind};
use crate::inputs::{self, apk, Input, InputError, InputKind, InputSet};
use crate::profile::board::{BoardProfile, LoadedProfile};
use crate::progress::Progress;
use crate::tree::TreePath;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

/// Everything resolved from the inputs before any output is written.
pub(super) struct Resolved {
    pub used_inputs: Vec<(Input, String)>,
    /// Per-file digests of directory inputs, to name the file when one changes mid-build.
    pub dir_members: BTreeMap<String, BTreeMap<String, String>>,
    pub boot_files: Vec<BootFile>,
    pub initramfs: InitramfsContent,
    pub builtin_modules: Vec<String>,
    pub epoch: SourceDateEpoch,
    /// Where the epoch came from, as the buildinfo says it.
    pub epoch_source: String,
    /// Licence stated by each used input (by file name), for the SBOM.
    pub licenses: BTreeMap<String, String>,
    /// File names of the inputs the initramfs is made from (busybox, kernel).
    pub initramfs_inputs: Vec<String>,
    /// Where the kernel's module tree is in its input (`usr/lib/modules/<version>`).
    pub module_tree: String,
    /// Each installed module: the member it came from and both digests.
    pub module_files: Vec<BuildinfoModuleFile>,
    /// For each profile field that names alternatives, the one that matched.
    pub matched: BTreeMap<String, String>,
    /// Who vouched for each `.apk` input (by file name).
    pub apk_verdicts: BTreeMap<String, Verdict>,
    /// The index records of the boot repository's packages.
    pub repository_records: Vec<IndexRecord>,
    /// The modules asked of the initramfs: the profile's, and what mounting the modloop needs.
    pub requested_modules: Vec<String>,
    /// The modloop's content, when the profile has one.
    pub modloop: Option<ModloopContent>,
}

/// Which parts of one input the profile needs.
#[derive(Default)]
struct Needs {
    rules: Vec<(usize, globset::GlobMatcher)>,
    /// The places busybox may be, first match wins.
    busybox: Vec<TreePath>,
    modules: bool,
    /// Firmware rules (`[modloop] firmware`) by index.
    firmware: Vec<(usize, globset::GlobMatcher)>,
    /// The whole file goes into the boot repository (`[boot.apks]`).
    whole: bool,
}

/// Each needed input (by file name, which is unique) with what is needed from it.
struct Wanted {
    needs: BTreeMap<String, (Input, Needs)>,
    busybox: Input,
    kernel: Input,
}

/// What reading the inputs found.
#[derive(Default)]
struct Found {
    rule_hits: Vec<Vec<BootFile>>,
    /// busybox by the index of the alternative it was found at.
    busybox: BTreeMap<usize, Arc<Vec<u8>>>,
    /// Module name → (installed path under the tree, metadata).
    available: BTreeMap<String, (String, ModInfo)>,
    /// Module name → the member it is stored as, and how.
    members: BTreeMap<String, (String, Compression)>,
    /// Module name → the member's bytes as stored, kept so the kernel is read once.
    module_data: BTreeMap<String, Arc<Vec<u8>>>,
    /// Other files at the top of the module tree (`modules.builtin`, `modules.order`, …).
    module_metadata: BTreeMap<String, Arc<Vec<u8>>>,
    /// Firmware for the modloop: path below `firmware/` → (node, where it came from).
    firmware: BTreeMap<String, (FirmwareNode, String)>,
    /// Which firmware rules matched anything.
    firmware_hits: BTreeSet<usize>,
    builtin_text: Option<String>,
    /// (module root, kernel version) of every module seen.
    module_trees: BTreeSet<(String, String)>,
    newest: Option<(i64, String)>,
    used_inputs: Vec<(Input, String)>,
    dir_members: BTreeMap<String, BTreeMap<String, String>>,
    licenses: BTreeMap<String, String>,
    repository_files: Vec<BootFile>,
    apk_verdicts: BTreeMap<String, Verdict>,
    repository_records: Vec<IndexRecord>,
    /// The boot partition's size: no member pimg reads can be larger and still fit.
    room: u64,
}

/// The initramfs's modules: the closure of the requested names, with their bytes.
struct KernelModules {
    kernel_version: String,
    tree: String,
    files: Vec<BuildinfoModuleFile>,
    modules: Vec<(String, Arc<Vec<u8>>)>,
    load_order: Vec<String>,
    modules_dep: String,
    builtin: Vec<String>,
}

pub(super) fn resolve(
    loaded: &LoadedProfile,
    set: &InputSet,
    given_epoch: Option<SourceDateEpoch>,
    cache: Option<&Cache>,
    trust: &ApkTrust,
    progress: &Progress,
) -> Result<Resolved, Error> {
    let p: &BoardProfile = &loaded.profile;
    let origin = loaded.origin.as_str();
    let wanted = wanted(p, set, origin)?;
    let mut found = Found {
        rule_hits: vec![Vec::new(); p.boot.files.len()],
        room: crate::artifact::disk_image::plan(p).map_or(u64::MAX, |d| d.part_size),
        ..Found::default()
    };
    for (input, need) in wanted.needs.values() {
        progress.phase(format!("reading {}", input.file));
        read_input(p, input, need, &mut found, cache, trust, origin)?;
    }
    let mut boot_files = boot_files(p, &found.rule_hits, origin)?;
    let (busybox, matched) = busybox_of(p, &wanted.busybox, &mut found, origin)?;
    let requested_modules = requested_modules(p);
    progress.phase(format!(
        "collecting kernel modules from {}",
        wanted.kernel.file
    ));
    let km = kernel_modules(&requested_modules, &wanted.kernel, &mut found, origin)?;
    let modloop = modloop_content(p, &km, &wanted.kernel, &mut found, origin)?;
    let (epoch, epoch_source) = epoch_of(given_epoch, found.newest.take())?;
    boot_files.append(&mut found.repository_files);
    let mut initramfs_inputs = vec![wanted.busybox.file.clone(), wanted.kernel.file.clone()];
    initramfs_inputs.dedup();
    Ok(Resolved {
        used_inputs: found.used_inputs,
        dir_members: found.dir_members,
        boot_files,
        initramfs: InitramfsContent {
            busybox,
            applets: p.initramfs.applets.clone(),
            kernel_version: km.kernel_version,
            modules: km.modules,
            load_order: km.load_order,
            modules_dep: km.modules_dep,
            boot_label: p.boot.label.clone(),
            modloop: p
                .modloop
                .as_ref()
                .map(|m| m.path.trim_matches('/').to_string()),
            check_module: p.modloop.as_ref().and_then(|m| m.check_module.clone()),
        },
        builtin_modules: km.builtin,
        module_tree: km.tree,
        module_files: km.files,
        matched,
        epoch,
        epoch_source,
        licenses: found.licenses,
        initramfs_inputs,
        apk_verdicts: found.apk_verdicts,
        repository_records: found.repository_records,
        requested_modules,
        modloop,
    })
}

/// For each profile field that names alternatives, the one that matched.
type Matched = BTreeMap<String, String>;

/// The busybox found at the first place the profile names that holds one, and which place
/// that was when it names several.
fn busybox_of(
    p: &BoardProfile,
    input: &Input,
    found: &mut Found,
    origin: &str,
) -> Result<(Arc<Vec<u8>>, Matched), Error> {
    let alternatives = &p.initramfs.busybox.path;
    let Some((at, busybox)) = std::mem::take(&mut found.busybox).into_iter().next() else {
        return Err(Error::profile(
            origin,
            "initramfs.busybox.path",
            format!("{alternatives} is not in input '{}'", input.label()),
        ));
    };
    let mut matched = BTreeMap::new();
    if alternatives.0.len() > 1 {
        matched.insert(
            "initramfs.busybox.path".to_string(),
            alternatives.0[at].clone(),
        );
    }
    Ok((busybox, matched))
}

/// The profile's initramfs modules, and what mounting its modloop needs.
fn requested_modules(p: &BoardProfile) -> Vec<String> {
    let mut requested = p.initramfs.modules.clone();
    if p.modloop.is_some() {
        for m in modloop::MOUNT_MODULES {
            if !requested.iter().any(|r| r.replace('-', "_") == m) {
                requested.push(m.to_string());
            }
        }
    }
    requested
}

/// The epoch given, else the newest the inputs offered, with where it came from.
fn epoch_of(
    given: Option<SourceDateEpoch>,
    newest: Option<(i64, String)>,
) -> Result<(SourceDateEpoch, String), Error> {
    Ok(match (given, newest) {
        (Some(e), _) => (e, EpochSource::Given.to_string()),
        (None, Some((t, source))) => (SourceDateEpoch::new(t)?, source),
        (None, None) => return Err(EpochError::Underivable.into()),
    })
}

fn wanted(p: &BoardProfile, set: &InputSet, origin: &str) -> Result<Wanted, Error> {
    let mut needs: BTreeMap<String, (Input, Needs)> = BTreeMap::new();
    fn need<'a>(needs: &'a mut BTreeMap<String, (Input, Needs)>, input: &Input) -> &'a mut Needs {
        &mut needs
            .entry(input.file.clone())
            .or_insert_with(|| (input.clone(), Needs::default()))
            .1
    }
    for (i, rule) in p.boot.files.iter().enumerate() {
        let input = set.select(&rule.input, &format!("boot.files[{i}].input"))?;
        let m = inputs::matcher(&rule.glob, &format!("boot.files[{i}].glob"))?;
        need(&mut needs, input).rules.push((i, m));
    }
    let busybox = set.select(&p.initramfs.busybox.input, "initramfs.busybox.input")?;
    let mut places = Vec::new();
    for path in &p.initramfs.busybox.path.0 {
        places.push(
            TreePath::new(path)
                .map_err(|e| Error::profile(origin, "initramfs.busybox.path", e.to_string()))?,
        );
    }
    need(&mut needs, busybox).busybox = places;
    let kernel = set.select(&p.initramfs.kernel_input, "initramfs.kernel_input")?;
    need(&mut needs, kernel).modules = true;
    for (i, rule) in p.modloop.iter().flat_map(|m| &m.firmware).enumerate() {
        let input = set.select(&rule.input, &format!("modloop.firmware[{i}].input"))?;
        let m = inputs::matcher(&rule.glob, &format!("modloop.firmware[{i}].glob"))?;
        need(&mut needs, input).firmware.push((i, m));
    }
    for input in repository_apks(p, set)? {
        need(&mut needs, input).whole = true;
    }
    Ok(Wanted {
        busybox: busybox.clone(),
        kernel: kernel.clone(),
        needs,
    })
}

/// Hashes one input, reads its apk metadata, takes the members it is needed for and offers
/// its time as the epoch.
fn read_input(
    p: &BoardProfile,
    input: &Input,
    need: &Needs,
    found: &mut Found,
    cache: Option<&Cache>,
    trust: &ApkTrust,
    origin: &str,
) -> Result<(), Error> {
    // A directory's digest and its per-file digests come from one reading.
    let sha = if input.kind == InputKind::Dir {
        let members = input.member_digests()?;
        let sha = inputs::dir_digest(&members);
        found.dir_members.insert(input.file.clone(), members);
        sha
    } else {
        input.sha256()?
    };
    found.used_inputs.push((input.clone(), sha.clone()));
    let builddate = if input.kind == InputKind::Apk {
        read_apk(p, input, need, found, trust, origin)?
    } else {
        None
    };
    let scanned = !need.rules.is_empty()
        || !need.busybox.is_empty()
        || need.modules
        || !need.firmware.is_empty();
    let mut input_newest = i64::MIN;
    if scanned {
        let label = input.label();
        scan(cache, input, &sha, &mut |m, r| {
            input_newest = input_newest.max(m.mtime);
            take_member(need, m, r, &label, found, cache)
        })?;
    }
    offer_epoch(input, builddate, input_newest, &mut found.newest);
    Ok(())
}

/// An apk's licence and builddate; for the boot repository also its whole bytes, checked.
fn read_apk(
    p: &BoardProfile,
    input: &Input,
    need: &Needs,
    found: &mut Found,
    trust: &ApkTrust,
    origin: &str,
) -> Result<Option<i64>, Error> {
    let info = if need.whole {
        // The bytes checked against the datahash are the bytes copied.
        let bytes = read_whole(input, p.image.size.0)?;
        let info = apk::verify_bytes(&input.path, &bytes).map_err(InputError::from)?;
        let repo_arch = p.boot.apks.as_ref().map(|r| r.arch.as_str()).unwrap_or("");
        if info.arch() != repo_arch && info.arch() != "noarch" {
            return Err(Error::profile(
                origin,
                "boot.apks.arch",
                format!(
                    "input {} is for arch '{}', not '{repo_arch}'; narrow boot.apks.inputs or use the {repo_arch} package",
                    input.file, info.arch()
                ),
            ));
        }
        let dest = format!("apks/{repo_arch}/{}-{}.apk", info.name(), info.version());
        let dest =
            TreePath::new(&dest).map_err(|e| Error::profile(origin, "boot.apks", e.to_string()))?;
        found.repository_files.push(BootFile {
            path: dest,
            data: Arc::new(bytes),
            origin: format!("{}: {}", input.label(), input.file),
        });
        found.repository_records.push(info.record.clone());
        info
    } else {
        apk::read_info(&input.path).map_err(InputError::from)?
    };
    let verdict = trust.check(&input.path, &info).map_err(InputError::from)?;
    found.apk_verdicts.insert(input.file.clone(), verdict);
    if let Some(l) = info.license() {
        found.licenses.insert(input.file.clone(), l.to_string());
    }
    Ok(info.builddate)
}

/// The indices of the rules whose glob matches `path`.
fn matching(rules: &[(usize, globset::GlobMatcher)], path: &str) -> Vec<usize> {
    rules
        .iter()
        .filter(|(_, g)| g.is_match(path))
        .map(|(i, _)| *i)
        .collect()
}

/// Keeps one member when a boot-file rule, busybox or the module tree wants it.
fn take_member(
    need: &Needs,
    m: &Member,
    r: &mut dyn Read,
    label: &str,
    found: &mut Found,
    cache: Option<&Cache>,
) -> Result<(), InputError> {
    let path = m.path.as_str();
    let rules = matching(&need.rules, path);
    let busybox_at = need.busybox.iter().position(|b| *b == m.path);
    let is_busybox = busybox_at.is_some();
    let module = if need.modules {
        module_path(path).map_err(|e| InputError::Member {
            input: label.to_string(),
            path: path.to_string(),
            message: e.to_string(),
        })?
    } else {
        None
    };
    let is_builtin = need.modules && is_modules_builtin(path);
    let metadata = need
        .modules
        .then(|| module_metadata(path))
        .flatten()
        .filter(|_| module.is_none() && m.kind == MemberKind::File);
    let firmware = matching(&need.firmware, path);
    if !firmware.is_empty() && m.kind != MemberKind::Dir {
        take_firmware(m, r, label, &firmware, found)?;
    }
    if rules.is_empty() && !is_busybox && module.is_none() && !is_builtin && metadata.is_none() {
        return Ok(());
    }
    match &m.kind {
        MemberKind::File => {}
        MemberKind::Dir if module.is_none() && !is_busybox => return Ok(()),
        other => {
            return Err(InputError::Member {
                input: label.to_string(),
                path: path.to_string(),
                message: format!(
                    "is {other}, not a regular file; point the profile at the file it refers to"
                ),
            })
        }
    }
    let data = Arc::new(read_member(r, m.size, found.room, label, path)?);
    if let Some(module) = &module {
        take_module(module, path, &data, label, found, cache)?;
    }
    if is_builtin {
        found.builtin_text = Some(String::from_utf8_lossy(&data).into_owned());
    }
    if let Some(name) = metadata {
        found.module_metadata.insert(name.to_string(), data.clone());
    }
    if let Some(at) = busybox_at {
        found.busybox.insert(at, data.clone());
    }
    for i in rules {
        found.rule_hits[i].push(BootFile {
            path: m.path.clone(),
            data: data.clone(),
            origin: format!("{label}: {path}"),
        });
    }
    Ok(())
}

/// Keeps a module's bytes and metadata (its name, dependencies and where it is stored).
fn take_module(
    module: &ModulePath,
    path: &str,
    data: &Arc<Vec<u8>>,
    label: &str,
    found: &mut Found,
    cache: Option<&Cache>,
) -> Result<(), InputError> {
    let member_err = |message: String| InputError::Member {
        input: label.to_string(),
        path: path.to_string(),
        message,
    };
    found
        .module_trees
        .insert((module.root.clone(), module.kernel_version.clone()));
    let info = module_info(data, module.compression, cache).map_err(member_err)?;
    let name = info.name.clone();
    found
        .members
        .insert(name.clone(), (path.to_string(), module.compression));
    found
        .available
        .insert(name.clone(), (module.installed.clone(), info));
    found.module_data.insert(name, data.clone());
    Ok(())
}

/// Files of the package's module tree kept in the modloop beside the modules; depmod's own
/// outputs are not among them (`modules.dep` is generated).
const MODULE_METADATA: [&str; 3] = [
    "modules.builtin",
    "modules.builtin.modinfo",
    "modules.order",
];

/// `modules.builtin` and friends at the top of a module tree, by name.
fn module_metadata(path: &str) -> Option<&'static str> {
    let (_, _, rel) = in_module_tree(path)?;
    MODULE_METADATA.iter().find(|n| **n == rel).copied()
}

/// Where firmware trees live, before and after the /usr merge.
const FIRMWARE_ROOTS: [&str; 2] = ["lib/firmware/", "usr/lib/firmware/"];

/// Keeps one firmware member (a file or a link) for the modloop, by its path below the
/// firmware root.
fn take_firmware(
    m: &Member,
    r: &mut dyn Read,
    label: &str,
    rules: &[usize],
    found: &mut Found,
) -> Result<(), InputError> {
    let path = m.path.as_str();
    let member_err = |message: String| InputError::Member {
        input: label.to_string(),
        path: path.to_string(),
        message,
    };
    let field = format!("modloop.firmware[{}].glob", rules[0]);
    let Some(rel) = FIRMWARE_ROOTS
        .iter()
        .find_map(|root| path.strip_prefix(root))
    else {
        return Err(member_err(format!(
            "matches {field} but is not under lib/firmware/ or usr/lib/firmware/; narrow the glob"
        )));
    };
    let node = match &m.kind {
        MemberKind::File => {
            FirmwareNode::File(Arc::new(read_member(r, m.size, found.room, label, path)?))
        }
        MemberKind::Symlink(target) => FirmwareNode::Symlink(target.clone()),
        other => {
            return Err(member_err(format!(
                "matches {field} but is {other}; the modloop takes files and symlinks"
            )))
        }
    };
    let origin = format!("{label}: {path}");
    if let Some((_, first)) = found.firmware.get(rel) {
        return Err(member_err(format!(
            "goes to firmware/{rel}, as {first} does; narrow the modloop.firmware globs"
        )));
    }
    found.firmware.insert(rel.to_string(), (node, origin));
    found.firmware_hits.extend(rules);
    Ok(())
}

/// An apk's time is its builddate (as apko does); a .deb's or tarball's the newest mtime
/// inside; a directory has none. The newest of all inputs wins.
fn offer_epoch(
    input: &Input,
    builddate: Option<i64>,
    input_newest: i64,
    newest: &mut Option<(i64, String)>,
) {
    let label = input.label();
    let candidate = match (input.kind, builddate) {
        (InputKind::Apk, Some(t)) => Some((t, format!("builddate of input {label}"))),
        (InputKind::Deb | InputKind::Tarball | InputKind::Apk, _) if input_newest > i64::MIN => {
            Some((
                input_newest,
                EpochSource::Inputs { input: label }.to_string(),
            ))
        }
        _ => None,
    };
    if let Some((t, source)) = candidate {
        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
            *newest = Some((t, source));
        }
    }
}

/// Boot files: each rule must match, and a file destination takes exactly one member.
fn boot_files(
    p: &BoardProfile,
    rule_hits: &[Vec<BootFile>],
    origin: &str,
) -> Result<Vec<BootFile>, Error> {
    let mut boot_files = Vec::new();
    for (i, rule) in p.boot.files.iter().enumerate() {
        let hits = &rule_hits[i];
        let to_err = |e: crate::tree::PathError| {
            Error::profile(origin, format!("boot.files[{i}].to"), e.to_string())
        };
        if hits.is_empty() {
            return Err(Error::profile(
                origin,
                format!("boot.files[{i}].glob"),
                format!(
                    "'{}' matches no file in input '{}'; list the package with dpkg-deb -c",
                    rule.glob, rule.input
                ),
            ));
        }
        if rule.to.ends_with('/') {
            let dir = rule.to.trim_matches('/');
            for hit in hits {
                let dest = if dir.is_empty() {
                    hit.path.file_name().to_string()
                } else {
                    format!("{dir}/{}", hit.path.file_name())
                };
                let path = TreePath::new(&dest).map_err(to_err)?;
                boot_files.push(BootFile {
                    path,
                    ..hit.clone()
                });
            }
        } else {
            if hits.len() != 1 {
                let names: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
                return Err(Error::profile(
                    origin,
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
            let path = TreePath::new(&rule.to).map_err(to_err)?;
            boot_files.push(BootFile {
                path,
                ..hits[0].clone()
            });
        }
    }
    Ok(boot_files)
}

/// The one module tree (root and kernel version) the kernel input holds.
fn module_tree(kernel: &Input, found: &mut Found, origin: &str) -> Result<(String, String), Error> {
    let trees = std::mem::take(&mut found.module_trees);
    match trees.len() {
        1 => Ok(trees.into_iter().next().expect("one")),
        0 => Err(Error::profile(
            origin,
            "initramfs.kernel_input",
            format!(
                "input '{}' holds no kernel modules under lib/modules/ or usr/lib/modules/",
                kernel.label()
            ),
        )),
        _ => Err(Error::profile(
            origin,
            "initramfs.kernel_input",
            format!(
                "input '{}' holds modules for several kernels ({}); use a package with one",
                kernel.label(),
                trees
                    .iter()
                    .map(|(root, kver)| format!("{root}/{kver}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The closure of the requested names, with their bytes decompressed for the initramfs.
fn kernel_modules(
    requested: &[String],
    kernel: &Input,
    found: &mut Found,
    origin: &str,
) -> Result<KernelModules, Error> {
    let (root, kver) = module_tree(kernel, found, origin)?;
    let builtin = modules::parse_builtin(found.builtin_text.as_deref().unwrap_or(""));
    let closure = modules::closure(requested, &found.available, &builtin).map_err(|source| {
        Error::Modules {
            input: kernel.label(),
            source,
        }
    })?;
    let modules_dep = modules::modules_dep(&closure, &found.available);
    let label = kernel.label();
    let mut installed: BTreeMap<String, Arc<Vec<u8>>> = BTreeMap::new();
    let mut files = Vec::new();
    for name in &closure.load_order {
        let (member, c) = &found.members[name];
        let data = &found.module_data[name];
        let elf = kmod::decompress(data, *c).map_err(|e| InputError::Member {
            input: label.clone(),
            path: member.clone(),
            message: e.to_string(),
        })?;
        let rel = found.available[name].0.clone();
        files.push(BuildinfoModuleFile {
            member: member.clone(),
            member_sha256: sha256_hex(data),
            installed: rel.clone(),
            sha256: sha256_hex(&elf),
        });
        installed.insert(rel, Arc::new(elf));
    }
    files.sort_by(|a, b| a.installed.cmp(&b.installed));
    Ok(KernelModules {
        modules: installed.into_iter().collect(),
        load_order: closure
            .load_order
            .iter()
            .map(|n| found.available[n].0.clone())
            .collect(),
        kernel_version: kver.clone(),
        tree: format!("{root}/{kver}"),
        files,
        modules_dep,
        builtin: closure.builtin,
    })
}

/// The modloop's content: every module as stored with a `modules.dep` over all of them,
/// the tree's metadata files and the firmware. Checks that every firmware rule matched and
/// that the check module is in the modloop but not in the initramfs.
fn modloop_content(
    p: &BoardProfile,
    km: &KernelModules,
    kernel: &Input,
    found: &mut Found,
    origin: &str,
) -> Result<Option<ModloopContent>, Error> {
    let Some(spec) = &p.modloop else {
        return Ok(None);
    };
    for (i, rule) in spec.firmware.iter().enumerate() {
        if !found.firmware_hits.contains(&i) {
            return Err(Error::profile(
                origin,
                format!("modloop.firmware[{i}].glob"),
                format!(
                    "'{}' matches no file or link in input '{}'; list the package with dpkg-deb -c",
                    rule.glob, rule.input
                ),
            ));
        }
    }
    let prefix = format!("{}/", km.tree);
    // Name → (path below the tree as stored, metadata): modules.dep names the stored files.
    let stored: BTreeMap<String, (String, ModInfo)> = found
        .available
        .iter()
        .map(|(name, (_, info))| {
            let member = &found.members[name].0;
            let rel = member.strip_prefix(&prefix).unwrap_or(member).to_string();
            (name.clone(), (rel, info.clone()))
        })
        .collect();
    let all: Vec<String> = stored.keys().cloned().collect();
    let builtin = modules::parse_builtin(found.builtin_text.as_deref().unwrap_or(""));
    let closure = modules::closure(&all, &stored, &builtin).map_err(|source| Error::Modules {
        input: kernel.label(),
        source,
    })?;
    if let Some(check) = &spec.check_module {
        let name = check.replace('-', "_");
        let in_initramfs = km
            .load_order
            .iter()
            .any(|rel| modules::module_name_from_path(rel).replace('-', "_") == name);
        if !stored.keys().any(|k| k.replace('-', "_") == name) || in_initramfs {
            return Err(Error::profile(
                origin,
                "modloop.check_module",
                format!(
                    "'{check}' must be a module of input '{}' that the initramfs does not take{}",
                    kernel.label(),
                    if in_initramfs {
                        " (it does)"
                    } else {
                        " (it has no such module)"
                    }
                ),
            ));
        }
    }
    let modules = stored
        .iter()
        .map(|(name, (rel, _))| (rel.clone(), found.module_data[name].clone()))
        .collect();
    Ok(Some(ModloopContent {
        kernel_version: km.kernel_version.clone(),
        modules_dep: modules::modules_dep(&closure, &stored),
        modules,
        metadata: std::mem::take(&mut found.module_metadata)
            .into_iter()
            .collect(),
        firmware: std::mem::take(&mut found.firmware)
            .into_iter()
            .map(|(path, (node, origin))| FirmwareFile { path, node, origin })
            .collect(),
    }))
}

/// A module file in a kernel package's module tree.
#[derive(Debug)]
struct ModulePath {
    /// `lib/modules` or `usr/lib/modules` (merged /usr).
    root: String,
    kernel_version: String,
    /// Where it goes under the initramfs's `lib/modules/<version>/`: always `.ko`.
    installed: String,
    compression: Compression,
}

/// Where module trees live: before and after the /usr merge.
const MODULE_ROOTS: [&str; 2] = ["lib/modules", "usr/lib/modules"];

/// `<root>/<kver>/<rel>` for either root.
fn in_module_tree(path: &str) -> Option<(&'static str, &str, &str)> {
    MODULE_ROOTS.iter().find_map(|root| {
        let rest = path.strip_prefix(root)?.strip_prefix('/')?;
        let (kver, rel) = rest.split_once('/')?;
        Some((*root, kver, rel))
    })
}

/// `[usr/]lib/modules/<kver>/<rel>.ko[.xz|.gz|.zst]`; an error for an unknown compression.
fn module_path(path: &str) -> Result<Option<ModulePath>, kmod::KmodError> {
    let Some((root, kver, rel)) = in_module_tree(path) else {
        return Ok(None);
    };
    Ok(
        kmod::split(rel)?.map(|(installed, compression)| ModulePath {
            root: root.to_string(),
            kernel_version: kver.to_string(),
            installed: installed.to_string(),
            compression,
        }),
    )
}

fn is_modules_builtin(path: &str) -> bool {
    in_module_tree(path).is_some_and(|(_, _, rel)| rel == "modules.builtin")
}

/// Visits an input's members, through the cache when there is one.
fn scan(
    cache: Option<&Cache>,
    input: &Input,
    sha: &str,
    visit: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<(), InputError>,
) -> Result<(), InputError> {
    match cache {
        Some(c) => c.scan(input, sha, visit),
        None => input.scan(visit),
    }
}

/// A module's `.modinfo`, from the cache when it was read before: decompressing every
/// module of a kernel package is as slow as decoding the package.
fn module_info(
    stored: &[u8],
    compression: Compression,
    cache: Option<&Cache>,
) -> Result<ModInfo, String> {
    let kind = format!("modinfo-1{}", compression.suffix().replace('.', "-"));
    let key = cache.map(|_| sha256_hex(stored));
    if let (Some(c), Some(key)) = (cache, &key) {
        if let Some(info) = c
            .derived(&kind, key)
            .and_then(|v| serde_json::from_slice::<ModInfo>(&v).ok())
        {
            return Ok(info);
        }
    }
    let elf = kmod::decompress(stored, compression).map_err(|e| e.to_string())?;
    let info = modules::parse_modinfo(&elf).map_err(|e| e.to_string())?;
    if let (Some(c), Some(key)) = (cache, &key) {
        c.store_derived(&kind, key, &serde_json::to_vec(&info).expect("serializes"));
    }
    Ok(info)
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
/// Reads a member of `size` bytes (its header's word, which the reader holds it to); one
/// larger than `room`, the boot partition, could never be used and is refused unread.
fn read_member(
    r: &mut dyn Read,
    size: u64,
    room: u64,
    input: &str,
    path: &str,
) -> Result<Vec<u8>, InputError> {
    if size > room {
        return Err(InputError::Member {
            input: input.to_string(),
            path: path.to_string(),
            message: format!(
                "is {size} bytes but the whole boot partition holds {room}, so it cannot fit \
                 and is not read; raise image.size (or boot.size) or select another file"
            ),
        });
    }
    let mut data = Vec::with_capacity(size.min(64 << 20) as usize);
    r.read_to_end(&mut data)
        .map_err(|source| InputError::Read {
            input: input.to_string(),
            path: path.to_string(),
            source,
        })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_trees_before_and_after_the_usr_merge() {
        let m = module_path("lib/modules/6.1.0-57-arm64/kernel/fs/fat/vfat.ko")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                m.root.as_str(),
                m.kernel_version.as_str(),
                m.installed.as_str()
            ),
            ("lib/modules", "6.1.0-57-arm64", "kernel/fs/fat/vfat.ko")
        );
        assert_eq!(m.compression, Compression::None);
        let m = module_path("usr/lib/modules/6.12.118+deb13-arm64/kernel/fs/fat/vfat.ko.xz")
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.root.as_str(), m.installed.as_str(), m.compression),
            ("usr/lib/modules", "kernel/fs/fat/vfat.ko", Compression::Xz)
        );
        for (path, c) in [
            ("x.ko.gz", Compression::Gzip),
            ("x.ko.zst", Compression::Zstd),
        ] {
            let m = module_path(&format!("usr/lib/modules/v/kernel/{path}"))
                .unwrap()
                .unwrap();
            assert_eq!((m.installed.as_str(), m.compression), ("kernel/x.ko", c));
        }
        for other in [
            "usr/lib/modules/v/modules.builtin",
            "usr/lib/modules.ko",
            "lib/modules/x.ko",
            "usr/share/doc/vfat.ko",
            "opt/lib/modules/v/x.ko",
        ] {
            assert!(module_path(other).unwrap().is_none(), "{other}");
        }
        let e = module_path("usr/lib/modules/v/kernel/x.ko.bz2").unwrap_err();
        assert!(e.to_string().contains("'.bz2'"), "{e}");
        assert!(is_modules_builtin("usr/lib/modules/v/modules.builtin"));
        assert!(is_modules_builtin("lib/modules/v/modules.builtin"));
        assert!(!is_modules_builtin("lib/modules/v/modules.builtin.modinfo"));
    }
}
