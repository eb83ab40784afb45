//! `pimg boards`: the built-in board profiles, as a table or JSON.

use super::{print_json, Failure, Outcome};
use pimg::profile::board;

#[derive(clap::Args)]
pub struct BoardsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Loads every embedded profile and lists it.
pub(super) fn run(args: BoardsArgs) -> Result<Outcome, Failure> {
    let mut rows = Vec::new();
    for (name, _) in board::embedded() {
        let p = board::load(name).map_err(pimg::Error::from)?.profile;
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
    if args.json {
        print_json(&rows);
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
    Ok(Outcome::Ok)
}
