//! VGG-16 built layer by layer (Learning Activities 5–14).
//!
//! [`Model`] is a small `Sequential`: the notebook adds layers one by one, as the Keras cells
//! of the original did, and every layer checks the shape it receives, so a mistake shows at
//! the cell that made it. Layers with weights carry the names those weights have in the
//! weight file (torchvision's `features.0`, `features.2`, …, `classifier.6`), so a misnamed
//! or misplaced layer is a clear error when the weights are loaded
//! ([`Model::load_weights`](crate::weights)).
//!
//! ```
//! use convlab::vgg::{Activation, Model};
//! let mut m = Model::new([3, 32, 32], tch::Device::Cpu)?;
//! m.add_zero_padding(1)?;
//! m.add_conv("features.0", 8, Activation::Relu)?;
//! m.add_max_pool(2, 2)?;
//! m.add_flatten()?;
//! m.add_dense("classifier.0", 10, Activation::Linear)?;
//! m.add_softmax()?;
//! assert_eq!(m.output_shape(), &[10]);
//! // 3·3·3·8 + 8 conv weights, 8·16·16·10 + 10 dense weights
//! assert_eq!(m.summary().total(), 224 + 20490);
//! let x = tch::Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
//! assert_eq!(m.forward(&x)?.size(), vec![2, 10]);
//! # Ok::<(), convlab::Error>(())
//! ```
//!
//! [`vgg16`] builds the whole network in one call. [`Preprocessing`] turns a picture into the
//! network's input, [`top_k`] reads its answer, and [`closest_filter`] and
//! [`activation_picture`] look inside.

use crate::display::Picture;
use crate::error::{Error, Result};
use crate::summary::shape_text;
pub use crate::summary::{thousands, Summary, SummaryRow};
use ndarray::{Array3, Array4, ArrayBase, ArrayD, Data, Dimension, IxDyn};
use std::fmt;
use std::sync::OnceLock;
use tch::{nn, nn::Module};
/// The tensor types a notebook needs next to the model (`use convlab::vgg::*`).
pub use tch::{Device, Kind, Tensor};

/// What a convolution or dense layer applies to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`: negative answers become 0.
    Relu,
    /// Nothing: the layer's output as computed.
    Linear,
}

/// The operation of one layer.
#[derive(Debug)]
enum Op {
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
}

/// Applies an activation to a fresh layer output (ReLU in place: no copy).
fn activate(mut y: Tensor, a: Activation) -> Tensor {
    if let Activation::Relu = a {
        let _ = y.relu_();
    }
    y
}

/// One layer of a [`Model`]: its name, kind, output shape and parameter count.
#[derive(Debug)]
pub struct Layer {
    name: String,
    op: Op,
    output_shape: Vec<i64>,
    params: i64,
}

impl Layer {
    /// The layer's name: the weight file's name for layers with weights (`features.0`),
    /// a Keras-like name for the others (`max_pooling2d_1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of layer, as Keras writes it (`Conv2D`, `MaxPooling2D`, `Dense`, …).
    pub fn kind(&self) -> &'static str {
        match self.op {
            Op::ZeroPadding(_) => "ZeroPadding2D",
            Op::Conv { .. } => "Conv2D",
            Op::MaxPool { .. } => "MaxPooling2D",
            Op::Flatten => "Flatten",
            Op::Dense { .. } => "Dense",
            Op::Dropout(_) => "Dropout",
            Op::Softmax => "Softmax",
        }
    }

    /// Shape of one example's output, without the batch axis: `[C, H, W]` or `[N]`.
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// Number of weights and biases the layer learns.
    pub fn params(&self) -> i64 {
        self.params
    }

    /// `true` for convolution layers.
    pub fn is_conv(&self) -> bool {
        matches!(self.op, Op::Conv { .. })
    }

    fn activation(&self) -> Option<Activation> {
        match self.op {
            Op::Conv { activation, .. } | Op::Dense { activation, .. } => Some(activation),
            _ => None,
        }
    }
}

/// A network built one layer after the other, like Keras's `Sequential`, over a
/// [`tch::nn::VarStore`] that holds its weights.
pub struct Model {
    vs: nn::VarStore,
    input_shape: Vec<i64>,
    layers: Vec<Layer>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Model({} layers, input {:?})",
            self.layers.len(),
            self.input_shape
        )
    }
}

/// Chooses a layer by position (`0` is the first layer added, as Keras's `model.layers[0]`)
/// or by name (`"features.28"`).
pub trait LayerRef {
    /// The layer's position in `model`, or an error naming the layers there are.
    fn index_in(&self, model: &Model) -> Result<usize>;
}

impl LayerRef for usize {
    fn index_in(&self, model: &Model) -> Result<usize> {
        if *self < model.layers.len() {
            Ok(*self)
        } else {
            Err(Error::Value(format!(
                "the model has {} layers (0 to {}), there is no layer {self}",
                model.layers.len(),
                model.layers.len().saturating_sub(1)
            )))
        }
    }
}

