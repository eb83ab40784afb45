//! The write stage: every artifact from the resolved inputs, checked by the firmware rules,
//! staged in the output folder and published at once with the SBOM, the buildinfo and
//! SHA256SUMS.

use super::error::Error;
use super::recheck::recheck_inputs;
use super::resolve::Resolved;
use super::{stable_origin, BuildReport, Plan};
use crate::artifact::apkindex::{self, IndexSigner};
use crate::artifact::boot_tree::BootFile;
use crate::artifact::buildinfo::{self, Buildinfo};
use crate::artifact::disk_image::{DiskPlan, Identities};
use crate::artifact::{apkovl, boot_tree, initramfs, modloop, provenance, rpi_tarball, sbom, sums};
use crate::codec::bmap::{self, BlockSet, WrittenBlocks};
use crate::codec::fat::write::FatParams;
use crate::codec::openpgp::SecretSigner;
use crate::codec::release::Compression;
use crate::digest::{hex, FileSum};
use crate::epoch::SourceDateEpoch;
use crate::ids::{self, IdentitySeed};
use crate::profile::board::{LoadedProfile, TableKind};
use crate::profile::lock::LockRecord;
use crate::profile::overlay::{self, Overlay, OverlayError};
use crate::progress::Progress;
use crate::publish::{OutputDir, PublishError, RecordIo};
use crate::tree::{NodeKind, Tree};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// What the write stage works from: the profile, the overlay, the resolved inputs and the
/// lock the build was checked against.
pub(super) struct BuildContext {
    pub loaded: LoadedProfile,
    pub overlay: Overlay,
    pub resolved: Resolved,
    pub lock: Option<LockRecord>,
    /// The compressed images to write, each once, in output order.
    pub compress: Vec<Compression>,
    /// Threads for compressing (the bytes do not depend on it).
    pub threads: usize,
    /// Signs the boot repository's index (`--apk-sign-key`).
    pub signer: Option<IndexSigner>,
    /// Signs SHA256SUMS (`--sign-key`).
    pub sums_signer: Option<SecretSigner>,
    /// A rebuild's copy of the signature record, when it has no key to sign with.
    pub sign_recorded: Option<buildinfo::BuildinfoSignature>,
}

/// The boot tree and the two artifacts it carries.
struct BootContent {
    tree: Tree,
    apkovl: Arc<Vec<u8>>,
    initramfs: Arc<Vec<u8>>,
}

/// The boot partition's files the build makes beside the inputs' own: the repository's
/// index and the modloop.
fn made_files(
    ctx: &BuildContext,
    plan: &Plan,
    progress: &Progress,
) -> Result<Vec<BootFile>, Error> {
    let r = &ctx.resolved;
    let level = ctx.loaded.profile.initramfs.compression_level;
    let mut files = Vec::new();
    if let Some(index) = &plan.apk_index {
        progress.phase("building the boot repository's index");
        let bytes = apkindex::write(
            index,
            &r.repository_records,
            r.epoch,
            level,
            ctx.signer.as_ref(),
        )?;
        files.push(BootFile {
            path: index.path.clone(),
            data: Arc::new(bytes),
            origin: "boot repository index".into(),
        });
    }
    if let (Some(mp), Some(content)) = (&plan.modloop, &r.modloop) {
        progress.phase(format!(
            "building the modloop {} ({} modules, {} firmware files) on {} threads",
            mp.path,
            content.modules.len(),
            content.firmware.len(),
            ctx.threads
        ));
        let (bytes, _) =
            modloop::write(content, mp, r.epoch, ctx.threads).map_err(|source| Error::Modloop {
                path: mp.path.to_string(),
                source,
            })?;
        files.push(BootFile {
            path: mp.path.clone(),
            data: Arc::new(bytes),
            origin: "modloop".into(),
        });
    }
    Ok(files)
}

