//! Kernel module metadata (`.modinfo`), dependency closure and `modules.dep`, without depmod.
//!
//! Debian's kernel packages ship plain `.ko` files but no `modules.dep`; each module's
//! `.modinfo` section names its dependencies (`depends=`), which is all depmod itself uses.
//! Every ordering here is a function of module names only, so the output is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use object::{Object, ObjectSection};

/// What pimg needs from a module's `.modinfo` section.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModInfo {
    /// Module name as the kernel knows it (`-` spelled `_`).
    pub name: String,
    /// Names of the modules it needs loaded first (`_` spelling), in `.modinfo` order.
    pub depends: Vec<String>,
    /// The `vermagic=` string, if present.
    pub vermagic: Option<String>,
}

/// A module closure: what to load, and which requests the kernel already has built in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Closure {
    /// Modules to load, each after all of its dependencies; ties broken by name.
    pub load_order: Vec<String>,
    /// Requested or needed names satisfied by `modules.builtin`, sorted.
    pub builtin: Vec<String>,
}

/// Why module metadata or a closure could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{context}not a readable ELF object: {reason}")]
    BadElf { context: String, reason: String },
    #[error("{context}the ELF object has no .modinfo section; is it a kernel module?")]
    NoModinfo { context: String },
    #[error("{context}the .modinfo record {record:?} is not 'key=value' text")]
    BadModinfo { context: String, record: String },
    #[error(
        "the .modinfo section has no name= record; use read_module to fall back to the file name"
    )]
    NoName,
    #[error("{}", unknown_message(.name, .needed_by, .suggestions))]
    Unknown {
        name: String,
        needed_by: Option<String>,
        suggestions: Vec<String>,
    },
    #[error("modules '{first}' and '{second}' are the same module name; remove one of them")]
    Duplicate { first: String, second: String },
    #[error("module dependency cycle: {}; the kernel package is inconsistent", .0.join(" -> "))]
    Cycle(Vec<String>),
}

fn unknown_message(name: &str, needed_by: &Option<String>, suggestions: &[String]) -> String {
    let mut msg = format!("kernel module '{name}'");
    if let Some(parent) = needed_by {
        msg.push_str(&format!(" (needed by '{parent}')"));
    }
    msg.push_str(" is neither a module file in the kernel package nor listed in modules.builtin");
    if suggestions.is_empty() {
        msg.push_str("; check the spelling against lib/modules/<kver>/");
    } else {
        msg.push_str(&format!("; did you mean: {}?", suggestions.join(", ")));
    }
    msg
}

/// Reads `name=`, `depends=` and `vermagic=` from an ELF module's `.modinfo` section
/// (NUL-separated `key=value` records).
pub fn parse_modinfo(elf: &[u8]) -> Result<ModInfo, ModuleError> {
    let records = modinfo_records(elf, "")?;
    let name = records.name.ok_or(ModuleError::NoName)?;
    Ok(ModInfo {
        name,
        depends: records.depends,
        vermagic: records.vermagic,
    })
}

/// Like [`parse_modinfo`] for a module file at `path` (relative to `lib/modules/<kver>/`):
/// the name falls back to the file name, and errors name the path.
pub fn read_module(path: &str, elf: &[u8]) -> Result<ModInfo, ModuleError> {
    let records = modinfo_records(elf, &format!("{path}: "))?;
    let name = records.name.unwrap_or_else(|| module_name_from_path(path));
    Ok(ModInfo {
        name,
        depends: records.depends,
        vermagic: records.vermagic,
    })
}

struct Records {
    name: Option<String>,
    depends: Vec<String>,
    vermagic: Option<String>,
}