impl LayerRef for &str {
    fn index_in(&self, model: &Model) -> Result<usize> {
        model
            .layers
            .iter()
            .position(|l| l.name == *self)
            .ok_or_else(|| {
                Error::Value(format!(
                    "no layer called {self:?}; the layers are {:?}",
                    model
                        .layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                ))
            })
    }
}

impl LayerRef for String {
    fn index_in(&self, model: &Model) -> Result<usize> {
        self.as_str().index_in(model)
    }
}

impl LayerRef for &String {
    fn index_in(&self, model: &Model) -> Result<usize> {
        self.as_str().index_in(model)
    }
}

impl Model {
    /// An empty model for examples of shape `input_shape` = `[channels, height, width]`
    /// (Keras states it on the first layer, `input_shape=(3, 224, 224)`), with its weights on
    /// `device`.
    pub fn new(input_shape: [i64; 3], device: Device) -> Result<Model> {
        if input_shape.iter().any(|&d| d <= 0) {
            return Err(Error::Shape(format!(
                "the input shape {} must have positive sizes: [channels, height, width], e.g. [3, 224, 224]",
                shape_text(&input_shape)
            )));
        }
        Ok(Model {
            vs: nn::VarStore::new(device),
            input_shape: input_shape.to_vec(),
            layers: Vec::new(),
        })
    }

    /// The device that holds the weights and runs the layers.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The weights, by name (`features.0.weight`, `features.0.bias`, …).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The weights, to change (for instance to load them).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Shape of one input example, `[channels, height, width]`.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// Shape of one example's output of the last layer (the input shape when empty).
    pub fn output_shape(&self) -> &[i64] {
        self.layers
            .last()
            .map_or(&self.input_shape, |l| &l.output_shape)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// One layer, by position or name.
    pub fn layer(&self, which: impl LayerRef) -> Result<&Layer> {
        Ok(&self.layers[which.index_in(self)?])
    }

    /// Names of the convolution layers, in order: `conv_names()[7]` is the eighth.
    pub fn conv_names(&self) -> Vec<String> {
        self.layers
            .iter()
            .filter(|l| l.is_conv())
            .map(|l| l.name.clone())
            .collect()
    }

    /// Total number of weights and biases.
    pub fn num_params(&self) -> i64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.split('.').any(|part| part.is_empty()) {
            return Err(Error::Value(format!(
                "the layer name {name:?} is not usable: give the name of the layer in the weight file, e.g. \"features.0\""
            )));
        }
        if let Some(i) = self.layers.iter().position(|l| l.name == name) {
            return Err(Error::Value(format!(
                "the name {name:?} is already used by layer {i} ({}): each layer with weights needs its own name",
                self.layers[i].kind()
            )));
        }
        Ok(())
    }

    fn image_shape(&self, what: &str) -> Result<(i64, i64, i64)> {
        match *self.output_shape() {
            [c, h, w] => Ok((c, h, w)),
            ref s => Err(Error::Shape(format!(
                "{what} needs a (channels, height, width) input, but the previous layer gives {}: \
                 add convolution and pooling layers before flatten, not after",
                shape_text(s)
            ))),
        }
    }

    fn auto_name(&self, base: &str) -> String {
        let n = self
            .layers
            .iter()
            .filter(|l| l.name.starts_with(base))
            .count();
        format!("{base}_{}", n + 1)
    }

    fn push(
        &mut self,
        name: String,
        op: Op,
        output_shape: Vec<i64>,
        params: i64,
    ) -> Result<&Layer> {
        self.layers.push(Layer {
            name,
            op,
            output_shape,
            params,
        });
        Ok(self.layers.last().expect("just pushed"))
    }

    /// Adds `pad` rows and columns of zeros on every side (Keras `ZeroPadding2D((1, 1))`), so
    /// that the next 3×3 convolution also covers the picture's edges and keeps its size.
    pub fn add_zero_padding(&mut self, pad: i64) -> Result<&Layer> {
        let (c, h, w) = self.image_shape("zero padding")?;
        if pad < 0 {
            return Err(Error::Value(format!(
                "the padding must be 0 or more, got {pad}"
            )));
        }
        let name = self.auto_name("zero_padding2d");
        self.push(
            name,
            Op::ZeroPadding(pad),
            vec![c, h + 2 * pad, w + 2 * pad],
            0,
        )
    }

    /// Adds a convolution with `filters` filters of 3×3 over all input channels, stride 1, no
    /// padding of its own (add [`add_zero_padding`](Self::add_zero_padding) before it), then
    /// `activation`. `name` is the layer's name in the weight file.
    pub fn add_conv(&mut self, name: &str, filters: i64, activation: Activation) -> Result<&Layer> {
        let (c, h, w) = self.image_shape("a convolution")?;
        self.check_name(name)?;
        if filters <= 0 {
            return Err(Error::Value(format!(
                "a convolution needs 1 or more filters, got {filters}"
            )));
        }
        if h < 3 || w < 3 {
            return Err(Error::Shape(format!(
                "a 3×3 convolution needs an input of at least 3×3, but layer {name} gets {h}×{w}: \
                 too many pooling layers, or a missing zero padding"
            )));
        }
        let path = name.split('.').fold(self.vs.root(), |p, part| p / part);
        let conv = nn::conv2d(&path, c, filters, 3, Default::default());
        let params = filters * c * 9 + filters;
        self.push(
            name.to_string(),
            Op::Conv { conv, activation },
            vec![filters, h - 2, w - 2],
            params,
        )
    }

