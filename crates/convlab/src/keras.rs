//! Keras 1's layers as the seed's `cifar10_cnn` used them: `Convolution2D` and `Dense` with
//! their default initialisation (Glorot uniform weights, zero biases), built on `tch::nn`.
//!
//! ```
//! use convlab::keras::{keras_conv2d, Padding};
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let conv = keras_conv2d(vs.root() / "conv1", 3, 32, 3, Padding::Same);
//! assert_eq!(conv.ws.size(), vec![32, 3, 3, 3]);
//! ```

use tch::nn;

/// Keras 1's default initialisation, Glorot (Xavier) uniform: `U(−b, b)` with
/// `b = √(6 / (fan_in + fan_out))`.
///
/// ```
/// let init = convlab::train::glorot_uniform(3 * 9, 32 * 9);
/// assert!(matches!(init, tch::nn::Init::Uniform { lo, up } if (up - 0.138).abs() < 1e-3 && lo == -up));
/// ```
pub fn glorot_uniform(fan_in: i64, fan_out: i64) -> nn::Init {
    let b = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -b, up: b }
}

/// Keras's `border_mode` of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// `"same"`: pad with zeros so the output has the input's size.
    Same,
    /// `"valid"`: no padding; the output shrinks by `kernel − 1`.
    Valid,
}

/// `nn::conv2d` with Keras 1's `Convolution2D` defaults: `out` filters of `k`×`k` over `in`
/// channels, Glorot-uniform weights, zero biases, stride 1.
pub fn keras_conv2d<'a>(
    p: impl std::borrow::Borrow<nn::Path<'a>>,
    input: i64,
    out: i64,
    k: i64,
    padding: Padding,
) -> nn::Conv2D {
    let config = nn::ConvConfig {
        padding: if padding == Padding::Same { k / 2 } else { 0 },
        ws_init: glorot_uniform(input * k * k, out * k * k),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, input, out, k, config)
}

/// `nn::linear` with Keras 1's `Dense` defaults: Glorot-uniform weights, zero biases.
pub fn keras_dense<'a>(
    p: impl std::borrow::Borrow<nn::Path<'a>>,
    input: i64,
    out: i64,
) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: glorot_uniform(input, out),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, input, out, config)
}
