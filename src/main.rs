//! The `pimg` binary: parses the command line once and exits with the status `cli` decides.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Returning the status instead of calling exit lets everything still alive run its Drop.
    match cli::Cli::try_parse() {
        Ok(args) => cli::run(args),
        Err(e) => cli::parse_failed(e),
    }
}