pub(super) fn write_all(
    ctx: &BuildContext,
    plan: &Plan,
    out: &Path,
    inputs_dir: &Path,
    progress: &Progress,
) -> Result<BuildReport, Error> {
    let (p, r) = (&ctx.loaded.profile, &ctx.resolved);
    let board = p.board.name.clone();
    let level = p.initramfs.compression_level;
    let boot = boot_content(ctx, plan, progress)?;
    firmware_check(&ctx.loaded, &boot.tree)?;
    let ids = plan
        .disk
        .identities(&identity_seed(&ctx.loaded, &boot.tree));
    let params = plan.disk.fat_params(&ids, r.epoch.seconds());
    plan.disk
        .check_fits(&boot.tree, &params)
        .map_err(|e| Error::field(&ctx.loaded.origin, e))?;

    // Outputs: staged beside the output folder, published all at once when all are complete.
    let mut dir = OutputDir::open(out)?;
    let mut warnings = Vec::new();
    let img_name = format!("{board}.img");
    progress.phase(format!("writing {img_name}"));
    let (clamped, written) = write_image(
        &mut dir,
        &out.join(&img_name),
        ctx,
        &plan.disk,
        &ids,
        &boot.tree,
        &params,
    )?;
    if !ctx.compress.is_empty() {
        write_release(&mut dir, out, ctx, &img_name, &written, progress)?;
    }
    if let Some(clamped) = clamped {
        warnings.push(format!(
            "SOURCE_DATE_EPOCH {} is outside FAT's 1980..2107 range: FAT timestamps use {clamped}",
            r.epoch
        ));
    }
    progress.phase(format!("writing {board}.tar.gz"));
    write_tarball(
        &mut dir,
        &out.join(format!("{board}.tar.gz")),
        &boot.tree,
        r.epoch,
        level,
    )?;
    dir.write_bytes(&plan.apkovl_name, &boot.apkovl)?;
    dir.write_bytes(&format!("{board}.initramfs.cpio.gz"), &boot.initramfs)?;
    write_sbom(&mut dir, ctx, &plan.apkovl_name)?;
    let info = buildinfo_of(ctx, &plan.disk, &ids, &boot.tree, dir.files());
    let outputs = write_records(&mut dir, ctx, &info, progress)?;

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
        lock: ctx.lock.clone(),
        outputs,
        warnings,
    })
}

/// Streams `<board>.tar.gz` into its output file (it is as large as the boot tree, so it is
/// never held in memory). An I/O failure (a full disk) is an output error naming it.
fn write_tarball(
    dir: &mut OutputDir,
    path: &Path,
    tree: &Tree,
    epoch: SourceDateEpoch,
    level: u32,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.write_with(&name, |file| {
        let io_failure = std::cell::RefCell::new(None);
        let w = std::io::BufWriter::new(RecordIo::new(&mut *file, &io_failure));
        rpi_tarball::write(w, tree, epoch, level)
            .and_then(|w| {
                w.into_inner()
                    .map_err(|e| crate::codec::archive::ArchiveError::Io {
                        format: "gzip",
                        source: e.into_error(),
                    })
            })
            .map(drop)
            .map_err(|source| match io_failure.borrow_mut().take() {
                Some(source) => Error::from(PublishError::Output {
                    path: path.display().to_string(),
                    source,
                }),
                None => Error::Archive {
                    what: "rpi tarball".into(),
                    source,
                },
            })
    })
}