    /// Adds max pooling over `size`×`size` windows moved by `stride` (VGG: 2 and 2, which
    /// halves height and width).
    pub fn add_max_pool(&mut self, size: i64, stride: i64) -> Result<&Layer> {
        let (c, h, w) = self.image_shape("max pooling")?;
        if size <= 0 || stride <= 0 {
            return Err(Error::Value(format!(
                "max pooling needs a positive window and stride, got {size} and {stride}"
            )));
        }
        if h < size || w < size {
            return Err(Error::Shape(format!(
                "a {size}×{size} pooling window does not fit in a {h}×{w} input"
            )));
        }
        let name = self.auto_name("max_pooling2d");
        let out = vec![c, (h - size) / stride + 1, (w - size) / stride + 1];
        self.push(name, Op::MaxPool { size, stride }, out, 0)
    }

    /// Lays the `(C, H, W)` output out as one row of `C·H·W` numbers, for the dense layers.
    pub fn add_flatten(&mut self) -> Result<&Layer> {
        let (c, h, w) = self.image_shape("flatten")?;
        let name = self.auto_name("flatten");
        self.push(name, Op::Flatten, vec![c * h * w], 0)
    }

    fn flat_input(&self, what: &str) -> Result<i64> {
        match *self.output_shape() {
            [n] => Ok(n),
            ref s => Err(Error::Shape(format!(
                "{what} needs a flat input, but the previous layer gives {}: call add_flatten() first",
                shape_text(s)
            ))),
        }
    }

    /// Adds a fully connected layer of `units` neurons (Keras `Dense`), then `activation`.
    /// `name` is the layer's name in the weight file.
    pub fn add_dense(&mut self, name: &str, units: i64, activation: Activation) -> Result<&Layer> {
        let n = self.flat_input("a dense layer")?;
        self.check_name(name)?;
        if units <= 0 {
            return Err(Error::Value(format!(
                "a dense layer needs 1 or more units, got {units}"
            )));
        }
        let path = name.split('.').fold(self.vs.root(), |p, part| p / part);
        let linear = nn::linear(&path, n, units, Default::default());
        self.push(
            name.to_string(),
            Op::Dense { linear, activation },
            vec![units],
            n * units + units,
        )
    }

