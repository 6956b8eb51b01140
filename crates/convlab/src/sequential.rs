//! The course's one sequential model: named layers run one after the other, like Keras's
//! `Sequential` and tch's `nn::seq_t()`.
//!
//! Every [`Layer`] has a name, a kind, and — when the model was built with shapes, as
//! [`vgg::Model`](crate::vgg::Model) builds VGG-16 — its output shape and weight count.
//! [`Sequential::outputs_t`] gives the output of any layers, by position or name, in one pass,
//! and [`Sequential::forward_all_t`] every layer's. VGG-16 ([`vgg::Model`](crate::vgg::Model),
//! which adds the weights and the shape checks) and the CIFAR-10 model
//! ([`cifar_cnn`](crate::train::cifar_cnn), a [`Stack`]) are both one.
//!
//! ```
//! use convlab::keras::keras_dense;
//! use convlab::sequential::Sequential;
//! use tch::nn;
//! let vs = nn::VarStore::new(tch::Device::Cpu);
//! let p = vs.root();
//! let net = Sequential::new()
//!     .add("dense", keras_dense(&p / "dense", 4, 2))
//!     .add_fn("relu", |x| x.relu());
//! let s = net.summary(&vs, &[1, 4])?;
//! assert_eq!(s.rows[0].params, 4 * 2 + 2);
//! assert_eq!(s.rows[1].output_shape, vec![1, 2]);
//! let x = tch::Tensor::ones([3, 4], (tch::Kind::Float, tch::Device::Cpu));
//! let outs = net.forward_all_t(&x, false)?;
//! assert_eq!(outs.len(), 2);
//! assert!(outs[1].equal(&net.outputs_t(&x, &["relu"], false)?[0]));
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::summary::{Summary, SummaryRow};
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

/// What a convolution or dense layer applies to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`: negative answers become 0.
    Relu,
    /// Nothing: the layer's output as computed.
    Linear,
}

/// Applies an activation to a fresh layer output (ReLU in place: no copy).
fn activate(mut y: Tensor, a: Activation) -> Tensor {
    if let Activation::Relu = a {
        let _ = y.relu_();
    }
    y
}

/// The operation of one layer.
#[derive(Debug)]
pub(crate) enum Op {
    ZeroPadding(i64),
    Conv {
        conv: nn::Conv2D,
        activation: Activation,
    },
    MaxPool {
        size: i64,
        stride: i64,
    },
    Flatten,
    Dense {
        linear: nn::Linear,
        activation: Activation,
    },
    Dropout(f64),
    Softmax,
    /// Any tch module (a [`Stack`]'s layers).
    Module(Box<dyn ModuleT>),
}

/// One layer of a [`Sequential`]: its name, kind, output shape and parameter count.
#[derive(Debug)]
pub struct Layer {
    name: String,
    pub(crate) op: Op,
    output_shape: Vec<i64>,
    params: i64,
}

impl Layer {
    pub(crate) fn new(name: String, op: Op, output_shape: Vec<i64>, params: i64) -> Layer {
        Layer {
            name,
            op,
            output_shape,
            params,
        }
    }

