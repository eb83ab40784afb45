//! The `pimg` command line: parses arguments once, runs the library, maps errors to exit codes.

mod cli;

use clap::{Parser, Subcommand};
use pimg::build::{self, BuildRequest};
use pimg::epoch::SourceDateEpoch;
use pimg::progress::Progress;
use pimg::prove::boot::{self, BootRequest};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "Build Raspberry Pi install media that are byte-for-byte reproducible.";

const LONG_ABOUT: &str = "\
Build Raspberry Pi install media that are byte-for-byte reproducible.

pimg reads a board profile (boards/<board>.toml, built in; `pimg boards` lists them), an
overlay (overlays/<name>/, built in) and an inputs folder of Debian packages (.deb), Alpine
packages (.apk), tarballs or plain directories, and writes into the output folder:

  <board>.img                 MBR (or GPT) disk image with one FAT boot partition
  <board>.tar.gz              the boot tree as an Alpine-style rpi tarball
  <hostname>.apkovl.tar.gz    the overlay in Alpine's apkovl format (also on the partition)
  <board>.initramfs.cpio.gz   the initramfs (also on the partition)
  <board>.buildinfo.json      every input, output, identifier and the epoch
  <board>.spdx.json           SPDX 2.3 SBOM of the inputs and outputs
  SHA256SUMS                  checks with `sha256sum -c SHA256SUMS`

One inputs folder can serve every board: each takes the packages of its own architecture
(arm64, armhf or armel) and architecture-independent ones. Before writing anything a build
checks that the firmware would find what config.txt names on every model the profile lists
(`pimg check`).

The same inputs give the same bytes on any machine, in any time zone, with any umask,
locale or working directory. Every timestamp is SOURCE_DATE_EPOCH, or the newest mtime
inside the input packages when it is not set; the clock is never read.

Then prove it: `pimg boot` boots the image under QEMU and compares what the booted system
hashed; `pimg verify` checks published media or rebuilds them from the buildinfo; `pimg diff`
names the file and field where two images differ.";

const EXAMPLES: &str = "\
Examples:
  qemu/setup.sh                                  fetch the real Debian inputs into inputs/
  pimg build --board rpi3b --inputs inputs --out out
  SOURCE_DATE_EPOCH=1700000000 pimg build --out out
  pimg build --overlay ./my-overlay --out out    use your own overlay directory
  pimg build --board rpi4b --table gpt --out out  a GPT disk (the Pi 4 and Pi 5 EEPROMs boot it)
  pimg boards                                    list the built-in board profiles
  (cd out && sha256sum -c SHA256SUMS)            check the outputs";