    /// Adds dropout with drop probability `rate` (VGG: 0.5). It only acts while training;
    /// [`forward`](Self::forward) runs the network for predictions, where it passes its input
    /// through unchanged.
    pub fn add_dropout(&mut self, rate: f64) -> Result<&Layer> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Value(format!(
                "the dropout rate is a probability from 0 to below 1, got {rate}"
            )));
        }
        let shape = self.output_shape().to_vec();
        let name = self.auto_name("dropout");
        self.push(name, Op::Dropout(rate), shape, 0)
    }

    /// Turns the last layer's scores into probabilities that add up to 1.
    pub fn add_softmax(&mut self) -> Result<&Layer> {
        self.flat_input("softmax")?;
        let shape = self.output_shape().to_vec();
        let name = self.auto_name("softmax");
        self.push(name, Op::Softmax, shape, 0)
    }

    /// The model's layers as a table: name, kind, output shape, parameters, total.
    pub fn summary(&self) -> Summary {
        Summary::new(
            self.input_shape.clone(),
            self.layers
                .iter()
                .map(|l| SummaryRow {
                    name: l.name.clone(),
                    kind: match (&l.op, l.activation()) {
                        (_, Some(Activation::Relu)) => format!("{}, ReLU", l.kind()),
                        (Op::Dropout(rate), _) => format!("{} {rate}", l.kind()),
                        _ => l.kind().to_string(),
                    },
                    output_shape: l.output_shape.clone(),
                    params: l.params,
                })
                .collect(),
        )
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let size = x.size();
        if size.len() != 4 || size[1..] != self.input_shape[..] {
            return Err(Error::Shape(format!(
                "the model takes a batch of pictures of shape (N, {}, {}, {}), got {:?}: \
                 prepare the picture with Preprocessing::apply, which resizes it to {}×{} and adds the batch axis",
                self.input_shape[0], self.input_shape[1], self.input_shape[2], size,
                self.input_shape[1], self.input_shape[2]
            )));
        }
        if !matches!(x.kind(), Kind::Float) {
            return Err(Error::Value(format!(
                "the model takes float (f32) pictures, got {:?}: use .to_kind(tch::Kind::Float)",
                x.kind()
            )));
        }
        Ok(())
    }

    fn apply(&self, layer: &Layer, x: &Tensor) -> Result<Tensor> {
        let relu = |y: Tensor, a: Activation| activate(y, a);
        Ok(match &layer.op {
            Op::ZeroPadding(p) => x.f_constant_pad_nd([*p, *p, *p, *p])?,
            Op::Conv { conv, activation } => relu(conv.forward(x), *activation),
            Op::MaxPool { size, stride } => {
                x.f_max_pool2d([*size, *size], [*stride, *stride], [0, 0], [1, 1], false)?
            }
            Op::Flatten => x.f_flatten(1, -1)?,
            Op::Dense { linear, activation } => relu(linear.forward(x), *activation),
            Op::Dropout(_) => x.shallow_clone(), // predictions: dropout is off
            Op::Softmax => x.f_softmax(-1, Kind::Float)?,
        })
    }

    /// Runs a batch `(N, C, H, W)` through every layer and returns the last layer's output
    /// (for VGG-16 with softmax: `(N, 1000)` probabilities). Runs without gradients, with
    /// dropout off, on the model's device.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_to(
            x,
            self.layers.len().checked_sub(1).ok_or_else(|| {
                Error::Value("the model has no layers yet: add some before running it".into())
            })?,
        )
    }

    /// Runs a batch through the layers up to and including `which` (a position, as Keras's
    /// `model.layers[i]`, or a name) and returns that layer's output, `(N, …)`.
    pub fn forward_to(&self, x: &Tensor, which: impl LayerRef) -> Result<Tensor> {
        let last = which.index_in(self)?;
        Ok(self.run(x, &[last])?.pop().expect("one layer asked for"))
    }

    /// Runs a batch once through the layers and returns the outputs of each layer in `which`
    /// (positions or names, in any order), in the order asked: what [`forward_to`](Self::forward_to)
    /// gives for each, in a single pass.
    ///
    /// ```
    /// use convlab::vgg::{Activation, Model};
    /// let mut m = Model::new([3, 8, 8], tch::Device::Cpu)?;
    /// m.add_zero_padding(1)?;
    /// m.add_conv("features.0", 4, Activation::Relu)?;
    /// m.add_max_pool(2, 2)?;
    /// let x = tch::Tensor::ones([1, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
    /// let outs = m.forward_layers(&x, &[2usize, 1])?;
    /// assert!(outs[0].equal(&m.forward_to(&x, 2usize)?));
    /// assert_eq!(outs[1].size(), vec![1, 4, 8, 8]); // layer 1: the convolution
    /// assert!(outs[1].equal(&m.forward_to(&x, "features.0")?));
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn forward_layers<R: LayerRef>(&self, x: &Tensor, which: &[R]) -> Result<Vec<Tensor>> {
        let wanted = which
            .iter()
            .map(|w| w.index_in(self))
            .collect::<Result<Vec<usize>>>()?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.run(x, &wanted)
    }

    /// One pass up to the last layer of `wanted`, keeping the output of each layer in it.
    fn run(&self, x: &Tensor, wanted: &[usize]) -> Result<Vec<Tensor>> {
        let last = *wanted.iter().max().expect("at least one layer");
        self.check_input(x)?;
        let mut kept: Vec<Option<Tensor>> = (0..self.layers.len()).map(|_| None).collect();
        tch::no_grad(|| {
            let mut y = x.to_device(self.device());
            let mut i = 0;
            while i <= last {
                // A zero padding followed by a convolution is one convolution with that
                // padding, as PyTorch's VGG does it: the same numbers without copying the
                // padded picture (the builder makes every convolution stride 1, unpadded).
                if let (Op::ZeroPadding(p), Some(Op::Conv { conv, activation })) = (
                    &self.layers[i].op,
                    self.layers
                        .get(i + 1)
                        .filter(|_| i < last && !wanted.contains(&i))
                        .map(|l| &l.op),
                ) {
                    let out =
                        y.f_conv2d(&conv.ws, conv.bs.as_ref(), [1, 1], [*p, *p], [1, 1], 1)?;
                    y = activate(out, *activation);
                    i += 1;
                } else {
                    y = self.apply(&self.layers[i], &y)?;
                }
                if wanted.contains(&i) {
                    kept[i] = Some(y.shallow_clone());
                }
                i += 1;
            }
            Ok::<(), Error>(())
        })?;
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

    /// The output of layer `which` for the first picture of the batch, on the CPU, batch axis
    /// removed: `(C, H, W)` for convolution layers (the seed's `get_layer_output`).
    pub fn layer_output(&self, x: &Tensor, which: impl LayerRef) -> Result<Tensor> {
        Ok(self.forward_to(x, which)?.get(0).to_device(Device::Cpu))
    }

    /// The weights of convolution layer `which` as an array `(filters, channels, 3, 3)`.
    pub fn conv_filters(&self, which: impl LayerRef) -> Result<Array4<f32>> {
        let layer = self.layer(which)?;
        match &layer.op {
            Op::Conv { conv, .. } => {
                let a = tensor_to_array(&conv.ws)?;
                a.into_dimensionality().map_err(|e| Error::Shape(e.to_string()))
            }
            _ => Err(Error::Value(format!(
                "layer {} is a {} layer: it has no filters; conv_names() lists the convolution layers",
                layer.name,
                layer.kind()
            ))),
        }
    }
}

