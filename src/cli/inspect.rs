//! `pimg inspect`: its arguments and the report, as text or JSON (exit 0 read cleanly,
//! 1 damage found, 2 unreadable).

use super::{print_report, Failure, Outcome};
use pimg::prove::inspect;
use std::path::PathBuf;

/// Arguments of `pimg inspect`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  pimg inspect out/rpi3b.img                   partition table, FAT parameters, every file
  pimg inspect out/rpi3b.initramfs.cpio.gz     every entry with mode, owner, mtime, SHA-256
  pimg inspect boot/modloop-rpi                 the same for a squashfs image
  pimg inspect --json out/rpi3b.img | jq '.partitions[0].filesystem.files[].path'

Exit status: 0 read cleanly, 1 read with damage (listed under problems), 2 unreadable.")]
pub struct InspectArgs {
    /// Disk image, FAT volume, squashfs image, or archive (gzip, cpio newc, tar); recognized
    /// by content.
    #[arg(value_name = "IMAGE|ARCHIVE")]
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Reads the file and lists what it holds.
pub(super) fn run(args: InspectArgs) -> Result<Outcome, Failure> {
    let ins = inspect::inspect_path(&args.file)?;
    print_report(args.json, &ins, || inspect::render(&ins));
    Ok(Outcome::clean_or(ins.problems.is_empty(), Outcome::Damaged))
}
