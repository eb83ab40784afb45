//! `pimg boot` (and `build --boot`): its arguments, the boot request they make, the milestones
//! as they are reached and the verdict, as text or JSON.

use super::{print_json, Failure, Outcome};
use pimg::progress::Progress;
use pimg::prove::boot::{self, BootFiles, BootRequest};
use std::path::PathBuf;
use std::time::Duration;

const BOOT_EXAMPLES: &str = "\
Examples:
  pimg boot out/rpi3b.img                    milestones and self-check (board from the buildinfo)
  pimg boot out/rpi3b.img --log console.txt  keep the whole serial console
  pimg boot --interactive out/rpi3b.img      log in on the serial console (Ctrl-A X quits)
  pimg boot other.img --board rpi3b --expect 'login:'   an image whose initramfs is not pimg's

Exit status: 0 every milestone reached and the self-check matched, 1 boot failed (the first
missing milestone or mismatching file is named, the console tail printed), 2 the image or
the options cannot be used (nothing was started), 130 interrupted.
The marker protocol is documented in qemu/README.md.";

/// `--timeout`'s default, also what `build --boot` waits.
const DEFAULT_TIMEOUT_SECS: u64 = 120;

#[derive(clap::Args)]
#[command(after_help = BOOT_EXAMPLES)]
pub struct BootArgs {
    /// The disk image to boot (never modified).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// Board name or profile file; read from <image>.buildinfo.json beside the image when omitted.
    #[arg(long, value_name = "BOARD|FILE")]
    board: Option<String>,
    /// QEMU machine (default: the board profile's, e.g. raspi3b).
    #[arg(long, value_name = "MACHINE")]
    machine: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS, value_name = "SECS")]
    timeout: u64,
    /// Write the whole serial console to FILE.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// A console line (regular expression) that must appear; repeatable, matched in order.
    /// Replaces pimg's own milestones after "kernel started" and skips the self-check.
    #[arg(long, value_name = "REGEX")]
    expect: Vec<String>,
    /// Kernel path inside the boot partition (default: the board profile's).
    #[arg(long, value_name = "PATH")]
    kernel: Option<String>,
    /// Device tree path inside the boot partition (default: the board profile's).
    #[arg(long, value_name = "PATH")]
    dtb: Option<String>,
    /// Initramfs path inside the boot partition (default: the board profile's).
    #[arg(long, value_name = "PATH")]
    initrd: Option<String>,
    /// Attach the serial console to this terminal (no self-check, no timeout).
    #[arg(long)]
    interactive: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl BootArgs {
    /// What `build --boot` runs: `pimg boot IMAGE` with every default, so a freshly built
    /// image is judged exactly as by hand.
    pub(super) fn defaults_for(image: PathBuf, json: bool) -> Self {
        BootArgs {
            image,
            board: None,
            machine: None,
            timeout: DEFAULT_TIMEOUT_SECS,
            log: None,
            expect: Vec::new(),
            kernel: None,
            dtb: None,
            initrd: None,
            interactive: false,
            json,
        }
    }
}

/// Boots, printing the milestones as they are reached, then the verdict.
pub(super) fn run(args: BootArgs) -> Result<Outcome, Failure> {
    let req = BootRequest {
        image: args.image,
        board: args.board,
        machine: args.machine,
        timeout: Duration::from_secs(args.timeout),
        log: args.log,
        expect: args.expect,
        files: BootFiles {
            kernel: args.kernel,
            dtb: args.dtb,
            initrd: args.initrd,
        },
        interactive: args.interactive,
    };
    // An interactive console owns the terminal; a spinner would draw over it.
    let progress = Progress::new(!args.json && !args.interactive);
    let result = boot::boot(&req, &|msg: &str| progress.phase(msg));
    progress.finish();
    let report = result?;
    if args.json {
        print_json(&report);
    } else if !args.interactive {
        println!("pimg: booted {} on QEMU {}", report.image, report.machine);
        if !report.dtb_fixups.is_empty() {
            println!(
                "  QEMU's copy of the device tree without what QEMU does not emulate: {}",
                report.dtb_fixups.join("; ")
            );
        }
        for m in &report.milestones {
            match m.at_ms {
                Some(ms) => println!(
                    "  [{:>5.1} s] {:<20} {}",
                    ms as f64 / 1000.0,
                    m.name,
                    m.line.as_deref().unwrap_or("")
                ),
                None => println!("  [  --   ] {:<20} not reached", m.name),
            }
        }
        if let Some(c) = &report.selfcheck {
            let against = if c.against_buildinfo {
                "the FAT listing, the buildinfo and the apkovl"
            } else {
                "the FAT listing and the apkovl (no buildinfo beside the image)"
            };
            if c.mismatches.is_empty() {
                println!(
                    "  self-check: {} boot files and {} overlay files as read by the guest match {against}",
                    c.boot_files, c.overlay_files
                );
                if let Some(m) = &c.modloop {
                    let bytes = if c.against_buildinfo {
                        "; its bytes match the buildinfo"
                    } else {
                        ""
                    };
                    println!(
                        "  modloop: {m} mounted by the guest, its modules counted and one loaded{bytes}"
                    );
                }
            } else {
                println!(
                    "  self-check: {} mismatches against {against}:",
                    c.mismatches.len()
                );
                for m in &c.mismatches {
                    println!("    {m}");
                }
            }
        }
    }
    match &report.failure {
        None => {
            if !args.json && !args.interactive {
                println!("pimg: boot OK in {:.1} s", report.wall_ms as f64 / 1000.0);
            }
            Ok(Outcome::Ok)
        }
        Some(f) => {
            if !args.interactive {
                eprintln!("pimg: boot FAILED: {f}");
                if !report.tail.is_empty() {
                    eprintln!("pimg: last console lines:");
                    for l in &report.tail {
                        eprintln!("  | {l}");
                    }
                }
                if let Some(log) = &report.log {
                    eprintln!("pimg: full console log: {log}");
                }
            }
            Ok(Outcome::BootFailed)
        }
    }
}
