//! `convlab`: the course's command line — fetch the data and weights, write test fixtures.
//!
//! ```text
//! make fetch-data
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
    /// Fetch VGG-16's ImageNet weights (torchvision's, 528 MB), verify, convert and check them.
    FetchWeights {
        /// Where the weights go (default: $CONVLAB_VGG_WEIGHTS, else data/vgg16.safetensors).
        #[arg(long)]
        dest: Option<std::path::PathBuf>,
        /// Download from this address instead (a mirror of the same file).
        #[arg(long)]
        url: Option<String>,
        /// With --url: the file's full SHA-256 (else torchvision's prefix 397923af is checked).
        #[arg(long)]
        sha256: Option<String>,
        /// With --url: the downloaded file's name (a .pth is converted).
        #[arg(long)]
        file_name: Option<String>,
    },
    /// Convert torchvision's .pth weights into a .safetensors/.ot/.npz file (needs Python torch).
    ConvertWeights {
        src: std::path::PathBuf,
        dest: std::path::PathBuf,
    },
    /// Write VGG-16-shaped RANDOM weights (for tests; marked so the notebook says so).
    MakeTestWeights {
        /// Output file: .safetensors, .ot or .npz.
        path: std::path::PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: i64,
    },
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
        Command::FetchWeights {
            dest,
            url,
            sha256,
            file_name,
        } => {
            use convlab::weights;
            let dest = dest.unwrap_or_else(weights::default_path);
            let mut source = weights::Source::torchvision();
            if let Some(url) = url {
                source.file_name = file_name
                    .or_else(|| url.rsplit('/').next().map(str::to_string))
                    .unwrap_or_else(|| weights::TORCHVISION_FILE.to_string());
                source.url = url;
            }
            if let Some(h) = sha256 {
                source.checksum = convlab::fetch::Checksum::Sha256(h);
            }
            let path = weights::fetch(&source, &dest)?;
            println!("ok  {}", path.display());
        }
        Command::ConvertWeights { src, dest } => {
            convlab::weights::convert_pth(&src, &dest)?;
            println!("{}", convlab::weights::check_loads(&dest)?);
        }
        Command::MakeTestWeights { path, seed } => {
            convlab::weights::write_test_weights(&path, seed)?;
            println!(
                "wrote random VGG-16-shaped test weights to {}",
                path.display()
            );
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
