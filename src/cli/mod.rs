//! The command line: the top-level parser and its help texts, one module per subcommand, and
//! the one place where the way a subcommand ended becomes the process's exit status.

mod boards;
mod boot;
mod build;
mod check;
mod diff;
mod inspect;
mod install;
mod lock;
mod verify;

use clap::{Parser, Subcommand};
use pimg::prove::boot::BootError;
use pimg::prove::check::CheckError;
use pimg::prove::diff::DiffError;
use pimg::prove::inspect::InspectError;
use pimg::prove::verify::VerifyError;
use std::process::ExitCode;

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
  <board>.intoto.json         provenance: in-toto Statement v1 with SLSA Provenance v1
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

/// Shown after `pimg --help` and `pimg build --help`: most uses start with a build.
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
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The variants' doc comments are the one-line abouts of `pimg --help`; their order is its order.
#[derive(Subcommand)]
enum Command {
    /// Build the disk image, rpi tarball, apkovl, initramfs, SHA256SUMS and buildinfo for a board.
    Build(build::BuildArgs),
    /// List the built-in board profiles.
    Boards(boards::BoardsArgs),
    /// Boot an image under QEMU and check every milestone and the in-guest self-check.
    Boot(boot::BootArgs),
    /// Show what an image or archive holds: partition table, FAT parameters, files, archive entries.
    Inspect(inspect::InspectArgs),
    /// Show the structural difference between two images or archives (exit 1 if they differ).
    Diff(diff::DiffArgs),
    /// Check outputs against SHA256SUMS and the buildinfo, or rebuild and compare.
    Verify(verify::VerifyArgs),
    /// Check what the Raspberry Pi firmware reads first: config.txt, its files, cmdline.txt.
    Check(check::CheckArgs),
    /// Pin the inputs, board profile and overlay of a build in a lock file (pimg.lock).
    Lock(lock::LockArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or PowerShell.
    Completions(install::CompletionsArgs),
    /// Write a man page for pimg and for each subcommand into a folder.
    Manpages(install::ManpagesArgs),
}

/// How a subcommand that ran to the end came out; its report is already printed.
enum Outcome {
    /// Everything asked for was done and nothing was found wrong.
    Ok,
    /// `pimg check`: the firmware would not find something (the problems are listed).
    CheckProblems,
    /// `pimg diff`: the two files differ.
    Differ,
    /// `pimg verify`: a file does not match.
    Mismatch,
    /// `pimg inspect`: the file was read, with damage (listed under problems).
    Damaged,
    /// `pimg boot` or `build --boot`: a milestone was missed or the self-check did not match.
    BootFailed,
}

impl Outcome {
    /// `Ok` for a report that found nothing wrong, else `otherwise`.
    fn clean_or(clean: bool, otherwise: Outcome) -> Outcome {
        if clean {
            Outcome::Ok
        } else {
            otherwise
        }
    }
}

/// What a build or a lock is made from: the board profile, the inputs and the overlay.
#[derive(clap::Args)]
struct Sources {
    /// Board name (see `pimg boards`) or the path of a board profile .toml file.
    #[arg(long, default_value = "rpi3b", value_name = "BOARD|FILE")]
    board: String,
    /// Folder holding the input packages (.deb, .apk), tarballs and/or directories.
    #[arg(long, default_value = "inputs", value_name = "DIR")]
    inputs: std::path::PathBuf,
    /// Overlay name (built in) or directory; the board's default overlay when omitted.
    #[arg(long, value_name = "NAME|DIR")]
    overlay: Option<String>,
    /// Folder of the public keys .apk inputs must be signed by, laid out as Alpine's
    /// /etc/apk/keys (<name>.rsa.pub, PEM). Each .apk's .SIGN.RSA.<name>.rsa.pub (or
    /// .SIGN.RSA256.) signature over its control segment must verify with the key of that
    /// name; the buildinfo and the lock record which key did. As apk does, a profile with .apk
    /// inputs refuses to build or lock without this folder or --allow-untrusted.
    #[arg(long, value_name = "DIR")]
    apk_keys: Option<std::path::PathBuf>,
    /// Take .apk inputs no key in --apk-keys verifies (unsigned, or signed by a key not
    /// there), as apk --allow-untrusted does, recorded as "unverified". A signature that a
    /// known key rejects still fails.
    #[arg(long)]
    allow_untrusted: bool,
}

impl Sources {
    fn request(self) -> pimg::build::Sources {
        pimg::build::Sources {
            board: self.board,
            inputs: self.inputs,
            overlay: self.overlay,
            apk_keys: self.apk_keys,
            allow_untrusted: self.allow_untrusted,
        }
    }
}

/// Why a subcommand stopped before it could report; printed as `pimg: error: …`.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A build, lock or board profile error.
    #[error(transparent)]
    Build(#[from] pimg::Error),
    #[error(transparent)]
    Boot(#[from] BootError),
    /// `build --boot` for a board `pimg boot` refuses, found before building.
    #[error("--boot: {0}")]
    BootOption(BootError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Arguments clap accepts one by one but the subcommand cannot use together.
    #[error("{0}")]
    Usage(&'static str),
    /// A file an argument names that cannot be used (says which flag and file).
    #[error("{0}")]
    Argument(String),
    /// An output that could not be written (says which).
    #[error("{0}")]
    Write(String),
}

/// Runs the subcommand, prints why it stopped if it did, and returns the exit status.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Build(args) => build::run(args),
        Command::Boards(args) => boards::run(args),
        Command::Boot(args) => boot::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Check(args) => check::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Completions(args) => install::completions(args),
        Command::Manpages(args) => install::manpages(args),
    };
    if let Err(e) = &result {
        eprintln!("pimg: error: {e}");
    }
    exit_status(&result)
}

/// Prints clap's help, version or usage error and returns clap's status for it (0 for help
/// and version, 2 for bad arguments).
pub fn parse_failed(e: clap::Error) -> ExitCode {
    // A closed stdout or stderr leaves nothing to report it on.
    let _ = e.print();
    library_status(e.exit_code())
}

/// Every exit status pimg returns after parsing, as the "Exit status" lines of the help texts
/// promise them.
fn exit_status(result: &Result<Outcome, Failure>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(
            Outcome::CheckProblems
            | Outcome::Differ
            | Outcome::Mismatch
            | Outcome::Damaged
            | Outcome::BootFailed,
        ) => ExitCode::from(1),
        // 2 for what the user must fix, 1 for failures to write.
        Err(Failure::Build(e)) => library_status(e.exit_code()),
        Err(Failure::Write(_)) => ExitCode::from(1),
        // 2 before QEMU started, 130 for Ctrl-C.
        Err(Failure::Boot(e) | Failure::BootOption(e)) => library_status(e.exit_code()),
        // The image, the files or the arguments cannot be used.
        Err(
            Failure::Check(_)
            | Failure::Inspect(_)
            | Failure::Diff(_)
            | Failure::Verify(_)
            | Failure::Usage(_)
            | Failure::Argument(_),
        ) => ExitCode::from(2),
    }
}

/// An exit code the library or clap chose; they choose only 0, 1, 2 and 130, so a value
/// outside a process status would be their bug, still reported as a failure.
fn library_status(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Prints a report as pretty JSON on stdout, the `--json` form of every subcommand.
/// Prints a report as JSON or as its text.
fn print_report(json: bool, report: &impl serde::Serialize, text: impl FnOnce() -> String) {
    if json {
        print_json(report);
    } else {
        print!("{}", text());
    }
}

fn print_json(report: &impl serde::Serialize) {
    // The reports hold only strings, numbers, lists and string-keyed maps.
    println!(
        "{}",
        serde_json::to_string_pretty(report).expect("reports serialize to JSON")
    );
}
