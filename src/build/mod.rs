//! `pimg build`: the build as named stages over one context. Load the profile and overlay,
//! plan every artifact (a profile that is wrong on its own fails here, before any input is
//! read), select the inputs, check them against the lock, resolve them once, then write and
//! publish every output.

pub mod error;
pub mod lock;
mod recheck;
mod resolve;
mod select;
mod write;

pub use select::selected_inputs;

use crate::artifact::apkindex::{self, ApkIndexPlan, IndexSigner};
use crate::artifact::apkovl;
use crate::artifact::boot_tree::{self, BootTreePlan};
use crate::artifact::disk_image::{self, DiskPlan};
use crate::artifact::modloop::{self, ModloopPlan};
use crate::codec::openpgp::{self, SecretSigner};
use crate::codec::release::Compression;
use crate::epoch::SourceDateEpoch;
use crate::inputs::apk_keys::{ApkKeys, ApkTrust, Verdict};
use crate::inputs::cache::Cache;
use crate::profile::board::{self, LoadedProfile, TableKind};
use crate::profile::lock::LockRecord;
use crate::profile::overlay::{self, Overlay};
use crate::progress::Progress;
use crate::publish::OutputFile;
use error::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use write::BuildContext;

/// What a build or a lock is made from: the board profile, the overlay, the inputs folder and
/// the keys its `.apk` inputs must be signed by.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Board name or profile path.
    pub board: String,
    pub inputs: PathBuf,
    /// Overlay name or directory; the profile's default when absent.
    pub overlay: Option<String>,
    /// `--apk-keys`: the folder of public keys (`/etc/apk/keys` layout) `.apk` inputs must be
    /// signed by.
    pub apk_keys: Option<PathBuf>,
    /// `--allow-untrusted`: take `.apk` inputs no given key verifies, recorded as unverified.
    pub allow_untrusted: bool,
}

impl Sources {
    /// The profile (with `table` instead of its own partition table) and the overlay named
    /// here or by the profile.
    /// `recorded` may hold the profile and overlay instead (see [`Recorded`]).
    pub(crate) fn load(
        &self,
        table: Option<TableKind>,
        recorded: &Recorded,
    ) -> Result<(LoadedProfile, Overlay), Error> {
        let mut loaded = match &recorded.profile {
            Some((origin, text)) => board::parse(text, origin)?,
            None => board::load(&self.board)?,
        };
        if let Some(t) = table {
            loaded = board::with_table(loaded, t)?;
        }
        let overlay = match &recorded.overlay {
            Some(o) => o.clone(),
            None => overlay::load(
                self.overlay
                    .as_deref()
                    .unwrap_or(&loaded.profile.overlay.default),
            )?,
        };
        Ok((loaded, overlay))
    }

    /// How `.apk` inputs are trusted. The keys are read now, before any input, so a wrong key
    /// fails at once; `recorded` holds an earlier build's verdicts (see `BuildOptions`).
    pub(crate) fn trust(&self, recorded: BTreeMap<String, Verdict>) -> Result<ApkTrust, Error> {
        Ok(ApkTrust {
            keys: self
                .apk_keys
                .as_deref()
                .map(ApkKeys::load)
                .transpose()
                .map_err(crate::inputs::InputError::from)?,
            allow_untrusted: self.allow_untrusted,
            recorded,
        })
    }
}

/// What to build, from the command line.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub from: Sources,
    pub out: PathBuf,
    /// From `--source-date-epoch` or `SOURCE_DATE_EPOCH`; derived from the inputs when absent.
    pub epoch: Option<SourceDateEpoch>,
    /// `--table`: the partition table instead of the profile's (GPT for the Pi 4 family).
    pub table: Option<TableKind>,
    /// `--compress`: compressed copies of the image to write beside it, with a bmap.
    pub compress: Vec<Compression>,
}

/// An OpenPGP secret key file (armored or binary) and its passphrase, when it has one.
#[derive(Debug, Clone)]
pub struct SignKey {
    pub path: PathBuf,
    pub passphrase: Option<Vec<u8>>,
}

/// What an earlier build recorded that a rebuild of it records again.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Its signature: a rebuild without the key records the same (so the buildinfo and
    /// SHA256SUMS are the same bytes) and writes no signature.
    pub signature: Option<crate::artifact::buildinfo::BuildinfoSignature>,
    /// Each `.apk`'s verdict (by file name): a rebuild of the same bytes (which has checked
    /// every input's SHA-256) records the same.
    pub apk_verdicts: BTreeMap<String, Verdict>,
    /// The profile as the buildinfo carries it, `(origin, text)`, taken instead of
    /// `Sources::board`.
    pub profile: Option<(String, String)>,
    /// The overlay as the published apkovl holds it, taken instead of `Sources::overlay`.
    pub overlay: Option<Overlay>,
}

