//! Convolutions: worked examples, fast == direct, and errors that name the shapes.
//!
//! With the feature `bench` only (it tests the benchmark-only convolutions). A `[[test]]` entry
//! with `required-features` would do the same, but cargo refuses a manifest whose named test
//! file is missing, and the student release and the course image leave tests/ out.
#![cfg(feature = "bench")]

use convlab::conv::{convolve, convolve_fast, convolve_fast_threads, multiply_sum};
use ndarray::{array, Array2, Array3, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};

#[test]
fn worked_example_by_hand() {
    // 4×4 image, 3×3 horizontal-edge filter: rows 0-1 bright, rows 2-3 dark.
    let image = array![
        [10.0f32, 10.0, 10.0, 10.0],
        [10.0, 10.0, 10.0, 10.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0]
    ];
    let f = convlab::filters::horizontal_edge();
    // Top-left patch: rows 0..3 → 3·10 − 3·0 = 30; the patch below: rows 1..4 → 30 − 0 = 30.
    let want = array![[30.0f32, 30.0], [30.0, 30.0]];
    assert_eq!(convolve(&image, &f).unwrap(), want);
    assert_eq!(convolve_fast(&image, &f).unwrap(), want);
    // Vertical edge filter on the same image sees nothing.
    let v = convolve(&image, &convlab::filters::vertical_edge()).unwrap();
    assert!(v.iter().all(|&x| x == 0.0), "{v:?}");
}

#[test]
fn colour_worked_example() {
    // Each channel constant: R = 1, G = 2, B = 3; filter weighs channels 1, 10, 100.
    let image = Array3::from_shape_fn((4, 5, 3), |(_, _, c)| (c + 1) as f32);
    let filter = Array3::from_shape_fn((2, 2, 3), |(_, _, c)| 10f32.powi(c as i32));
    let out = convolve(&image, &filter).unwrap();
    assert_eq!(out.dim(), (3, 4));
    // 4 pixels × (1·1 + 2·10 + 3·100) = 4 × 321
    assert!(out.iter().all(|&v| v == 1284.0), "{out:?}");
    assert_eq!(convolve_fast(&image, &filter).unwrap(), out);
}

#[test]
fn multiply_sum_checks_shapes() {
    let a = array![[1.0f32, 2.0], [3.0, 4.0]];
    assert_eq!(multiply_sum(&a, &a).unwrap(), 30.0);
    let b = Array2::<f32>::zeros((2, 3));
    let err = multiply_sum(&a, &b).unwrap_err().to_string();
    assert!(err.contains("2×2") && err.contains("2×3"), "{err}");
}

fn rel_err(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    let num = (a - b).iter().map(|d| d * d).sum::<f32>().sqrt();
    let den = a.iter().map(|d| d * d).sum::<f32>().sqrt().max(1e-12);
    num / den
}

#[test]
fn fast_equals_direct_on_random_shapes() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..25 {
        let (h, w) = (rng.random_range(1..40), rng.random_range(1..40));
        let (kh, kw) = (
            rng.random_range(1..=h.min(7)),
            rng.random_range(1..=w.min(7)),
        );
        let img = Array2::from_shape_fn((h, w), |_| rng.random_range(-255.0f32..255.0));
        let f = Array2::from_shape_fn((kh, kw), |_| rng.random_range(-1.0f32..1.0));
        let (d, q) = (
            convolve(&img, &f).unwrap(),
            convolve_fast(&img, &f).unwrap(),
        );
        assert_eq!(d.dim(), (h - kh + 1, w - kw + 1));
        assert!(
            rel_err(&d, &q) <= 1e-5,
            "grey {h}×{w} / {kh}×{kw}: {}",
            rel_err(&d, &q)
        );

        let c = rng.random_range(1..5);
        let img = Array3::from_shape_fn((h, w, c), |_| rng.random_range(0.0f32..255.0));
        let f = Array3::from_shape_fn((kh, kw, c), |_| rng.random_range(-1.0f32..1.0));
        let (d, q) = (
            convolve(&img, &f).unwrap(),
            convolve_fast(&img, &f).unwrap(),
        );
        assert!(
            rel_err(&d, &q) <= 1e-5,
            "colour {h}×{w}×{c} / {kh}×{kw}: {}",
            rel_err(&d, &q)
        );
    }
}