    /// The layer's name: the weight file's name for layers with weights (`features.0`),
    /// a Keras-like name for the others (`max_pooling2d_1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of layer, as Keras writes it (`Conv2D`, `MaxPooling2D`, `Dense`, …); empty
    /// for a module added to a [`Stack`].
    pub fn kind(&self) -> &'static str {
        match self.op {
            Op::ZeroPadding(_) => "ZeroPadding2D",
            Op::Conv { .. } => "Conv2D",
            Op::MaxPool { .. } => "MaxPooling2D",
            Op::Flatten => "Flatten",
            Op::Dense { .. } => "Dense",
            Op::Dropout(_) => "Dropout",
            Op::Softmax => "Softmax",
            Op::Module(_) => "",
        }
    }

    /// Shape of one example's output, without the batch axis: `[C, H, W]` or `[N]` (empty
    /// for a [`Stack`]'s layers, whose shapes [`Sequential::summary`] finds by running them).
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// Number of weights and biases the layer learns (0 for a [`Stack`]'s layers, whose
    /// weights [`Sequential::summary`] counts).
    pub fn params(&self) -> i64 {
        self.params
    }

    /// `true` for convolution layers.
    pub fn is_conv(&self) -> bool {
        matches!(self.op, Op::Conv { .. })
    }

    /// The kind with its activation or rate, as a summary shows it: `Conv2D, ReLU`,
    /// `Dropout 0.5`.
    pub fn description(&self) -> String {
        match self.op {
            Op::Conv {
                activation: Activation::Relu,
                ..
            }
            | Op::Dense {
                activation: Activation::Relu,
                ..
            } => format!("{}, ReLU", self.kind()),
            Op::Dropout(rate) => format!("{} {rate}", self.kind()),
            _ => self.kind().to_string(),
        }
    }

    /// The layer's output for `x`; libtorch's errors (a panic in tch's infallible API) name
    /// the layer and the input's shape.
    fn apply(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Tensor> {
            Ok(match &self.op {
                Op::ZeroPadding(p) => x.f_constant_pad_nd([*p, *p, *p, *p])?,
                Op::Conv { conv, activation } => activate(conv.forward(x), *activation),
                Op::MaxPool { size, stride } => {
                    x.f_max_pool2d([*size, *size], [*stride, *stride], [0, 0], [1, 1], false)?
                }
                Op::Flatten => x.f_flatten(1, -1)?,
                Op::Dense { linear, activation } => activate(linear.forward(x), *activation),
                Op::Dropout(rate) => x.f_dropout(*rate, train)?,
                Op::Softmax => x.f_softmax(-1, Kind::Float)?,
                Op::Module(m) => m.forward_t(x, train),
            })
        }));
        let failed = |msg: String| {
            Error::Shape(format!(
                "layer {:?} cannot take an input of shape {:?}: {}",
                self.name,
                x.size(),
                msg.lines().next().unwrap_or("")
            ))
        };
        match out {
            Ok(Ok(y)) => Ok(y),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(panic) => Err(failed(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            )),
        }
    }
}

/// Chooses a layer by position (`0` is the first layer added, as Keras's `model.layers[0]`)
/// or by name (`"features.28"`).
pub trait LayerRef {
    /// The layer's position among `layers`, or an error naming the layers there are.
    fn index_in(&self, layers: &[Layer]) -> Result<usize>;
}

impl LayerRef for usize {
    fn index_in(&self, layers: &[Layer]) -> Result<usize> {
        if *self < layers.len() {
            Ok(*self)
        } else {
            Err(Error::Value(format!(
                "the model has {} layers (0 to {}), there is no layer {self}",
                layers.len(),
                layers.len().saturating_sub(1)
            )))
        }
    }
}

impl LayerRef for &str {
    fn index_in(&self, layers: &[Layer]) -> Result<usize> {
        layers.iter().position(|l| l.name == *self).ok_or_else(|| {
            Error::Value(format!(
                "no layer called {self:?}; the layers are {:?}",
                layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>()
            ))
        })
    }
}

impl LayerRef for String {
    fn index_in(&self, layers: &[Layer]) -> Result<usize> {
        self.as_str().index_in(layers)
    }
}

impl LayerRef for &String {
    fn index_in(&self, layers: &[Layer]) -> Result<usize> {
        self.as_str().index_in(layers)
    }
}

/// Named layers run one after the other.
#[derive(Debug, Default)]
pub struct Sequential {
    layers: Vec<Layer>,
}

/// The name the CIFAR-10 notebook builds its model with: a [`Sequential`] put together from
/// tch modules with [`add`](Sequential::add), [`add_fn`](Sequential::add_fn) and
/// [`add_fn_t`](Sequential::add_fn_t).
pub type Stack = Sequential;

