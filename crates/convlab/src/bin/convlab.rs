//! `convlab`: the course's command line — fetch the data and weights, write test fixtures.
//!
//! ```text
//! cargo run --release -p convlab -- fetch-data
//! ```

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "convlab", about = "Data and weights for the Module 2 Convolutions notebooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the course pictures into data/ (from CONVLAB_DATA_MIRROR when set) and check them.
    FetchData,
    /// Download CIFAR-10 (binary version, 163 MB), check its MD5 and unpack it to
    /// data/cifar-10-batches-bin (resumes a cut-off download).
    FetchCifar {
        /// Download from here instead of the data set's home page.
        #[arg(long, default_value = convlab::cifar::URL)]
        url: String,
        /// The archive's MD5 (the published one unless --url points elsewhere).
        #[arg(long, default_value = convlab::cifar::MD5)]
        md5: String,
        /// Folder to put the archive and cifar-10-batches-bin in (default: data/).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Write small synthetic CIFAR-10 batches in the official binary format into DIR (tests).
    MakeTestCifar {
        /// Folder to write data_batch_1..5.bin, test_batch.bin and batches.meta.txt to.
        dir: std::path::PathBuf,
        /// Records per batch file.
        #[arg(long, default_value_t = 200)]
        per_batch: usize,
        /// Seed of the synthetic pictures.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn run(cli: Cli) -> convlab::Result<()> {
    match cli.command {
        Command::FetchData => {
            for path in convlab::data::ensure_all()? {
                println!("ok  {}", path.display());
            }
        }
        Command::FetchCifar { url, md5, dir } => {
            let parent = dir.unwrap_or_else(convlab::data::data_dir);
            let sum = convlab::fetch::Checksum::Md5(md5);
            let folder = convlab::cifar::fetch(&url, &sum, &parent)?;
            let (train, test) = convlab::cifar::check_dir(&folder)?;
            println!(
                "ok  {} ({train} training and {test} test pictures)",
                folder.display()
            );
        }
        Command::MakeTestCifar {
            dir,
            per_batch,
            seed,
        } => {
            for path in convlab::cifar::write_test_set(&dir, per_batch, seed)? {
                println!("wrote {}", path.display());
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
