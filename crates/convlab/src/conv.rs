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
use ndarray::{Array2, ArrayBase, ArrayView, Axis, Data, Dimension, Ix2, Slice, Zip};

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
    let channels = if image.ndim() == 3 {
        image.shape()[2]
    } else {
        1
    };
    for c in 0..channels {
        // One contiguous H×W plane per channel, so that shifted views are contiguous rows.
        let plane: Array2<f32> = if image.ndim() == 3 {
            image
                .index_axis(Axis(2), c)
                .into_dimensionality::<Ix2>()
                .expect("2-D")
                .as_standard_layout()
                .into_owned()
        } else {
            image
                .view()
                .into_dimensionality::<Ix2>()
                .expect("2-D")
                .as_standard_layout()
                .into_owned()
        };
        let weights: ArrayView<f32, Ix2> = if filter.ndim() == 3 {
            filter
                .index_axis(Axis(2), c)
                .into_dimensionality()
                .expect("2-D")
        } else {
            filter.view().into_dimensionality().expect("2-D")
        };
        add_plane(&mut out, &plane, &weights);
    }
    Ok(out)
}

/// `out += plane ⋆ weights` for one channel, one filter tap at a time.
fn add_plane(out: &mut Array2<f32>, plane: &Array2<f32>, weights: &ArrayView<f32, Ix2>) {
    let (out_h, out_w) = out.dim();
    for ((i, j), &w) in weights.indexed_iter() {
        if w == 0.0 {
            continue;
        }
        let shifted = plane.slice(ndarray::s![i..i + out_h, j..j + out_w]);
        Zip::from(out.rows_mut())
            .and(shifted.rows())
            .for_each(|mut o, s| {
                let (o, s) = (
                    o.as_slice_mut().expect("owned rows"),
                    s.as_slice().expect("contiguous rows"),
                );
                for (o, &s) in o.iter_mut().zip(s) {
                    *o += w * s;
                }
            });
    }
}