impl Sequential {
    /// An empty model.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Adds a tch module (convolution, dense). Give it the name of its `nn::Path`, so the
    /// summary finds its weights.
    pub fn add<M: ModuleT + 'static>(mut self, name: &str, module: M) -> Sequential {
        self.push(Layer::new(
            name.to_string(),
            Op::Module(Box::new(module)),
            Vec::new(),
            0,
        ));
        self
    }

    /// Adds a function of the input (activation, pooling, flatten).
    pub fn add_fn<F: Fn(&Tensor) -> Tensor + Send + 'static>(self, name: &str, f: F) -> Sequential {
        self.add(name, nn::func(f))
    }

    /// Adds a function that behaves differently in training (dropout).
    pub fn add_fn_t<F: Fn(&Tensor, bool) -> Tensor + Send + 'static>(
        self,
        name: &str,
        f: F,
    ) -> Sequential {
        self.add(name, nn::func_t(f))
    }

    pub(crate) fn push(&mut self, layer: Layer) -> &Layer {
        self.layers.push(layer);
        self.layers.last().expect("just pushed")
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// One layer, by position or name.
    pub fn layer(&self, which: impl LayerRef) -> Result<&Layer> {
        Ok(&self.layers[which.index_in(&self.layers)?])
    }

    /// The layer names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// Runs a batch through every layer and returns each layer's output, in order.
    pub fn forward_all_t(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let all: Vec<usize> = (0..self.layers.len()).collect();
        self.run(x, &all, train)
    }

    /// Runs a batch once through the layers, up to the last one asked for, and returns the
    /// outputs of each layer in `which` (positions or names, in any order), in the order
    /// asked.
    pub fn outputs_t<R: LayerRef>(
        &self,
        x: &Tensor,
        which: &[R],
        train: bool,
    ) -> Result<Vec<Tensor>> {
        let wanted = which
            .iter()
            .map(|w| w.index_in(&self.layers))
            .collect::<Result<Vec<usize>>>()?;
        self.run(x, &wanted, train)
    }

    /// One pass up to the last layer of `wanted`, keeping the output of each layer in it.
    fn run(&self, x: &Tensor, wanted: &[usize], train: bool) -> Result<Vec<Tensor>> {
        let Some(&last) = wanted.iter().max() else {
            return Ok(Vec::new());
        };
        let mut kept: Vec<Option<Tensor>> = (0..=last).map(|_| None).collect();
        let mut y = x.shallow_clone();
        let mut i = 0;
        while i <= last {
            // A zero padding followed by a convolution is one convolution with that padding,
            // as PyTorch's VGG does it: the same numbers without copying the padded picture
            // (the VGG builder makes every convolution stride 1, unpadded).
            let next = self
                .layers
                .get(i + 1)
                .filter(|_| i < last && !wanted.contains(&i));
            if let (Op::ZeroPadding(p), Some(Op::Conv { conv, activation })) =
                (&self.layers[i].op, next.map(|l| &l.op))
            {
                let out = y.f_conv2d(&conv.ws, conv.bs.as_ref(), [1, 1], [*p, *p], [1, 1], 1)?;
                y = activate(out, *activation);
                i += 1;
            } else {
                y = self.layers[i].apply(&y, train)?;
            }
            if wanted.contains(&i) {
                kept[i] = Some(y.shallow_clone());
            }
            i += 1;
        }
        Ok(wanted
            .iter()
            .map(|&i| {
                kept[i]
                    .as_ref()
                    .expect("every wanted layer ran")
                    .shallow_clone()
            })
            .collect())
    }

    /// Runs a zero input of shape `input` through the layers (not training) and lists each
    /// layer's output shape and number of weights (the variables of `vs` whose path ends in
    /// the layer's name). Errors name the layer where the shapes stop fitting.
    pub fn summary(&self, vs: &nn::VarStore, input: &[i64]) -> Result<Summary> {
        let variables = vs.variables();
        let x = Tensor::zeros(input, (Kind::Float, vs.device()));
        let outputs = tch::no_grad(|| self.forward_all_t(&x, false))?;
        let rows = self
            .layers
            .iter()
            .zip(outputs)
            .map(|(layer, y)| {
                let params: i64 = variables
                    .iter()
                    .filter(|(n, _)| n.rsplit('.').nth(1) == Some(layer.name.as_str()))
                    .map(|(_, t)| t.numel() as i64)
                    .sum();
                SummaryRow::new(layer.name.clone(), layer.kind(), y.size(), params)
            })
            .collect();
        let mut summary = Summary::new(input.to_vec(), rows);
        // Weights outside the named layers count too.
        summary.total_params = variables.values().map(|t| t.numel() as i64).sum();
        Ok(summary)
    }
}

impl ModuleT for Sequential {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.layers.len() {
            0 => xs.shallow_clone(),
            n => match self.run(xs, &[n - 1], train) {
                Ok(mut out) => out.pop().expect("one layer asked for"),
                Err(e) => panic!("{e}"),
            },
        }
    }
}
