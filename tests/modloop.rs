//! The modloop on fixture builds: squashfs-tools and dpkg-deb as referees for what it holds
//! (every module as the kernel package stores it, a `modules.dep` over all of them, the
//! firmware files and links), the buildinfo's record of it, `pimg diff` naming a file inside
//! it, and profiles whose modloop cannot be made failing before anything is written.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::squashfs::unsquashfs;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const MODLOOP: &str = "boot/modloop-rpi";

/// A fixture build of `layout` at EPOCH in `dir`.
fn build(dir: &Path, layout: Layout) -> PathBuf {
    write_fixture_in(&dir.join("inputs"), false, layout);
    Build::new()
        .cwd(dir)
        .inputs("inputs")
        .out("out")
        .epoch(EPOCH)
        .built()
}

/// `path` of the boot partition of `img`, copied out by mtools.
fn copy_out(img: &Path, path: &str, to: &Path) -> Vec<u8> {
    referee("mcopy", "mtools")
        .args(["-n", "-i", &format!("{}@@4M", img.display())])
        .arg(format!("::/{path}"))
        .arg(to)
        .run();
    fs::read(to).unwrap()
}

/// Every file and link under `dir`: relative path → ("file", bytes) or ("link", target).
fn tree_of(dir: &Path) -> BTreeMap<String, (&'static str, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, (&'static str, Vec<u8>)>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&p).unwrap();
                out.insert(rel, ("link", target.display().to_string().into_bytes()));
            } else if meta.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, ("file", fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The inputs unpacked by dpkg-deb into `to`.
fn unpack_inputs(inputs: &Path, to: &Path) {
    for e in fs::read_dir(inputs).unwrap() {
        let p = e.unwrap().path();
        referee("dpkg-deb", "dpkg").arg("-x").arg(&p).arg(to).run();
    }
}

/// For both of Debian's layouts: unsquashfs extracts exactly the package's module tree
/// (as stored: .ko, .ko.xz, .ko.gz, .ko.zst) with its metadata files, a generated
/// modules.dep, and the firmware files and links, every entry root's at the epoch.
#[test]
fn the_modloop_holds_the_kernel_packages_module_tree_and_the_firmware() {
    for layout in [Layout::Split, Layout::MergedUsr] {
        let tmp = tempfile::tempdir().unwrap();
        let out = build(tmp.path(), layout);
        let sq = copy_out(&out.join("rpi3b.img"), MODLOOP, &tmp.path().join("modloop"));
        assert_eq!(&sq[..4], b"hsqs");

        // Owners and times as unsquashfs reads them.
        let listing = unsquashfs(&["-lln", tmp.path().join("modloop").to_str().unwrap()]);
        let lines: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("squashfs-root"))
            .collect();
        assert!(lines.len() > 20, "{listing}");
        for l in &lines {
            assert!(l.contains(" 0/0 "), "not root's: {l}");
            assert!(l.contains("2023-11-14 22:13"), "not the epoch: {l}");
        }

        // Content against the packages as dpkg-deb unpacks them.
        let x = tmp.path().join("x");
        referee("unsquashfs", "squashfs-tools")
            .args(["-no-progress", "-d"])
            .arg(&x)
            .arg(tmp.path().join("modloop"))
            .run();
        let pkgs = tmp.path().join("pkgs");
        unpack_inputs(&tmp.path().join("inputs"), &pkgs);
        let root = if layout == Layout::MergedUsr {
            "usr/lib"
        } else {
            "lib"
        };
        let kernel_tree = tree_of(&pkgs.join(format!("{root}/modules/{KVER}")));
        let mut got = tree_of(&x.join(format!("modules/{KVER}")));
        let dep = got
            .remove("modules.dep")
            .expect("modules.dep in the modloop");
        assert_eq!(got, kernel_tree, "{layout:?}: module tree differs");
        assert!(
            got.keys().any(|k| k.ends_with(".ko.zst")) == (layout == Layout::MergedUsr),
            "{layout:?}: {:?}",
            got.keys()
        );
        let firmware = tree_of(&pkgs.join(format!("{root}/firmware")));
        assert_eq!(firmware.len(), 5, "{firmware:?}");
        assert_eq!(tree_of(&x.join("modules/firmware")), firmware);

        // modules.dep names the stored files, every module once, with its dependencies.
        let dep = String::from_utf8(dep.1).unwrap();
        let modules: Vec<&String> = got.keys().filter(|k| k.contains(".ko")).collect();
        assert_eq!(dep.lines().count(), modules.len(), "{dep}");
        let line = dep
            .lines()
            .find(|l| l.contains("brcmfmac.ko"))
            .expect("brcmfmac in modules.dep");
        let (module, deps) = line.split_once(':').unwrap();
        assert!(got.contains_key(module), "{module} is not a file: {dep}");
        let deps: Vec<&str> = deps.split_whitespace().collect();
        assert_eq!(deps.len(), 2, "{line}");
        for d in deps {
            assert!(got.contains_key(d), "{d} is not a file: {dep}");
        }

        // The buildinfo records it, and the init is told where it is.
        let info = read_json(&out.join("rpi3b.buildinfo.json"));
        let m = &info["modloop"];
        assert_eq!(m["path"], MODLOOP);
        assert_eq!(m["sha256"], sha256_hex(&sq));
        assert_eq!(m["modules"].as_u64().unwrap() as usize, modules.len());
        assert_eq!(m["firmware"].as_array().unwrap().len(), firmware.len());
        assert_eq!(m["check_module"], "brcmfmac");
        let asked: Vec<&str> = info["kernel_modules"]["requested"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(asked.contains(&"squashfs"), "{asked:?}");
    }
}

/// Two builds whose firmware differs in one byte: `pimg diff` of the images names the
/// modloop, and inside it the firmware file.
#[test]
fn diff_names_the_firmware_file_inside_the_modloop() {
    let tmp = tempfile::tempdir().unwrap();
    let a = build(&tmp.path().join("a"), Layout::Split);
    let b_dir = tmp.path().join("b");
    write_fixture_in(&b_dir.join("inputs"), false, Layout::Split);
    // The same package with one firmware byte changed.
    let (name, changed) = firmware_deb_with(Layout::Split, 0x20);
    fs::write(b_dir.join("inputs").join(&name), changed).unwrap();
    let b = Build::new()
        .cwd(&b_dir)
        .inputs("inputs")
        .out("out")
        .epoch(EPOCH)
        .built();
    let d = run(
        tmp.path(),
        &[
            "diff",
            a.join("rpi3b.img").to_str().unwrap(),
            b.join("rpi3b.img").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(d.code(), Some(1), "{}", d.report());
    assert!(
        d.stdout.contains(MODLOOP)
            && d.stdout
                .contains("modules/firmware/brcm/brcmfmac43430-sdio.bin"),
        "{}",
        d.stdout
    );
}

/// A firmware glob that matches nothing and a check module the kernel lacks or the
/// initramfs already holds: refused naming the profile field, nothing written.
#[test]
fn a_modloop_that_cannot_be_made_is_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = fixture_inputs(tmp.path());
    const CHECK: &str = "check_module = \"brcmfmac\"";
    for (from, to, field, why) in [
        (
            "{brcm,cypress}/*",
            "nosuch/*",
            "modloop.firmware[0].glob",
            "matches no file",
        ),
        (
            CHECK,
            "check_module = \"nosuchmodule\"",
            "modloop.check_module",
            "no such module",
        ),
        (
            CHECK,
            "check_module = \"vfat\"",
            "modloop.check_module",
            "(it does)",
        ),
        (
            "path = \"boot/modloop-rpi\"",
            "path = \"boot/modloop rpi\"",
            "modloop.path",
            "letters, digits",
        ),
    ] {
        let profile = profile_variant(tmp.path(), from, to);
        let out = tmp.path().join("out");
        Build::new()
            .board(&profile)
            .inputs(&inputs)
            .out(&out)
            .epoch(EPOCH)
            .expect_refused(&[field, why]);
        assert_nothing_published(&out, to);
    }
}

/// The real kernel's modloop (all its modules) on a boot partition too small for it: refused
/// saying how much the boot files need and that the modloop is the largest of them, nothing
/// written. The same partition without the modloop holds the rest.
#[test]
fn a_modloop_too_big_for_the_partition_is_refused_saying_what_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small.toml");
    // 124 MiB of FAT32 in 1 KiB clusters: room for the kernel and firmware, not the modloop.
    board_variant("rpi3b", &small, "size = \"256MiB\"", "size = \"128MiB\"");
    let text = fs::read_to_string(&small).unwrap();
    let text = text.replacen("cluster_size = \"2KiB\"", "cluster_size = \"1KiB\"", 1);
    fs::write(&small, &text).unwrap();
    let out = tmp.path().join("out");
    let o = Build::real("rpi3b")
        .board(&small)
        .out(&out)
        .expect_refused(&[
            "image.size: the boot content needs",
            "the partition holds 124.0 MiB",
            &format!("the largest files are {MODLOOP} ("),
            "raise image.size (a power of two, e.g. 256.0 MiB)",
        ]);
    assert!(o.stderr.contains(small.to_str().unwrap()), "{}", o.stderr);
    assert_nothing_published(&out, "a boot partition too small for its modloop");

    let start = text.find("[modloop]").unwrap();
    let end = text.find("[overlay]").unwrap();
    let without = tmp.path().join("without.toml");
    fs::write(&without, format!("{}{}", &text[..start], &text[end..])).unwrap();
    Build::real("rpi3b")
        .board(&without)
        .out(tmp.path().join("without"))
        .built();
}
