//! The filters of Learning Activities 3 and 4, by name.
//!
//! ```
//! let f = convlab::filters::horizontal_edge();
//! assert_eq!(f.sum(), 0.0);
//! assert_eq!(convlab::filters::vertical_edge(), f.t().to_owned());
//! ```

use ndarray::{array, Array2, Array3};

/// The first filter of LA3: an outline (Laplacian-like) detector that answers wherever the
/// brightness changes, in any direction, and gives 0 on flat regions.
pub fn outline() -> Array2<f32> {
    array![[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]
}

/// The quiz's `[[1, 1, 1], [0, 0, 0], [-1, -1, -1]]`: bright above, dark below gives a
/// large positive answer, so it detects horizontal edges.
pub fn horizontal_edge() -> Array2<f32> {
    array![[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]]
}

/// The transpose of [`horizontal_edge`]: bright left, dark right; detects vertical edges.
pub fn vertical_edge() -> Array2<f32> {
    horizontal_edge().t().to_owned()
}

/// The seed's brown filter exactly as printed there, colour channel first: `(3, 3, 3)` =
/// (channel, row, column). Channel 0 weighs red, 1 green, 2 blue.
// The digits are the seed's, kept as printed there.
#[allow(clippy::excessive_precision)]
pub fn brown_channel_first() -> Array3<f32> {
    array![
        [
            [0.13871045, 0.17157242, 0.12934428],
            [0.16168842, 0.20229845, 0.14835016],
            [0.135694, 0.16206263, 0.11727387]
        ],
        [
            [0.04231958, 0.05471011, 0.03167877],
            [0.0462575, 0.06581022, 0.03104937],
            [0.04185439, 0.04734124, 0.02087744]
        ],
        [
            [-0.15704881, -0.16666673, -0.16600266],
            [-0.17439997, -0.17757156, -0.18760149],
            [-0.15435153, -0.17037505, -0.17269668]
        ]
    ]
}

/// Moves the channel axis of a channel-first filter `(C, kh, kw)` last, `(kh, kw, C)`,
/// the layout of our images (NumPy's `transpose(1, 2, 0)`).
///
/// ```
/// let b = convlab::filters::channel_last(&convlab::filters::brown_channel_first());
/// assert_eq!(b[[1, 1, 0]], 0.20229845); // centre weight of the red channel
/// ```
pub fn channel_last(filter: &Array3<f32>) -> Array3<f32> {
    filter
        .view()
        .permuted_axes([1, 2, 0])
        .as_standard_layout()
        .to_owned()
}

/// The brown filter with its channel last, ready for [`convolve`](crate::conv::convolve)
/// on an `(H, W, 3)` picture.
pub fn brown() -> Array3<f32> {
    channel_last(&brown_channel_first())
}