fn modinfo_records(elf: &[u8], context: &str) -> Result<Records, ModuleError> {
    let context = context.to_string();
    let file = object::File::parse(elf).map_err(|e| ModuleError::BadElf {
        context: context.clone(),
        reason: e.to_string(),
    })?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| ModuleError::NoModinfo {
            context: context.clone(),
        })?;
    let data = section.data().map_err(|e| ModuleError::BadElf {
        context: context.clone(),
        reason: e.to_string(),
    })?;
    let mut records = Records {
        name: None,
        depends: Vec::new(),
        vermagic: None,
    };
    let mut seen_depends = false;
    // Records are NUL-terminated and may be separated by extra NUL padding.
    for raw in data.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || ModuleError::BadModinfo {
            context: context.clone(),
            record: String::from_utf8_lossy(raw).into_owned(),
        };
        let record = std::str::from_utf8(raw).map_err(|_| bad())?;
        let (key, value) = record.split_once('=').ok_or_else(bad)?;
        match key {
            "name" if records.name.is_none() => records.name = Some(normalize(value)),
            "vermagic" if records.vermagic.is_none() => records.vermagic = Some(value.to_string()),
            "depends" if !seen_depends => {
                seen_depends = true;
                records.depends = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(normalize)
                    .collect();
            }
            _ => {}
        }
    }
    Ok(records)
}

/// The kernel's name for a module file: `kernel/fs/nls/nls_iso8859-1.ko` → `nls_iso8859_1`.
pub fn module_name_from_path(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
        .unwrap_or(file);
    normalize(stem)
}

/// `-` and `_` are interchangeable in module names; the kernel spells them `_`.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Module names listed in a `modules.builtin` file (one `kernel/…/x.ko` path per line).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name_from_path)
        .collect()
}

/// Resolves `requested` (either spelling) and everything they depend on.
///
/// `available` maps module name → (path relative to `lib/modules/<kver>/`, metadata);
/// `builtin` holds the names from `modules.builtin`. A name that is built in needs no file
/// and is reported in [`Closure::builtin`].
pub fn closure(
    requested: &[String],
    available: &BTreeMap<String, (String, ModInfo)>,
    builtin: &BTreeSet<String>,
) -> Result<Closure, ModuleError> {
    let (selected, builtin_used) = select(requested, available, builtin)?;
    Ok(Closure {
        load_order: load_order(&selected)?,
        builtin: builtin_used.into_iter().collect(),
    })
}

/// Selected modules by name with their dependencies, and the built-in names met.
type Selection = (BTreeMap<String, Vec<String>>, BTreeSet<String>);

/// Every module the requested names need, by name with its dependencies, and the built-in
/// names met on the way.
fn select(
    requested: &[String],
    available: &BTreeMap<String, (String, ModInfo)>,
    builtin: &BTreeSet<String>,
) -> Result<Selection, ModuleError> {
    let index = normalized_index(available)?;
    let builtin: BTreeSet<String> = builtin.iter().map(|b| normalize(b)).collect();
    let mut selected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut builtin_used = BTreeSet::new();
    let mut stack: Vec<(String, Option<String>)> = requested
        .iter()
        .rev()
        .map(|r| (normalize(r.trim()), None))
        .collect();
    while let Some((name, needed_by)) = stack.pop() {
        if selected.contains_key(&name) || builtin_used.contains(&name) {
            continue;
        }
        if builtin.contains(&name) {
            builtin_used.insert(name);
            continue;
        }
        let Some(key) = index.get(&name) else {
            let suggestions = suggest(&name, index.keys().chain(builtin.iter()));
            return Err(ModuleError::Unknown {
                name,
                needed_by,
                suggestions,
            });
        };
        let deps = available[*key]
            .1
            .depends
            .iter()
            .map(|d| normalize(d))
            .collect::<Vec<_>>();
        for dep in deps.iter().rev() {
            stack.push((dep.clone(), Some(name.clone())));
        }
        selected.insert(name, deps);
    }
    Ok((selected, builtin_used))
}

