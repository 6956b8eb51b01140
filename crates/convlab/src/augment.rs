//! Pre-processing and augmentation (LA18): Keras 1's `ImageDataGenerator`, in Rust.
//!
//! The seed notebook builds
//!
//! ```text
//! datagen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
//!     samplewise_center=False, samplewise_std_normalization=False, rotation_range=0,
//!     width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True, vertical_flip=False)
//! datagen.fit(X_train)
//! ```
//!
//! and this module does the same, step for step as Keras 1 does it:
//!
//! * **`fit`** computes, over the training pictures, the *mean picture* `mean[c, r, k]`
//!   (Keras 1: `np.mean(X, axis=0)` — one mean for every channel of every pixel, not one per
//!   channel as Keras 2 later changed it to) and likewise the standard deviation `std[c, r, k]`.
//! * **`random_transform`** shifts each picture by a random whole number of pixels — Keras 1
//!   draws `ty ~ U(−0.1, 0.1) · 32` and resamples with nearest-neighbour interpolation, so
//!   the shift is `ty` rounded, −3…3 — filling the uncovered border with the nearest edge
//!   pixel (Keras's default `fill_mode="nearest"`); then flips it left–right with
//!   probability ½.
//! * **`standardize`** subtracts the mean picture and divides by `std + 1e-7`, after the
//!   random transform, as Keras 1 does.
//!
//! ```
//! use convlab::augment::ImageDataGenerator;
//! let x_train = ndarray::Array4::<f32>::from_shape_fn((8, 3, 32, 32), |(i, c, r, k)| (i + c + r + k) as f32 / 100.0);
//! let mut datagen = ImageDataGenerator {
//!     featurewise_center: true,
//!     featurewise_std_normalization: true,
//!     width_shift_range: 0.1,
//!     height_shift_range: 0.1,
//!     horizontal_flip: true,
//!     ..Default::default()
//! };
//! datagen.fit(&x_train)?;
//! assert_eq!(datagen.mean.as_ref().unwrap().dim(), (3, 32, 32));
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::cifar::Rng;
use crate::error::{Error, Result};
use ndarray::{Array2, Array3, Array4, ArrayView3, ArrayViewMut3, Axis};

/// Keras's guard against dividing by a zero standard deviation.
pub const EPSILON: f32 = 1e-7;

/// The settings of the seed's `ImageDataGenerator`, and the statistics `fit` computes.
///
/// Rotation is not implemented (the seed uses `rotation_range = 0`); a non-zero
/// `rotation_range` is refused with an error rather than silently ignored.
///
/// A checkpoint records the settings (serde), not the fitted pictures, which follow from the
/// data.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageDataGenerator {
    /// Subtract the training set's mean picture.
    pub featurewise_center: bool,
    /// Subtract each picture's own mean (Keras 1: the mean over the channels of each pixel).
    pub samplewise_center: bool,
    /// Divide by the training set's standard deviation picture.
    pub featurewise_std_normalization: bool,
    /// Divide each picture by its own standard deviation (over the channels of each pixel).
    pub samplewise_std_normalization: bool,
    /// Degrees of random rotation; must be 0 here.
    pub rotation_range: f32,
    /// Largest horizontal shift, as a fraction of the width.
    pub width_shift_range: f32,
    /// Largest vertical shift, as a fraction of the height.
    pub height_shift_range: f32,
    /// Flip left–right with probability ½.
    pub horizontal_flip: bool,
    /// Flip upside down with probability ½.
    pub vertical_flip: bool,
    /// The mean picture `(3, 32, 32)`, set by [`fit`](Self::fit).
    #[serde(skip)]
    pub mean: Option<Array3<f32>>,
    /// The standard deviation picture `(3, 32, 32)`, set by [`fit`](Self::fit).
    #[serde(skip)]
    pub std: Option<Array3<f32>>,
}

/// One random transformation: a shift in whole pixels and the flips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transform {
    /// Rows: output row `r` takes input row `r + dy` (clamped to the picture).
    pub dy: i32,
    /// Columns: output column `k` takes input column `k + dx` (clamped).
    pub dx: i32,
    /// Mirror left–right after shifting.
    pub flip_horizontal: bool,
    /// Mirror upside down after shifting.
    pub flip_vertical: bool,
}

/// Keras 1 resamples with `order=0` (nearest): a shift of `t` pixels moves by `t` rounded.
fn round_shift(t: f64) -> i32 {
    (t + 0.5).floor() as i32
}

