//! The `dagr` binary: parses configuration and calls into the library crates.
//! See `src/lib.rs` for what each subcommand does.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = dagr::cli::Cli::parse();
    dagr::cli::run(cli)
}
