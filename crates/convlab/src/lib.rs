//! # convlab — the helper crate of the "Module 2: Convolutions" notebooks
//!
//! One module per idea of the course:
//!
//! | module | learning activity | what it gives |
//! |---|---|---|
//! | [`data`] | setup | the course pictures, fetched and checked |
//! | [`image`] | LA2 | pictures as grey or colour arrays |
//! | [`conv`] | LA3–LA4 | `multiply_sum`, `convolve` and its fast twin |
//! | [`filters`] | LA3–LA4 | the edge and brown filters |
//! | [`display`] | all | pictures inline, side by side, on a grid, enlarged or shrunk; pixel tables |
//! | [`vis_square`] | LA14 | many small pictures tiled on a grid |
//! | [`plot`] | LA13– | line, bar and confusion charts |
//! | [`device`] | LA5– | CUDA when present, else the CPU |
//! | [`fetch`] | setup | checked, resumable downloads |
//! | [`tensor`] | LA5– | arrays ↔ tensors, in one place |
//! | [`sequential`] | LA5–LA17 | the one sequential model: named layers, kinds, shapes, any layer's output |
//! | [`summary`] | LA6, LA16 | Keras's `model.summary()` table |
//! | [`vgg`] | LA5–LA14 | VGG-16's layout and the Keras-style builder (re-exports what the notebook uses) |
//! | [`weights`] | LA11 | VGG-16's weight files: fetch, convert, load with clear errors |
//! | [`preprocess`] | LA12 | a picture as VGG-16's input (Caffe or torchvision) |
//! | [`imagenet`] | LA13 | the 1000 labels, top-k guesses, their chart |
//! | [`inspect`] | LA14 | filters and activations as pictures |
//! | [`cifar`] | LA15 | the CIFAR-10 binary batches: fetch, read, show |
//! | [`keras`] | LA16 | Keras 1's convolution and dense layers, Glorot initialisation |
//! | [`sgd`] | LA17 | Keras 1's SGD with decay and Nesterov momentum |
//! | [`augment`] | LA18 | Keras's `ImageDataGenerator`: normalisation, shifts, flips |
//! | [`train`] | LA16–LA18 | the seed's CIFAR-10 model, the training loop, evaluation, predictions (re-exports the notebook's names) |
//! | [`train::checkpoint`] | LA17 | checkpoints that resume only the same run: the run's record (serde) and weights (`VarStore::save`) |
//!
//! In a notebook:
//!
//! ```text
//! :dep convlab = { path = "../crates/convlab" }
//! use convlab::prelude::*;
//! ```
//!
//! The modules on libtorch (those from `device` down in the table, but `fetch`) and the
//! `tch` re-export come with the default feature `torch`. Notebook 1 needs none of them and
//! loads the crate with `default-features = false`: its cells then compile against ndarray,
//! image and plotters only, which makes them about a third quicker.
//!
//! ```
//! use convlab::prelude::*;
//! use convlab::conv::convolve;
//! let image = Array2::<f32>::from_shape_fn((5, 5), |(r, _)| if r < 2 { 255.0 } else { 0.0 });
//! let edges = convolve(&image, &filters::horizontal_edge())?;
//! assert_eq!(edges.dim(), (3, 3));
//! assert_eq!(edges[[0, 0]], 255.0 * 3.0);
//! # Ok::<(), convlab::Error>(())
//! ```

#[cfg(feature = "torch")]
pub mod augment;
#[cfg(feature = "torch")]
pub mod cifar;
pub mod conv;
pub mod data;
#[cfg(feature = "torch")]
pub mod device;
pub mod display;
pub mod error;
pub mod fetch;
pub mod filters;
pub mod image;
#[cfg(feature = "torch")]
pub mod imagenet;
#[cfg(feature = "torch")]
pub mod inspect;
#[cfg(feature = "torch")]
pub mod keras;
pub mod plot;
#[cfg(feature = "torch")]
pub mod preprocess;
#[cfg(feature = "torch")]
pub mod sequential;
#[cfg(feature = "torch")]
pub mod sgd;
#[cfg(feature = "torch")]
pub mod summary;
#[cfg(feature = "torch")]
pub mod tensor;
#[cfg(feature = "torch")]
pub mod train;
#[cfg(feature = "torch")]
pub mod vgg;
pub mod vis_square;
#[cfg(feature = "torch")]
pub mod weights;

pub use error::{Error, Result};
/// The array crate, re-exported so that notebooks need only `:dep convlab`.
pub use ndarray;
/// The libtorch bindings, re-exported for the same reason.
#[cfg(feature = "torch")]
pub use tch;

/// Everything a notebook cell usually needs, in one `use`.
pub mod prelude {
    pub use crate::display::{print_region, show, show_row, show_titled, Picture};
    pub use crate::filters;
    pub use crate::image::{load_colour, load_grey};
    pub use crate::vis_square::vis_square;
    pub use ndarray::{array, s, Array, Array1, Array2, Array3, Array4, ArrayD, Axis};
}
