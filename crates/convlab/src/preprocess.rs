//! Preprocessing (LA12): a picture becomes VGG-16's input the way its weights were
//! trained — Caffe's (the seed's) or torchvision's.
//!
//! ```
//! use convlab::preprocess::Preprocessing;
//! let picture = ndarray::Array3::<f32>::from_elem((64, 48, 3), 200.0);
//! let x = Preprocessing::Torchvision.apply(&picture)?;
//! assert_eq!(x.size(), vec![1, 3, 224, 224]);
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::tensor::array_to_tensor;
use ndarray::{Array3, ArrayBase, Data, Dimension};
use tch::Tensor;

/// The per-channel means the original VGG (Caffe) weights subtract, in **B, G, R** order:
/// the seed read pictures with OpenCV, which gives blue first.
pub const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];
/// torchvision's ImageNet means of R, G, B for 0–1 values.
pub const TORCHVISION_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet standard deviations of R, G, B for 0–1 values.
pub const TORCHVISION_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Pictures smaller than this on a side are refused: there is nothing left to recognise.
pub const MIN_SIDE: usize = 32;

/// How a picture becomes the network's input. Weights only work with the preprocessing
/// they were trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preprocessing {
    /// The seed's (and the original Caffe/Keras VGG weights'): resize to 224×224, RGB → BGR,
    /// subtract [`CAFFE_MEAN_BGR`] from values 0–255, channel first, batch axis.
    Caffe,
    /// torchvision's: resize to 224×224, RGB kept, values / 255, subtract
    /// [`TORCHVISION_MEAN`], divide by [`TORCHVISION_STD`], channel first, batch axis.
    /// (torchvision itself resizes to 256 and crops the centre 224×224.)
    Torchvision,
}

impl Preprocessing {
    /// One line saying what this preprocessing does.
    pub fn describe(&self) -> &'static str {
        match self {
            Preprocessing::Caffe => {
                "Caffe/Keras (the seed): BGR, 0–255 minus the mean of each channel"
            }
            Preprocessing::Torchvision => {
                "torchvision: RGB, /255, minus mean, divided by standard deviation"
            }
        }
    }

    /// The picture as a `(3, 224, 224)` array, preprocessed (no batch axis). `image` is an
    /// `(H, W, 3)` RGB array of 0–255 values, as [`load_colour`](crate::image::load_colour)
    /// gives; it is resized to 224×224 first.
    ///
    /// ```
    /// use convlab::preprocess::Preprocessing;
    /// let grey_rgb = ndarray::Array3::<f32>::from_elem((50, 40, 3), 120.0);
    /// let x = Preprocessing::Caffe.to_chw(&grey_rgb)?;
    /// assert_eq!(x.dim(), (3, 224, 224));
    /// assert!((x[[0, 0, 0]] - (120.0 - 103.939)).abs() < 1e-3); // channel 0 is blue
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn to_chw<S: Data<Elem = f32>, D: Dimension>(
        &self,
        image: &ArrayBase<S, D>,
    ) -> Result<Array3<f32>> {
        let rgb = check_picture(image)?;
        let resized = crate::image::resize(&rgb.view(), 224, 224)?;
        let mut out = Array3::<f32>::zeros((3, 224, 224));
        for ((y, x, c), &v) in resized.indexed_iter() {
            match self {
                Preprocessing::Caffe => {
                    let channel = 2 - c; // R, G, B in; B, G, R out
                    out[[channel, y, x]] = v - CAFFE_MEAN_BGR[channel];
                }
                Preprocessing::Torchvision => {
                    out[[c, y, x]] = (v / 255.0 - TORCHVISION_MEAN[c]) / TORCHVISION_STD[c];
                }
            }
        }
        Ok(out)
    }

    /// The picture as the network's input: a `(1, 3, 224, 224)` tensor on the CPU
    /// (the model moves it to its device).
    pub fn apply<S: Data<Elem = f32>, D: Dimension>(
        &self,
        image: &ArrayBase<S, D>,
    ) -> Result<Tensor> {
        Ok(array_to_tensor(&self.to_chw(image)?).unsqueeze(0))
    }

    /// Undoes the preprocessing of a `(3, H, W)` array, giving an `(H, W, 3)` RGB 0–255
    /// picture to look at.
    pub fn to_picture(&self, chw: &Array3<f32>) -> Result<Array3<f32>> {
        let (c, h, w) = chw.dim();
        if c != 3 {
            return Err(Error::Shape(format!(
                "expected a (3, H, W) array, got ({c}, {h}, {w})"
            )));
        }
        Ok(Array3::from_shape_fn((h, w, 3), |(y, x, k)| match self {
            Preprocessing::Caffe => chw[[2 - k, y, x]] + CAFFE_MEAN_BGR[2 - k],
            Preprocessing::Torchvision => {
                (chw[[k, y, x]] * TORCHVISION_STD[k] + TORCHVISION_MEAN[k]) * 255.0
            }
        }))
    }
}

fn check_picture<S: Data<Elem = f32>, D: Dimension>(
    image: &ArrayBase<S, D>,
) -> Result<Array3<f32>> {
    let shape = image.shape().to_vec();
    let dims = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×");
    let (h, w) = match shape[..] {
        [h, w, 3] => (h, w),
        [_, _] | [_, _, 1] => {
            return Err(Error::Shape(format!(
                "this is a grey picture ({dims}); VGG-16 takes colour pictures (height, width, 3): \
                 load it with load_colour, which repeats the grey value into R, G and B"
            )))
        }
        [3, _, _] => {
            return Err(Error::Shape(format!(
                "this array ({dims}) has its colour axis first; preprocessing takes (height, width, 3) \
                 as load_colour gives, and moves the colour axis itself"
            )))
        }
        _ => {
            return Err(Error::Shape(format!(
                "preprocessing takes a colour picture of shape (height, width, 3), got {dims}"
            )))
        }
    };
    if h < MIN_SIDE || w < MIN_SIDE {
        return Err(Error::Shape(format!(
            "the picture is only {h}×{w} pixels; VGG-16 looks at 224×224 and a picture under \
             {MIN_SIDE}×{MIN_SIDE} has no detail left to recognise: use a larger picture"
        )));
    }
    if let Some(v) = image.iter().find(|v| !v.is_finite()) {
        return Err(Error::Value(format!(
            "the picture holds {v}: replace NaN and infinite values"
        )));
    }
    Ok(image
        .view()
        .into_shape_with_order((h, w, 3))
        .map_err(|e| Error::Shape(e.to_string()))?
        .to_owned())
}

/// Loads the picture at `path` and preprocesses it: a `(1, 3, 224, 224)` tensor.
///
/// ```no_run
/// use convlab::preprocess::{image_tensor, Preprocessing};
/// let x = image_tensor(convlab::data::ensure("cat.png")?, Preprocessing::Torchvision)?;
/// assert_eq!(x.size(), vec![1, 3, 224, 224]);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn image_tensor(path: impl AsRef<std::path::Path>, prep: Preprocessing) -> Result<Tensor> {
    prep.apply(&crate::image::load_colour(path)?)
}