/// VGG-16's convolution blocks: (filters, convolutions) per block, each ended by pooling.
pub const VGG16_BLOCKS: [(i64, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

/// VGG-16's parameter count.
pub const VGG16_PARAMS: i64 = 138_357_544;

/// The names of VGG-16's convolution layers in torchvision's weight file. torchvision
/// numbers every module of its `features` sequence, ReLUs and poolings included, so the
/// convolutions are `features.0`, `features.2`, then `features.5` after the first pooling …
///
/// ```
/// let names = convlab::vgg::vgg16_conv_names();
/// assert_eq!(names.len(), 13);
/// assert_eq!(names[2], "features.5");
/// assert_eq!(names[12], "features.28");
/// ```
pub fn vgg16_conv_names() -> Vec<String> {
    let mut names = Vec::new();
    let mut index = 0;
    for (_, convs) in VGG16_BLOCKS {
        for _ in 0..convs {
            names.push(format!("features.{index}"));
            index += 2; // the convolution and its ReLU
        }
        index += 1; // the pooling
    }
    names
}

/// The names of VGG-16's three dense layers in torchvision's weight file
/// (`classifier` = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear).
pub const VGG16_DENSE_NAMES: [&str; 3] = ["classifier.0", "classifier.3", "classifier.6"];

/// The whole VGG-16 for 3×224×224 pictures, built with the same calls as the notebook:
/// 13 padded 3×3 convolutions with ReLU in five blocks each ended by 2×2 max pooling, then
/// flatten, two dense layers of 4096 with ReLU and dropout 0.5, a dense layer of 1000 and
/// softmax. Weights are random until [`Model::load_weights`](crate::weights) fills them.
///
/// ```
/// let vgg = convlab::vgg::vgg16(tch::Device::Cpu)?;
/// assert_eq!(vgg.num_params(), convlab::vgg::VGG16_PARAMS);
/// assert_eq!(vgg.layer("features.28")?.output_shape(), &[512, 14, 14]);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn vgg16(device: Device) -> Result<Model> {
    let mut model = Model::new([3, 224, 224], device)?;
    let names = vgg16_conv_names();
    let mut names = names.iter();
    for (filters, convs) in VGG16_BLOCKS {
        for _ in 0..convs {
            model.add_zero_padding(1)?;
            model.add_conv(names.next().expect("13 names"), filters, Activation::Relu)?;
        }
        model.add_max_pool(2, 2)?;
    }
    model.add_flatten()?;
    model.add_dense(VGG16_DENSE_NAMES[0], 4096, Activation::Relu)?;
    model.add_dropout(0.5)?;
    model.add_dense(VGG16_DENSE_NAMES[1], 4096, Activation::Relu)?;
    model.add_dropout(0.5)?;
    model.add_dense(VGG16_DENSE_NAMES[2], 1000, Activation::Linear)?;
    model.add_softmax()?;
    Ok(model)
}

// ---------------------------------------------------------------------------------------
// Tensors and arrays

/// Copies a tensor (any device, any float kind) into an `f32` array of the same shape.
///
/// ```
/// let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
/// let a = convlab::vgg::tensor_to_array(&t)?;
/// assert_eq!(a.shape(), &[2, 2]);
/// assert_eq!(a[[1, 0]], 3.0);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn tensor_to_array(t: &Tensor) -> Result<ArrayD<f32>> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .f_to_kind(Kind::Float)?
        .f_to_device(Device::Cpu)?
        .f_contiguous()?
        .f_reshape([-1])?;
    let data = Vec::<f32>::try_from(&flat)?;
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| Error::Shape(e.to_string()))
}

/// Copies an `f32` array into a CPU tensor of the same shape.
pub fn array_to_tensor<S: Data<Elem = f32>, D: Dimension>(a: &ArrayBase<S, D>) -> Tensor {
    let shape: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let data: Vec<f32> = a.iter().cloned().collect();
    Tensor::from_slice(&data).reshape(shape)
}

// ---------------------------------------------------------------------------------------
// Preprocessing (LA12)

/// The per-channel means the original VGG (Caffe) weights subtract, in **B, G, R** order:
/// the seed read pictures with OpenCV, which gives blue first.
pub const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];
/// torchvision's ImageNet means of R, G, B for 0–1 values.
pub const TORCHVISION_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet standard deviations of R, G, B for 0–1 values.
pub const TORCHVISION_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Pictures smaller than this on a side are refused: there is nothing left to recognise.
pub const MIN_SIDE: usize = 32;

/// How a picture becomes the network's input. Weights only work with the preprocessing
/// they were trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preprocessing {
    /// The seed's (and the original Caffe/Keras VGG weights'): resize to 224×224, RGB → BGR,
    /// subtract [`CAFFE_MEAN_BGR`] from values 0–255, channel first, batch axis.
    Caffe,
    /// torchvision's: resize to 224×224, RGB kept, values / 255, subtract
    /// [`TORCHVISION_MEAN`], divide by [`TORCHVISION_STD`], channel first, batch axis.
    /// (torchvision itself resizes to 256 and crops the centre 224×224.)
    Torchvision,
}