#[test]
fn fast_equals_direct_on_views_that_are_not_in_standard_layout() {
    let mut rng = StdRng::seed_from_u64(7);
    let img = Array2::from_shape_fn((23, 31), |_| rng.random_range(-255.0f32..255.0));
    let f = Array2::from_shape_fn((3, 4), |_| rng.random_range(-1.0f32..1.0));
    let t = img.t(); // 31×23, column-major
    assert!(rel_err(&convolve(&t, &f).unwrap(), &convolve_fast(&t, &f).unwrap()) <= 1e-5);
    let colour = Array3::from_shape_fn((3, 23, 31), |_| rng.random_range(0.0f32..255.0));
    let hwc = colour.view().permuted_axes([1, 2, 0]); // channel-first data seen as H×W×C
    let f3 = Array3::from_shape_fn((3, 3, 3), |_| rng.random_range(-1.0f32..1.0));
    let (d, q) = (
        convolve(&hwc, &f3).unwrap(),
        convolve_fast(&hwc, &f3).unwrap(),
    );
    assert_eq!(d.dim(), (21, 29));
    assert!(rel_err(&d, &q) <= 1e-5, "{}", rel_err(&d, &q));
}

#[test]
fn filter_larger_than_image_names_both_shapes() {
    let img = Array2::<f32>::zeros((2, 5));
    for result in [
        convolve(&img, &convlab::filters::outline()),
        convolve_fast(&img, &convlab::filters::outline()),
    ] {
        let e = result.unwrap_err().to_string();
        assert!(
            e.contains("3×3") && e.contains("2×5") && e.contains("larger"),
            "{e}"
        );
    }
}

#[test]
fn channel_mismatch_is_an_error() {
    let img = Array3::<f32>::zeros((10, 10, 3));
    let f = Array3::<f32>::zeros((3, 3, 4));
    let e = convolve_fast(&img, &f).unwrap_err().to_string();
    assert!(
        e.contains("3 colour channels") && e.contains("has 4"),
        "{e}"
    );
}