impl ImageDataGenerator {
    /// The seed's settings (LA18), not yet fitted.
    pub fn seed_settings() -> ImageDataGenerator {
        ImageDataGenerator {
            featurewise_center: true,
            featurewise_std_normalization: true,
            width_shift_range: 0.1,
            height_shift_range: 0.1,
            horizontal_flip: true,
            ..Default::default()
        }
    }

    /// The nine settings by their Keras names, values as text (what a changed setting is
    /// reported as).
    ///
    /// ```
    /// let g = convlab::augment::ImageDataGenerator::seed_settings();
    /// assert_eq!(g.settings()[5], ("width_shift_range", "0.1".to_string()));
    /// ```
    pub fn settings(&self) -> [(&'static str, String); 9] {
        [
            ("featurewise_center", self.featurewise_center.to_string()),
            ("samplewise_center", self.samplewise_center.to_string()),
            (
                "featurewise_std_normalization",
                self.featurewise_std_normalization.to_string(),
            ),
            (
                "samplewise_std_normalization",
                self.samplewise_std_normalization.to_string(),
            ),
            ("rotation_range", self.rotation_range.to_string()),
            ("width_shift_range", self.width_shift_range.to_string()),
            ("height_shift_range", self.height_shift_range.to_string()),
            ("horizontal_flip", self.horizontal_flip.to_string()),
            ("vertical_flip", self.vertical_flip.to_string()),
        ]
    }

    fn check(&self) -> Result<()> {
        if self.rotation_range != 0.0 {
            return Err(Error::Value(format!(
                "rotation_range = {}: random rotations are not implemented here (the seed uses 0); set it to 0",
                self.rotation_range
            )));
        }
        for (name, v) in [
            ("width_shift_range", self.width_shift_range),
            ("height_shift_range", self.height_shift_range),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::Value(format!("{name} = {v}: it is a fraction of the picture, 0 ≤ {name} < 1 (the seed uses 0.1)")));
            }
        }
        Ok(())
    }

    /// Computes the mean and standard deviation pictures over `x` `(N, C, H, W)`, as Keras 1's
    /// `datagen.fit(X_train)`: `mean = X.mean(axis=0)`, `std = X.std(axis=0)`.
    pub fn fit(&mut self, x: &Array4<f32>) -> Result<()> {
        self.check()?;
        let n = x.len_of(Axis(0));
        if n == 0 {
            return Err(Error::Value("fit needs at least one picture".into()));
        }
        let (_, c, h, w) = x.dim();
        let mut sum = Array3::<f64>::zeros((c, h, w));
        let mut sum_sq = Array3::<f64>::zeros((c, h, w));
        for picture in x.outer_iter() {
            ndarray::Zip::from(&mut sum)
                .and(&mut sum_sq)
                .and(&picture)
                .for_each(|s, q, &v| {
                    *s += f64::from(v);
                    *q += f64::from(v) * f64::from(v);
                });
        }
        let n = n as f64;
        let mean = sum.mapv(|s| s / n);
        let var = ndarray::Zip::from(&sum_sq)
            .and(&mean)
            .map_collect(|&q, &m| (q / n - m * m).max(0.0));
        self.mean = self.featurewise_center.then(|| mean.mapv(|m| m as f32));
        self.std = self
            .featurewise_std_normalization
            .then(|| var.mapv(|v| v.sqrt() as f32));
        Ok(())
    }

    /// Draws a random [`Transform`] with these settings for a `height`×`width` picture.
    pub fn random_params(&self, height: usize, width: usize, rng: &mut Rng) -> Transform {
        let draw = |range: f32, side: usize, rng: &mut Rng| {
            if range > 0.0 {
                round_shift(rng.uniform(-f64::from(range), f64::from(range)) * side as f64)
            } else {
                0
            }
        };
        let dy = draw(self.height_shift_range, height, rng);
        let dx = draw(self.width_shift_range, width, rng);
        let flip_horizontal = self.horizontal_flip && rng.unit() < 0.5;
        let flip_vertical = self.vertical_flip && rng.unit() < 0.5;
        Transform {
            dy,
            dx,
            flip_horizontal,
            flip_vertical,
        }
    }

    /// A randomly shifted and flipped copy of one picture `(C, H, W)` (not standardised).
    pub fn random_transform(&self, picture: ArrayView3<f32>, rng: &mut Rng) -> Result<Array3<f32>> {
        self.check()?;
        let (_, h, w) = picture.dim();
        let t = self.random_params(h, w, rng);
        let mut out = Array3::zeros(picture.raw_dim());
        apply(picture, &t, out.view_mut());
        Ok(out)
    }

    /// Standardises one picture in place: sample-wise, then feature-wise, as Keras 1.
    pub fn standardize(&self, mut picture: ArrayViewMut3<f32>) -> Result<()> {
        if self.samplewise_center || self.samplewise_std_normalization {
            let mean = picture.mean_axis(Axis(0)).expect("at least one channel");
            if self.samplewise_center {
                for mut ch in picture.outer_iter_mut() {
                    ch -= &mean;
                }
            }
            if self.samplewise_std_normalization {
                let std = picture.std_axis(Axis(0), 0.0);
                for mut ch in picture.outer_iter_mut() {
                    ndarray::Zip::from(&mut ch)
                        .and(&std)
                        .for_each(|v, &s| *v /= s + EPSILON);
                }
            }
        }
        if self.featurewise_center {
            let mean = self.mean.as_ref().ok_or_else(not_fitted)?;
            same_shape(mean, &picture)?;
            picture -= mean;
        }
        if self.featurewise_std_normalization {
            let std = self.std.as_ref().ok_or_else(not_fitted)?;
            same_shape(std, &picture)?;
            ndarray::Zip::from(&mut picture)
                .and(std)
                .for_each(|v, &s| *v /= s + EPSILON);
        }
        Ok(())
    }

    /// Standardised copies of all pictures `x` (no random transform): for the test set.
    pub fn standardize_all(&self, x: &Array4<f32>) -> Result<Array4<f32>> {
        let mut out = x.clone();
        for picture in out.outer_iter_mut() {
            self.standardize(picture)?;
        }
        Ok(out)
    }

    /// Augments and standardises the pictures `x[indices]` into a new batch `(B, C, H, W)`;
    /// the random transformations come from `rng`.
    pub fn batch(&self, x: &Array4<f32>, indices: &[usize], rng: &mut Rng) -> Result<Array4<f32>> {
        self.check()?;
        let (n, c, h, w) = x.dim();
        let mut out = Array4::zeros((indices.len(), c, h, w));
        for (mut target, &i) in out.outer_iter_mut().zip(indices) {
            if i >= n {
                return Err(Error::Shape(format!(
                    "picture {i} asked for, but there are only {n}"
                )));
            }
            let t = self.random_params(h, w, rng);
            apply(x.index_axis(Axis(0), i), &t, target.view_mut());
            self.standardize(target)?;
        }
        Ok(out)
    }

    /// Keras's `datagen.flow(X, Y, batch_size)`: one pass over the data in a random order
    /// (seeded), in augmented, standardised batches with their one-hot labels.
    ///
    /// ```
    /// use convlab::augment::ImageDataGenerator;
    /// let x = ndarray::Array4::<f32>::zeros((10, 3, 32, 32));
    /// let y = convlab::cifar::one_hot(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10);
    /// let datagen = ImageDataGenerator { horizontal_flip: true, ..Default::default() };
    /// let sizes: Vec<usize> = datagen.flow(&x, &y, 4, 0).map(|b| b.unwrap().0.len_of(ndarray::Axis(0))).collect();
    /// assert_eq!(sizes, [4, 4, 2]);
    /// ```
    pub fn flow<'a>(
        &'a self,
        x: &'a Array4<f32>,
        y: &'a Array2<f32>,
        batch_size: usize,
        seed: u64,
    ) -> Flow<'a> {
        let mut rng = Rng::new(seed);
        let mut order: Vec<usize> = (0..x.len_of(Axis(0))).collect();
        rng.shuffle(&mut order);
        Flow {
            datagen: self,
            x,
            y,
            order,
            at: 0,
            batch_size: batch_size.max(1),
            rng,
        }
    }
}

