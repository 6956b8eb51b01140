//! Looking inside a trained network (LA14): the first layer's filters next to a known one,
//! and a layer's activations as pictures.
//!
//! ```
//! let target = convlab::filters::brown_channel_first();
//! let bank = target.clone().insert_axis(ndarray::Axis(0));
//! let m = convlab::inspect::closest_filter(&bank, &target)?;
//! assert_eq!((m.index, m.channels_reversed, m.flipped), (0, false, false));
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::display::Picture;
use crate::error::{Error, Result};
use crate::tensor::tensor_to_array;
use ndarray::{Array3, Array4, ArrayD};
use std::fmt;
use tch::Tensor;

/// How a first-layer filter was compared with a target filter.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterMatch {
    /// Position of the filter in the layer.
    pub index: usize,
    /// Cosine similarity, from −1 to 1 (1: the same pattern up to a scale).
    pub score: f32,
    /// `true` when the best match reads the filter's channels in reverse (BGR against RGB).
    pub channels_reversed: bool,
    /// `true` when the best match turns the 3×3 kernel by 180° (convolution vs correlation).
    pub flipped: bool,
}

impl fmt::Display for FilterMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter {} (cosine similarity {:.3}",
            self.index, self.score
        )?;
        if self.channels_reversed {
            write!(f, ", channels reversed")?;
        }
        if self.flipped {
            write!(f, ", kernel turned 180°")?;
        }
        write!(f, ")")
    }
}

/// The filter `(C, kh, kw)` read the way `m` says: channels reversed and/or turned 180°.
pub fn oriented(filter: &Array3<f32>, channels_reversed: bool, flipped: bool) -> Array3<f32> {
    let (c, h, w) = filter.dim();
    Array3::from_shape_fn((c, h, w), |(k, y, x)| {
        let k = if channels_reversed { c - 1 - k } else { k };
        let (y, x) = if flipped {
            (h - 1 - y, w - 1 - x)
        } else {
            (y, x)
        };
        filter[[k, y, x]]
    })
}

/// Finds among `filters` `(N, C, kh, kw)` the one most like `target` `(C, kh, kw)` by cosine
/// similarity, allowing the channel order to be reversed (BGR weights against an RGB filter)
/// and the kernel to be turned by 180° (frameworks that convolve against those that
/// correlate).
///
/// ```
/// use ndarray::{Array3, Array4};
/// let target = convlab::filters::brown_channel_first();
/// let mut bank = Array4::<f32>::zeros((4, 3, 3, 3));
/// bank[[0, 0, 0, 0]] = 1.0;
/// // filter 2 is the target with its channels in BGR order
/// bank.index_axis_mut(ndarray::Axis(0), 2).assign(&convlab::inspect::oriented(&target, true, false));
/// let m = convlab::inspect::closest_filter(&bank, &target)?;
/// assert_eq!((m.index, m.channels_reversed, m.flipped), (2, true, false));
/// assert!((m.score - 1.0).abs() < 1e-5);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn closest_filter(filters: &Array4<f32>, target: &Array3<f32>) -> Result<FilterMatch> {
    let (n, c, h, w) = filters.dim();
    if (c, h, w) != target.dim() || n == 0 {
        return Err(Error::Shape(format!(
            "cannot compare filters of shape ({n}, {c}, {h}, {w}) with a target of shape {:?}: \
             both need the same (channels, height, width), channel first",
            target.dim()
        )));
    }
    let norm = |a: &Array3<f32>| a.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut best: Option<FilterMatch> = None;
    for channels_reversed in [false, true] {
        for flipped in [false, true] {
            let t = oriented(target, channels_reversed, flipped);
            let tn = norm(&t);
            for i in 0..n {
                let f = filters.index_axis(ndarray::Axis(0), i).to_owned();
                let denom = norm(&f) * tn;
                let score = if denom > 0.0 {
                    (&f * &t).sum() / denom
                } else {
                    0.0
                };
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(FilterMatch {
                        index: i,
                        score,
                        channels_reversed,
                        flipped,
                    });
                }
            }
        }
    }
    Ok(best.expect("n > 0"))
}

/// A channel-first colour filter `(3, kh, kw)` (channel 0 = red) as a picture: its values
/// scaled to 0–1 together, enlarged so that each weight is a visible square.
pub fn filter_picture(filter: &Array3<f32>) -> Result<Picture> {
    let hwc = crate::filters::channel_last(filter).into_dyn();
    let one = hwc.insert_axis(ndarray::Axis(0));
    let grid = crate::vis_square::vis_square(&one.view(), 0, 0.0)?;
    let pic = Picture::new(
        &grid
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| Error::Shape(e.to_string()))?,
    )?;
    Ok(pic.enlarged_to(120))
}

/// A grid from [`vis_square`](crate::vis_square::vis_square) (`H×W` grey or `H×W×3` colour)
/// as a picture, enlarged (nearest neighbour, so each weight stays a sharp square) until its
/// longer side reaches `min_side`.
///
/// ```
/// let grid = ndarray::Array3::<f32>::zeros((32, 32, 3)).into_dyn();
/// assert_eq!(convlab::inspect::grid_picture(grid, 400)?.rgb.dimensions(), (416, 416));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn grid_picture(grid: ArrayD<f32>, min_side: u32) -> Result<Picture> {
    let pic = match grid.ndim() {
        2 => Picture::new(
            &grid
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|e| Error::Shape(e.to_string()))?,
        )?,
        3 => Picture::new(
            &grid
                .into_dimensionality::<ndarray::Ix3>()
                .map_err(|e| Error::Shape(e.to_string()))?,
        )?,
        _ => {
            return Err(Error::Shape(format!(
                "a grid picture is H×W or H×W×3, got {:?}",
                grid.shape()
            )))
        }
    };
    Ok(pic.enlarged_to(min_side))
}

/// All of a layer's `(C, H, W)` activations tiled on one grey picture with the seed's
/// `vis_square(output, padsize, padval)`, shrunk to at most `max_side` pixels a side.
pub fn activation_picture(
    activations: &Tensor,
    padsize: usize,
    padval: f32,
    max_side: u32,
) -> Result<Picture> {
    let a = tensor_to_array(activations)?;
    let a = match a.ndim() {
        3 => a,
        4 if a.shape()[0] == 1 => a.index_axis_move(ndarray::Axis(0), 0),
        _ => {
            return Err(Error::Shape(format!(
                "activation_picture takes one picture's activations (C, H, W), got {:?}: use layer_output",
                a.shape()
            )))
        }
    };
    let grid = crate::vis_square::vis_square(&a.view(), padsize, padval)?;
    let grid = grid
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| Error::Shape(e.to_string()))?;
    Ok(Picture::new(&grid)?.shrunk_to(max_side))
}
