//! Direct vs fast `convolve` on the portrait, side by side.
//!
//! `cargo bench -p convlab --bench convolve` prints megapixels per second and the ratio.
//! The portrait comes from `data/` (run the setup first) and falls back to a random
//! 606×517 picture of the same size when it is missing.

use convlab::conv::{convolve, convolve_fast};
use ndarray::Array3;
use std::time::Instant;

/// A named case: the direct and the fast run of one convolution.
type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>, Box<dyn FnMut() + 'a>);

fn time<F: FnMut()>(mut f: F, min_secs: f64) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed().as_secs_f64() < min_secs || runs < 3 {
        f();
        runs += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(runs)
}

fn main() {
    let path = convlab::data::data_dir().join("grace_hopper.jpg");
    let colour: Array3<f32> = convlab::image::load_colour(&path).unwrap_or_else(|e| {
        eprintln!("({e}; using a random picture of the same size)");
        Array3::from_shape_fn((606, 517, 3), |(i, j, c)| {
            ((i * 31 + j * 17 + c * 7) % 256) as f32
        })
    });
    let grey = convlab::image::grey_from_colour(&colour.view());
    let f2 = convlab::filters::horizontal_edge();
    let f3 = convlab::filters::brown();
    let mpix = (grey.len() as f64) / 1e6;
    println!(
        "convolve on a {}×{} picture (valid, output = input − 3 + 1)",
        grey.nrows(),
        grey.ncols()
    );
    println!(
        "{:<14} {:>12} {:>12} {:>8}",
        "case", "direct MP/s", "fast MP/s", "ratio"
    );
    let cases: [Case; 2] = [
        (
            "grey 3×3",
            Box::new(|| drop(std::hint::black_box(convolve(&grey, &f2).unwrap()))),
            Box::new(|| drop(std::hint::black_box(convolve_fast(&grey, &f2).unwrap()))),
        ),
        (
            "colour 3×3×3",
            Box::new(|| drop(std::hint::black_box(convolve(&colour, &f3).unwrap()))),
            Box::new(|| drop(std::hint::black_box(convolve_fast(&colour, &f3).unwrap()))),
        ),
    ];
    for (name, mut direct, mut fast) in cases {
        let td = time(&mut direct, 1.0);
        let tf = time(&mut fast, 1.0);
        println!(
            "{name:<14} {:>12.1} {:>12.1} {:>7.1}×",
            mpix / td,
            mpix / tf,
            td / tf
        );
    }
}