fn not_fitted() -> Error {
    Error::Value(
        "featurewise_center / featurewise_std_normalization need the training set's statistics: call datagen.fit(&x_train) first".into(),
    )
}

fn same_shape(stat: &Array3<f32>, picture: &ArrayViewMut3<f32>) -> Result<()> {
    if stat.dim() != picture.dim() {
        return Err(Error::Shape(format!(
            "datagen was fitted on pictures of shape {:?}, but this one is {:?}",
            stat.dim(),
            picture.dim()
        )));
    }
    Ok(())
}

/// Writes `picture` shifted and flipped by `t` into `out` (same shape): output pixel
/// `(r, k)` is input pixel `(r + dy, k + dx)` clamped to the edges (Keras's `fill_mode =
/// "nearest"`), then the flips mirror the result.
///
/// ```
/// use convlab::augment::{apply, Transform};
/// let row = ndarray::Array3::from_shape_vec((1, 1, 4), vec![1.0f32, 2.0, 3.0, 4.0])?;
/// let mut out = ndarray::Array3::zeros((1, 1, 4));
/// apply(row.view(), &Transform { dx: 1, ..Default::default() }, out.view_mut());
/// assert_eq!(out.as_slice().unwrap(), &[2.0, 3.0, 4.0, 4.0]);
/// # Ok::<(), ndarray::ShapeError>(())
/// ```
pub fn apply(picture: ArrayView3<f32>, t: &Transform, mut out: ArrayViewMut3<f32>) {
    let (_, h, w) = picture.dim();
    let src =
        |i: usize, d: i32, n: usize| (i as i64 + i64::from(d)).clamp(0, n as i64 - 1) as usize;
    let rows: Vec<usize> = (0..h)
        .map(|r| src(if t.flip_vertical { h - 1 - r } else { r }, t.dy, h))
        .collect();
    let cols: Vec<usize> = (0..w)
        .map(|k| src(if t.flip_horizontal { w - 1 - k } else { k }, t.dx, w))
        .collect();
    for (plane, mut target) in picture.outer_iter().zip(out.outer_iter_mut()) {
        for (r, &sr) in rows.iter().enumerate() {
            let from = plane.index_axis(Axis(0), sr);
            let mut to = target.index_axis_mut(Axis(0), r);
            for (k, &sk) in cols.iter().enumerate() {
                to[k] = from[sk];
            }
        }
    }
}

