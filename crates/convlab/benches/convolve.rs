//! The convolutions of this crate on the portrait and on a 4096×4096 picture, grey and
//! colour, with the machine's memory bandwidth as the floor of the large picture.
//!
//! `cargo bench --profile dev -p convlab --bench convolve` prints one line per case: median
//! megapixels per second over several samples, with the slowest and fastest sample.
//! `-- --json FILE` also writes the figures for `tools/bench.py` (`make bench`), which puts
//! them beside the Python stack's in BENCHMARKS.md; `-- --quick` takes fewer and shorter samples, `-- --fast-only` leaves out the direct method,
//! `-- --only portrait/grey` (or `4096`, `colour`, `copy`, …) measures one picture or kind.
//!
//! Cases: the seed's direct [`convolve`]; [`convolve_fast`] (one thread); and
//! [`convolve_fast_threads`] with `threads = 0` (every core, but one
//! thread for a small convolution); `into`: [`convolve_fast_into`] (one thread) into an output
//! already in memory. Grey is the 3×3 horizontal-edge filter of the quiz,
//! colour the 3×3×3 brown filter; `grey-dense` (fast path only) the
//! 3×3 outline filter, which has no zero weight to skip. The floor: copying the picture into a buffer that is
//! already in memory reads and writes each byte once, as a convolution must at least read its
//! input and write its output; `copy` measures that rate (bytes read + written per second),
//! and the convolution's floor is its own bytes read + written at that rate. `in-cache`:
//! [`convolve_fast_into`] (one thread) on a band of the picture's first rows (1 MB of
//! colour), again and again, so that the band and its output stay in the processor's
//! second-level cache: the convolution's own speed with the memory out of the picture
//! (colour and `grey-dense`, on the same rows).
//!
//! The portrait comes from `data/` (run the setup first) and falls back to a random 606×517
//! picture of the same size when it is missing.

use convlab::conv::{convolve, convolve_fast, convolve_fast_into, convolve_fast_threads};
use ndarray::{Array2, Array3, ArrayD, Axis, Slice};
use std::hint::black_box;
use std::time::Instant;

/// The size of the `in-cache` band in colour: with its output, well within a second-level
/// cache of 2 MB (21 rows of the 4096-pixel picture, 169 of the portrait).
const BAND_BYTES: usize = 1 << 20;

/// Median, fastest and slowest seconds per call over the samples.
struct Timing {
    median: f64,
    min: f64,
    max: f64,
    samples: usize,
}

