//! Convolutions: worked examples, fast == direct, and errors that name the shapes.

use convlab::conv::{convolve, convolve_fast, multiply_sum};
use ndarray::{array, Array2, Array3};
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