impl Preprocessing {
    /// One line saying what this preprocessing does.
    pub fn describe(&self) -> &'static str {
        match self {
            Preprocessing::Caffe => {
                "Caffe/Keras (the seed): BGR, 0–255 minus the mean of each channel"
            }
            Preprocessing::Torchvision => {
                "torchvision: RGB, /255, minus mean, divided by standard deviation"
            }
        }
    }

    /// The picture as a `(3, 224, 224)` array, preprocessed (no batch axis). `image` is an
    /// `(H, W, 3)` RGB array of 0–255 values, as [`load_colour`](crate::image::load_colour)
    /// gives; it is resized to 224×224 first.
    ///
    /// ```
    /// use convlab::vgg::Preprocessing;
    /// let grey_rgb = ndarray::Array3::<f32>::from_elem((50, 40, 3), 120.0);
    /// let x = Preprocessing::Caffe.to_chw(&grey_rgb)?;
    /// assert_eq!(x.dim(), (3, 224, 224));
    /// assert!((x[[0, 0, 0]] - (120.0 - 103.939)).abs() < 1e-3); // channel 0 is blue
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn to_chw<S: Data<Elem = f32>, D: Dimension>(
        &self,
        image: &ArrayBase<S, D>,
    ) -> Result<Array3<f32>> {
        let rgb = check_picture(image)?;
        let resized = crate::image::resize(&rgb.view(), 224, 224)?;
        let mut out = Array3::<f32>::zeros((3, 224, 224));
        for ((y, x, c), &v) in resized.indexed_iter() {
            match self {
                Preprocessing::Caffe => {
                    let channel = 2 - c; // R, G, B in; B, G, R out
                    out[[channel, y, x]] = v - CAFFE_MEAN_BGR[channel];
                }
                Preprocessing::Torchvision => {
                    out[[c, y, x]] = (v / 255.0 - TORCHVISION_MEAN[c]) / TORCHVISION_STD[c];
                }
            }
        }
        Ok(out)
    }

    /// The picture as the network's input: a `(1, 3, 224, 224)` tensor on the CPU
    /// (the model moves it to its device).
    pub fn apply<S: Data<Elem = f32>, D: Dimension>(
        &self,
        image: &ArrayBase<S, D>,
    ) -> Result<Tensor> {
        Ok(array_to_tensor(&self.to_chw(image)?).unsqueeze(0))
    }

    /// Undoes the preprocessing of a `(3, H, W)` array, giving an `(H, W, 3)` RGB 0–255
    /// picture to look at.
    pub fn to_picture(&self, chw: &Array3<f32>) -> Result<Array3<f32>> {
        let (c, h, w) = chw.dim();
        if c != 3 {
            return Err(Error::Shape(format!(
                "expected a (3, H, W) array, got ({c}, {h}, {w})"
            )));
        }
        Ok(Array3::from_shape_fn((h, w, 3), |(y, x, k)| match self {
            Preprocessing::Caffe => chw[[2 - k, y, x]] + CAFFE_MEAN_BGR[2 - k],
            Preprocessing::Torchvision => {
                (chw[[k, y, x]] * TORCHVISION_STD[k] + TORCHVISION_MEAN[k]) * 255.0
            }
        }))
    }
}

fn check_picture<S: Data<Elem = f32>, D: Dimension>(
    image: &ArrayBase<S, D>,
) -> Result<Array3<f32>> {
    let shape = image.shape().to_vec();
    let dims = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×");
    let (h, w) = match shape[..] {
        [h, w, 3] => (h, w),
        [_, _] | [_, _, 1] => {
            return Err(Error::Shape(format!(
                "this is a grey picture ({dims}); VGG-16 takes colour pictures (height, width, 3): \
                 load it with load_colour, which repeats the grey value into R, G and B"
            )))
        }
        [3, _, _] => {
            return Err(Error::Shape(format!(
                "this array ({dims}) has its colour axis first; preprocessing takes (height, width, 3) \
                 as load_colour gives, and moves the colour axis itself"
            )))
        }
        _ => {
            return Err(Error::Shape(format!(
                "preprocessing takes a colour picture of shape (height, width, 3), got {dims}"
            )))
        }
    };
    if h < MIN_SIDE || w < MIN_SIDE {
        return Err(Error::Shape(format!(
            "the picture is only {h}×{w} pixels; VGG-16 looks at 224×224 and a picture under \
             {MIN_SIDE}×{MIN_SIDE} has no detail left to recognise: use a larger picture"
        )));
    }
    if let Some(v) = image.iter().find(|v| !v.is_finite()) {
        return Err(Error::Value(format!(
            "the picture holds {v}: replace NaN and infinite values"
        )));
    }
    Ok(image
        .view()
        .into_shape_with_order((h, w, 3))
        .map_err(|e| Error::Shape(e.to_string()))?
        .to_owned())
}

/// Loads the picture at `path` and preprocesses it: a `(1, 3, 224, 224)` tensor.
///
/// ```no_run
/// use convlab::vgg::{image_tensor, Preprocessing};
/// let x = image_tensor(convlab::data::ensure("cat.png")?, Preprocessing::Torchvision)?;
/// assert_eq!(x.size(), vec![1, 3, 224, 224]);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn image_tensor(path: impl AsRef<std::path::Path>, prep: Preprocessing) -> Result<Tensor> {
    prep.apply(&crate::image::load_colour(path)?)
}

