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
use ndarray::{s, Array2, ArrayBase, ArrayViewD, Axis, Data, Dimension, Slice};
use std::mem::MaybeUninit;

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
    let products = patch * filter;
    Ok(products.sum())
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
            let mut window = image.view();
            window.slice_axis_inplace(Axis(0), Slice::from(x..x + filter_height));
            window.slice_axis_inplace(Axis(1), Slice::from(y..y + filter_width));
            // Then apply the convolution operation to it
            filtered_image[[x, y]] = multiply_sum(&window, filter)?;
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

/// The same numbers as [`convolve`], computed the other way round: one output row at a
/// time, each output pixel the sum of *weight × the image sample under it* over the filter's
/// weights, taken from whole image rows.
///
/// Read it after [`convolve`]; the heart of it is `correlate_pass`, eleven lines. For each output
/// row, the filter's weights that are not zero are taken nine at a time; each group is one
/// pass along the row that reads, for every output pixel, the nine samples under its nine
/// weights and adds their products to the pixel. The nine image rows are contiguous memory
/// and the sums stay in registers, so the compiler turns the pass into SIMD instructions (16
/// pixels per instruction with AVX-512) that write each output pixel once per nine weights,
/// instead of one small dot product per pixel. A colour image row (`R G B R G B …`) is used
/// as it is by `colour_pass`, the same pass with one weight per *sample*: the filter's
/// weights at a place, repeated channel after channel (`wR wG wB wR wG wB …`), leave each
/// pixel with one partial sum per channel, which are then added.
/// (The benchmarks also run it on several threads, each computing a band of output rows.)
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
    convolve_fast_on(image, filter, 1)
}

/// [`convolve_fast`] on `threads` threads, each computing a band of output rows
/// (`threads = 0`: as many as the machine has cores, but only one for a small convolution,
/// where starting a thread would cost more than it saves).
///
/// ```
/// use ndarray::Array2;
/// let image = Array2::<f32>::from_shape_fn((60, 50), |(i, j)| (i * j % 7) as f32);
/// let filter = convlab::filters::horizontal_edge();
/// let one = convlab::conv::convolve_fast(&image, &filter)?;
/// assert_eq!(convlab::conv::convolve_fast_threads(&image, &filter, 4)?, one);
/// # Ok::<(), convlab::Error>(())
/// ```
///
/// For benchmarks only (the `bench` feature): the notebooks load the crate without it.
#[cfg(feature = "bench")]
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
    convolve_fast_on(image, filter, threads)
}

// convolve_fast on `threads` threads (see convolve_fast_threads).
fn convolve_fast_on<S, T, D>(
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
    // Not zeroed first: every sample is written once.
    let mut out = Vec::with_capacity(out_h * out_w);
    let samples = &mut out.spare_capacity_mut()[..out_h * out_w];
    advise_huge_pages(samples);
    correlate_into(
        image.view().into_dyn(),
        filter.view().into_dyn(),
        samples,
        threads,
    )?;
    // SAFETY: `correlate_into` wrote every one of the out_h × out_w samples.
    unsafe { out.set_len(out_h * out_w) };
    Ok(Array2::from_shape_vec((out_h, out_w), out).expect("out_h × out_w samples"))
}

