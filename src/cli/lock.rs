//! `pimg lock`: its arguments, the lock request they make, and the pinned inputs as text or
//! JSON.

use super::{print_json, Failure, Outcome};
use pimg::build::lock::{self, LockRequest};
use pimg::profile::lock::DEFAULT_LOCK_FILE;
use std::path::PathBuf;

const LOCK_EXAMPLES: &str = "\
Examples:
  pimg lock --board rpi3b --inputs inputs        write pimg.lock for the inputs rpi3b uses
  pimg build --board rpi3b --inputs inputs --locked   build only from exactly those inputs

The lock lists every input the profile selects (name, version, arch, sha256, file) and the
digests of the profile and the overlay, sorted, without timestamps or paths: the same inputs
give the same lock on any machine. Every .apk is checked against its datahash first.";

#[derive(clap::Args)]
#[command(after_help = LOCK_EXAMPLES)]
pub struct LockArgs {
    /// Board name (see `pimg boards`) or the path of a board profile .toml file.
    #[arg(long, default_value = "rpi3b", value_name = "BOARD|FILE")]
    board: String,
    /// Folder holding the input packages, tarballs and/or directories.
    #[arg(long, default_value = "inputs", value_name = "DIR")]
    inputs: PathBuf,
    /// Overlay name (built in) or directory; the board's default overlay when omitted.
    #[arg(long, value_name = "NAME|DIR")]
    overlay: Option<String>,
    /// Where to write the lock.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_LOCK_FILE)]
    lock: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Writes the lock file and lists what it pins.
pub(super) fn run(args: LockArgs) -> Result<Outcome, Failure> {
    let report = lock::lock(&LockRequest {
        board: args.board,
        inputs: args.inputs,
        overlay: args.overlay,
        lock: args.lock,
    })?;
    if args.json {
        print_json(&report);
    } else {
        println!(
            "pimg: locked {} inputs of {} in {} (sha256 {})",
            report.inputs.len(),
            report.board,
            report.path,
            report.sha256
        );
        for i in &report.inputs {
            println!("{}  {}", i.sha256, i.file);
        }
    }
    Ok(Outcome::Ok)
}
