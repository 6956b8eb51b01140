//! Training speed of the seed's CIFAR-10 model: tch (this crate) against PyTorch, and the
//! augmentation pipeline against the training step.
//!
//! `cargo bench -p convlab --bench cifar` prints two tables:
//!
//! 1. pictures per second of one training step (forward, loss, backward, SGD update) on the
//!    CPU, batch 32, the same number of threads, for `convlab::train` (KerasSgd) and for the
//!    same model written in PyTorch (`torch.optim.SGD`, Nesterov), run by the venv's Python
//!    (`CONVLAB_PYTHON`, else `python` on the PATH). Target: ratio ≥ 1.0×.
//! 2. pictures per second of `ImageDataGenerator::batch` (shift, flip, standardise) against
//!    the training step. Target: ≥ 5× (augmentation must never be the bottleneck).
//!
//! Each figure is the median of 3 rounds (the two training sides alternate), with the
//! slowest and fastest round. `CONVLAB_BENCH_THREADS` sets the thread count (default:
//! libtorch's default); `CONVLAB_BENCH_SECONDS` the measuring time of each round (default 8).

use convlab::augment::ImageDataGenerator;
use convlab::cifar::{one_hot, Rng};
use convlab::train::{cifar_cnn, cross_entropy, labels_tensor, to_tensor, KerasSgd};
use ndarray::Array4;
use std::process::Command;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

const BATCH: usize = 32;

const PYTORCH: &str = r#"
import sys, time, torch
from torch import nn
threads, batch, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
    nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
    nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
    nn.Flatten(), nn.Linear(64 * 6 * 6, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
loss_fn = nn.CrossEntropyLoss()
x = torch.randn(batch, 3, 32, 32)
y = torch.randint(0, 10, (batch,))
def step():
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()
for _ in range(5):
    step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds or n < 10:
    step()
    n += 1
dt = time.perf_counter() - t0
print(f"IMAGES_PER_SEC {n * batch / dt:.3f} THREADS {torch.get_num_threads()} TORCH {torch.__version__}")
"#;

fn rust_step_rate(seconds: f64) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = cifar_cnn(&vs.root());
    let mut opt = KerasSgd::seed_settings(&vs).expect("optimiser");
    let x = Tensor::randn([BATCH as i64, 3, 32, 32], (Kind::Float, Device::Cpu));
    let labels: Vec<u8> = (0..BATCH).map(|i| (i % 10) as u8).collect();
    let y = labels_tensor(&one_hot(&labels, 10), Device::Cpu);
    let mut step = || {
        let loss = cross_entropy(&nn::ModuleT::forward_t(&model, &x, true), &y);
        opt.backward_step(&loss);
        loss.double_value(&[])
    };
    for _ in 0..5 {
        step();
    }
    let (mut n, t0) = (0usize, Instant::now());
    while t0.elapsed().as_secs_f64() < seconds || n < 10 {
        step();
        n += 1;
    }
    (n * BATCH) as f64 / t0.elapsed().as_secs_f64()
}