/// [`convolve_fast_threads`] into an output you already have, of the output's size (image
/// size − filter size + 1), like OpenCV's `dst`: no new picture is made, which saves the
/// memory a new one costs (on a large picture, a good part of the time) when the same
/// sizes are filtered again and again.
///
/// ```
/// use ndarray::Array2;
/// let image = Array2::<f32>::from_shape_fn((60, 50), |(i, j)| (i * j % 7) as f32);
/// let filter = convlab::filters::horizontal_edge();
/// let mut out = Array2::<f32>::zeros((58, 48));
/// convlab::conv::convolve_fast_into(&image, &filter, &mut out, 1)?;
/// assert_eq!(out, convlab::conv::convolve_fast(&image, &filter)?);
/// let mut wrong = Array2::<f32>::zeros((60, 50));
/// let e = convlab::conv::convolve_fast_into(&image, &filter, &mut wrong, 1).unwrap_err();
/// assert!(e.to_string().contains("60×50"), "{e}");
/// # Ok::<(), convlab::Error>(())
/// ```
///
/// For benchmarks only (the `bench` feature): the notebooks load the crate without it.
#[cfg(feature = "bench")]
pub fn convolve_fast_into<S, T, D>(
    image: &ArrayBase<S, D>,
    filter: &ArrayBase<T, D>,
    out: &mut Array2<f32>,
    threads: usize,
) -> Result<()>
where
    S: Data<Elem = f32>,
    T: Data<Elem = f32>,
    D: Dimension,
{
    let (out_h, out_w) = check_shapes(image, filter)?;
    if out.dim() != (out_h, out_w) {
        return Err(Error::Shape(format!(
            "the output is {} but a {} image filtered with a {} filter gives {out_h}×{out_w}",
            shape_str(out.shape()),
            shape_str(image.shape()),
            shape_str(filter.shape())
        )));
    }
    let samples = out.as_slice_mut().ok_or_else(|| {
        Error::Shape("the output must be in standard (row-major) layout".to_string())
    })?;
    // SAFETY: MaybeUninit<f32> has the layout of f32, and `correlate_into` writes only
    // initialised samples.
    let samples = unsafe { &mut *(samples as *mut [f32] as *mut [MaybeUninit<f32>]) };
    correlate_into(
        image.view().into_dyn(),
        filter.view().into_dyn(),
        samples,
        threads,
    )
}

/// The checks and the work of the fast convolution, writing every output sample into `out`
/// (`out_h × out_w`, already checked by the caller). One compiled copy serves every shape.
fn correlate_into(
    image: ArrayViewD<f32>,
    filter: ArrayViewD<f32>,
    out: &mut [MaybeUninit<f32>],
    threads: usize,
) -> Result<()> {
    let (out_h, out_w) = check_shapes(&image, &filter)?;
    if image.ndim() != filter.ndim() {
        return Err(Error::Shape(format!(
            "the image is {} but the filter is {}: give both a channel axis or neither",
            shape_str(image.shape()),
            shape_str(filter.shape())
        )));
    }
    // The image as rows of W·C samples (a copy only when it is not in standard layout).
    let samples = image.as_standard_layout();
    let job = Correlation::new(
        samples.as_slice().expect("standard layout"),
        image.shape()[1],
        &filter,
    );
    let threads = match threads {
        0 => job.threads_worth_starting(out_h * out_w),
        n => n,
    };
    let finite = job.run(out, out_h, out_w, threads);
    if !finite || !job.border_finite() || !filter.iter().all(|w| w.is_finite()) {
        check_finite(&image, &filter)?;
    }
    Ok(())
}

