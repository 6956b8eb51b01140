//! The convolution of Learning Activity 3, written twice: the seed's direct version and a
//! fast version that computes the same numbers.
//!
//! Both are *valid cross-correlations*, like the seed's `convolve`: the filter is not
//! flipped, and it only visits positions where it fits inside the image, so
//!
//! > size of the filtered image = input image size − filter size + 1
//!
//! A grey image `(H, W)` takes a 2-D filter `(kh, kw)`; a colour image `(H, W, C)` takes a
//! filter `(kh, kw, C)` with the colour channel last. The result is always 2-D.
//!
//! ```
//! use ndarray::array;
//! use convlab::conv::{convolve, convolve_fast};
//! let image = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
//! let filter = array![[1.0f32, 0.0], [0.0, -1.0]];
//! let out = convolve(&image, &filter)?;
//! assert_eq!(out, array![[-4.0, -4.0], [-4.0, -4.0]]);
//! assert_eq!(convolve_fast(&image, &filter)?, out);
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayBase, ArrayView, Axis, CowArray, Data, Dimension, Ix2, Slice};

fn shape_str(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// Multiplies two arrays of the same shape element by element and returns the sum.
///
/// ```
/// use ndarray::array;
/// let patch = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let filter = array![[1.0f32, 0.0], [0.0, 1.0]];
/// assert_eq!(convlab::conv::multiply_sum(&patch, &filter)?, 5.0);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn multiply_sum<S, T, D>(patch: &ArrayBase<S, D>, filter: &ArrayBase<T, D>) -> Result<f32>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    // Let's make sure our two inputs have the same shape
    if patch.shape() != filter.shape() {
        return Err(Error::Shape(format!(
            "multiply_sum needs two arrays of the same shape, got a {} patch and a {} filter",
            shape_str(patch.shape()),
            shape_str(filter.shape())
        )));
    }
    Ok((patch * filter).sum())
}

/// Checks the image and filter and returns the output size `(H − kh + 1, W − kw + 1)`.
fn output_size<S, T, D>(image: &ArrayBase<S, D>, filter: &ArrayBase<T, D>) -> Result<(usize, usize)>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    let (is, fs) = (image.shape(), filter.shape());
    if is.len() < 2 || is.len() > 3 {
        return Err(Error::Shape(format!(
            "convolve takes a grey (H×W) or colour (H×W×C) image, got {} dimensions ({})",
            is.len(),
            shape_str(is)
        )));
    }
    if image.is_empty() || filter.is_empty() {
        return Err(Error::Value(format!(
            "convolve got an empty array: image {}, filter {}",
            shape_str(is),
            shape_str(fs)
        )));
    }
    if is.len() == 3 && is[2] != fs[2] {
        return Err(Error::Shape(format!(
            "the image has {} colour channels but the filter has {}: image {}, filter {} (put the channel last in both)",
            is[2],
            fs[2],
            shape_str(is),
            shape_str(fs)
        )));
    }
    if fs[0] > is[0] || fs[1] > is[1] {
        return Err(Error::Shape(format!(
            "the {} filter is larger than the {} image: it must fit inside it",
            shape_str(fs),
            shape_str(is)
        )));
    }
    for (name, a) in [
        ("image", image.view().into_dyn()),
        ("filter", filter.view().into_dyn()),
    ] {
        // A plain pass first: indexed iteration over a dynamic shape is slow.
        let finite = match a.as_slice_memory_order() {
            Some(samples) => samples.iter().all(|v| v.is_finite()),
            None => a.iter().all(|v| v.is_finite()),
        };
        if finite {
            continue;
        }
        if let Some((idx, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::Value(format!(
                "the {name} holds {v} at {:?}: replace NaN and infinite values before convolving",
                idx.slice()
            )));
        }
    }
    Ok((is[0] - fs[0] + 1, is[1] - fs[1] + 1))
}

/// The seed's convolution, one output pixel at a time: take the patch under the filter and
/// [`multiply_sum`] it with the filter.
///
/// ```
/// use ndarray::Array2;
/// let image = Array2::<f32>::ones((606, 517));
/// let out = convlab::conv::convolve(&image, &Array2::<f32>::ones((3, 3)))?;
/// assert_eq!(out.dim(), (604, 515)); // input − filter + 1
/// assert_eq!(out[[0, 0]], 9.0);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn convolve<S, T, D>(image: &ArrayBase<S, D>, filter: &ArrayBase<T, D>) -> Result<Array2<f32>>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    let (out_h, out_w) = output_size(image, filter)?;
    let (filter_height, filter_width) = (filter.shape()[0], filter.shape()[1]);
    let mut filtered_image = Array2::zeros((out_h, out_w));
    for x in 0..out_h {
        for y in 0..out_w {
            // We select a local patch of the image
            let mut patch = image.view();
            patch.slice_axis_inplace(Axis(0), Slice::from(x..x + filter_height));
            patch.slice_axis_inplace(Axis(1), Slice::from(y..y + filter_width));
            // Then apply the convolution operation to it
            filtered_image[[x, y]] = multiply_sum(&patch, filter)?;
        }
    }
    Ok(filtered_image)
}

