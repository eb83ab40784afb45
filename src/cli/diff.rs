//! `pimg diff`: its arguments and the report, as text or JSON (exit 0 identical, 1 different,
//! 2 error).

use super::{print_report, Failure, Outcome};
use std::path::PathBuf;

/// Arguments of `pimg diff`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Identical files print nothing and exit 0; different files exit 1; errors exit 2.
Each line names where the difference is, outermost first, down to the field:
  rpi3b.img › partition 1 › FAT › directory entry config.txt › modify time: … vs …
  rpi3b.img › partition 1 › FAT › boot/initramfs-rpi › bin/busybox › mode: 0100755 vs 0100655

Examples:
  pimg diff a/rpi3b.img b/rpi3b.img
  pimg diff --json a/rpi3b.initramfs.cpio.gz b/rpi3b.initramfs.cpio.gz")]
pub struct DiffArgs {
    /// First file (the reference).
    a: PathBuf,
    /// Second file.
    b: PathBuf,
    /// Print JSON (stable field names) instead of text.
    #[arg(long)]
    json: bool,
}

/// Compares the two files and names every difference.
pub(super) fn run(args: DiffArgs) -> Result<Outcome, Failure> {
    let report = pimg::prove::diff::diff_paths(&args.a, &args.b)?;
    print_report(args.json, &report, || report.render());
    Ok(Outcome::clean_or(report.identical, Outcome::Differ))
}
