//! The seed's `vis_square` (Learning Activity 14): many small pictures tiled on a square grid.
//!
//! ```
//! use ndarray::Array;
//! // 64 filters of 3×3 colour weights, like VGG-16's first layer.
//! let filters = Array::from_shape_fn((64, 3, 3, 3), |(n, i, j, c)| (n + i + j + c) as f32).into_dyn();
//! let grid = convlab::vis_square::vis_square(&filters.view(), 1, 0.0)?;
//! // 8×8 tiles of 3×3 plus 1 pixel of padding each.
//! assert_eq!(grid.shape(), &[32, 32, 3]);
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Slice};

/// Normalises `data` to 0–1, then tiles its first axis on an `n × n` grid
/// (`n = ceil(sqrt(N))`), with `padsize` pixels of `padval` after each tile.
///
/// `data` is `N×H×W` (grey tiles, result `H'×W'`) or `N×H×W×3` (colour tiles, result
/// `H'×W'×3`). Empty grid places are filled with `padval`, as in the seed.
pub fn vis_square(data: &ArrayViewD<f32>, padsize: usize, padval: f32) -> Result<ArrayD<f32>> {
    let shape = data.shape().to_vec();
    let colour = match shape.len() {
        3 => false,
        4 if shape[3] == 3 => true,
        _ => {
            return Err(Error::Shape(format!(
                "vis_square takes N×H×W (grey) or N×H×W×3 (colour) arrays, got {shape:?}; for N×3×H×W filters use .permuted_axes([0, 2, 3, 1])"
            )))
        }
    };
    if data.is_empty() {
        return Err(Error::Value(format!(
            "vis_square got an empty array {shape:?}"
        )));
    }
    if let Some(v) = data.iter().find(|v| !v.is_finite()) {
        return Err(Error::Value(format!(
            "vis_square got {v} in a {shape:?} array"
        )));
    }
    // Normalize the inputs
    let min = data.iter().cloned().fold(f32::INFINITY, f32::min);
    let mut normed = data.mapv(|v| v - min);
    let max = normed.iter().cloned().fold(0.0f32, f32::max);
    if max > 0.0 {
        normed.mapv_inplace(|v| v / max);
    }
    // How many inputs per row
    let (count, h, w) = (shape[0], shape[1], shape[2]);
    let n = (count as f64).sqrt().ceil() as usize;
    let (th, tw) = (h + padsize, w + padsize);
    let mut out_shape = vec![n * th, n * tw];
    if colour {
        out_shape.push(3);
    }
    // Padding and empty places
    let mut grid = ArrayD::from_elem(IxDyn(&out_shape), padval);
    for k in 0..count {
        let (r, c) = (k / n, k % n);
        let tile = normed.index_axis(ndarray::Axis(0), k);
        grid.slice_each_axis_mut(|ax| match ax.axis.index() {
            0 => Slice::from(r * th..r * th + h),
            1 => Slice::from(c * tw..c * tw + w),
            _ => Slice::from(..),
        })
        .assign(&tile);
    }
    Ok(grid)
}
