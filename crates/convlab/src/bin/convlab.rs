//! `convlab`: the course's command line — fetch the data and weights, write test fixtures.
//!
//! ```text
//! cargo run --release -p convlab -- fetch-data
//! ```

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "convlab",
    about = "Data and weights for the Module 2 Convolutions notebooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the course pictures into data/ (from CONVLAB_DATA_MIRROR when set) and check them.
    FetchData,
}

fn run(cli: Cli) -> convlab::Result<()> {
    match cli.command {
        Command::FetchData => {
            for path in convlab::data::ensure_all()? {
                println!("ok  {}", path.display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
