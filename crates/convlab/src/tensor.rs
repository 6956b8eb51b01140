//! Arrays and tensors: the one place where ndarray meets libtorch.
//!
//! The crate and tch share one ndarray version, so these are tch's own conversions
//! (`TryFrom<&ArrayBase> for Tensor`, `TryInto<ArrayD> for &Tensor`), with the layout, kind
//! and device steps they leave to the caller.
//!
//! ```
//! use convlab::tensor::{array_to_tensor, tensor_to_array};
//! let a = ndarray::Array2::<f32>::from_shape_fn((2, 3), |(r, c)| (r * 3 + c) as f32);
//! let t = array_to_tensor(&a.t()); // a transposed view: copied in standard layout
//! assert_eq!(t.size(), vec![3, 2]);
//! assert_eq!(tensor_to_array(&t)?, a.t().into_dyn());
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::Result;
use ndarray::{ArrayBase, ArrayD, Data, Dimension};
use tch::{Device, Kind, Tensor};

/// Copies a tensor (any device, any float kind) into an `f32` array of the same shape.
///
/// ```
/// let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
/// let a = convlab::tensor::tensor_to_array(&t)?;
/// assert_eq!(a.shape(), &[2, 2]);
/// assert_eq!(a[[1, 0]], 3.0);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn tensor_to_array(t: &Tensor) -> Result<ArrayD<f32>> {
    let cpu = t
        .f_to_kind(Kind::Float)?
        .f_to_device(Device::Cpu)?
        .f_contiguous()?;
    Ok((&cpu).try_into()?)
}

/// Copies an `f32` array (any layout) into a CPU tensor of the same shape.
///
/// ```
/// let a = ndarray::Array3::<f32>::ones((2, 3, 4));
/// let t = convlab::tensor::array_to_tensor(&a);
/// assert_eq!(t.size(), vec![2, 3, 4]);
/// ```
pub fn array_to_tensor<S: Data<Elem = f32>, D: Dimension>(a: &ArrayBase<S, D>) -> Tensor {
    Tensor::try_from(&a.as_standard_layout()).expect("an array in standard layout is one slice")
}