impl<'a> Correlation<'a> {
    /// The filter's places that hold a weight other than zero, each with its weights for
    /// every channel, over `image`'s rows of `width` pixels (the channels of the filter's
    /// last axis, or one).
    fn new<T, D>(image: &'a [f32], width: usize, filter: &ArrayBase<T, D>) -> Self
    where
        T: Data<Elem = f32>,
        D: Dimension,
    {
        let shape = filter.shape();
        let (kh, kw) = (shape[0], shape[1]);
        let channels = if shape.len() == 3 { shape[2] } else { 1 };
        let weights = filter.as_standard_layout();
        let weights = weights
            .view()
            .into_shape_with_order((kh, kw, channels))
            .expect("H×W×C");
        let places = (0..kh).flat_map(|i| (0..kw).map(move |j| (i, j)));
        let taps = places
            .map(|(i, j)| Tap {
                row: i,
                column: j,
                weights: weights.slice(s![i, j, ..]).to_vec(),
            })
            .filter(|tap| tap.weights.iter().any(|&w| w != 0.0))
            .collect();
        Correlation {
            image,
            width,
            channels,
            filter_height: kh,
            filter_width: kw,
            taps,
        }
    }

    /// Whether the image samples that may meet only zero weights are finite: those less than
    /// kh − 1 rows or kw − 1 columns from the border. Every other sample meets every weight,
    /// and one that is NaN or infinite makes an output non-finite through any weight that
    /// is not zero, which [`Correlation::run`] notices.
    fn border_finite(&self) -> bool {
        if self.taps.is_empty() {
            return all_finite(self.image); // an all-zero filter: no sample reaches an output
        }
        let row_len = self.width * self.channels;
        let rows: Vec<&[f32]> = self.image.chunks_exact(row_len).collect();
        let (band, edge) = (
            self.filter_height - 1,
            (self.filter_width - 1) * self.channels,
        );
        let mut top_and_bottom = rows[..band].iter().chain(&rows[rows.len() - band..]);
        top_and_bottom.all(|row| all_finite(row))
            && rows
                .iter()
                .all(|row| all_finite(&row[..edge]) && all_finite(&row[row_len - edge..]))
    }

    /// As many threads as the machine has cores, but no more than one per 2 million
    /// multiply-adds: a thread takes tens of microseconds to start.
    fn threads_worth_starting(&self, outputs: usize) -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(outputs * self.taps.len() * self.channels / (1 << 21) + 1)
    }

    /// Writes the `out_h × out_w` output on `threads` threads, each a band of rows; returns
    /// whether every output sample is finite.
    fn run(
        &self,
        out: &mut [MaybeUninit<f32>],
        out_h: usize,
        out_w: usize,
        threads: usize,
    ) -> bool {
        // Band b covers output rows b·band and on; the first band runs on this thread.
        let band = out_h.div_ceil(threads.clamp(1, out_h));
        let finite = std::thread::scope(|scope| {
            let mut bands = out.chunks_mut(band * out_w).enumerate();
            let (_, first) = bands.next().expect("one band at least");
            let workers: Vec<_> = bands
                .map(|(b, part)| scope.spawn(move || correlate_rows(self, b * band, part, out_w)))
                .collect();
            let here = correlate_rows(self, 0, first, out_w);
            workers
                .into_iter()
                .map(|w| w.join().expect("a convolution thread"))
                .fold(here, |all, finite| all && finite)
        });
        finite
    }
}

/// Asks Linux to back a large output with 2 MB pages, as NumPy does for its arrays:
/// writing 64 MB then takes 32 page faults instead of 16,384, which on a virtual machine
/// can cost more than the convolution itself. Advice only: the values do not change.
fn advise_huge_pages<T>(samples: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        const MADV_HUGEPAGE: std::ffi::c_int = 14;
        extern "C" {
            fn madvise(
                addr: *mut std::ffi::c_void,
                len: usize,
                advice: std::ffi::c_int,
            ) -> std::ffi::c_int;
        }
        let start = (samples.as_ptr() as usize).next_multiple_of(HUGE_PAGE);
        let end =
            (samples.as_ptr() as usize + std::mem::size_of_val(samples)) / HUGE_PAGE * HUGE_PAGE;
        if end >= start + 2 * HUGE_PAGE {
            // SAFETY: the range lies inside `samples`, and the advice changes no value (the
            // kernel may also ignore it, with an error that changes nothing).
            unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE) };
        }
    }
}

/// A correlation as plain slices: the image's rows of `width × channels` samples, and the
/// filter's places that hold a weight other than zero.
struct Correlation<'a> {
    image: &'a [f32],
    width: usize,
    channels: usize,
    filter_height: usize,
    filter_width: usize,
    taps: Vec<Tap>,
}

/// A place (`row` i, `column` j) of the filter where a weight is not zero, and the filter's
/// weights there, one per channel: they multiply the image row i below the output row, from
/// pixel j on.
struct Tap {
    row: usize,
    column: usize,
    weights: Vec<f32>,
}

/// Output rows, side by side, that [`correlate_rows`] writes (not read before it writes them).
type OutRows<'o> = &'o mut [MaybeUninit<f32>];