fn pytorch_step_rate(threads: i32, seconds: f64) -> Result<(f64, String), String> {
    let python = std::env::var("CONVLAB_PYTHON").unwrap_or_else(|_| "python".into());
    let out = Command::new(&python)
        .args([
            "-c",
            PYTORCH,
            &threads.to_string(),
            &BATCH.to_string(),
            &seconds.to_string(),
        ])
        .output()
        .map_err(|e| {
            format!("cannot run {python}: {e} (source scripts/env.sh or set CONVLAB_PYTHON)")
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("IMAGES_PER_SEC"))
        .ok_or_else(|| {
            format!(
                "PyTorch run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let rate = words[1].parse::<f64>().map_err(|e| e.to_string())?;
    Ok((
        rate,
        format!("torch {} with {} threads", words[5], words[3]),
    ))
}

/// Augmented, standardised pictures per second (shift, flip, standardise into a new batch).
fn augment_rate(seconds: f64) -> f64 {
    let mut rng = Rng::new(1);
    let x = Array4::from_shape_fn((2048, 3, 32, 32), |_| rng.unit() as f32);
    let mut datagen = ImageDataGenerator::seed_settings();
    datagen.fit(&x).expect("fit");
    let order: Vec<usize> = (0..2048).collect();
    let (mut n, t0) = (0usize, Instant::now());
    while t0.elapsed().as_secs_f64() < seconds || n < 100 {
        let start = (n * BATCH) % 2048;
        let batch = datagen
            .batch(&x, &order[start..start + BATCH], &mut rng)
            .expect("batch");
        // What the training loop does next with it: a tensor.
        drop(std::hint::black_box(to_tensor(&batch, Device::Cpu)));
        n += 1;
    }
    (n * BATCH) as f64 / t0.elapsed().as_secs_f64()
}

/// (median, fastest, slowest) of some rates.
fn spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn show((median, lo, hi): (f64, f64, f64)) -> String {
    format!("{median:.1} ({lo:.1}–{hi:.1})")
}

fn main() {
    if let Ok(t) = std::env::var("CONVLAB_BENCH_THREADS") {
        tch::set_num_threads(t.parse().expect("CONVLAB_BENCH_THREADS is a number"));
    }
    let threads = tch::get_num_threads();
    let seconds: f64 = std::env::var("CONVLAB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8.0);
    const ROUNDS: usize = 3;
    println!("seed CIFAR-10 model, one training step, CPU, batch {BATCH}, {threads} threads");
    println!("({ROUNDS} alternating rounds of {seconds} s each side, so that a busy machine favours neither; median (min–max))");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut about = String::new();
    let mut failure = None;
    for _ in 0..ROUNDS {
        ours.push(rust_step_rate(seconds));
        match pytorch_step_rate(threads, seconds) {
            Ok((rate, a)) => {
                theirs.push(rate);
                about = a;
            }
            Err(e) => failure = Some(e),
        }
    }
    let ours = spread(ours);
    println!("{:<34} {:>24}", "implementation", "images/s");
    println!("{:<34} {:>24}", "convlab (tch, KerasSgd)", show(ours));
    let theirs = match failure {
        None => {
            let theirs = spread(theirs);
            println!("{:<34} {:>24}", format!("PyTorch ({about})"), show(theirs));
            println!(
                "{:<34} {:>23.2}×  (target ≥ 1.0×)",
                "ratio convlab / PyTorch",
                ours.0 / theirs.0
            );
            format!("[{:e}, {:e}, {:e}]", theirs.0, theirs.1, theirs.2)
        }
        Some(e) => {
            println!("PyTorch comparison skipped: {e}");
            "null".into()
        }
    };
    println!();
    let aug = spread(
        (0..ROUNDS)
            .map(|_| augment_rate(seconds.min(4.0) / 2.0))
            .collect(),
    );
    println!("augmentation (shift 0.1, flip, standardise), one thread, batch {BATCH}");
    println!("{:<34} {:>24}", "stage", "images/s");
    println!("{:<34} {:>24}", "augmentation", show(aug));
    println!("{:<34} {:>24}", "training step", show(ours));
    println!(
        "{:<34} {:>23.1}×  (target ≥ 5×)",
        "ratio augmentation / training",
        aug.0 / ours.0
    );
    // For tools/bench.py (make bench), which writes BENCHMARKS.md.
    println!(
        "BENCH-JSON {{\"threads\": {threads}, \"batch\": {BATCH}, \"seconds\": {seconds}, \"about\": \"{about}\", \"convlab\": [{:e}, {:e}, {:e}], \"pytorch\": {theirs}, \"augmentation\": [{:e}, {:e}, {:e}]}}",
        ours.0, ours.1, ours.2, aug.0, aug.1, aug.2
    );
}