#[derive(Parser)]
#[command(name = "pimg", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the disk image, rpi tarball, apkovl, initramfs, SHA256SUMS and buildinfo for a board.
    #[command(after_help = EXAMPLES)]
    Build(BuildArgs),
    /// List the built-in board profiles.
    Boards {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Boot an image under QEMU and check every milestone and the in-guest self-check.
    #[command(after_help = BOOT_EXAMPLES)]
    Boot(BootArgs),
    /// Show what an image or archive holds: partition table, FAT parameters, files, archive entries.
    Inspect(cli::verify::InspectArgs),
    /// Show the structural difference between two images or archives (exit 1 if they differ).
    Diff(cli::verify::DiffArgs),
    /// Check outputs against SHA256SUMS and the buildinfo, or rebuild and compare.
    Verify(cli::verify::VerifyArgs),
    /// Check what the Raspberry Pi firmware reads first: config.txt, its files, cmdline.txt.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Pin the inputs, board profile and overlay of a build in a lock file (pimg.lock).
    #[command(after_help = LOCK_EXAMPLES)]
    Lock(LockArgs),
}

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
struct CheckArgs {
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

#[derive(clap::Args)]
struct BuildArgs {
    /// Board name (see `pimg boards`) or the path of a board profile .toml file.
    #[arg(long, default_value = "rpi3b", value_name = "BOARD|FILE")]
    board: String,
    /// Folder holding the input .deb packages and/or directories.
    #[arg(long, default_value = "inputs", value_name = "DIR")]
    inputs: PathBuf,
    /// Overlay name (built in) or directory; the board's default overlay when omitted.
    #[arg(long, value_name = "NAME|DIR")]
    overlay: Option<String>,
    /// Output folder; created if missing, locked against a second build. Outputs appear all
    /// at once when all are complete: a new folder, staged beside it as .<DIR>.pimg-stage-*,
    /// replaces it in one rename (one by one, with a warning, where that is impossible).
    #[arg(long, default_value = "out", value_name = "DIR")]
    out: PathBuf,
    /// Seconds since 1970 used for every timestamp; derived from the inputs when unset.
    #[arg(
        long,
        env = "SOURCE_DATE_EPOCH",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    source_date_epoch: Option<String>,
    /// Print the result as JSON on stdout (no progress display).
    #[arg(long)]
    json: bool,
    /// After building, boot the image under QEMU (as `pimg boot`) and fail if it does not pass.
    #[arg(long)]
    boot: bool,
    /// Refuse to build unless the profile, overlay and every input match the lock file
    /// (`pimg lock`); the buildinfo records the lock's digest.
    #[arg(long)]
    locked: bool,
    /// The lock file for --locked.
    #[arg(long, value_name = "FILE", default_value = pimg::profile::lock::DEFAULT_LOCK_FILE, requires = "locked")]
    lock: PathBuf,
    /// Partition table instead of the profile's: mbr, or gpt for boards whose firmware boots
    /// GPT (the Pi 4 family, the Pi 5). The buildinfo records it, so `verify --rebuild` repeats it.
    #[arg(long, value_name = "mbr|gpt")]
    table: Option<pimg::profile::board::TableKind>,
}

const LOCK_EXAMPLES: &str = "\
Examples:
  pimg lock --board rpi3b --inputs inputs        write pimg.lock for the inputs rpi3b uses
  pimg build --board rpi3b --inputs inputs --locked   build only from exactly those inputs

The lock lists every input the profile selects (name, version, arch, sha256, file) and the
digests of the profile and the overlay, sorted, without timestamps or paths: the same inputs
give the same lock on any machine. Every .apk is checked against its datahash first.";

#[derive(clap::Args)]
struct LockArgs {
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
    #[arg(long, value_name = "FILE", default_value = pimg::profile::lock::DEFAULT_LOCK_FILE)]
    lock: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

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

#[derive(clap::Args)]
struct BootArgs {
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
    #[arg(long, default_value_t = 120, value_name = "SECS")]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pimg: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), pimg::Error> {
    match cli.command {
        Command::Boot(args) => std::process::exit(run_boot(args)),
        Command::Inspect(args) => std::process::exit(cli::verify::run_inspect(args)),
        Command::Diff(args) => std::process::exit(cli::verify::run_diff(args)),
        Command::Verify(args) => std::process::exit(cli::verify::run_verify(args)),
        Command::Check(args) => {
            let (models, report) = match pimg::prove::check::check_image(
                &args.image,
                args.board.as_deref(),
                &args.models,
            ) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("pimg: error: {e}");
                    std::process::exit(2);
                }
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
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
            std::process::exit(if report.ok() { 0 } else { 1 });
        }
        Command::Lock(args) => {
            let report = pimg::build::lock::lock(&pimg::build::lock::LockRequest {
                board: args.board,
                inputs: args.inputs,
                overlay: args.overlay,
                lock: args.lock,
            })?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
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
            Ok(())
        }
        Command::Boards { json } => {
            let mut rows = Vec::new();
            for (name, _) in pimg::profile::board::embedded() {
                let p = pimg::profile::board::load(name)?.profile;
                rows.push(serde_json::json!({
                    "name": p.board.name,
                    "description": p.board.description,
                    "arch": p.board.arch,
                    "image_size": p.image.size.0,
                    "table": format!("{:?}", p.image.table).to_lowercase(),
                    "qemu_machine": p.qemu.iter().map(|q| q.label()).collect::<Vec<_>>().join(","),
                    "models": p.board.models,
                }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
            } else {
                for r in rows {
                    println!(
                        "{:<10} {:<8} {:>5} MiB {:<4} qemu:{:<8} {}",
                        r["name"].as_str().unwrap_or(""),
                        r["arch"].as_str().unwrap_or(""),
                        r["image_size"].as_u64().unwrap_or(0) >> 20,
                        r["table"].as_str().unwrap_or(""),
                        match r["qemu_machine"].as_str().unwrap_or("") {
                            "" => "none",
                            m => m,
                        },
                        r["description"].as_str().unwrap_or(""),
                    );
                }
            }
            Ok(())
        }
        Command::Build(args) => {
            let epoch = args
                .source_date_epoch
                .as_deref()
                .map(SourceDateEpoch::parse)
                .transpose()?;
            // A board QEMU does not emulate cannot pass --boot: say so before building.
            if args.boot {
                let loaded = pimg::profile::board::load(&args.board)?;
                if let Err(e) = boot::require_machine(&loaded.profile) {
                    eprintln!("pimg: error: --boot: {e}");
                    std::process::exit(e.exit_code());
                }
            }
            let req = BuildRequest {
                board: args.board,
                inputs: args.inputs,
                overlay: args.overlay,
                out: args.out,
                epoch,
                table: args.table,
            };
            let progress = Progress::new(!args.json);
            let opts = build::BuildOptions {
                lock: args.locked.then(|| args.lock.clone()),
            };
            let result = build::build_with(&req, &opts, &progress);
            progress.finish();
            let report = result?;
            for w in &report.warnings {
                eprintln!("pimg: warning: {w}");
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            } else {
                println!(
                    "pimg: built {} into {} (SOURCE_DATE_EPOCH={}, from {})",
                    report.board, report.out_dir, report.source_date_epoch, report.epoch_source
                );
                for o in &report.outputs {
                    println!("{}  {:>11}  {}", o.sha256, o.size, o.name);
                }
            }
            if args.boot {
                let image = PathBuf::from(&report.out_dir).join(format!("{}.img", report.board));
                let code = run_boot(BootArgs {
                    image,
                    board: None,
                    machine: None,
                    timeout: 120,
                    log: None,
                    expect: Vec::new(),
                    kernel: None,
                    dtb: None,
                    initrd: None,
                    interactive: false,
                    json: args.json,
                });
                if code != 0 {
                    std::process::exit(code);
                }
            }
            Ok(())
        }
    }
}

/// `pimg boot`: prints the milestones as they are reached and the verdict; returns the exit code.
fn run_boot(args: BootArgs) -> i32 {
    let req = BootRequest {
        image: args.image,
        board: args.board,
        machine: args.machine,
        timeout: Duration::from_secs(args.timeout),
        log: args.log,
        expect: args.expect,
        kernel: args.kernel,
        dtb: args.dtb,
        initrd: args.initrd,
        interactive: args.interactive,
    };
    let progress = Progress::new(!args.json && !args.interactive);
    let result = boot::boot(&req, &|msg: &str| progress.phase(msg));
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pimg: error: {e}");
            return e.exit_code();
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
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
            0
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
            1
        }
    }
}
