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
    /// Folder of the public keys the .apk inputs must be signed by (Alpine's /etc/apk/keys
    /// layout); the lock records which key verified each, as `pimg build --apk-keys` does.
    #[arg(long, value_name = "DIR")]
    apk_keys: Option<PathBuf>,
    /// Lock .apk inputs no key verifies, recorded as "unverified" (as apk --allow-untrusted).
    #[arg(long)]
    allow_untrusted: bool,
}

/// Writes the lock file and lists what it pins.
pub(super) fn run(args: LockArgs) -> Result<Outcome, Failure> {
    let report = lock::lock(&LockRequest {
        board: args.from.board,
        inputs: args.from.inputs,
        overlay: args.from.overlay,
        lock: args.lock,
        apk_keys: args.apk_keys,
        allow_untrusted: args.allow_untrusted,
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