/// The apkovl, the initramfs and the boot tree that holds both.
fn boot_content(
    ctx: &BuildContext,
    plan: &Plan,
    progress: &Progress,
) -> Result<BootContent, Error> {
    let (p, r) = (&ctx.loaded.profile, &ctx.resolved);
    let level = p.initramfs.compression_level;
    progress.phase("building the apkovl");
    let apkovl =
        apkovl::write(&ctx.overlay, r.epoch, level).map_err(|source| OverlayError::Archive {
            origin: ctx.overlay.origin.clone(),
            source,
        })?;
    progress.phase("building the initramfs");
    let initramfs_tree = initramfs::tree(&r.initramfs).map_err(|source| Error::Tree {
        what: "initramfs".into(),
        source,
    })?;
    let initramfs =
        initramfs::cpio_gz(&initramfs_tree, r.epoch, level).map_err(|source| Error::Archive {
            what: "initramfs".into(),
            source,
        })?;
    let (apkovl, initramfs) = (Arc::new(apkovl), Arc::new(initramfs));
    let apkovl_origin = format!("overlay {}", ctx.overlay.name);
    let mut files = r.boot_files.clone();
    files.extend(made_files(ctx, plan, progress)?);
    let tree = boot_tree::assemble(
        &plan.boot_tree,
        &files,
        initramfs.clone(),
        apkovl.clone(),
        &apkovl_origin,
    )
    .map_err(|source| Error::Tree {
        what: "boot partition".into(),
        source,
    })?;
    Ok(BootContent {
        tree,
        apkovl,
        initramfs,
    })
}

/// What the firmware reads first, checked before anything is written (`pimg check`).
fn firmware_check(loaded: &LoadedProfile, boot: &Tree) -> Result<(), Error> {
    let models: Vec<&crate::firmware::Model> = loaded
        .profile
        .board
        .models
        .iter()
        .filter_map(|m| crate::firmware::model_by_id(m))
        .collect();
    let fw = crate::firmware::check(&mut crate::firmware::TreeFiles(boot), &models);
    if fw.ok() {
        return Ok(());
    }
    Err(Error::FirmwareCheck {
        profile: loaded.origin.clone(),
        problems: fw
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n  "),
    })
}

/// Identifiers are derived from the profile and the boot content unless fixed in the profile.
fn identity_seed(loaded: &LoadedProfile, boot: &Tree) -> IdentitySeed {
    let mut h = Sha256::new();
    h.update(b"pimg seed v1\0");
    h.update(Sha256::digest(loaded.text.as_bytes()));
    h.update(overlay::tree_digest(boot).as_bytes());
    IdentitySeed(h.finalize().into())
}

/// Stages the compressed images and the bmap, all made from the staged image.
fn write_release(
    dir: &mut OutputDir,
    out: &Path,
    ctx: &BuildContext,
    img_name: &str,
    written: &BlockSet,
    progress: &Progress,
) -> Result<(), Error> {
    let output_err = |name: &str| {
        let path = out.join(name).display().to_string();
        move |source| Error::from(PublishError::Output { path, source })
    };
    let image_size = dir
        .files()
        .iter()
        .find(|f| f.name == img_name)
        .map(|f| f.size)
        .unwrap_or(0);
    for &codec in &ctx.compress {
        let name = format!("{img_name}.{}", codec.extension());
        let image = dir.open_staged(img_name)?;
        let label = format!("compressing {name} on {} threads", ctx.threads);
        progress.phase(label.clone());
        let err = output_err(&name);
        dir.write_with(&name, |file| {
            let from = ProgressRead {
                inner: BufReader::with_capacity(1 << 20, image),
                done: 0,
                total: image_size,
                label: &label,
                progress,
            };
            let mut to = BufWriter::with_capacity(1 << 20, file);
            codec
                .compress(from, &mut to, ctx.threads)
                .and_then(|_| to.flush())
                .map_err(err)
        })?;
    }
    let name = format!("{img_name}.bmap");
    progress.phase(format!("writing {name}"));
    let mut image = BufReader::with_capacity(1 << 20, dir.open_staged(img_name)?);
    let bytes = bmap::write(&mut image, image_size, written).map_err(output_err(&name))?;
    dir.write_bytes(&name, &bytes)?;
    Ok(())
}

/// A reader that shows how far a long pass has come.
struct ProgressRead<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    label: &'a str,
    progress: &'a Progress,
}