/// Kahn's algorithm, always taking the smallest ready name: dependencies first, ties by name.
fn load_order(selected: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, ModuleError> {
    let mut unmet: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, deps) in selected {
        let file_deps: BTreeSet<&str> = deps
            .iter()
            .map(String::as_str)
            .filter(|d| selected.contains_key(*d))
            .collect();
        unmet.insert(name, file_deps.len());
        for dep in file_deps {
            dependents.entry(dep).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&str> = unmet
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(&m, _)| m)
        .collect();
    let mut load_order = Vec::with_capacity(selected.len());
    while let Some(name) = ready.pop_first() {
        load_order.push(name.to_string());
        for &user in dependents.get(name).map(Vec::as_slice).unwrap_or(&[]) {
            let n = unmet.get_mut(user).expect("every dependent is selected");
            *n -= 1;
            if *n == 0 {
                ready.insert(user);
            }
        }
    }
    if load_order.len() < selected.len() {
        let blocked: BTreeSet<&str> = unmet
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&m, _)| m)
            .collect();
        return Err(ModuleError::Cycle(find_cycle(&blocked, selected)));
    }
    Ok(load_order)
}

/// `available` keyed by normalized name; two keys with the same normalized name are an error.
fn normalized_index(
    available: &BTreeMap<String, (String, ModInfo)>,
) -> Result<BTreeMap<String, &String>, ModuleError> {
    let mut index: BTreeMap<String, &String> = BTreeMap::new();
    for key in available.keys() {
        if let Some(first) = index.insert(normalize(key), key) {
            return Err(ModuleError::Duplicate {
                first: first.clone(),
                second: key.clone(),
            });
        }
    }
    Ok(index)
}