// ---------------------------------------------------------------------------------------
// Labels and top-k (LA13)

/// The 1000 ImageNet class names in the order of the network's outputs (torchvision's list).
///
/// ```
/// let labels = convlab::vgg::imagenet_classes();
/// assert_eq!(labels.len(), 1000);
/// assert_eq!(labels[281], "tabby");
/// ```
pub fn imagenet_classes() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| include_str!("imagenet_classes.txt").lines().collect())
}

/// One of the network's guesses.
#[derive(Clone, Debug, PartialEq)]
pub struct Guess {
    /// Output index, 0–999.
    pub class: usize,
    /// ImageNet class name.
    pub label: &'static str,
    /// Probability the network gives it.
    pub probability: f64,
}

impl fmt::Display for Guess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:5.1}%  {} (class {})",
            100.0 * self.probability,
            self.label,
            self.class
        )
    }
}

/// The `k` most probable classes of one picture's `(1000,)` or `(1, 1000)` probabilities,
/// most probable first.
///
/// ```
/// let mut p = vec![0.0f32; 1000];
/// p[281] = 0.7;
/// p[282] = 0.2;
/// let top = convlab::vgg::top_k(&tch::Tensor::from_slice(&p), 2)?;
/// assert_eq!(top[0].label, "tabby");
/// assert_eq!(top[1].class, 282);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn top_k(probabilities: &Tensor, k: usize) -> Result<Vec<Guess>> {
    let size = probabilities.size();
    let labels = imagenet_classes();
    if size.iter().product::<i64>() != labels.len() as i64
        || size.iter().filter(|&&d| d != 1).count() > 1
    {
        return Err(Error::Shape(format!(
            "top_k takes the {} probabilities of one picture, shape (1000,) or (1, 1000), got {size:?}; \
             for a batch, pass one row: probabilities.get(i)",
            labels.len()
        )));
    }
    let p = tensor_to_array(probabilities)?;
    if let Some(v) = p.iter().find(|v| !v.is_finite()) {
        return Err(Error::Value(format!(
            "the probabilities hold {v}: the network's output is broken"
        )));
    }
    let mut ranked: Vec<(usize, f32)> = p.iter().cloned().enumerate().collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    Ok(ranked
        .into_iter()
        .take(k)
        .map(|(class, prob)| Guess {
            class,
            label: labels[class],
            probability: f64::from(prob),
        })
        .collect())
}

/// A bar chart of guesses (most probable on top).
pub fn guesses_chart(title: &str, guesses: &[Guess]) -> Result<Picture> {
    let labels: Vec<&str> = guesses.iter().map(|g| g.label).collect();
    let values: Vec<f64> = guesses.iter().map(|g| g.probability).collect();
    crate::plot::bars(title, &labels, &values)
}

// ---------------------------------------------------------------------------------------
// Looking inside (LA14)

/// How a first-layer filter was compared with a target filter.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterMatch {
    /// Position of the filter in the layer.
    pub index: usize,
    /// Cosine similarity, from −1 to 1 (1: the same pattern up to a scale).
    pub score: f32,
    /// `true` when the best match reads the filter's channels in reverse (BGR against RGB).
    pub channels_reversed: bool,
    /// `true` when the best match turns the 3×3 kernel by 180° (convolution vs correlation).
    pub flipped: bool,
}

impl fmt::Display for FilterMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter {} (cosine similarity {:.3}",
            self.index, self.score
        )?;
        if self.channels_reversed {
            write!(f, ", channels reversed")?;
        }
        if self.flipped {
            write!(f, ", kernel turned 180°")?;
        }
        write!(f, ")")
    }
}

/// The filter `(C, kh, kw)` read the way `m` says: channels reversed and/or turned 180°.
pub fn oriented(filter: &Array3<f32>, channels_reversed: bool, flipped: bool) -> Array3<f32> {
    let (c, h, w) = filter.dim();
    Array3::from_shape_fn((c, h, w), |(k, y, x)| {
        let k = if channels_reversed { c - 1 - k } else { k };
        let (y, x) = if flipped {
            (h - 1 - y, w - 1 - x)
        } else {
            (y, x)
        };
        filter[[k, y, x]]
    })
}