/// `samples` samples of `f`, each as many calls as fill `sample_secs` (at least one), after a
/// warm-up call; with `sample_secs = 0`, one call per sample and no warm-up.
fn time<F: FnMut()>(mut f: F, samples: usize, sample_secs: f64) -> Timing {
    // One call per sample (slow cases) needs no warm-up: each sample is seconds long.
    let calls = if sample_secs > 0.0 {
        let t = Instant::now();
        f();
        ((sample_secs / t.elapsed().as_secs_f64().max(1e-9)) as usize).max(1)
    } else {
        1
    };
    let mut per_call: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    Timing {
        median: per_call[samples / 2],
        min: per_call[0],
        max: per_call[samples - 1],
        samples,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One measured case, printed and kept for the JSON file.
struct Row {
    picture: &'static str,
    kind: &'static str,
    method: &'static str,
    threads: usize,
    pixels: usize,
    timing: Timing,
    load: String,
}

impl Row {
    fn json(&self) -> String {
        format!(
            "{{\"picture\": \"{}\", \"kind\": \"{}\", \"method\": \"{}\", \"threads\": {}, \"pixels\": {}, \
             \"median_s\": {:e}, \"min_s\": {:e}, \"max_s\": {:e}, \"samples\": {}, \"load\": \"{}\"}}",
            self.picture,
            self.kind,
            self.method,
            self.threads,
            self.pixels,
            self.timing.median,
            self.timing.min,
            self.timing.max,
            self.timing.samples,
            self.load
        )
    }
}

fn random_picture(h: usize, w: usize, c: usize) -> Array3<f32> {
    // A cheap pseudo-random fill (the speed does not depend on the values).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    Array3::from_shape_simple_fn((h, w, c), || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 256) as f32
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let fast_only = args.iter().any(|a| a == "--fast-only");
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned());
    // `--only portrait/grey`: one picture and kind (for a profiler), or `--only 4096`.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let wanted = |picture: &str, kind: &str| {
        only.as_deref()
            .is_none_or(|o| o == picture || o == kind || o == format!("{picture}/{kind}").as_str())
    };
    let (samples, secs) = if quick { (3, 0.05) } else { (7, 0.25) };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let path = convlab::data::data_dir().join("grace_hopper.jpg");
    let portrait: Array3<f32> = convlab::image::load_colour(&path).unwrap_or_else(|e| {
        eprintln!("({e}; using a random picture of the same size)");
        random_picture(606, 517, 3)
    });
    let large = random_picture(4096, 4096, 3);
    let grey_filter = convlab::filters::horizontal_edge().into_dyn();
    let colour_filter = convlab::filters::brown().into_dyn();
    // The grey filter has 3 zero weights, which the fast path skips: a dense grey filter
    // (outline) to compare colour with, channel for channel.
    let dense_filter = convlab::filters::outline().into_dyn();

    println!(
        "convolve, valid (output = input − filter + 1); {cores} cores; load average at start {}",
        load_average()
    );
    println!(
        "{:<9} {:<7} {:<17} {:>7} {:>10} {:>21}  load",
        "picture", "kind", "method", "threads", "MP/s", "ms (min–max)"
    );
    let mut rows: Vec<Row> = Vec::new();
    for (picture, colour) in [("portrait", &portrait), ("4096", &large)] {
        let grey: Array2<f32> = convlab::image::grey_from_colour(&colour.view());
        let pixels = grey.len();
        let grey = grey.into_dyn();
        let colour = colour.view().into_dyn().to_owned();
        let cases: [(&str, &ArrayD<f32>, &ArrayD<f32>); 3] = [
            ("grey", &grey, &grey_filter),
            ("colour", &colour, &colour_filter),
            ("grey-dense", &grey, &dense_filter),
        ];
        for (kind, image, filter) in cases {
            if !wanted(picture, kind) {
                continue;
            }
            // The direct method takes seconds on the large picture: fewer, single-call samples.
            let direct = if fast_only || kind == "grey-dense" {
                time(|| (), 1, 0.0)
            } else if picture == "4096" {
                time(
                    || drop(black_box(convolve(image, filter).unwrap())),
                    if quick { 1 } else { 3 },
                    0.0,
                )
            } else {
                time(
                    || drop(black_box(convolve(image, filter).unwrap())),
                    samples.min(5),
                    secs,
                )
            };
            // `convolve_fast_into` writes into an output already in memory, as `copy` does.
            let mut reused = convolve_fast(image, filter).unwrap();
            // The first rows only, small enough to stay in the second-level cache.
            let band_rows = BAND_BYTES / (colour.len_of(Axis(1)) * 3 * 4);
            let band = image
                .slice_axis(Axis(0), Slice::from(..band_rows))
                .to_owned();
            let mut band_out = convolve_fast(&band, filter).unwrap();
            let in_cache = time(
                || convolve_fast_into(&band, filter, black_box(&mut band_out), 1).unwrap(),
                samples,
                secs,
            );
            let measured = [
                ("direct", 1, direct),
                (
                    "fast",
                    1,
                    time(
                        || drop(black_box(convolve_fast(image, filter).unwrap())),
                        samples,
                        secs,
                    ),
                ),
                (
                    "fast",
                    cores,
                    time(
                        || drop(black_box(convolve_fast_threads(image, filter, 0).unwrap())),
                        samples,
                        secs,
                    ),
                ),
                (
                    "into",
                    1,
                    time(
                        || convolve_fast_into(image, filter, black_box(&mut reused), 1).unwrap(),
                        samples,
                        secs,
                    ),
                ),
            ];
            for (method, threads, timing) in measured {
                if (fast_only || kind == "grey-dense") && method == "direct" {
                    continue;
                }
                rows.push(Row {
                    picture,
                    kind,
                    method,
                    threads,
                    pixels,
                    timing,
                    load: load_average(),
                });
                print_row(rows.last().unwrap());
            }
            if kind != "grey" {
                rows.push(Row {
                    picture,
                    kind,
                    method: "in-cache",
                    threads: 1,
                    pixels: band.len_of(Axis(0)) * band.len_of(Axis(1)),
                    timing: in_cache,
                    load: load_average(),
                });
                print_row(rows.last().unwrap());
            }
        }
        if picture == "4096" && wanted(picture, "copy") {
            // The floor: a copy of the grey and of the colour picture into memory already touched.
            for (kind, samples_per_pixel) in [("grey", 1), ("colour", 3)] {
                let source = vec![1.0f32; pixels * samples_per_pixel];
                let mut target = vec![0.0f32; source.len()];
                let timing = time(|| target.copy_from_slice(black_box(&source)), samples, secs);
                rows.push(Row {
                    picture,
                    kind,
                    method: "copy",
                    threads: 1,
                    pixels,
                    timing,
                    load: load_average(),
                });
                print_row(rows.last().unwrap());
            }
        }
    }
    if let Some(path) = json {
        // The filters too, so that the Python peers (tools/bench.py) use the same weights.
        let list = |f: &ArrayD<f32>| format!("{:?}", f.iter().collect::<Vec<_>>());
        let body: Vec<String> = rows.iter().map(|r| format!("  {}", r.json())).collect();
        let filters = format!(
            "{{\"grey\": {{\"shape\": {:?}, \"values\": {}}}, \"colour\": {{\"shape\": {:?}, \"values\": {}}}}}",
            grey_filter.shape(),
            list(&grey_filter),
            colour_filter.shape(),
            list(&colour_filter)
        );
        let text = format!(
            "{{\"filters\": {filters},\n\"rows\": [\n{}\n]}}\n",
            body.join(",\n")
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        println!("wrote {path}");
    }
}

fn print_row(r: &Row) {
    let t = &r.timing;
    println!(
        "{:<9} {:<7} {:<17} {:>7} {:>10.1} {:>21}  {}",
        r.picture,
        r.kind,
        r.method,
        r.threads,
        r.pixels as f64 / t.median / 1e6,
        format!(
            "{:.3} ({:.3}–{:.3})",
            t.median * 1e3,
            t.min * 1e3,
            t.max * 1e3
        ),
        r.load
    );
}