/// The batches of one pass of [`ImageDataGenerator::flow`]: `(pictures, one-hot labels)`.
pub struct Flow<'a> {
    datagen: &'a ImageDataGenerator,
    x: &'a Array4<f32>,
    y: &'a Array2<f32>,
    order: Vec<usize>,
    at: usize,
    batch_size: usize,
    rng: Rng,
}

impl Iterator for Flow<'_> {
    type Item = Result<(Array4<f32>, Array2<f32>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.order.len() {
            return None;
        }
        let end = (self.at + self.batch_size).min(self.order.len());
        let idx = &self.order[self.at..end];
        self.at = end;
        let x = match self.datagen.batch(self.x, idx, &mut self.rng) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let y = self.y.select(Axis(0), idx);
        Some(Ok((x, y)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    fn ramp() -> Array3<f32> {
        // 1 channel, 3×4: value = 10·row + column
        Array3::from_shape_fn((1, 3, 4), |(_, r, k)| (10 * r + k) as f32)
    }

    fn applied(t: Transform) -> Array3<f32> {
        let mut out = Array3::zeros((1, 3, 4));
        apply(ramp().view(), &t, out.view_mut());
        out
    }

    #[test]
    fn shift_right_and_down_by_hand() {
        // dx = -1: output column k takes input column k-1, the left edge repeats.
        let out = applied(Transform {
            dx: -1,
            ..Default::default()
        });
        assert_eq!(
            out.index_axis(Axis(0), 0),
            array![
                [0.0, 0.0, 1.0, 2.0],
                [10.0, 10.0, 11.0, 12.0],
                [20.0, 20.0, 21.0, 22.0]
            ]
        );
        // dy = 2: output row r takes input row r+2, the bottom row repeats.
        let out = applied(Transform {
            dy: 2,
            ..Default::default()
        });
        assert_eq!(
            out.index_axis(Axis(0), 0),
            array![
                [20.0, 21.0, 22.0, 23.0],
                [20.0, 21.0, 22.0, 23.0],
                [20.0, 21.0, 22.0, 23.0]
            ]
        );
    }

    #[test]
    fn flips_by_hand() {
        let out = applied(Transform {
            flip_horizontal: true,
            ..Default::default()
        });
        assert_eq!(
            out.index_axis(Axis(0), 0),
            array![
                [3.0, 2.0, 1.0, 0.0],
                [13.0, 12.0, 11.0, 10.0],
                [23.0, 22.0, 21.0, 20.0]
            ]
        );
        let out = applied(Transform {
            flip_vertical: true,
            ..Default::default()
        });
        assert_eq!(out[[0, 0, 1]], 21.0);
        // Shift first, then mirror: shifted row 0 is [1, 2, 3, 3], mirrored [3, 3, 2, 1].
        let out = applied(Transform {
            dx: 1,
            flip_horizontal: true,
            ..Default::default()
        });
        assert_eq!(
            out.index_axis(Axis(0), 0).row(0),
            array![3.0, 3.0, 2.0, 1.0]
        );
    }

    #[test]
    fn shift_draws_stay_within_range_and_cover_it() {
        let g = ImageDataGenerator::seed_settings();
        let mut rng = Rng::new(3);
        let mut seen_dx = std::collections::BTreeSet::new();
        let mut flips = 0;
        for _ in 0..4000 {
            let t = g.random_params(32, 32, &mut rng);
            assert!(
                t.dx.abs() <= 3 && t.dy.abs() <= 3,
                "{t:?}: 0.1·32 = 3.2 rounds to at most 3"
            );
            assert!(!t.flip_vertical);
            seen_dx.insert(t.dx);
            flips += usize::from(t.flip_horizontal);
        }
        assert_eq!(
            seen_dx.into_iter().collect::<Vec<_>>(),
            vec![-3, -2, -1, 0, 1, 2, 3]
        );
        assert!(
            (1800..2200).contains(&flips),
            "{flips} flips of 4000, expected about half"
        );
        let none = ImageDataGenerator::default();
        assert_eq!(none.random_params(32, 32, &mut rng), Transform::default());
    }

    #[test]
    fn rounding_matches_nearest_resampling() {
        assert_eq!(round_shift(0.49), 0);
        assert_eq!(round_shift(0.5), 1);
        assert_eq!(round_shift(-0.49), 0);
        assert_eq!(round_shift(-0.51), -1);
        assert_eq!(round_shift(3.2), 3);
        assert_eq!(round_shift(-3.2), -3);
    }

    #[test]
    fn fit_gives_the_mean_and_std_picture_by_hand() {
        // Two 1×1×2 pictures: pixel 0 takes 1 and 3 (mean 2, std 1), pixel 1 takes 5 and 5.
        let x = Array4::from_shape_vec((2, 1, 1, 2), vec![1.0f32, 5.0, 3.0, 5.0]).unwrap();
        let mut g = ImageDataGenerator {
            featurewise_center: true,
            featurewise_std_normalization: true,
            ..Default::default()
        };
        g.fit(&x).unwrap();
        assert_eq!(g.mean.as_ref().unwrap().as_slice().unwrap(), &[2.0, 5.0]);
        assert_eq!(g.std.as_ref().unwrap().as_slice().unwrap(), &[1.0, 0.0]);
        let z = g.standardize_all(&x).unwrap();
        assert!((z[[0, 0, 0, 0]] + 1.0).abs() < 1e-6);
        assert!((z[[1, 0, 0, 0]] - 1.0).abs() < 1e-6);
        assert_eq!(
            z[[0, 0, 0, 1]],
            0.0,
            "0 / (0 + 1e-7) = 0: no division by zero"
        );
    }

    #[test]
    fn samplewise_is_over_the_channels_of_each_pixel() {
        let g = ImageDataGenerator {
            samplewise_center: true,
            ..Default::default()
        };
        let mut p = Array3::from_shape_vec((2, 1, 1), vec![1.0f32, 3.0]).unwrap();
        g.standardize(p.view_mut()).unwrap();
        assert_eq!(p.as_slice().unwrap(), &[-1.0, 1.0]);
    }

    #[test]
    fn errors_say_what_to_fix() {
        let g = ImageDataGenerator::seed_settings();
        let mut p = Array3::<f32>::zeros((3, 32, 32));
        assert!(g
            .standardize(p.view_mut())
            .unwrap_err()
            .to_string()
            .contains("datagen.fit"));
        let mut r = ImageDataGenerator {
            rotation_range: 10.0,
            ..Default::default()
        };
        assert!(r
            .fit(&Array4::zeros((1, 3, 2, 2)))
            .unwrap_err()
            .to_string()
            .contains("rotation_range"));
    }

    #[test]
    fn flow_visits_every_picture_once_with_its_label() {
        // Picture i is constant i; label i one-hot. No augmentation: the batch keeps the value.
        let x = Array4::from_shape_fn((7, 1, 2, 2), |(i, _, _, _)| i as f32);
        let y = crate::cifar::one_hot(&[0, 1, 2, 3, 4, 5, 6], 7);
        let g = ImageDataGenerator {
            horizontal_flip: true,
            width_shift_range: 0.4,
            ..Default::default()
        };
        let mut seen = Vec::new();
        for batch in g.flow(&x, &y, 3, 9) {
            let (bx, by) = batch.unwrap();
            for (p, l) in bx.outer_iter().zip(by.outer_iter()) {
                let v = p[[0, 0, 0]];
                assert!(p.iter().all(|&q| q == v));
                assert_eq!(l[v as usize], 1.0, "labels travel with their pictures");
                seen.push(v as usize);
            }
        }
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }
}