impl<R: Read> Read for ProgressRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let step = 16 << 20;
        if (self.done + n as u64) / step != self.done / step {
            self.progress.phase(format!(
                "{}: {} of {} MiB",
                self.label,
                (self.done + n as u64) >> 20,
                self.total >> 20
            ));
        }
        self.done += n as u64;
        Ok(n)
    }
}

/// The buildinfo's record of `--compress`.
fn release_of(ctx: &BuildContext) -> Option<buildinfo::BuildinfoRelease> {
    (!ctx.compress.is_empty()).then(|| buildinfo::BuildinfoRelease {
        compress: ctx.compress.iter().map(|c| c.name().to_string()).collect(),
        settings: ctx
            .compress
            .iter()
            .map(|c| (c.name().to_string(), c.settings()))
            .collect(),
        bmap_block_size: bmap::BLOCK_SIZE,
    })
}

/// The index's place, digest and signing key, read back from the boot tree.
fn apk_index_of(ctx: &BuildContext, boot: &Tree) -> Option<buildinfo::BuildinfoApkIndex> {
    let plan = apkindex::plan(&ctx.loaded.profile).ok()??;
    let node = boot.get(&plan.path)?;
    let NodeKind::File(data) = &node.kind else {
        return None;
    };
    Some(buildinfo::BuildinfoApkIndex {
        path: plan.path.as_str().to_string(),
        sha256: hex(&Sha256::digest(data.as_slice())),
        signing_key: ctx.signer.as_ref().map(|s| s.key_name.clone()),
    })
}

/// The modloop's place, digest and content summary; its digest from the boot partition's
/// listing, which has hashed it already.
fn modloop_of(
    ctx: &BuildContext,
    boot_partition: &[buildinfo::BuildinfoFile],
) -> Option<buildinfo::BuildinfoModloop> {
    let plan = modloop::plan(&ctx.loaded.profile).ok()??;
    let content = ctx.resolved.modloop.as_ref()?;
    let file = boot_partition
        .iter()
        .find(|f| f.path == plan.path.as_str())?;
    let crate::codec::squashfs::Compression::Gzip { level } = plan.compression else {
        return None;
    };
    Some(buildinfo::BuildinfoModloop {
        path: plan.path.as_str().to_string(),
        sha256: file.sha256.clone(),
        size: file.size,
        settings: format!(
            "squashfs 4.0, gzip level {level}, block {}",
            crate::codec::squashfs::DEFAULT_BLOCK_SIZE
        ),
        modules: content.modules.len() as u64,
        check_module: plan.check_module.clone(),
        firmware: content
            .firmware
            .iter()
            .map(|f| {
                let (bytes, from) = match &f.node {
                    modloop::FirmwareNode::File(d) => (d.as_slice(), f.origin.clone()),
                    modloop::FirmwareNode::Symlink(t) => {
                        (t.as_bytes(), format!("{} (a link to {t})", f.origin))
                    }
                };
                buildinfo::BuildinfoFile {
                    path: f.path.clone(),
                    size: bytes.len() as u64,
                    sha256: hex(&Sha256::digest(bytes)),
                    from,
                }
            })
            .collect(),
    })
}

/// Stages the image; returns the epoch FAT stored when it had to clamp the build's, and the
/// blocks the writers wrote (for the bmap).
fn write_image(
    dir: &mut OutputDir,
    img_path: &Path,
    ctx: &BuildContext,
    disk: &DiskPlan,
    ids: &Identities,
    boot: &Tree,
    params: &FatParams,
) -> Result<(Option<i64>, BlockSet), Error> {
    let img_name = img_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let layout = disk.layout(ids);
    let report = dir.write_with(&img_name.unwrap_or_default(), |file| {
        let output_err = |source| {
            Error::from(PublishError::Output {
                path: img_path.display().to_string(),
                source,
            })
        };
        file.set_len(disk.size).map_err(output_err)?;
        // An I/O failure (a full disk) is an output error, whichever writer met it.
        let io_failure = std::cell::RefCell::new(None);
        let mut dev = WrittenBlocks::new(RecordIo::new(&mut *file, &io_failure), disk.size);
        let report = crate::artifact::disk_image::write(&mut dev, disk, &layout, boot, params)
            .map_err(|e| match io_failure.borrow_mut().take() {
                Some(source) => output_err(source),
                None => Error::image(&ctx.loaded.origin, e),
            })?;
        Ok::<_, Error>((report, dev.into_parts().1))
    })?;
    Ok((report.0.clamped_epoch, report.1))
}

