//! `pimg verify`: its arguments, which of the three modes they select, and the report, as
//! text or JSON (exit 0 ok, 1 mismatch, 2 error).

use pimg::prove::verify::{self, VerifyOutcome};
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
                                            a temporary folder and compare every output

Exit status: 0 everything matches, 1 a mismatch (the message names the file, and inside the
image the boot-partition file or structure), 2 bad arguments or unreadable files.")]
pub struct VerifyArgs {
    /// The output folder (holding SHA256SUMS and <board>.buildinfo.json), or with --sums the
    /// files to check.
    #[arg(value_name = "DIR|FILE")]
    pub paths: Vec<PathBuf>,
    /// A SHA256SUMS file; check the FILEs given (all listed files when none are given).
    #[arg(long, value_name = "SHA256SUMS", conflicts_with = "rebuild")]
    pub sums: Option<PathBuf>,
    /// Rebuild from this buildinfo and compare every output.
    #[arg(long, value_name = "BUILDINFO", requires = "inputs")]
    pub rebuild: Option<PathBuf>,
    /// Inputs folder for --rebuild (the packages the buildinfo lists).
    #[arg(long, value_name = "DIR")]
    pub inputs: Option<PathBuf>,
    /// Board profile file for --rebuild, when the build used a profile file instead of a
    /// built-in board (its SHA-256 must match the buildinfo).
    #[arg(long, value_name = "FILE", requires = "rebuild")]
    pub board: Option<PathBuf>,
    /// Overlay directory for --rebuild, when the build used an overlay directory instead of
    /// a built-in overlay (its digest must match the buildinfo).
    #[arg(long, value_name = "DIR", requires = "rebuild")]
    pub overlay: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pimg verify`; returns the exit code.
pub fn run_verify(args: VerifyArgs) -> i32 {
    let result = if let Some(buildinfo) = &args.rebuild {
        if !args.paths.is_empty() {
            eprintln!("pimg: error: --rebuild takes no other paths");
            return 2;
        }
        let Some(inputs) = &args.inputs else {
            eprintln!("pimg: error: --rebuild needs --inputs DIR");
            return 2;
        };
        verify::rebuild(&verify::RebuildRequest {
            buildinfo: buildinfo.clone(),
            inputs: inputs.clone(),
            board: args.board.clone(),
            overlay: args.overlay.clone(),
        })
    } else if let Some(sums) = &args.sums {
        verify::check_sums(sums, &args.paths)
    } else if let [dir] = args.paths.as_slice() {
        verify::check_dir(dir)
    } else {
        eprintln!("pimg: error: give one output folder, --sums SHA256SUMS [FILE…], or --rebuild BUILDINFO --inputs DIR");
        return 2;
    };
    match result {
        Ok(outcome) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
            } else {
                print!("{}", outcome.render());
            }
            match outcome {
                VerifyOutcome { ok: true, .. } => 0,
                _ => 1,
            }
        }
        Err(e) => {
            eprintln!("pimg: error: {e}");
            2
        }
    }
}