/// Every module in `blocked` still waits on another blocked module, so following the
/// smallest blocked dependency from the smallest blocked module must come back around.
fn find_cycle(blocked: &BTreeSet<&str>, selected: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut current = match blocked.first() {
        Some(&first) => first,
        None => return Vec::new(),
    };
    loop {
        if let Some(start) = path.iter().position(|&p| p == current) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(current.to_string());
            return cycle;
        }
        path.push(current);
        let next = selected[current]
            .iter()
            .map(String::as_str)
            .filter(|d| blocked.contains(d))
            .min();
        match next {
            Some(next) => current = next,
            None => return path.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Known names sharing the longest common prefix (at least 3 characters) with `name`.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Vec<String> {
    const MAX_SUGGESTIONS: usize = 5;
    let common = |k: &str| {
        name.bytes()
            .zip(k.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let known: BTreeSet<&String> = known.collect();
    let best = known.iter().map(|k| common(k)).max().unwrap_or(0);
    if best < 3.min(name.len()) || best == 0 {
        return Vec::new();
    }
    known
        .into_iter()
        .filter(|k| common(k) == best)
        .take(MAX_SUGGESTIONS)
        .cloned()
        .collect()
}

/// `modules.dep` for the closure, in the kernel's format: one line per module file,
/// `kernel/a.ko: kernel/b.ko kernel/c.ko`, sorted by path. Each line lists all transitive
/// dependencies, deepest last (as depmod writes it: modprobe loads the list back to front).
pub fn modules_dep(closure: &Closure, available: &BTreeMap<String, (String, ModInfo)>) -> String {
    let index: BTreeMap<String, &(String, ModInfo)> =
        available.iter().map(|(k, v)| (normalize(k), v)).collect();
    let position: BTreeMap<&str, usize> = closure
        .load_order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut lines: Vec<(String, String)> = Vec::new();
    for module in &closure.load_order {
        let Some((path, _)) = index.get(module.as_str()) else {
            continue;
        };
        // Transitive dependencies that are files in this closure (built-ins need no line).
        let mut deps: BTreeSet<usize> = BTreeSet::new();
        let mut stack = vec![module.as_str()];
        while let Some(m) = stack.pop() {
            let Some((_, info)) = index.get(m) else {
                continue;
            };
            for dep in &info.depends {
                let dep = normalize(dep);
                if let Some((&name, &i)) = position.get_key_value(dep.as_str()) {
                    if deps.insert(i) {
                        stack.push(name);
                    }
                }
            }
        }
        let mut line = format!("{path}:");
        for i in deps.into_iter().rev() {
            line.push(' ');
            line.push_str(&index[closure.load_order[i].as_str()].0);
        }
        line.push('\n');
        lines.push((path.clone(), line));
    }
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 relocatable object with one `.modinfo` section.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let modinfo_off = 64u64;
        let shstrtab_off = modinfo_off + modinfo.len() as u64;
        let shoff = (shstrtab_off + shstrtab.len() as u64).next_multiple_of(8);
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // ELF64, LE, version 1
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        out.extend_from_slice(&0xb7u16.to_le_bytes()); // EM_AARCH64
        out.extend_from_slice(&1u32.to_le_bytes()); // e_version
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
        out.extend_from_slice(&shoff.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        for v in [64u16, 0, 0, 64, 3, 2] {
            // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
            out.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(out.len(), 64);
        out.extend_from_slice(modinfo);
        out.extend_from_slice(shstrtab);
        out.resize(shoff as usize, 0);
        let mut section = |name: u32, kind: u32, flags: u64, offset: u64, size: u64| {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // sh_link
            out.extend_from_slice(&0u32.to_le_bytes()); // sh_info
            out.extend_from_slice(&1u64.to_le_bytes()); // sh_addralign
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
        };
        section(0, 0, 0, 0, 0);
        section(1, 1, 2, modinfo_off, modinfo.len() as u64); // .modinfo: PROGBITS, ALLOC
        section(10, 3, 0, shstrtab_off, shstrtab.len() as u64); // .shstrtab: STRTAB
        out
    }

    fn info(name: &str, depends: &[&str]) -> ModInfo {
        ModInfo {
            name: name.to_string(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            vermagic: None,
        }
    }

    fn available(mods: &[(&str, &[&str])]) -> BTreeMap<String, (String, ModInfo)> {
        mods.iter()
            .map(|(name, deps)| {
                (
                    name.to_string(),
                    (
                        format!("kernel/drivers/{}.ko", name.replace('_', "-")),
                        info(name, deps),
                    ),
                )
            })
            .collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_modinfo_from_an_elf() {
        let modinfo =
            b"license=GPL\0depends=sdhci,sdhci-pltfm\0\0\0retpoline=Y\0name=sdhci_iproc\0\
                        vermagic=6.1.0-56-arm64 SMP mod_unload modversions aarch64\0";
        let elf = elf_with_modinfo(modinfo);
        let info = parse_modinfo(&elf).unwrap();
        assert_eq!(info.name, "sdhci_iproc");
        assert_eq!(info.depends, ["sdhci", "sdhci_pltfm"]);
        assert_eq!(
            info.vermagic.as_deref(),
            Some("6.1.0-56-arm64 SMP mod_unload modversions aarch64")
        );

        let elf = elf_with_modinfo(b"depends=\0");
        assert!(matches!(parse_modinfo(&elf), Err(ModuleError::NoName)));
        let info = read_module("kernel/fs/nls/nls_iso8859-1.ko", &elf).unwrap();
        assert_eq!(info.name, "nls_iso8859_1");
        assert!(info.depends.is_empty());

        assert!(matches!(
            parse_modinfo(b"not an elf"),
            Err(ModuleError::BadElf { .. })
        ));
        let err = read_module("kernel/x.ko", &elf_with_modinfo(b"garbage\0")).unwrap_err();
        assert!(err.to_string().starts_with("kernel/x.ko: "), "{err}");
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(
            module_name_from_path("kernel/fs/nls/nls_iso8859-1.ko"),
            "nls_iso8859_1"
        );
        assert_eq!(
            module_name_from_path("kernel/drivers/mmc/host/sdhci-iproc.ko.xz"),
            "sdhci_iproc"
        );
        assert_eq!(module_name_from_path("vfat.ko"), "vfat");
        let builtin =
            parse_builtin("kernel/fs/fat/fat.ko\n\nkernel/drivers/mmc/core/mmc_block.ko\n");
        assert_eq!(
            builtin.into_iter().collect::<Vec<_>>(),
            ["fat", "mmc_block"]
        );
    }

    #[test]
    fn closure_orders_dependencies_first_ties_by_name() {
        let avail = available(&[
            ("sdhci", &[]),
            ("sdhci_pltfm", &["sdhci"]),
            ("sdhci_iproc", &["sdhci-pltfm", "sdhci"]),
            ("vfat", &["fat"]),
            ("fat", &[]),
            ("nls_iso8859_1", &[]),
            ("unused", &[]),
        ]);
        let c = closure(
            &strings(&["vfat", "sdhci-iproc", "nls_iso8859-1"]),
            &avail,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            c.load_order,
            [
                "fat",
                "nls_iso8859_1",
                "sdhci",
                "sdhci_pltfm",
                "sdhci_iproc",
                "vfat"
            ]
        );
        assert!(c.builtin.is_empty());
        // The same answer whatever the request order.
        let again = closure(
            &strings(&["nls_iso8859_1", "vfat", "sdhci_iproc"]),
            &avail,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(again, c);

        let dep = modules_dep(&c, &avail);
        assert_eq!(
            dep,
            "kernel/drivers/fat.ko:\n\
             kernel/drivers/nls-iso8859-1.ko:\n\
             kernel/drivers/sdhci-iproc.ko: kernel/drivers/sdhci-pltfm.ko kernel/drivers/sdhci.ko\n\
             kernel/drivers/sdhci-pltfm.ko: kernel/drivers/sdhci.ko\n\
             kernel/drivers/sdhci.ko:\n\
             kernel/drivers/vfat.ko: kernel/drivers/fat.ko\n"
        );
    }

    #[test]
    fn builtins_need_no_file() {
        let avail = available(&[("vfat", &["fat"]), ("fat", &[])]);
        let builtin: BTreeSet<String> = ["fat".to_string(), "bcm2835_wdt".to_string()].into();
        let c = closure(&strings(&["vfat", "bcm2835-wdt"]), &avail, &builtin).unwrap();
        assert_eq!(c.load_order, ["vfat"]);
        assert_eq!(c.builtin, ["bcm2835_wdt", "fat"]);
        assert_eq!(modules_dep(&c, &avail), "kernel/drivers/vfat.ko:\n");
    }

    #[test]
    fn unknown_module_names_near_names() {
        let avail = available(&[
            ("nls_iso8859_1", &[]),
            ("nls_iso8859_15", &[]),
            ("nls_utf8", &[]),
            ("vfat", &["fatt"]),
        ]);
        let err = closure(&strings(&["nls-iso8859-2"]), &avail, &BTreeSet::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kernel module 'nls_iso8859_2' is neither a module file in the kernel package nor listed \
             in modules.builtin; did you mean: nls_iso8859_1, nls_iso8859_15?"
        );
        let err = closure(&strings(&["vfat"]), &avail, &BTreeSet::new()).unwrap_err();
        assert!(
            matches!(&err, ModuleError::Unknown { name, needed_by: Some(p), suggestions }
            if name == "fatt" && p == "vfat" && suggestions.is_empty()),
            "{err}"
        );
        assert!(err.to_string().contains("(needed by 'vfat')"), "{err}");
    }

    #[test]
    fn dependency_cycle_is_an_error() {
        let avail = available(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        let err = closure(&strings(&["d", "a"]), &avail, &BTreeSet::new()).unwrap_err();
        assert!(
            matches!(&err, ModuleError::Cycle(c) if c == &["a", "b", "c", "a"]),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "module dependency cycle: a -> b -> c -> a; the kernel package is inconsistent"
        );
    }

    #[test]
    fn two_spellings_of_one_module_are_an_error() {
        let avail = available(&[("a-b", &[]), ("a_b", &[])]);
        assert!(matches!(
            closure(&strings(&["a_b"]), &avail, &BTreeSet::new()),
            Err(ModuleError::Duplicate { .. })
        ));
    }
}
