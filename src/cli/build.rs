//! `pimg build`: its arguments, the build request they make, the report as text or JSON, and
//! `--boot`.

use super::{boot, print_json, Failure, Outcome, Sources};
use pimg::build::{self, BuildOptions, BuildRequest};
use pimg::codec::release::Compression;
use pimg::epoch::SourceDateEpoch;
use pimg::profile::board::TableKind;
use pimg::progress::Progress;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = super::EXAMPLES)]
pub struct BuildArgs {
    #[command(flatten)]
    from: Sources,
    /// Output folder; created if missing, locked against a second build. Outputs appear all
    /// at once when all are complete: a new folder, staged beside it as .<DIR>.pimg-stage-*,
    /// replaces it in one rename (one by one, with a warning, where that is impossible).
    #[arg(long, default_value = "out", value_name = "DIR")]
    out: PathBuf,
    /// Seconds since 1970 used for every timestamp; derived from the inputs when unset.
    #[arg(
        long,
        env = "SOURCE_DATE_EPOCH",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    source_date_epoch: Option<String>,
    /// Print the result as JSON on stdout (no progress display).
    #[arg(long)]
    json: bool,
    /// After building, boot the image under QEMU (as `pimg boot`) and fail if it does not pass.
    #[arg(long)]
    boot: bool,
    /// Refuse to build unless the profile, overlay and every input match the lock file
    /// (`pimg lock`); the buildinfo records the lock's digest.
    #[arg(long)]
    locked: bool,
    /// The lock file for --locked.
    #[arg(long, value_name = "FILE", default_value = pimg::profile::lock::DEFAULT_LOCK_FILE, requires = "locked")]
    lock: PathBuf,
    /// Partition table instead of the profile's: mbr, or gpt for boards whose firmware boots
    /// GPT (the Pi 4 family, the Pi 5). The buildinfo records it, so `verify --rebuild` repeats it.
    #[arg(long, value_name = "mbr|gpt")]
    table: Option<TableKind>,
    /// Input cache: each package is decompressed once and later builds read its members from
    /// here (checked, refilled when damaged, oldest inputs evicted above 8 GiB). Default:
    /// $XDG_CACHE_HOME/pimg or ~/.cache/pimg.
    #[arg(long, env = "PIMG_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Read every input from its file; nothing is written outside the output folder.
    /// Overrides --cache and PIMG_CACHE.
    #[arg(long)]
    no_cache: bool,
    /// Also write the image compressed, beside <BOARD>.img (which stays, for boot and
    /// verify): gz → <BOARD>.img.gz, xz → .img.xz, zstd → .img.zst; repeat the flag for
    /// several. Any of them adds <BOARD>.img.bmap, the block map bmaptool uses to write only
    /// the image's data and check it (`bmaptool copy <BOARD>.img.xz /dev/sdX`). Every file is
    /// listed in SHA256SUMS and the buildinfo, and is the same bytes on every machine.
    #[arg(long, value_name = "CODEC", value_enum)]
    compress: Vec<CompressArg>,
    /// Threads for --compress (default: every core, at most 16). Any count gives the same
    /// bytes; fewer threads hold fewer 8 MiB blocks and encoders in memory at once.
    #[arg(long, value_name = "N")]
    threads: Option<std::num::NonZeroUsize>,
    /// Sign the boot repository's apks/<arch>/APKINDEX.tar.gz with this RSA private key (PEM,
    /// as abuild-keygen writes ~/.abuild/<name>.rsa). apk finds the public half by the key
    /// file's name + ".pub": install <name>.rsa.pub into the target's /etc/apk/keys.
    #[arg(long, value_name = "KEY")]
    apk_sign_key: Option<PathBuf>,
    /// Sign SHA256SUMS with this OpenPGP secret key (armored or binary, as
    /// `gpg --export-secret-keys` writes it; a v4 key: Ed25519 or RSA). Writes SHA256SUMS.asc,
    /// an armored detached signature, the name and form Alpine and Armbian publish and
    /// `gpg --verify SHA256SUMS.asc SHA256SUMS` and `sqv` read. Its creation time is
    /// SOURCE_DATE_EPOCH, so an Ed25519 or RSA key gives the same bytes on every build.
    /// SHA256SUMS cannot list its own signature; the buildinfo names the signing key.
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// File whose first line is the passphrase of --sign-key (else PIMG_SIGN_PASSPHRASE;
    /// never on the command line, where other users see it).
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    sign_passphrase_file: Option<PathBuf>,
}

