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
use ndarray::{Array2, ArrayBase, Axis, Data, Dimension, Slice};

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
    let size = check_shapes(image, filter)?;
    check_finite(image, filter)?;
    Ok(size)
}

/// The shape checks of [`output_size`], without the pass over the values.
fn check_shapes<S, T, D>(
    image: &ArrayBase<S, D>,
    filter: &ArrayBase<T, D>,
) -> Result<(usize, usize)>
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

/// An error naming the first NaN or infinite value of the image or the filter, if any.
fn check_finite<S, T, D>(image: &ArrayBase<S, D>, filter: &ArrayBase<T, D>) -> Result<()>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
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
    Ok(())
}

/// The same numbers as [`convolve`], computed the other way round: for each output row and
/// each filter weight, add *weight × the image row under it* to the whole output row.
///
/// Read it after [`convolve`]; the heart of it is `correlate_row`, ten lines. Each pass is a
/// run of multiply-adds over contiguous memory, which the compiler turns into SIMD
/// instructions (16 pixels per instruction with AVX-512), instead of one small dot product
/// per pixel; the output row stays in the processor's fastest cache, and weights that are
/// zero are skipped. A colour image row (`R G B R G B …`) is first split into one row per
/// channel (`R R R …`, `G G G …`), so that the same loop serves every channel.
/// [`convolve_fast_threads`] shares the rows out between threads.
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
    convolve_fast_threads(image, filter, 1)
}

/// [`convolve_fast`] on `threads` threads, each computing a band of output rows
/// (`threads = 0`: as many as the machine has cores).
///
/// ```
/// use ndarray::Array2;
/// let image = Array2::<f32>::from_shape_fn((60, 50), |(i, j)| (i * j % 7) as f32);
/// let filter = convlab::filters::horizontal_edge();
/// let one = convlab::conv::convolve_fast(&image, &filter)?;
/// assert_eq!(convlab::conv::convolve_fast_threads(&image, &filter, 4)?, one);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn convolve_fast_threads<S, T, D>(
    image: &ArrayBase<S, D>,
    filter: &ArrayBase<T, D>,
    threads: usize,
) -> Result<Array2<f32>>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    let (out_h, out_w) = check_shapes(image, filter)?;
    if image.ndim() != filter.ndim() {
        return Err(Error::Shape(format!(
            "the image is {} but the filter is {}: give both a channel axis or neither",
            shape_str(image.shape()),
            shape_str(filter.shape())
        )));
    }
    let channels = if image.ndim() == 3 {
        image.shape()[2]
    } else {
        1
    };
    // The filter channel by channel (kh × C rows of kw weights); the image as rows of
    // W·C samples, a copy only when it is not in standard layout.
    let (kh, kw) = (filter.shape()[0], filter.shape()[1]);
    let weights: Vec<f32> = if channels == 1 {
        filter.iter().copied().collect()
    } else {
        let f = filter
            .view()
            .into_shape_with_order((kh, kw, channels))
            .expect("3-D");
        f.permuted_axes([0, 2, 1]).iter().copied().collect()
    };
    let samples = image.as_standard_layout();
    let job = Correlation {
        image: samples.as_slice().expect("standard layout"),
        width: image.shape()[1],
        channels,
        weights: &weights,
        filter_width: kw,
    };
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let band = out_h.div_ceil(threads.clamp(1, out_h));
    let mut out = Array2::<f32>::zeros((out_h, out_w));
    let mut bands: Vec<(usize, &mut [f32])> = out
        .as_slice_mut()
        .expect("a new array")
        .chunks_mut(band * out_w)
        .enumerate()
        .map(|(b, rows)| (b * band, rows))
        .collect();
    let finite = match bands.as_mut_slice() {
        [(first, rows)] => correlate_rows(&job, *first, rows, out_w),
        _ => std::thread::scope(|scope| {
            let job = &job;
            let workers: Vec<_> = bands
                .into_iter()
                .map(|(first, rows)| scope.spawn(move || correlate_rows(job, first, rows, out_w)))
                .collect();
            let done: Vec<bool> = workers
                .into_iter()
                .map(|w| w.join().expect("a convolution thread"))
                .collect();
            done.into_iter().all(|finite| finite)
        }),
    };
    if !finite || !weights.iter().all(|w| w.is_finite()) {
        check_finite(image, filter)?;
    }
    Ok(out)
}

/// A correlation as plain slices: the image's rows of `width × channels` samples, and the
/// filter's weights channel by channel (`weights[(i·C + c)·kw + j]` is row i, column j,
/// channel c).
struct Correlation<'a> {
    image: &'a [f32],
    width: usize,
    channels: usize,
    weights: &'a [f32],
    filter_width: usize,
}