#[test]
fn empty_and_nan_inputs_are_errors() {
    let empty = Array2::<f32>::zeros((0, 4));
    let e = convolve(&empty, &Array2::<f32>::zeros((1, 1)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty") && e.contains("0×4"), "{e}");

    let mut img = Array2::<f32>::zeros((5, 5));
    img[[2, 3]] = f32::NAN;
    let e = convolve_fast(&img, &Array2::<f32>::ones((3, 3)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("NaN") && e.contains("[2, 3]"), "{e}");
}

#[test]
fn four_dimensional_input_is_refused() {
    let a = ndarray::Array4::<f32>::zeros((2, 2, 2, 2));
    let e = convolve(&a, &a).unwrap_err().to_string();
    assert!(e.contains("4 dimensions"), "{e}");
}

#[test]
fn column_major_and_strided_inputs_work() {
    // A transposed array is column-major; a stepped slice is strided.
    let img = Array2::from_shape_fn((9, 7), |(r, c)| (r * 7 + c) as f32);
    let t = img.t().to_owned();
    let f = convlab::filters::vertical_edge();
    assert_eq!(convolve_fast(&t, &f).unwrap(), convolve(&t, &f).unwrap());
    let stepped = img.slice(ndarray::s![..;2, ..]);
    assert_eq!(
        convolve_fast(&stepped, &f).unwrap(),
        convolve(&stepped, &f).unwrap()
    );
}

/// libtorch's conv2d of one (height, width, channels) image with one filter of the same
/// layout: an independent reference (it is a cross-correlation too, without a flip).
#[cfg(feature = "torch")]
fn libtorch_conv2d(img: &Array3<f32>, f: &Array3<f32>) -> Array2<f32> {
    use tch::{Kind, Tensor};
    let to_nchw = |a: &Array3<f32>| {
        let (h, w, c) = a.dim();
        let flat: Vec<f32> = a.iter().copied().collect();
        Tensor::from_slice(&flat)
            .reshape([h as i64, w as i64, c as i64])
            .permute([2, 0, 1])
            .unsqueeze(0)
    };
    let out = to_nchw(img)
        .conv2d(&to_nchw(f), None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
        .squeeze_dims([0, 1]);
    let dims: Vec<usize> = out.size().iter().map(|&d| d as usize).collect();
    let vals = Vec::<f32>::try_from(out.to_kind(Kind::Float).flatten(0, -1)).unwrap();
    Array2::from_shape_vec((dims[0], dims[1]), vals).unwrap()
}

#[cfg(feature = "torch")]
#[test]
fn direct_and_fast_match_libtorch_conv2d() {
    use ndarray::Axis;
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..12 {
        let (h, w, c) = (
            rng.random_range(1..30),
            rng.random_range(1..30),
            rng.random_range(1..4),
        );
        let (kh, kw) = (
            rng.random_range(1..=h.min(5)),
            rng.random_range(1..=w.min(5)),
        );
        let img = Array3::from_shape_fn((h, w, c), |_| rng.random_range(-1.0f32..1.0));
        let f = Array3::from_shape_fn((kh, kw, c), |_| rng.random_range(-1.0f32..1.0));
        let want = libtorch_conv2d(&img, &f);
        assert_eq!(want.dim(), (h - kh + 1, w - kw + 1));
        for (name, got) in [
            ("direct", convolve(&img, &f).unwrap()),
            ("fast", convolve_fast(&img, &f).unwrap()),
        ] {
            let err = rel_err(&want, &got);
            assert!(err <= 1e-5, "{name}, {h}×{w}×{c} / {kh}×{kw}: {err}");
        }
        if c == 1 {
            // The same picture as a grey 2-D array.
            let (grey, f2) = (
                img.index_axis(Axis(2), 0).to_owned(),
                f.index_axis(Axis(2), 0).to_owned(),
            );
            let err = rel_err(&want, &convolve_fast(&grey, &f2).unwrap());
            assert!(err <= 1e-5, "fast, grey {h}×{w} / {kh}×{kw}: {err}");
        }
    }
}

/// The valid cross-correlation of an (H, W, C) image with a (kh, kw, C) filter in float64,
/// straight from the definition: the reference for the fast path.
fn reference(image: &Array3<f32>, filter: &Array3<f32>) -> Array2<f64> {
    let ((h, w, c), (kh, kw, _)) = (image.dim(), filter.dim());
    Array2::from_shape_fn((h - kh + 1, w - kw + 1), |(y, x)| {
        let mut sum = 0.0f64;
        for i in 0..kh {
            for j in 0..kw {
                for ch in 0..c {
                    sum += f64::from(filter[[i, j, ch]]) * f64::from(image[[y + i, x + j, ch]]);
                }
            }
        }
        sum
    })
}

/// ‖got − want‖ / ‖want‖, in float64.
fn rel_err_f64(got: &Array2<f32>, want: &Array2<f64>) -> f64 {
    assert_eq!(got.dim(), want.dim());
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, w)| (f64::from(g) - w).powi(2))
        .sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den.max(1e-300)).sqrt()
}

/// The tolerance of the issue: 1e-5, or 1e-4 for filters of over 1,000 weights.
fn tolerance(weights: usize) -> f64 {
    if weights > 1000 {
        1e-4
    } else {
        1e-5
    }
}

/// Checks convolve_fast (and its threaded twin) of `image` with every filter size from 1×1 to
/// the image's own size against the float64 reference; `grey` also checks the 2-D form.
fn check_every_filter_size(image: &Array3<f32>, rng: &mut StdRng, grey: bool) {
    let (h, w, c) = image.dim();
    for kh in 1..=h {
        for kw in 1..=w {
            let filter = Array3::from_shape_fn((kh, kw, c), |_| rng.random_range(-1.0f32..1.0));
            let want = reference(image, &filter);
            let fast = convolve_fast(image, &filter).unwrap();
            let err = rel_err_f64(&fast, &want);
            assert!(
                err <= tolerance(kh * kw * c),
                "{h}×{w}×{c} image, {kh}×{kw}×{c} filter: relative error {err:e}"
            );
            // Rows split between threads are computed the same way: the same numbers.
            assert_eq!(convolve_fast_threads(image, &filter, 3).unwrap(), fast);
            if grey {
                let (image2, filter2) =
                    (image.index_axis(Axis(2), 0), filter.index_axis(Axis(2), 0));
                assert_eq!(
                    convolve_fast(&image2, &filter2).unwrap(),
                    fast,
                    "grey {kh}×{kw}"
                );
            }
        }
    }
}

#[test]
fn fast_matches_float64_for_every_filter_size_grey_and_1_to_4_channels() {
    let mut rng = StdRng::seed_from_u64(14);
    // Widths past the 16 lanes of one AVX-512 register (and past a colour chunk of 48
    // samples), so that whole and partial vectors both occur; 5 and 6 channels take the
    // plain path.
    for (h, w, c) in [
        (7, 37, 1),
        (6, 21, 2),
        (5, 19, 3),
        (5, 18, 4),
        (4, 9, 5),
        (4, 9, 6),
    ] {
        let image = Array3::from_shape_fn((h, w, c), |_| rng.random_range(0.0f32..255.0));
        check_every_filter_size(&image, &mut rng, c == 1);
    }
}

#[test]
fn fast_matches_float64_for_large_filters() {
    let mut rng = StdRng::seed_from_u64(15);
    let image = Array3::from_shape_fn((64, 80, 4), |_| rng.random_range(0.0f32..255.0));
    for (kh, kw, c) in [
        (64, 80, 4),
        (63, 70, 4),
        (40, 77, 3),
        (64, 80, 1),
        (50, 33, 2),
    ] {
        let image = image.slice(ndarray::s![.., .., ..c]).to_owned();
        let filter = Array3::from_shape_fn((kh, kw, c), |_| rng.random_range(-1.0f32..1.0));
        let err = rel_err_f64(
            &convolve_fast(&image, &filter).unwrap(),
            &reference(&image, &filter),
        );
        assert!(
            err <= tolerance(kh * kw * c),
            "{kh}×{kw}×{c}: relative error {err:e}"
        );
    }
}

#[test]
fn colour_rows_wider_than_a_stretch_match_float64() {
    // A colour row is computed 1,024 pixels at a time: rows of 2,100 pixels take two whole
    // stretches and a part, under filters narrower and wider than a stretch.
    let mut rng = StdRng::seed_from_u64(17);
    for c in [2, 3, 4] {
        let image = Array3::from_shape_fn((4, 2100, c), |_| rng.random_range(0.0f32..255.0));
        for (kh, kw) in [(1, 1), (3, 3), (2, 1030), (4, 2100)] {
            let filter = Array3::from_shape_fn((kh, kw, c), |_| rng.random_range(-1.0f32..1.0));
            let fast = convolve_fast(&image, &filter).unwrap();
            let err = rel_err_f64(&fast, &reference(&image, &filter));
            assert!(
                err <= tolerance(kh * kw * c),
                "{kh}×{kw}×{c}: relative error {err:e}"
            );
            assert_eq!(convolve_fast_threads(&image, &filter, 2).unwrap(), fast);
        }
    }
}

#[test]
fn threads_split_the_rows_and_give_the_same_numbers() {
    let mut rng = StdRng::seed_from_u64(16);
    let image = Array3::from_shape_fn((50, 40, 3), |_| rng.random_range(0.0f32..255.0));
    let filter = convlab::filters::brown();
    let one = convolve_fast(&image, &filter).unwrap();
    // 0 = every core; more threads than output rows leaves some without work.
    for threads in [0, 2, 7, 48, 100] {
        assert_eq!(
            convolve_fast_threads(&image, &filter, threads).unwrap(),
            one,
            "{threads} threads"
        );
    }
}

#[test]
fn nan_under_a_zero_weight_is_still_an_error() {
    // The fast path skips zero weights; a NaN it never multiplies must still be reported.
    let mut img = Array2::<f32>::ones((6, 6));
    img[[1, 4]] = f32::NAN;
    let f = convlab::filters::horizontal_edge(); // its middle row is zero
    for threads in [1, 2] {
        let e = convolve_fast_threads(&img, &f, threads)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN") && e.contains("[1, 4]"), "{e}");
    }
    // A colour filter that ignores the green channel: a NaN there is still reported.
    for channels in [3, 5] {
        let mut img = Array3::<f32>::ones((6, 6, channels));
        img[[3, 3, 1]] = f32::NAN;
        let mut f = Array3::<f32>::ones((3, 3, channels));
        f.index_axis_mut(Axis(2), 1).fill(0.0);
        let e = convolve_fast(&img, &f).unwrap_err().to_string();
        assert!(e.contains("NaN") && e.contains("[3, 3, 1]"), "{e}");
    }
    let mut f = convlab::filters::outline();
    f[[2, 2]] = f32::INFINITY;
    let e = convolve_fast(&Array2::<f32>::ones((6, 6)), &f)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("filter holds inf") && e.contains("[2, 2]"),
        "{e}"
    );
}

