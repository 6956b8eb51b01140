//! One error type for the whole crate.
//!
//! Every error says what to fix: it names the file, the layer or the shapes involved.
//! In a notebook cell, end a fallible call with `?` and the message is printed while the
//! kernel keeps running.
//!
//! ```
//! use convlab::conv::convolve;
//! use ndarray::Array2;
//! let image = Array2::<f32>::zeros((2, 2));
//! let filter = Array2::<f32>::zeros((3, 3));
//! let err = convolve(&image, &filter).unwrap_err();
//! assert!(err.to_string().contains("3×3"));
//! ```

use std::path::PathBuf;

/// Everything that can go wrong in `convlab`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but is not a picture we can decode (or it is truncated).
    #[error("{path} is not a readable image: {reason}")]
    Decode { path: PathBuf, reason: String },
    /// Arrays whose shapes do not fit together.
    #[error("{0}")]
    Shape(String),
    /// Values that cannot be used (NaN, infinity, empty input).
    #[error("{0}")]
    Value(String),
    /// A download that failed or was cut off.
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    /// A file whose checksum is not the published one.
    #[error("{path} has {algorithm} {actual}, expected {expected}: the file is damaged or not the published one; delete it and fetch again")]
    Checksum {
        path: PathBuf,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    /// A data set or weight file with the wrong content.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// An error reported by libtorch.
    #[cfg(feature = "torch")]
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    #[cfg(feature = "torch")]
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