/// The SBOM lists every input and the artifacts written so far.
fn write_sbom(dir: &mut OutputDir, ctx: &BuildContext, apkovl_name: &str) -> Result<(), Error> {
    let r = &ctx.resolved;
    let board = &ctx.loaded.profile.board.name;
    let all_inputs: Vec<String> = r.used_inputs.iter().map(|(i, _)| i.file.clone()).collect();
    let inputs = sbom::inputs(&r.used_inputs, &r.licenses);
    let outputs = sbom::outputs(dir.files(), apkovl_name, &r.initramfs_inputs, &all_inputs);
    let spdx = sbom::document(board, r.epoch, &inputs, &outputs);
    dir.write_bytes(&format!("{board}.spdx.json"), &spdx)?;
    Ok(())
}

/// The buildinfo, the provenance made from it, SHA256SUMS over everything so far, and the
/// signatures when the build signs: every output, in the order written.
fn write_records(
    dir: &mut OutputDir,
    ctx: &BuildContext,
    info: &Buildinfo,
    progress: &Progress,
) -> Result<Vec<FileSum>, Error> {
    let board = &info.board.name;
    let info_json = info.to_json();
    let info_name = format!("{board}.buildinfo.json");
    dir.write_bytes(&info_name, info_json.as_bytes())?;
    let statement = provenance::statement(info, &FileSum::of(&info_name, info_json.as_bytes()));
    dir.write_bytes(&provenance::name(board), statement.as_bytes())?;
    let mut outputs = dir.files().to_vec();
    let sums = sums::text(&outputs);
    dir.write_bytes(sums::SUMS, sums.as_bytes())?;
    outputs.push(FileSum::of(sums::SUMS, sums.as_bytes()));
    if let Some(signer) = &ctx.sums_signer {
        let epoch = ctx.resolved.epoch;
        outputs.extend(sign_outputs(
            dir, signer, board, &sums, &statement, epoch, progress,
        )?);
    }
    Ok(outputs)
}

/// The signatures, which SHA256SUMS cannot list: `SHA256SUMS.asc` over the sums, and the
/// provenance's DSSE envelope (its OpenPGP signature over the statement's PAE).
fn sign_outputs(
    dir: &mut OutputDir,
    signer: &SecretSigner,
    board: &str,
    sums: &str,
    statement: &str,
    epoch: SourceDateEpoch,
    progress: &Progress,
) -> Result<Vec<FileSum>, Error> {
    progress.phase(format!("signing {}", sums::SUMS));
    let asc = signer
        .sign(sums.as_bytes(), epoch.seconds())
        .map_err(Error::Sign)?;
    dir.write_bytes(sums::SIGNATURE, asc.as_bytes())?;
    let pae = provenance::pae(provenance::PAYLOAD_TYPE, statement.as_bytes());
    let sig = signer
        .sign_binary(&pae, epoch.seconds())
        .map_err(Error::Sign)?;
    let envelope = provenance::envelope(statement, &signer.fingerprint(), &sig);
    let envelope_name = provenance::envelope_name(board);
    dir.write_bytes(&envelope_name, envelope.as_bytes())?;
    Ok(vec![
        FileSum::of(sums::SIGNATURE, asc.as_bytes()),
        FileSum::of(&envelope_name, envelope.as_bytes()),
    ])
}