#[test]
fn nan_or_infinity_anywhere_is_an_error_whatever_the_zero_weights() {
    // The fast path finds bad samples through the outputs they reach, and looks at the
    // samples near the border, which may meet only zero weights, one by one. Every place of
    // a 7×8 picture, under filters with a zero column, a zero row, or no weight at all.
    let filters = [
        array![[1.0f32, 0.0], [2.0, 0.0]],
        array![[0.0f32, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]],
        Array2::<f32>::zeros((3, 3)),
    ];
    for filter in &filters {
        for (i, j) in (0..7).flat_map(|i| (0..8).map(move |j| (i, j))) {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut img = Array2::<f32>::ones((7, 8));
                img[[i, j]] = bad;
                for threads in [1, 3] {
                    let e = convolve_fast_threads(&img, filter, threads)
                        .unwrap_err()
                        .to_string();
                    assert!(e.contains(&format!("[{i}, {j}]")), "{filter:?} {e}");
                }
            }
        }
    }
    // Large finite values whose sum overflows are not an input error: the result says inf.
    let big = Array2::from_elem((3, 3), f32::MAX);
    let out = convolve_fast(&big, &Array2::<f32>::ones((2, 2))).unwrap();
    assert!(out.iter().all(|v| *v == f32::INFINITY));
}
