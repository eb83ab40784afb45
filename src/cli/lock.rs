//! `pimg lock`: its arguments, the lock request they make, and the pinned inputs as text or
//! JSON.

use super::{print_json, Failure, Outcome, Sources};
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
    #[command(flatten)]
    from: Sources,
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
        from: args.from.request(),
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