/// How many weights one pass along a grey output row takes: a 3×3 filter's nine in one
/// pass, with the nine sums' samples and weights in registers.
const GROUP: usize = 9;

/// How many places of the filter one colour pass takes: each brings [`CHUNK`] weights,
/// which must fit in registers too.
const COLOUR_GROUP: usize = 5;

/// The samples of a colour row that a colour pass computes at once: 48 holds whole pixels
/// of 2, 3 or 4 channels (16 pixels of 3), three AVX-512 registers.
const CHUNK: usize = 48;

/// The pixels of a colour output row whose partial sums are kept at a time (12 kB for 3
/// channels, within the processor's first-level cache).
const STRETCH: usize = 1024;

/// The output rows from row `first` on, written into `out` (rows of `width` pixels, every
/// sample written); returns whether every output sample is finite.
///
/// The same loops are compiled three times: for processors with AVX-512 or with AVX2 and
/// fused multiply-add (the choice is made when the program runs) and for any other, as the
/// crate is built by default.
fn correlate_rows(job: &Correlation, first: usize, out: OutRows, width: usize) -> bool {
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
fn correlate_rows_avx512(job: &Correlation, first: usize, out: OutRows, width: usize) -> bool {
    correlate_rows_with::<true>(job, first, out, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn correlate_rows_avx2(job: &Correlation, first: usize, out: OutRows, width: usize) -> bool {
    correlate_rows_with::<true>(job, first, out, width)
}

/// [`correlate_rows`] with (`FMA`) or without fused multiply-add.
#[inline(always)]
fn correlate_rows_with<const FMA: bool>(
    job: &Correlation,
    first: usize,
    out: OutRows,
    width: usize,
) -> bool {
    match job.channels {
        1 => {}
        2 => return correlate_colour_rows::<FMA, 2>(job, first, out, width),
        3 => return correlate_colour_rows::<FMA, 3>(job, first, out, width),
        4 => return correlate_colour_rows::<FMA, 4>(job, first, out, width),
        _ => return correlate_rows_plain(job, first, out, width),
    }
    let w = job.width;
    let mut finite = true;
    for (y, out_row) in (first..).zip(out.chunks_exact_mut(width)) {
        // The image row under a tap, from its column on.
        let under = |tap: &Tap| &job.image[(y + tap.row) * w + tap.column..];
        correlate_row::<FMA>(out_row, &job.taps, under);
        // SAFETY: `correlate_row` wrote every sample of the row.
        let out_row = unsafe { &*(out_row as *const [MaybeUninit<f32>] as *const [f32]) };
        finite &= all_finite(out_row);
    }
    finite
}

/// Whether no sample is a NaN or an infinity: without its sign bit, a finite sample's bits
/// are below those of infinity. A loop the compiler vectorises (a running maximum).
#[inline(always)]
fn all_finite(samples: &[f32]) -> bool {
    let largest = samples
        .iter()
        .fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    largest < f32::INFINITY.to_bits()
}

/// One grey output row: the weights nine at a time, each group one [`correlate_pass`] (the
/// first writes the row, the others add to it). `under(tap)` is the image row under the
/// tap, from its column on.
#[inline(always)]
fn correlate_row<'a, const FMA: bool>(
    out: &mut [MaybeUninit<f32>],
    taps: &[Tap],
    under: impl Fn(&Tap) -> &'a [f32],
) {
    if taps.is_empty() {
        out.fill(MaybeUninit::new(0.0)); // an all-zero filter
    }
    for (g, group) in taps.chunks(GROUP).enumerate() {
        let add = g > 0;
        // One compiled pass per group size, so that its samples and weights fit in registers.
        macro_rules! pass {
            ($($n:literal)*) => {
                match group.len() {
                    $($n => correlate_pass::<$n, FMA>(out, group.try_into().expect("n taps"), &under, add),)*
                    _ => unreachable!("groups of 1 to {GROUP} weights"),
                }
            };
        }
        pass!(1 2 3 4 5 6 7 8 9);
    }
}

/// The heart of the fast convolution: one pass along a grey output row for `N` weights,
/// each output pixel `out[x] (+)= Σₖ weightₖ × sampleₖ[x]`, where `sampleₖ` is the image
/// row under tap k from its column on. The `N` samples of a pixel are side by side with
/// those of its neighbours, so the compiler computes 16 pixels per instruction (AVX-512),
/// their sums in registers.
#[inline(always)]
fn correlate_pass<'a, const N: usize, const FMA: bool>(
    out: &mut [MaybeUninit<f32>],
    taps: &[Tap; N],
    under: impl Fn(&Tap) -> &'a [f32],
    add: bool,
) {
    let width = out.len();
    let samples: [&[f32]; N] = std::array::from_fn(|k| &under(&taps[k])[..width]);
    let weights: [f32; N] = std::array::from_fn(|k| taps[k].weights[0]);
    for (x, o) in out.iter_mut().enumerate() {
        // SAFETY: when `add`, an earlier pass wrote every sample of the row.
        let mut sum = if add { unsafe { o.assume_init() } } else { 0.0 };
        for k in 0..N {
            sum = multiply_add::<FMA>(weights[k], samples[k][x], sum);
        }
        o.write(sum);
    }
}

/// A place of a colour filter for [`colour_pass`]: its weights repeated over a [`CHUNK`] of
/// samples (`wR wG wB wR wG wB …`), and where its samples start in an image row.
struct ColourTap {
    row: usize,
    start: usize,
    weights: [f32; CHUNK],
}

/// The output rows of a colour image with `C` channels (2, 3 or 4), [`STRETCH`] pixels at a
/// time. The image row is used as it is, `R G B R G B …`: each [`colour_pass`] adds, for
/// every sample, its own channel's weight times the sample, which leaves one partial sum
/// per sample, `C` per pixel; the output pixel is the sum of its `C` partial sums.
#[inline(always)]
fn correlate_colour_rows<const FMA: bool, const C: usize>(
    job: &Correlation,
    first: usize,
    out: OutRows,
    width: usize,
) -> bool {
    let taps: Vec<ColourTap> = (job.taps.iter())
        .map(|tap| ColourTap {
            row: tap.row,
            start: tap.column * C,
            weights: std::array::from_fn(|p| tap.weights[p % C]),
        })
        .collect();
    let row = |y: usize| &job.image[y * job.width * C..][..job.width * C];
    let mut sums = vec![0.0f32; STRETCH * C];
    let mut finite = true;
    for (y, out_row) in (first..).zip(out.chunks_exact_mut(width)) {
        for (s, out) in out_row.chunks_mut(STRETCH).enumerate() {
            let from = s * STRETCH * C; // the stretch's first sample
            let sums = &mut sums[..out.len() * C];
            if taps.is_empty() {
                sums.fill(0.0); // an all-zero filter
            }
            for (g, group) in taps.chunks(COLOUR_GROUP).enumerate() {
                let under = |tap: &ColourTap| &row(y + tap.row)[from + tap.start..];
                let add = g > 0;
                macro_rules! pass {
                    ($($n:literal)*) => {
                        match group.len() {
                            $($n => colour_pass::<$n, FMA>(sums, group.try_into().expect("n taps"), under, add),)*
                            _ => unreachable!("groups of 1 to {COLOUR_GROUP} places"),
                        }
                    };
                }
                pass!(1 2 3 4 5);
            }
            for (o, pixel) in out.iter_mut().zip(sums.as_chunks::<C>().0) {
                o.write(pixel.iter().sum());
            }
        }
        // SAFETY: every sample of the row was written just above.
        let out_row = unsafe { &*(out_row as *const [MaybeUninit<f32>] as *const [f32]) };
        finite &= all_finite(out_row);
    }
    finite
}

/// The colour pass: `sums[p] (+)= Σₖ weightₖ[p] × sampleₖ[p]` for every sample p of the
/// stretch, where `sampleₖ` is the image row under tap k and `weightₖ` its weights repeated
/// channel after channel. Every [`CHUNK`] samples meet the same `N × CHUNK` weights, so the
/// compiler keeps them in registers and computes 16 samples per instruction, as in the grey
/// pass.
#[inline(always)]
fn colour_pass<'a, const N: usize, const FMA: bool>(
    sums: &mut [f32],
    taps: &[ColourTap; N],
    under: impl Fn(&ColourTap) -> &'a [f32],
    add: bool,
) {
    let len = sums.len();
    let samples: [&[f32]; N] = std::array::from_fn(|k| &under(&taps[k])[..len]);
    let weights: [[f32; CHUNK]; N] = std::array::from_fn(|k| taps[k].weights);
    let (chunks, rest) = sums.as_chunks_mut::<CHUNK>();
    for (n, chunk) in chunks.iter_mut().enumerate() {
        let samples: [&[f32; CHUNK]; N] = std::array::from_fn(|k| {
            samples[k][n * CHUNK..][..CHUNK]
                .try_into()
                .expect("CHUNK samples")
        });
        for p in 0..CHUNK {
            let mut sum = if add { chunk[p] } else { 0.0 };
            for k in 0..N {
                sum = multiply_add::<FMA>(weights[k][p], samples[k][p], sum);
            }
            chunk[p] = sum;
        }
    }
    let done = chunks.len() * CHUNK;
    for (p, slot) in rest.iter_mut().enumerate() {
        let mut sum = if add { *slot } else { 0.0 };
        for k in 0..N {
            sum = multiply_add::<FMA>(weights[k][p], samples[k][done + p], sum);
        }
        *slot = sum;
    }
}