/// Output rows `first, first + 1, …` into `out` (whole rows of `width` pixels); returns
/// whether every image sample read is finite.
///
/// The same loops are compiled three times: for processors with AVX-512 or with AVX2 and
/// fused multiply-add (the choice is made when the program runs) and for any other, as the
/// crate is built by default.
fn correlate_rows(job: &Correlation, first: usize, out: &mut [f32], width: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
            // SAFETY: the processor has these instructions (checked just above).
            return unsafe { correlate_rows_avx512(job, first, out, width) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { correlate_rows_avx2(job, first, out, width) };
        }
    }
    correlate_rows_with::<false>(job, first, out, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn correlate_rows_avx512(job: &Correlation, first: usize, out: &mut [f32], width: usize) -> bool {
    correlate_rows_with::<true>(job, first, out, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn correlate_rows_avx2(job: &Correlation, first: usize, out: &mut [f32], width: usize) -> bool {
    correlate_rows_with::<true>(job, first, out, width)
}

/// [`correlate_rows`] with (`FMA`) or without fused multiply-add.
#[inline(always)]
fn correlate_rows_with<const FMA: bool>(
    job: &Correlation,
    first: usize,
    out: &mut [f32],
    width: usize,
) -> bool {
    let (w, channels) = (job.width, job.channels);
    let kh = job.weights.len() / (job.filter_width * channels);
    let row = |y: usize| &job.image[y * w * channels..][..w * channels];
    // A colour row is split into one row per channel (R R R …, G G G …) once, into a ring
    // that holds the kh latest image rows; a grey image is used as it is.
    let mut ring = vec![0.0f32; if channels == 1 { 0 } else { kh * channels * w }];
    let mut finite = true;
    for (r, out_row) in out.chunks_exact_mut(width).enumerate() {
        let y = first + r;
        let new_rows = if r == 0 {
            y..y + kh
        } else {
            y + kh - 1..y + kh
        };
        for y in new_rows {
            finite &= row(y).iter().fold(true, |ok, v| ok & v.is_finite());
            if channels > 1 {
                split_channels(
                    row(y),
                    &mut ring[(y % kh) * channels * w..][..channels * w],
                    channels,
                );
            }
        }
        // One image row per filter row and channel, in the order of the weights.
        let lines: Vec<&[f32]> = (0..kh)
            .flat_map(|i| (0..channels).map(move |c| (i, c)))
            .map(|(i, c)| match channels {
                1 => row(y + i),
                _ => &ring[((y + i) % kh * channels + c) * w..][..w],
            })
            .collect();
        correlate_row::<FMA>(out_row, &lines, job);
    }
    finite
}

/// Copies the interleaved samples of one image row (R G B R G B …) into one row per
/// channel (R R R …, G G G …, B B B …).
#[inline(always)]
fn split_channels(interleaved: &[f32], planes: &mut [f32], channels: usize) {
    match channels {
        2 => split_channels_of::<2>(interleaved, planes),
        3 => split_channels_of::<3>(interleaved, planes),
        4 => split_channels_of::<4>(interleaved, planes),
        _ => {
            let width = planes.len() / channels;
            for (x, pixel) in interleaved.chunks_exact(channels).enumerate() {
                for (c, &sample) in pixel.iter().enumerate() {
                    planes[c * width + x] = sample;
                }
            }
        }
    }
}

/// [`split_channels`] for `C` channels: one pass per channel, which the compiler vectorises.
#[inline(always)]
fn split_channels_of<const C: usize>(interleaved: &[f32], planes: &mut [f32]) {
    let pixels = interleaved.as_chunks::<C>().0;
    for (c, plane) in planes.chunks_exact_mut(pixels.len()).enumerate() {
        for (sample, pixel) in plane.iter_mut().zip(pixels) {
            *sample = pixel[c];
        }
    }
}

/// One output row: for each filter weight (but those that are zero), add the weight times
/// the image row under it, shifted by the weight's column, to the whole output row. The row
/// stays in the L1 cache, and the loop runs over contiguous memory, which the compiler turns
/// into SIMD instructions (16 pixels at a time with AVX-512).
#[inline(always)]
fn correlate_row<const FMA: bool>(out: &mut [f32], lines: &[&[f32]], job: &Correlation) {
    let width = out.len();
    out.fill(0.0);
    for (line, weights) in lines.iter().zip(job.weights.chunks_exact(job.filter_width)) {
        for (j, &weight) in weights.iter().enumerate() {
            if weight != 0.0 {
                for (o, &sample) in out.iter_mut().zip(&line[j..j + width]) {
                    *o = multiply_add::<FMA>(weight, sample, *o);
                }
            }
        }
    }
}

/// `sum + weight × sample`, rounded once (`FMA`) or twice: a fused multiply-add is one
/// instruction where the processor has it, and a slow library call where it does not.
#[inline(always)]
fn multiply_add<const FMA: bool>(weight: f32, sample: f32, sum: f32) -> f32 {
    if FMA {
        weight.mul_add(sample, sum)
    } else {
        sum + weight * sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable loops (for processors without fused multiply-add, which this one may
    /// never take) against the ones chosen at run time: the same numbers up to rounding.
    #[test]
    fn portable_loops_agree_with_the_dispatched_ones() {
        let image: Vec<f32> = (0..40 * 33 * 3).map(|i| ((i * 37) % 255) as f32).collect();
        let weights: Vec<f32> = (0..5 * 4 * 3)
            .map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0)
            .collect();
        let job = Correlation {
            image: &image,
            width: 33,
            channels: 3,
            weights: &weights,
            filter_width: 4,
        };
        let (rows, width) = (40 - 5 + 1, 33 - 4 + 1);
        let (mut portable, mut dispatched) = (vec![0.0; rows * width], vec![0.0; rows * width]);
        assert!(correlate_rows_with::<false>(&job, 0, &mut portable, width));
        assert!(correlate_rows(&job, 0, &mut dispatched, width));
        let diff: f32 = portable
            .iter()
            .zip(&dispatched)
            .map(|(a, b)| (a - b).abs())
            .sum();
        let size: f32 = dispatched.iter().map(|a| a.abs()).sum();
        assert!(size > 0.0 && diff / size < 1e-6, "{diff} / {size}");
    }
}