/// The same numbers as [`convolve`], computed the other way round: for each filter weight,
/// add the weight times a shifted view of the whole image to the output. Each pass is a
/// long run of multiply-adds over contiguous memory that the compiler vectorises, instead of
/// one tiny dot product per pixel.
///
/// ```
/// use ndarray::Array3;
/// let image = Array3::<f32>::from_shape_fn((20, 30, 3), |(i, j, c)| (i * j + c) as f32);
/// let filter = Array3::<f32>::from_shape_fn((3, 3, 3), |(i, j, c)| (i + 2 * j) as f32 - c as f32);
/// let slow = convlab::conv::convolve(&image, &filter)?;
/// let fast = convlab::conv::convolve_fast(&image, &filter)?;
/// assert!((slow - fast).iter().all(|d| d.abs() < 1e-2));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn convolve_fast<S, T, D>(
    image: &ArrayBase<S, D>,
    filter: &ArrayBase<T, D>,
) -> Result<Array2<f32>>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    let (out_h, out_w) = output_size(image, filter)?;
    let mut out = Array2::<f32>::zeros((out_h, out_w));
    let image = image.view().into_dyn();
    let filter = filter.view().into_dyn();
    // One contiguous H×W plane per channel, so that shifted views are contiguous rows: a grey
    // picture in standard layout is used as it is; a colour one is split once.
    let grey = image.view().into_dimensionality::<Ix2>().ok();
    let planes: Vec<CowArray<f32, Ix2>> = match &grey {
        Some(grey) => vec![grey.as_standard_layout()],
        None => {
            let (h, w, channels) = (image.shape()[0], image.shape()[1], image.shape()[2]);
            let interleaved = image.as_standard_layout();
            let pixels = interleaved.as_slice().expect("standard layout");
            (0..channels)
                .map(|c| {
                    let samples = pixels.iter().skip(c).step_by(channels).copied().collect();
                    Array2::from_shape_vec((h, w), samples)
                        .expect("H×W samples")
                        .into()
                })
                .collect()
        }
    };
    let weights: Vec<ArrayView<f32, Ix2>> = match filter.ndim() {
        3 => filter
            .axis_iter(Axis(2))
            .map(|w| w.into_dimensionality().expect("2-D"))
            .collect(),
        _ => vec![filter.view().into_dimensionality().expect("2-D")],
    };
    let planes: Vec<ArrayView<f32, Ix2>> = planes.iter().map(|p| p.view()).collect();
    add_planes(&mut out, &planes, &weights);
    Ok(out)
}

/// `out += Σ_c planes[c] ⋆ weights[c]`, output row by output row: the row stays in the L1
/// cache while every filter row of every channel adds shifted input rows to it, in loops
/// over contiguous memory that the compiler vectorises. A 3-wide filter row is done in one
/// pass (`o += w0·s0 + w1·s1 + w2·s2`).
fn add_planes(
    out: &mut Array2<f32>,
    planes: &[ArrayView<f32, Ix2>],
    weights: &[ArrayView<f32, Ix2>],
) {
    let (out_h, out_w) = out.dim();
    // The filter rows of each channel, as plain slices.
    let taps: Vec<Vec<Vec<f32>>> = weights
        .iter()
        .map(|w| w.rows().into_iter().map(|r| r.to_vec()).collect())
        .collect();
    let out = out.as_slice_mut().expect("a standard-layout output");
    for (r, row) in out.chunks_exact_mut(out_w).enumerate().take(out_h) {
        for (plane, taps) in planes.iter().zip(&taps) {
            let width = plane.ncols();
            let samples = plane.as_slice().expect("a standard-layout plane");
            for (i, taps) in taps.iter().enumerate() {
                let line = &samples[(r + i) * width..(r + i + 1) * width];
                add_row(row, line, taps);
            }
        }
    }
}

/// `row[x] += Σ_j taps[j] · line[x + j]` for every x of the output row.
fn add_row(row: &mut [f32], line: &[f32], taps: &[f32]) {
    let n = row.len();
    if let &[w0, w1, w2] = taps {
        let (s0, s1, s2) = (&line[..n], &line[1..n + 1], &line[2..n + 2]);
        for (((o, &a), &b), &c) in row.iter_mut().zip(s0).zip(s1).zip(s2) {
            *o += w0 * a + w1 * b + w2 * c;
        }
        return;
    }
    for (j, &w) in taps.iter().enumerate() {
        if w != 0.0 {
            for (o, &s) in row.iter_mut().zip(&line[j..j + n]) {
                *o += w * s;
            }
        }
    }
}
