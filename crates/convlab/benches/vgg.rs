//! VGG-16 forward pass: this crate (tch/libtorch) beside PyTorch running the same network.
//!
//! `cargo bench -p convlab --bench vgg` builds VGG-16 (random weights: the time does not
//! depend on their values) on the current device (CUDA when present), times batches of 1
//! and 16, then runs the same network in Python's torch (the course's environment, same
//! number of threads, same device) and prints both with the ratio. Set `CONVLAB_PYTHON` to
//! choose the Python; without torch there, only our column is printed. `CONVLAB_BENCH_RUNS`
//! sets the number of timed runs (default 5 on the CPU, 20 on CUDA).

use convlab::device::{describe, device};
use convlab::vgg::vgg16;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

const BATCHES: [i64; 2] = [1, 16];

fn sync(dev: Device) {
    if let Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds per forward pass over `runs` runs after one warm-up: (median, fastest, slowest).
fn time_ours(batch: i64, runs: usize) -> (f64, f64, f64) {
    let dev = device();
    let vgg = vgg16(dev).expect("VGG-16 builds");
    let x = Tensor::randn([batch, 3, 224, 224], (Kind::Float, dev));
    drop(vgg.forward(&x).expect("forward"));
    sync(dev);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let y = vgg.forward(&x).expect("forward");
            sync(dev);
            drop(y);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[runs / 2], times[0], times[runs - 1])
}

const PYTHON: &str = r#"
import sys, time, torch
from torch import nn
threads, runs, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
layers, c = [], 3
for filters, convs in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
    for _ in range(convs):
        layers += [nn.Conv2d(c, filters, 3, padding=1), nn.ReLU(inplace=True)]
        c = filters
    layers.append(nn.MaxPool2d(2, 2))
model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(0.5),
                      nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(4096, 1000),
                      nn.Softmax(dim=-1)).to(device).eval()
for batch in sys.argv[4:]:
    x = torch.randn(int(batch), 3, 224, 224, device=device)
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(runs):
            if device == "cuda": torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if device == "cuda": torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    times.sort()
    print(batch, times[runs // 2], times[0], times[-1], flush=True)
"#;

/// PyTorch's (batch, median, fastest, slowest) seconds per forward pass.
fn time_pytorch(threads: i32, runs: usize, dev: Device) -> Option<Vec<(i64, f64, f64, f64)>> {
    let py = convlab::weights::python();
    let devname = if dev.is_cuda() { "cuda" } else { "cpu" };
    let mut cmd = std::process::Command::new(&py);
    cmd.args([
        "-c",
        PYTHON,
        &threads.to_string(),
        &runs.to_string(),
        devname,
    ]);
    cmd.args(BATCHES.iter().map(|b| b.to_string()));
    let out = match cmd.output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "(PyTorch run failed: {})",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) => {
            eprintln!("(no PyTorch to compare with: {py}: {e})");
            return None;
        }
    };
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let batch = it.next()?.parse().ok()?;
                let mut next = || it.next()?.parse::<f64>().ok();
                Some((batch, next()?, next()?, next()?))
            })
            .collect(),
    )
}

fn main() {
    let dev = device();
    let threads = tch::get_num_threads();
    // CONVLAB_BENCH_RUNS overrides how many timed runs give the median.
    let runs = std::env::var("CONVLAB_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(if dev.is_cuda() { 20 } else { 5 });
    println!(
        "VGG-16 forward pass (224×224, softmax, no gradients) on {}",
        describe(dev)
    );
    println!(
        "median of {runs} runs after a warm-up; PyTorch with torch.set_num_threads({threads})"
    );
    let ours: Vec<(i64, (f64, f64, f64))> =
        BATCHES.iter().map(|&b| (b, time_ours(b, runs))).collect();
    let theirs = time_pytorch(threads, runs, dev).unwrap_or_default();
    println!(
        "{:>6} {:>24} {:>24} {:>14} {:>16}",
        "batch", "convlab s (min–max)", "PyTorch s (min–max)", "convlab img/s", "convlab/PyTorch"
    );
    let spread = |(m, lo, hi): (f64, f64, f64)| format!("{m:.3} ({lo:.3}–{hi:.3})");
    let mut json = Vec::new();
    for (b, t) in ours {
        let py = theirs.iter().find(|p| p.0 == b).map(|p| (p.1, p.2, p.3));
        let (py_s, ratio) = match py {
            Some(p) => (spread(p), format!("{:.2}×", t.0 / p.0)),
            None => ("—".into(), "—".into()),
        };
        println!(
            "{b:>6} {:>24} {py_s:>24} {:>14.1} {ratio:>16}",
            spread(t),
            b as f64 / t.0
        );
        let py = py.map_or("null".into(), |p| {
            format!("[{:e}, {:e}, {:e}]", p.0, p.1, p.2)
        });
        json.push(format!(
            "{{\"batch\": {b}, \"convlab\": [{:e}, {:e}, {:e}], \"pytorch\": {py}}}",
            t.0, t.1, t.2
        ));
    }
    // For tools/bench.py (make bench), which writes BENCHMARKS.md.
    println!(
        "BENCH-JSON {{\"threads\": {threads}, \"runs\": {runs}, \"device\": \"{}\", \"rows\": [{}]}}",
        describe(dev).replace('"', "'"),
        json.join(", ")
    );
}
