//! `pimg check`: its arguments and, per board model, what the firmware would load, as text or
//! JSON.

use super::{print_json, Failure, Outcome};
use std::path::PathBuf;

const CHECK_HELP: &str = "\
QEMU starts the kernel itself and never runs the GPU firmware, so this is the only check of
what real hardware reads first. For each board model it evaluates config.txt as the firmware
does ([pi4]-style and [board-type=] sections, include, os_prefix) and checks that:
  - bootcode.bin is there for boards whose boot ROM loads it (all but the Pi 4 family and
    the Pi 5);
  - the start*.elf/fixup*.dat pair the model would load is there (the Pi 5 has its firmware
    in the EEPROM and loads none);
  - the kernel (kernel=) is there and is an arm64 Image exactly when arm_64bit=1 applies
    (always on the Pi 5, which starts only 64-bit kernels: kernel_2712.img, else kernel8.img);
  - the initramfs, device tree (device_tree=, or the firmware's default name), overlays
    (dtoverlay=) and included files exist, and each DTB is a flattened device tree;
  - cmdline.txt is one line.
Every pimg build runs the same check on its boot tree before writing anything.

Models: pi0 pi0w pi1a+ pi1b+ pi2b pi3b pi3b+ pi3a+ pi02w pi4b pi400 cm4 pi5

Examples:
  pimg check out/rpi3b.img                    models from the board in the buildinfo beside it
  pimg check --model pi3b --model pi4b media.img
  pimg check --board rpi-arm64 --json media.img

Exit status: 0 the firmware would find everything, 1 problems (listed), 2 unreadable image or
bad arguments.";

#[derive(clap::Args)]
#[command(after_help = CHECK_HELP)]
pub struct CheckArgs {
    /// Disk image whose first FAT partition is the boot partition.
    image: PathBuf,
    /// Board profile whose models to check for (default: the buildinfo's board).
    #[arg(long, value_name = "BOARD|FILE")]
    board: Option<String>,
    /// A board model to check for (repeatable); overrides --board.
    #[arg(long = "model", value_name = "ID")]
    models: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Checks the image's boot partition for each model and prints what each would load.
pub(super) fn run(args: CheckArgs) -> Result<Outcome, Failure> {
    let (models, report) =
        pimg::prove::check::check_image(&args.image, args.board.as_deref(), &args.models)?;
    if args.json {
        print_json(&report);
    } else {
        for b in &report.models {
            let firmware = match (&b.start, &b.fixup) {
                (Some(start), Some(fixup)) => format!(
                    "{start}+{fixup}{}",
                    b.bootcode
                        .as_deref()
                        .map(|c| format!(" after {c}"))
                        .unwrap_or_default()
                ),
                _ => "in the EEPROM".to_string(),
            };
            println!(
                "{:<6} kernel {} ({}), initramfs {}, device tree {}, firmware {firmware}",
                b.model,
                b.kernel,
                if b.arm_64bit { "64-bit" } else { "32-bit" },
                b.initramfs.as_deref().unwrap_or("none"),
                b.device_tree,
            );
        }
        for p in &report.problems {
            println!("problem: {p}");
        }
        let names: Vec<&str> = models.iter().map(|m| m.id).collect();
        if report.ok() {
            println!("pimg: check OK for {}", names.join(", "));
        } else {
            println!(
                "pimg: check FAILED: {} problem(s) for {}",
                report.problems.len(),
                names.join(", ")
            );
        }
    }
    Ok(if report.ok() {
        Outcome::Ok
    } else {
        Outcome::CheckProblems
    })
}
