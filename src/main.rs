//! The `pimg` command line: parses arguments once, runs the library, maps errors to exit codes.

use clap::{Parser, Subcommand};
use pimg::epoch::SourceDateEpoch;
use pimg::media::{self, BuildRequest};
use pimg::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;

const ABOUT: &str = "Build Raspberry Pi install media that are byte-for-byte reproducible.";

const LONG_ABOUT: &str = "\
Build Raspberry Pi install media that are byte-for-byte reproducible.

pimg reads a board profile (boards/<board>.toml, built in), an overlay (overlays/<name>/,
built in) and an inputs folder of Debian packages or plain directories, and writes into the
output folder:

  <board>.img                 MBR (or GPT) disk image with one FAT boot partition
  <board>.tar.gz              the boot tree as an Alpine-style rpi tarball
  <hostname>.apkovl.tar.gz    the overlay in Alpine's apkovl format (also on the partition)
  <board>.initramfs.cpio.gz   the initramfs (also on the partition)
  <board>.buildinfo.json      every input, output, identifier and the epoch
  SHA256SUMS                  checks with `sha256sum -c SHA256SUMS`

The same inputs give the same bytes on any machine, in any time zone, with any umask,
locale or working directory. Every timestamp is SOURCE_DATE_EPOCH, or the newest mtime
inside the input packages when it is not set; the clock is never read.";

const EXAMPLES: &str = "\
Examples:
  qemu/setup.sh                                  fetch the real Debian inputs into inputs/
  pimg build --board rpi3b --inputs inputs --out out
  SOURCE_DATE_EPOCH=1700000000 pimg build --out out
  pimg build --overlay ./my-overlay --out out    use your own overlay directory
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
    /// Output folder; created if missing. Outputs appear only when all are complete.
    #[arg(long, default_value = "out", value_name = "DIR")]
    out: PathBuf,
    /// Seconds since 1970 used for every timestamp; derived from the inputs when unset.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS", allow_hyphen_values = true)]
    source_date_epoch: Option<String>,
    /// Print the result as JSON on stdout (no progress display).
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
        Command::Boards { json } => {
            let mut rows = Vec::new();
            for (name, _) in pimg::board::embedded() {
                let p = pimg::board::load(name)?.profile;
                rows.push(serde_json::json!({
                    "name": p.board.name,
                    "description": p.board.description,
                    "arch": p.board.arch,
                    "image_size": p.image.size.0,
                    "table": format!("{:?}", p.image.table).to_lowercase(),
                    "qemu_machine": p.qemu.machine,
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
                        r["qemu_machine"].as_str().unwrap_or(""),
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
            let req = BuildRequest {
                board: args.board,
                inputs: args.inputs,
                overlay: args.overlay,
                out: args.out,
                epoch,
            };
            let progress = Progress::new(!args.json);
            let result = media::build(&req, &progress);
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
            Ok(())
        }
    }
}