/// How to build, beyond what to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Refuse to build unless the profile, overlay and inputs match this lock file.
    pub lock: Option<PathBuf>,
    /// The input cache folder (see `inputs::cache`); none reads every input from its file.
    pub cache: Option<PathBuf>,
    /// Threads for compressing; all cores when absent. The bytes do not depend on it.
    pub threads: Option<usize>,
    /// `--apk-sign-key`: the RSA private key (PEM) that signs the boot repository's index.
    pub apk_sign_key: Option<PathBuf>,
    /// `--sign-key`: signs SHA256SUMS and the provenance.
    pub sign_key: Option<SignKey>,
    /// What the build a rebuild repeats recorded (`verify --rebuild`); empty otherwise.
    pub recorded: Recorded,
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

/// Every artifact's plan, made from the profile and overlay alone.
pub(crate) struct Plan {
    boot_tree: BootTreePlan,
    disk: DiskPlan,
    apkovl_name: String,
    apk_index: Option<ApkIndexPlan>,
    modloop: Option<ModloopPlan>,
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
    crate::publish::check_out(&req.out)?;
    progress.phase("reading the board profile and overlay");
    let (loaded, overlay) = req.from.load(req.table, &opts.recorded)?;
    let plan = plan(&loaded, &overlay)?;
    let trust = req.from.trust(opts.recorded.apk_verdicts.clone())?;
    let signer = opts.apk_sign_key.as_deref().map(load_signer).transpose()?;
    let sums_signer = match &opts.sign_key {
        Some(k) => Some(load_sums_signer(&k.path, k.passphrase.as_deref())?),
        None => None,
    };
    let set = select::input_set(&req.from.inputs, &loaded)?;
    let lock = match &opts.lock {
        Some(path) => {
            progress.phase(format!("checking the inputs against {}", path.display()));
            Some(lock::check(path, &loaded, &overlay, &set, &trust)?)
        }
        None => None,
    };
    // The cache only saves time: one that cannot be used is said and done without.
    let (cache, cache_warning) = match opts.cache.as_deref().map(Cache::open) {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (
            None,
            Some(format!("{e}; reading every input from its file")),
        ),
        None => (None, None),
    };
    let resolved = resolve::resolve(&loaded, &set, req.epoch, cache.as_ref(), &trust, progress)?;
    let ctx = BuildContext {
        loaded,
        overlay,
        resolved,
        lock,
        compress: release_codecs(&req.compress),
        threads: opts
            .threads
            .unwrap_or_else(crate::codec::blocks::default_threads),
        signer,
        sums_signer,
        sign_recorded: opts.recorded.signature.clone(),
    };
    let mut report = write::write_all(&ctx, &plan, &req.out, &req.from.inputs, progress)?;
    report.warnings.splice(0..0, cache_warning);
    Ok(report)
}

/// The codecs asked for, each once, in the fixed order outputs are written (so the order on
/// the command line cannot change the outputs' order).
fn release_codecs(asked: &[Compression]) -> Vec<Compression> {
    let mut v = asked.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Plans every artifact from the profile and overlay alone.
fn plan(loaded: &LoadedProfile, overlay: &Overlay) -> Result<Plan, Error> {
    let apkovl_name = apkovl::name(overlay);
    let boot_tree = boot_tree::plan(&loaded.profile, &apkovl_name)
        .map_err(|e| Error::field(&loaded.origin, e))?;
    let disk = disk_image::plan(&loaded.profile).map_err(|e| Error::image(&loaded.origin, e))?;
    let apk_index = apkindex::plan(&loaded.profile).map_err(|e| Error::field(&loaded.origin, e))?;
    let modloop = modloop::plan(&loaded.profile).map_err(|e| Error::field(&loaded.origin, e))?;
    Ok(Plan {
        boot_tree,
        disk,
        apkovl_name,
        apk_index,
        modloop,
    })
}

/// The index signing key from its PEM file; its public name is the file name + `.pub`.
fn load_signer(path: &Path) -> Result<IndexSigner, Error> {
    let key_error = |reason: String| Error::ApkSignKey {
        path: path.display().to_string(),
        reason,
    };
    let text = crate::inputs::apk_keys::read_key_text(path).map_err(|e| {
        key_error(match e {
            crate::inputs::apk_keys::TrustError::Read { source, .. } => source.to_string(),
            other => other.to_string(),
        })
    })?;
    let key =
        crate::codec::apksign::private_key_from_pem(&text).map_err(|e| key_error(e.to_string()))?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| key_error("it names no file".into()))?;
    Ok(IndexSigner {
        key,
        key_name: format!("{file}.pub"),
    })
}

/// The OpenPGP key that signs SHA256SUMS, unlocked once before any input is read.
fn load_sums_signer(path: &Path, passphrase: Option<&[u8]>) -> Result<SecretSigner, Error> {
    use std::io::Read;
    let key_error = |reason: String| Error::SignKey {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| key_error(e.to_string()))?;
    if !file
        .metadata()
        .map_err(|e| key_error(e.to_string()))?
        .is_file()
    {
        return Err(key_error("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(openpgp::MAX_KEY_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| key_error(e.to_string()))?;
    if bytes.len() as u64 > openpgp::MAX_KEY_SIZE {
        return Err(key_error(format!(
            "larger than {} bytes: not a key file",
            openpgp::MAX_KEY_SIZE
        )));
    }
    SecretSigner::from_bytes(&bytes, passphrase).map_err(|e| key_error(e.to_string()))
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