/// The buildinfo of this build: everything that decided the bytes, and the outputs so far.
fn buildinfo_of(
    ctx: &BuildContext,
    disk: &DiskPlan,
    ids: &Identities,
    boot: &Tree,
    outputs: &[FileSum],
) -> Buildinfo {
    let (loaded, r) = (&ctx.loaded, &ctx.resolved);
    let gpt = disk.table() == TableKind::Gpt;
    let boot_partition = boot_files(boot);
    Buildinfo {
        format: buildinfo::FORMAT.into(),
        pimg_version: env!("CARGO_PKG_VERSION").into(),
        cargo_lock_sha256: crate::profile::embedded::CARGO_LOCK_SHA256.into(),
        board: buildinfo::BuildinfoBoard {
            name: loaded.profile.board.name.clone(),
            profile: stable_origin(&loaded.origin),
            profile_sha256: hex(&Sha256::digest(loaded.text.as_bytes())),
            table: loaded.table_override.map(|t| t.name().to_string()),
            text: Some(loaded.text.clone()),
        },
        overlay: buildinfo::BuildinfoOverlay {
            name: ctx.overlay.name.clone(),
            hostname: ctx.overlay.hostname.clone(),
            sha256: ctx.overlay.digest(),
        },
        source_date_epoch: r.epoch.seconds(),
        epoch_source: r.epoch_source.clone(),
        lock: ctx.lock.clone(),
        identifiers: buildinfo::BuildinfoIds {
            fat_volume_id: Some(format!("{:08x}", ids.volume_id)),
            mbr_disk_signature: (!gpt).then(|| format!("{:08x}", ids.disk_signature)),
            gpt_disk_guid: gpt.then(|| ids::guid_to_string(&ids.disk_guid)),
            gpt_boot_partition_guid: gpt.then(|| ids::guid_to_string(&ids.part_guid)),
        },
        inputs: r
            .used_inputs
            .iter()
            .map(|(i, sha)| {
                let mut pinned = crate::artifact::pinned(i, sha.clone());
                pinned.apk_signature = r.apk_verdicts.get(&i.file).map(|v| v.label().to_string());
                pinned
            })
            .collect(),
        matched: r.matched.clone(),
        kernel_modules: buildinfo::BuildinfoModules {
            kernel_version: r.initramfs.kernel_version.clone(),
            tree: r.module_tree.clone(),
            requested: r.requested_modules.clone(),
            load_order: r.initramfs.load_order.clone(),
            builtin: r.builtin_modules.clone(),
            files: r.module_files.clone(),
        },
        modloop: modloop_of(ctx, &boot_partition),
        boot_partition,
        release: release_of(ctx),
        apk_index: apk_index_of(ctx, boot),
        signature: signature_of(ctx),
        outputs: outputs.to_vec(),
    }
}

/// The buildinfo's record of `--sign-key` (or of the build a rebuild repeats).
fn signature_of(ctx: &BuildContext) -> Option<buildinfo::BuildinfoSignature> {
    let Some(s) = &ctx.sums_signer else {
        return ctx.sign_recorded.clone();
    };
    Some(buildinfo::BuildinfoSignature {
        file: sums::SIGNATURE.into(),
        signs: sums::SUMS.into(),
        key_fingerprint: s.fingerprint(),
        algorithm: s.algorithm(),
        hash: "SHA256".into(),
        created: s.signature_time(ctx.resolved.epoch.seconds()).ok()?,
    })
}

fn boot_files(boot: &Tree) -> Vec<buildinfo::BuildinfoFile> {
    boot.iter()
        .filter(|(_, n)| matches!(n.kind, NodeKind::File(_)))
        .map(|(path, n)| buildinfo::BuildinfoFile {
            path: path.to_string(),
            size: n.data().len() as u64,
            sha256: hex(&Sha256::digest(n.data())),
            from: boot.origin(path).unwrap_or("").to_string(),
        })
        .collect()
}
