//! Loading pictures as arrays (Learning Activity 2).
//!
//! A grey picture is an `Array2<f32>` of shape `(height, width)` with values from 0 (black)
//! to 255 (white), like the seed's `imread(..., flatten=True)`. A colour picture is an
//! `Array3<f32>` of shape `(height, width, 3)` in RGB order, also 0–255.
//! Crops are ordinary ndarray slices:
//!
//! ```no_run
//! use ndarray::s;
//! let grey = convlab::image::load_grey("data/grace_hopper.jpg")?;
//! let face = grey.slice(s![100..300, 150..350]);
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{Array2, Array3, ArrayView3};
use std::path::Path;

/// Reads and decodes a picture file; a truncated JPEG is an error, not a grey smear.
fn open(path: &Path) -> Result<::image::DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::Decode {
            path: path.into(),
            reason: "the file is empty".into(),
        });
    }
    let format = ::image::guess_format(&bytes).map_err(|_| Error::Decode {
        path: path.into(),
        reason: "its first bytes are not those of a PNG, JPEG or other known picture format".into(),
    })?;
    if format == ::image::ImageFormat::Jpeg && !jpeg_has_end(&bytes) {
        return Err(Error::Decode {
            path: path.into(),
            reason: "the JPEG is truncated (no end-of-image marker); download it again".into(),
        });
    }
    ::image::load_from_memory_with_format(&bytes, format).map_err(|e| Error::Decode {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// A complete JPEG ends with the end-of-image marker `FF D9` (some writers pad after it).
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Loads a picture as grey values 0–255 with the ITU-R 601 weights that PIL's `convert('F')`
/// (and so the seed's `flatten=True`) uses: `0.299 R + 0.587 G + 0.114 B`.
///
/// ```no_run
/// let grey = convlab::image::load_grey("data/grace_hopper.jpg")?;
/// assert_eq!(grey.dim(), (606, 517));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn load_grey(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let colour = load_colour(path)?;
    Ok(grey_from_colour(&colour.view()))
}

/// Loads a picture as an RGB array of shape `(height, width, 3)`, values 0–255.
///
/// ```no_run
/// let rgb = convlab::image::load_colour("data/grace_hopper.jpg")?;
/// assert_eq!(rgb.dim(), (606, 517, 3));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn load_colour(path: impl AsRef<Path>) -> Result<Array3<f32>> {
    let rgb = open(path.as_ref())?.to_rgb8();
    Ok(from_rgb8(&rgb))
}

/// Converts an `image` RGB buffer into an `(height, width, 3)` array of 0–255 values.
pub fn from_rgb8(rgb: &::image::RgbImage) -> Array3<f32> {
    let (w, h) = rgb.dimensions();
    let data: Vec<f32> = rgb.as_raw().iter().map(|&v| f32::from(v)).collect();
    Array3::from_shape_vec((h as usize, w as usize, 3), data).expect("RGB buffer has h*w*3 values")
}

/// Grey values from an RGB array, with the weights of [`load_grey`].
///
/// ```
/// use ndarray::array;
/// let rgb = array![[[255.0f32, 0.0, 0.0], [0.0, 0.0, 255.0]]];
/// let grey = convlab::image::grey_from_colour(&rgb.view());
/// assert!((grey[[0, 0]] - 76.245).abs() < 1e-3);
/// ```
pub fn grey_from_colour(rgb: &ArrayView3<f32>) -> Array2<f32> {
    rgb.map_axis(ndarray::Axis(2), |p| {
        p[0] * 0.299 + p[1] * 0.587 + p[2] * 0.114
    })
}

/// Resizes an RGB array (values 0–255) to `height × width` with bilinear filtering,
/// like `cv2.resize(img, (width, height))`.
///
/// ```
/// let rgb = ndarray::Array3::<f32>::from_elem((40, 30, 3), 100.0);
/// let small = convlab::image::resize(&rgb.view(), 224, 224)?;
/// assert_eq!(small.dim(), (224, 224, 3));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn resize(rgb: &ArrayView3<f32>, height: usize, width: usize) -> Result<Array3<f32>> {
    let (h, w, c) = rgb.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(Error::Shape(format!(
            "resize takes an (height, width, 3) colour array, got {h}×{w}×{c}"
        )));
    }
    let raw: Vec<u8> = rgb
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let buf = ::image::RgbImage::from_raw(w as u32, h as u32, raw).expect("sizes checked above");
    let out = ::image::imageops::resize(
        &buf,
        width as u32,
        height as u32,
        ::image::imageops::FilterType::Triangle,
    );
    Ok(from_rgb8(&out))
}