/// Images with more than 4 channels, rare in this course: each output pixel the sum over
/// the filter's places and channels, one at a time (no vector instructions).
fn correlate_rows_plain(job: &Correlation, first: usize, out: OutRows, width: usize) -> bool {
    let c = job.channels;
    let mut finite = true;
    for (y, out_row) in (first..).zip(out.chunks_exact_mut(width)) {
        for (x, o) in out_row.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for tap in &job.taps {
                let pixel = &job.image[((y + tap.row) * job.width + x + tap.column) * c..][..c];
                sum += (tap.weights.iter().zip(pixel))
                    .map(|(w, s)| w * s)
                    .sum::<f32>();
            }
            finite &= sum.is_finite();
            o.write(sum);
        }
    }
    finite
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
        let taps: Vec<Tap> = (0..5 * 4)
            .map(|t| Tap {
                row: t / 4,
                column: t % 4,
                weights: (0..3)
                    .map(|c| ((t * 3 + c) * 7 % 11) as f32 / 5.0 - 1.0)
                    .collect(),
            })
            .collect();
        let job = Correlation {
            image: &image,
            width: 33,
            channels: 3,
            filter_height: 5,
            filter_width: 4,
            taps,
        };
        let (rows, width) = (40 - 5 + 1, 33 - 4 + 1);
        let mut portable = vec![MaybeUninit::new(f32::NAN); rows * width];
        let mut dispatched = portable.clone();
        assert!(correlate_rows_with::<false>(&job, 0, &mut portable, width));
        assert!(correlate_rows(&job, 0, &mut dispatched, width));
        // SAFETY: every sample was initialised (to NaN, before the rows were written).
        let [portable, dispatched] = [portable, dispatched].map(|v| {
            v.iter()
                .map(|s| unsafe { s.assume_init() })
                .collect::<Vec<f32>>()
        });
        assert!(
            portable.iter().chain(&dispatched).all(|s| s.is_finite()),
            "a row not written"
        );
        let diff: f32 = portable
            .iter()
            .zip(&dispatched)
            .map(|(a, b)| (a - b).abs())
            .sum();
        let size: f32 = dispatched.iter().map(|a| a.abs()).sum();
        assert!(size > 0.0 && diff / size < 1e-6, "{diff} / {size}");
    }
}
