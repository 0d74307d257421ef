//! The `dagr` binary: parses configuration and calls into the library crates.
//! See `src/lib.rs` for what each subcommand does.

fn main() -> anyhow::Result<()> {
    // The command line, with `dagr serve`'s configuration file applied (src/config.rs).
    let cli = dagr::config::parse_cli();
    dagr::cli::run(cli)
}