/// A `--compress` codec.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompressArg {
    /// gzip, level 9, in independent 256 KiB pieces: fastest to write, largest.
    Gz,
    /// xz, LZMA2 preset 6, in independent 8 MiB blocks: smallest, slowest.
    Xz,
    /// zstd, level 19, one frame per 8 MiB: nearly as small as xz, fastest to unpack.
    Zstd,
}

impl CompressArg {
    fn codec(self) -> Compression {
        match self {
            CompressArg::Gz => Compression::Gz,
            CompressArg::Xz => Compression::Xz,
            CompressArg::Zstd => Compression::Zstd,
        }
    }
}

/// Builds, prints the outputs, then boots the image when `--boot` asks for it.
pub(super) fn run(args: BuildArgs) -> Result<Outcome, Failure> {
    let epoch = args
        .source_date_epoch
        .as_deref()
        .map(SourceDateEpoch::parse)
        .transpose()
        .map_err(pimg::Error::from)?;
    // A board QEMU does not emulate cannot pass --boot: say so before building.
    if args.boot {
        let loaded = pimg::profile::board::load(&args.from.board).map_err(pimg::Error::from)?;
        pimg::prove::boot::require_machine(&loaded.profile).map_err(Failure::BootOption)?;
    }
    let req = BuildRequest {
        from: args.from.request(),
        out: args.out,
        epoch,
        table: args.table,
        compress: args.compress.iter().map(|c| c.codec()).collect(),
    };
    let cache = match (args.no_cache, args.cache) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => default_cache(),
    };
    let opts = BuildOptions {
        lock: args.locked.then_some(args.lock),
        cache,
        threads: args.threads.map(|n| n.get()),
        apk_sign_key: args.apk_sign_key,
        sign_key: sign_key(args.sign_key, args.sign_passphrase_file.as_deref())?,
        ..BuildOptions::default()
    };
    let progress = Progress::new(!args.json);
    let result = build::build_with(&req, &opts, &progress);
    // The spinner must be gone before the report or the error is printed.
    progress.finish();
    let report = result?;
    for w in &report.warnings {
        eprintln!("pimg: warning: {w}");
    }
    if args.json {
        print_json(&report);
    } else {
        println!(
            "pimg: built {} into {} (SOURCE_DATE_EPOCH={}, from {})",
            report.board, report.out_dir, report.source_date_epoch, report.epoch_source
        );
        for o in &report.outputs {
            println!("{}  {:>11}  {}", o.sha256, o.size, o.name);
        }
    }
    if !args.boot {
        return Ok(Outcome::Ok);
    }
    let image = PathBuf::from(&report.out_dir).join(format!("{}.img", report.board));
    boot::run(boot::BootArgs::defaults_for(image, args.json))
}

/// `--sign-key` with its passphrase, when given.
pub(super) fn sign_key(
    path: Option<PathBuf>,
    passphrase_file: Option<&std::path::Path>,
) -> Result<Option<build::SignKey>, Failure> {
    let Some(path) = path else { return Ok(None) };
    Ok(Some(build::SignKey {
        path,
        passphrase: sign_passphrase(passphrase_file)?,
    }))
}

/// The passphrase of --sign-key: the first line of --sign-passphrase-file, else
/// PIMG_SIGN_PASSPHRASE, else none.
// The command line reads the environment for the passphrase.
#[allow(clippy::disallowed_methods)]
fn sign_passphrase(file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, Failure> {
    use std::io::Read;
    let Some(path) = file else {
        return Ok(std::env::var_os("PIMG_SIGN_PASSPHRASE")
            .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec()));
    };
    let bad = |e: std::io::Error| {
        Failure::Argument(format!("--sign-passphrase-file {}: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(bad)?
        .take(64 << 10)
        .read_to_end(&mut bytes)
        .map_err(bad)?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()))
}

/// `$XDG_CACHE_HOME/pimg`, else `$HOME/.cache/pimg` (absolute paths only, as the XDG base
/// directory rules say); none when neither is set.
// The command line reads the environment for the cache's default place.
#[allow(clippy::disallowed_methods)]
fn default_cache() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
        .map(|d| d.join("pimg"))
}
