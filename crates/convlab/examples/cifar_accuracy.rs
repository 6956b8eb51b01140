//! `make cifar-accuracy`: trains the seed's CIFAR-10 model (Keras's `cifar10_cnn`, its SGD
//! schedule and augmentation) as notebook 3 does, in quick mode (the first 4 000 training and
//! 1 000 test pictures, 3 epochs) and in full mode (all 50 000 and 10 000, 50 epochs), and
//! prints the test accuracy after every epoch, then a summary.
//!
//! ```text
//! cargo run --example cifar_accuracy -- [quick|full|both] [--epochs N] [--train N] [--test N]
//! ```
//!
//! The data comes from `CONVLAB_CIFAR_DIR`, else `data/cifar-10-batches-bin` (`make
//! fetch-cifar`). Each mode keeps a checkpoint under `data/checkpoints/cifar-accuracy/`
//! (or `CONVLAB_CHECKPOINT_DIR`): stop it at any time, and running it again goes on after the
//! last finished epoch. The Keras example reaches about 75 % test accuracy after 25 epochs
//! and 79 % after 50.

use convlab::augment::ImageDataGenerator;
use convlab::train::{self, cifar_cnn, FitOptions, KerasSgd};
use convlab::{cifar, device};
use std::process::ExitCode;
use tch::nn;

struct Mode {
    name: &'static str,
    train: usize,
    test: usize,
    epochs: usize,
}

fn parse() -> Result<Vec<Mode>, String> {
    let mut which = "both".to_string();
    let (mut epochs, mut n_train, mut n_test) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |what: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a whole number"))
        };
        match a.as_str() {
            "quick" | "full" | "both" => which = a,
            "--epochs" => epochs = Some(number("--epochs")?),
            "--train" => n_train = Some(number("--train")?),
            "--test" => n_test = Some(number("--test")?),
            _ => {
                return Err(format!(
                    "unknown argument {a:?}; usage: cifar_accuracy [quick|full|both] [--epochs N] [--train N] [--test N]"
                ))
            }
        }
    }
    let modes = [
        Mode {
            name: "quick",
            train: 4_000,
            test: 1_000,
            epochs: 3,
        },
        Mode {
            name: "full",
            train: 50_000,
            test: 10_000,
            epochs: 50,
        },
    ];
    Ok(modes
        .into_iter()
        .filter(|m| which == "both" || which == m.name)
        .map(|m| Mode {
            epochs: epochs.unwrap_or(m.epochs),
            train: n_train.unwrap_or(m.train),
            test: n_test.unwrap_or(m.test),
            ..m
        })
        .collect())
}

fn run() -> convlab::Result<()> {
    let modes = parse().map_err(convlab::Error::Value)?;
    let dir = cifar::default_dir();
    let all = cifar::load(&dir)?;
    if let Some(note) = cifar::synthetic_note(&dir) {
        println!("NOTE: {note} The accuracy below says nothing about CIFAR-10.");
    }
    let device = device::device();
    println!(
        "data: {}; training on {}",
        dir.display(),
        device::describe(device)
    );
    let mut summary = Vec::new();
    for mode in &modes {
        let data = all.subset(mode.train, mode.test);
        println!(
            "\n{} mode: {} training and {} test pictures, {} epochs",
            mode.name,
            data.train.len(),
            data.test.len(),
            mode.epochs
        );
        let x_train = cifar::to_unit_float(&data.train.images);
        let x_test = cifar::to_unit_float(&data.test.images);
        let y_train = cifar::one_hot(&data.train.labels, 10);
        let y_test = cifar::one_hot(&data.test.labels, 10);
        let mut datagen = ImageDataGenerator::seed_settings();
        datagen.fit(&x_train)?;
        tch::manual_seed(0);
        let mut vs = nn::VarStore::new(device);
        let model = cifar_cnn(&vs.root());
        let mut opt = KerasSgd::seed_settings(&vs)?;
        let options = FitOptions {
            epochs: mode.epochs,
            checkpoint_dir: Some(train::checkpoint_dir(&format!(
                "cifar-accuracy/{}",
                mode.name
            ))),
            device,
            ..Default::default()
        };
        let history = train::fit(
            &model, &mut vs, &mut opt, &datagen, &x_train, &y_train, &x_test, &y_test, &options,
        )?;
        summary.push((mode.name, history));
    }
    println!(
        "\ntest accuracy per epoch (the Keras example: about 75 % after 25 epochs, 79 % after 50)"
    );
    for (name, history) in &summary {
        let per_epoch: Vec<String> = history
            .epochs
            .iter()
            .map(|e| format!("{:.1}", 100.0 * e.test_accuracy))
            .collect();
        let seconds: f64 = history.epochs.iter().map(|e| e.seconds).sum::<f64>()
            / history.epochs.len().max(1) as f64;
        println!(
            "  {name:<5} {} %  ({seconds:.0} s per epoch)",
            per_epoch.join(" ")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cifar-accuracy: {e}");
            ExitCode::FAILURE
        }
    }
}
