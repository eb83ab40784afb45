//! `pimg inspect`: its arguments and the report, as text or JSON (exit 0 read cleanly,
//! 1 damage found, 2 unreadable).

use std::path::PathBuf;

/// Arguments of `pimg inspect`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  pimg inspect out/rpi3b.img                   partition table, FAT parameters, every file
  pimg inspect out/rpi3b.initramfs.cpio.gz     every entry with mode, owner, mtime, SHA-256
  pimg inspect --json out/rpi3b.img | jq '.partitions[0].filesystem.files[].path'

Exit status: 0 read cleanly, 1 read with damage (listed under problems), 2 unreadable.")]
pub struct InspectArgs {
    /// Disk image, FAT volume, or archive (gzip, cpio newc, tar); recognized by content.
    #[arg(value_name = "IMAGE|ARCHIVE")]
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pimg inspect`; returns the exit code.
pub fn run_inspect(args: InspectArgs) -> i32 {
    match pimg::prove::inspect::inspect_path(&args.file) {
        Ok(ins) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&ins).expect("json"));
            } else {
                print!("{}", pimg::prove::inspect::render(&ins));
            }
            i32::from(!ins.problems.is_empty())
        }
        Err(e) => {
            eprintln!("pimg: error: {e}");
            2
        }
    }
}
