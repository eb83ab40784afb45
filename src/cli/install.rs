//! `pimg completions SHELL` and `pimg manpages DIR`: shell completions and a man page per
//! subcommand, generated from the same clap definitions as `--help`, so they never drift.
//! `scripts/install.sh` installs both with the binary.

use super::{Cli, Failure, Outcome};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  pimg completions bash > /usr/share/bash-completion/completions/pimg
  pimg completions zsh > /usr/share/zsh/site-functions/_pimg
  pimg completions fish > /usr/share/fish/vendor_completions.d/pimg.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  pimg manpages /usr/local/share/man/man1 && man pimg-build
  pimg manpages out/man && man -l out/man/pimg-verify.1")]
pub struct ManpagesArgs {
    /// The folder to write pimg.1 and pimg-<subcommand>.1 into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Prints the completion script for the shell on stdout.
pub(super) fn completions(args: CompletionsArgs) -> Result<Outcome, Failure> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "pimg", &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| Failure::Write(format!("cannot write the completions: {e}")))?;
    Ok(Outcome::Ok)
}

/// Every man page: `pimg.1`, and `pimg-<name>.1` for each subcommand, as roff text.
fn pages() -> Vec<(String, Vec<u8>)> {
    let cmd = Cli::command();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let render = |c: clap::Command| {
        let mut roff = Vec::new();
        clap_mangen::Man::new(c)
            .source(format!("pimg {version}"))
            .manual("pimg manual")
            .render(&mut roff)
            .expect("rendering into memory cannot fail");
        roff
    };
    let mut pages = vec![("pimg.1".to_string(), render(cmd.clone()))];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("pimg-{}", sub.get_name());
        let page = sub
            .clone()
            .name(&name)
            .bin_name(format!("pimg {}", sub.get_name()));
        pages.push((format!("{name}.1"), render(page)));
    }
    pages
}

/// Writes every man page into the folder and lists them.
pub(super) fn manpages(args: ManpagesArgs) -> Result<Outcome, Failure> {
    let shown = args.dir.display().to_string();
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::Write(format!("cannot create {shown}: {e}")))?;
    for (name, roff) in pages() {
        let path = args.dir.join(&name);
        pimg::publish::write_file(&path, &roff)
            .map_err(|e| Failure::Write(format!("cannot write {}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(Outcome::Ok)
}
