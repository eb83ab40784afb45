//! `pimg verify`: its arguments, which of the three modes they select, and the report, as
//! text or JSON (exit 0 ok, 1 mismatch, 2 error).

use super::{print_report, Failure, Outcome};
use pimg::prove::verify;
use std::path::PathBuf;

/// Arguments of `pimg verify`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Modes:
  pimg verify out/                          check every file in out/SHA256SUMS, the buildinfo's
                                            outputs, and every boot-partition file in the image
  pimg verify --sums out/SHA256SUMS out/rpi3b.img
                                            check only the files given
  pimg verify --rebuild out/rpi3b.buildinfo.json --inputs inputs
                                            check the inputs against the buildinfo, rebuild in
                                            a temporary folder and compare every output; the
                                            profile comes from the buildinfo and a custom
                                            overlay from the published apkovl, so the folder
                                            and the inputs are all a rebuild needs

Exit status: 0 everything matches, 1 a mismatch (the message names the file, and inside the
image the boot-partition file or structure), 2 bad arguments or unreadable files.")]
pub struct VerifyArgs {
    /// The output folder (holding SHA256SUMS and <board>.buildinfo.json), or with --sums the
    /// files to check.
    #[arg(value_name = "DIR|FILE")]
    paths: Vec<PathBuf>,
    /// A SHA256SUMS file; check the FILEs given (all listed files when none are given).
    #[arg(long, value_name = "SHA256SUMS", conflicts_with = "rebuild")]
    sums: Option<PathBuf>,
    /// Rebuild from this buildinfo and compare every output.
    #[arg(long, value_name = "BUILDINFO", requires = "inputs")]
    rebuild: Option<PathBuf>,
    /// Inputs folder for --rebuild (the packages the buildinfo lists).
    #[arg(long, value_name = "DIR")]
    inputs: Option<PathBuf>,
    /// Board profile file for --rebuild, instead of the profile text the buildinfo carries
    /// (its SHA-256 must match the buildinfo; needed only for buildinfos without the text).
    #[arg(long, value_name = "FILE", requires = "rebuild")]
    board: Option<PathBuf>,
    /// Overlay directory for --rebuild, instead of the overlay the published apkovl holds
    /// (its digest must match the buildinfo; needed only when the apkovl is not beside it).
    #[arg(long, value_name = "DIR", requires = "rebuild")]
    overlay: Option<PathBuf>,
    /// A public key (armored or binary; repeat for several) that must have signed
    /// SHA256SUMS: SHA256SUMS.asc is checked before SHA256SUMS is trusted, and a folder
    /// without it fails. With --rebuild, the published signature is checked over the
    /// rebuilt SHA256SUMS.
    #[arg(long, value_name = "PUB.asc")]
    key: Vec<PathBuf>,
    /// With --rebuild: sign the rebuild with this secret key, so SHA256SUMS.asc is compared
    /// too (without it the rebuild is "reproducible except for the signature").
    #[arg(long, value_name = "KEY", requires = "rebuild")]
    sign_key: Option<PathBuf>,
    /// File whose first line is the passphrase of --sign-key (else PIMG_SIGN_PASSPHRASE).
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    sign_passphrase_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the mode the arguments select and lists every check.
pub(super) fn run(args: VerifyArgs) -> Result<Outcome, Failure> {
    let keys = if args.key.is_empty() {
        None
    } else {
        Some(verify::load_keyring(&args.key)?)
    };
    let outcome = if let Some(buildinfo) = &args.rebuild {
        if !args.paths.is_empty() {
            return Err(Failure::Usage("--rebuild takes no other paths"));
        }
        // clap's `requires` already insists on --inputs; this keeps the message if that changes.
        let Some(inputs) = &args.inputs else {
            return Err(Failure::Usage("--rebuild needs --inputs DIR"));
        };
        verify::rebuild(&verify::RebuildRequest {
            buildinfo: buildinfo.clone(),
            inputs: inputs.clone(),
            board: args.board.clone(),
            overlay: args.overlay.clone(),
            keys,
            sign_key: super::build::sign_key(
                args.sign_key.clone(),
                args.sign_passphrase_file.as_deref(),
            )?,
        })?
    } else if let Some(sums) = &args.sums {
        verify::check_sums(sums, &args.paths)?
    } else if let [dir] = args.paths.as_slice() {
        verify::check_dir_with(dir, keys.as_ref())?
    } else {
        return Err(Failure::Usage(
            "give one output folder, --sums SHA256SUMS [FILE…], or --rebuild BUILDINFO --inputs DIR",
        ));
    };
    print_report(args.json, &outcome, || outcome.render());
    Ok(Outcome::clean_or(outcome.ok, Outcome::Mismatch))
}