/// Finds among `filters` `(N, C, kh, kw)` the one most like `target` `(C, kh, kw)` by cosine
/// similarity, allowing the channel order to be reversed (BGR weights against an RGB filter)
/// and the kernel to be turned by 180° (frameworks that convolve against those that
/// correlate).
///
/// ```
/// use ndarray::{Array3, Array4};
/// let target = convlab::filters::brown_channel_first();
/// let mut bank = Array4::<f32>::zeros((4, 3, 3, 3));
/// bank[[0, 0, 0, 0]] = 1.0;
/// // filter 2 is the target with its channels in BGR order
/// bank.index_axis_mut(ndarray::Axis(0), 2).assign(&convlab::vgg::oriented(&target, true, false));
/// let m = convlab::vgg::closest_filter(&bank, &target)?;
/// assert_eq!((m.index, m.channels_reversed, m.flipped), (2, true, false));
/// assert!((m.score - 1.0).abs() < 1e-5);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn closest_filter(filters: &Array4<f32>, target: &Array3<f32>) -> Result<FilterMatch> {
    let (n, c, h, w) = filters.dim();
    if (c, h, w) != target.dim() || n == 0 {
        return Err(Error::Shape(format!(
            "cannot compare filters of shape ({n}, {c}, {h}, {w}) with a target of shape {:?}: \
             both need the same (channels, height, width), channel first",
            target.dim()
        )));
    }
    let norm = |a: &Array3<f32>| a.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut best: Option<FilterMatch> = None;
    for channels_reversed in [false, true] {
        for flipped in [false, true] {
            let t = oriented(target, channels_reversed, flipped);
            let tn = norm(&t);
            for i in 0..n {
                let f = filters.index_axis(ndarray::Axis(0), i).to_owned();
                let denom = norm(&f) * tn;
                let score = if denom > 0.0 {
                    (&f * &t).sum() / denom
                } else {
                    0.0
                };
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(FilterMatch {
                        index: i,
                        score,
                        channels_reversed,
                        flipped,
                    });
                }
            }
        }
    }
    Ok(best.expect("n > 0"))
}

/// A channel-first colour filter `(3, kh, kw)` (channel 0 = red) as a picture: its values
/// scaled to 0–1 together, enlarged so that each weight is a visible square.
pub fn filter_picture(filter: &Array3<f32>) -> Result<Picture> {
    let hwc = crate::filters::channel_last(filter).into_dyn();
    let one = hwc.insert_axis(ndarray::Axis(0));
    let grid = crate::vis_square::vis_square(&one.view(), 0, 0.0)?;
    let pic = Picture::new(
        &grid
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| Error::Shape(e.to_string()))?,
    )?;
    Ok(enlarge(pic, 120))
}

/// Enlarges a picture (nearest neighbour) so that its longer side is at least `side`.
fn enlarge(pic: Picture, side: u32) -> Picture {
    let (w, h) = pic.rgb.dimensions();
    let k = side.div_ceil(w.max(h).max(1));
    if k <= 1 {
        return pic;
    }
    Picture {
        rgb: ::image::imageops::resize(
            &pic.rgb,
            w * k,
            h * k,
            ::image::imageops::FilterType::Nearest,
        ),
        title: pic.title,
    }
}

/// Shrinks a picture (area average) so that its longer side is at most `side`.
pub fn fit(pic: Picture, side: u32) -> Picture {
    let (w, h) = pic.rgb.dimensions();
    if w.max(h) <= side {
        return pic;
    }
    let scale = side as f64 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    Picture {
        rgb: ::image::imageops::resize(&pic.rgb, nw, nh, ::image::imageops::FilterType::Triangle),
        title: pic.title,
    }
}

/// A grid from [`vis_square`](crate::vis_square::vis_square) (`H×W` grey or `H×W×3` colour)
/// as a picture, enlarged (nearest neighbour, so each weight stays a sharp square) until its
/// longer side reaches `min_side`.
///
/// ```
/// let grid = ndarray::Array3::<f32>::zeros((32, 32, 3)).into_dyn();
/// assert_eq!(convlab::vgg::grid_picture(grid, 400)?.rgb.dimensions(), (416, 416));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn grid_picture(grid: ArrayD<f32>, min_side: u32) -> Result<Picture> {
    let pic = match grid.ndim() {
        2 => Picture::new(
            &grid
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|e| Error::Shape(e.to_string()))?,
        )?,
        3 => Picture::new(
            &grid
                .into_dimensionality::<ndarray::Ix3>()
                .map_err(|e| Error::Shape(e.to_string()))?,
        )?,
        _ => {
            return Err(Error::Shape(format!(
                "a grid picture is H×W or H×W×3, got {:?}",
                grid.shape()
            )))
        }
    };
    Ok(enlarge(pic, min_side))
}

/// All of a layer's `(C, H, W)` activations tiled on one grey picture with the seed's
/// `vis_square(output, padsize, padval)`, shrunk to at most `max_side` pixels a side.
pub fn activation_picture(
    activations: &Tensor,
    padsize: usize,
    padval: f32,
    max_side: u32,
) -> Result<Picture> {
    let a = tensor_to_array(activations)?;
    let a = match a.ndim() {
        3 => a,
        4 if a.shape()[0] == 1 => a.index_axis_move(ndarray::Axis(0), 0),
        _ => {
            return Err(Error::Shape(format!(
                "activation_picture takes one picture's activations (C, H, W), got {:?}: use layer_output",
                a.shape()
            )))
        }
    };
    let grid = crate::vis_square::vis_square(&a.view(), padsize, padval)?;
    let grid = grid
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| Error::Shape(e.to_string()))?;
    Ok(fit(Picture::new(&grid)?, max_side))
}
