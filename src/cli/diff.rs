//! `pimg diff`: its arguments and the report, as text or JSON (exit 0 identical, 1 different,
//! 2 error).

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
    pub a: PathBuf,
    /// Second file.
    pub b: PathBuf,
    /// Print JSON (stable field names) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pimg diff`; returns the exit code.
pub fn run_diff(args: DiffArgs) -> i32 {
    match pimg::prove::diff::diff_paths(&args.a, &args.b) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            } else {
                print!("{}", report.render());
            }
            i32::from(!report.identical)
        }
        Err(e) => {
            eprintln!("pimg: error: {e}");
            2
        }
    }
}
