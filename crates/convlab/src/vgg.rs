//! VGG-16 built layer by layer (Learning Activities 5–14).
//!
//! [`Model`] is a [`Sequential`] with its weights: the notebook adds layers one by one, as
//! the Keras cells of the original did, and every layer checks the shape it receives, so a
//! mistake shows at the cell that made it. Layers with weights carry the names those weights have in the
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
//! [`vgg16`] builds the whole network in one call from its layout ([`vgg16_layout`]), which
//! also gives the weight file's names and shapes.
//!
//! The notebook reaches everything of LA5–LA14 with `use convlab::vgg::*`: this module
//! re-exports what lives next door — [`Preprocessing`](crate::preprocess) turns a picture
//! into the network's input, [`top_k`](crate::imagenet) reads its answer, and
//! [`closest_filter`](crate::inspect) and [`activation_picture`](crate::inspect) look inside.

use crate::error::{Error, Result};
use crate::summary::shape_text;
use ndarray::Array4;
use std::fmt;
use tch::nn;

pub use crate::imagenet::{guesses_chart, imagenet_classes, top_k, Guess};
pub use crate::inspect::{
    activation_picture, closest_filter, filter_picture, grid_picture, oriented, FilterMatch,
};
pub use crate::preprocess::{
    image_tensor, Preprocessing, CAFFE_MEAN_BGR, MIN_SIDE, TORCHVISION_MEAN, TORCHVISION_STD,
};
use crate::sequential::Op;
pub use crate::sequential::{Activation, Layer, LayerRef, Sequential};
pub use crate::summary::{thousands, Summary, SummaryRow};
pub use crate::tensor::{array_to_tensor, tensor_to_array};
/// The tensor types a notebook needs next to the model (`use convlab::vgg::*`).
pub use tch::{Device, Kind, Tensor};

/// A network built one layer after the other, like Keras's `Sequential`, over a
/// [`tch::nn::VarStore`] that holds its weights: a [`Sequential`] whose every layer checks the
/// shape it receives.
pub struct Model {
    vs: nn::VarStore,
    input_shape: Vec<i64>,
    seq: Sequential,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Model({} layers, input {:?})",
            self.seq.layers().len(),
            self.input_shape
        )
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
            seq: Sequential::new(),
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

    /// The layers as a [`Sequential`].
    pub fn sequential(&self) -> &Sequential {
        &self.seq
    }

    /// Shape of one input example, `[channels, height, width]`.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// Shape of one example's output of the last layer (the input shape when empty).
    pub fn output_shape(&self) -> &[i64] {
        self.seq
            .layers()
            .last()
            .map_or(&self.input_shape, |l| l.output_shape())
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        self.seq.layers()
    }

    /// One layer, by position or name.
    pub fn layer(&self, which: impl LayerRef) -> Result<&Layer> {
        self.seq.layer(which)
    }

    /// Names of the convolution layers, in order: `conv_names()[7]` is the eighth.
    pub fn conv_names(&self) -> Vec<String> {
        self.layers()
            .iter()
            .filter(|l| l.is_conv())
            .map(|l| l.name().to_string())
            .collect()
    }

    /// Total number of weights and biases.
    pub fn num_params(&self) -> i64 {
        self.layers().iter().map(|l| l.params()).sum()
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.split('.').any(|part| part.is_empty()) {
            return Err(Error::Value(format!(
                "the layer name {name:?} is not usable: give the name of the layer in the weight file, e.g. \"features.0\""
            )));
        }
        if let Some(i) = self.layers().iter().position(|l| l.name() == name) {
            return Err(Error::Value(format!(
                "the name {name:?} is already used by layer {i} ({}): each layer with weights needs its own name",
                self.layers()[i].kind()
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
            .layers()
            .iter()
            .filter(|l| l.name().starts_with(base))
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
        Ok(self.seq.push(Layer::new(name, op, output_shape, params)))
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
            self.layers()
                .iter()
                .map(|l| {
                    SummaryRow::new(
                        l.name(),
                        l.description(),
                        l.output_shape().to_vec(),
                        l.params(),
                    )
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

    /// Runs a batch `(N, C, H, W)` through every layer and returns the last layer's output
    /// (for VGG-16 with softmax: `(N, 1000)` probabilities). Runs without gradients, with
    /// dropout off, on the model's device.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_to(
            x,
            self.layers().len().checked_sub(1).ok_or_else(|| {
                Error::Value("the model has no layers yet: add some before running it".into())
            })?,
        )
    }

    /// Runs a batch through the layers up to and including `which` (a position, as Keras's
    /// `model.layers[i]`, or a name) and returns that layer's output, `(N, …)`.
    pub fn forward_to(&self, x: &Tensor, which: impl LayerRef) -> Result<Tensor> {
        let last = which.index_in(self.layers())?;
        Ok(self
            .forward_layers(x, &[last])?
            .pop()
            .expect("one layer asked for"))
    }

    /// Runs a batch once through the layers and returns the outputs of each layer in `which`
    /// (positions or names, in any order), in the order asked: what [`forward_to`](Self::forward_to)
    /// gives for each, in a single pass ([`Sequential::outputs_t`] without gradients, not
    /// training, on the model's device).
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
        if which.is_empty() {
            return Ok(Vec::new());
        }
        self.check_input(x)?;
        let x = x.to_device(self.device());
        tch::no_grad(|| self.seq.outputs_t(&x, which, false))
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
                let a = crate::tensor::tensor_to_array(&conv.ws)?;
                a.into_dimensionality().map_err(|e| Error::Shape(e.to_string()))
            }
            _ => Err(Error::Value(format!(
                "layer {} is a {} layer: it has no filters; conv_names() lists the convolution layers",
                layer.name(),
                layer.kind()
            ))),
        }
    }
}

/// VGG-16's convolution blocks: (filters, convolutions) per block, each ended by pooling.
pub const VGG16_BLOCKS: [(i64, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

/// VGG-16's classifier after flattening: two dense layers of 4096 with ReLU and dropout 0.5,
/// then 1000 scores (softmax follows).
pub const VGG16_CLASSIFIER: [VggLayer; 5] = [
    VggLayer::Dense(4096, Activation::Relu),
    VggLayer::Dropout(0.5),
    VggLayer::Dense(4096, Activation::Relu),
    VggLayer::Dropout(0.5),
    VggLayer::Dense(1000, Activation::Linear),
];

/// VGG-16's parameter count.
pub const VGG16_PARAMS: i64 = 138_357_544;

/// One step of VGG-16's layout ([`vgg16_layout`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VggLayer {
    /// One pixel of zero padding, then a 3×3 convolution with this many filters and ReLU.
    Conv(i64),
    /// 2×2 max pooling, stride 2.
    MaxPool,
    /// The `(C, H, W)` output as one row.
    Flatten,
    /// A dense layer of this many units, then the activation.
    Dense(i64, Activation),
    /// Dropout at this rate (training only).
    Dropout(f64),
}

/// VGG-16's layout, each step with the name torchvision gives it: its position in the
/// `features` or `classifier` sequence, where every module counts, ReLUs included — so the
/// convolutions are `features.0`, `features.2`, then `features.5` after the first pooling.
/// ([`VggLayer::Flatten`] is no module of torchvision's; it is called `flatten`.) The builder
/// [`vgg16`], the names [`vgg16_conv_names`] and the weight shapes
/// ([`vgg16_shapes`](crate::weights::vgg16_shapes)) all follow from it.
///
/// ```
/// use convlab::vgg::{vgg16_layout, VggLayer};
/// let layout = vgg16_layout();
/// assert_eq!(layout[0], ("features.0".to_string(), VggLayer::Conv(64)));
/// assert_eq!(layout[2], ("features.4".to_string(), VggLayer::MaxPool));
/// assert_eq!(layout.last().unwrap().0, "classifier.6");
/// ```
pub fn vgg16_layout() -> Vec<(String, VggLayer)> {
    let mut steps: Vec<(&str, VggLayer)> = Vec::new();
    for (filters, convs) in VGG16_BLOCKS {
        steps.extend(std::iter::repeat_n(
            ("features", VggLayer::Conv(filters)),
            convs,
        ));
        steps.push(("features", VggLayer::MaxPool));
    }
    steps.push(("", VggLayer::Flatten));
    steps.extend(VGG16_CLASSIFIER.map(|layer| ("classifier", layer)));
    let mut position = std::collections::HashMap::<&str, usize>::new();
    steps
        .into_iter()
        .map(|(part, layer)| {
            if part.is_empty() {
                return ("flatten".to_string(), layer);
            }
            let i = position.entry(part).or_default();
            let name = format!("{part}.{i}");
            // A ReLU after a layer is a module of its own in torchvision's sequence.
            *i += match layer {
                VggLayer::Conv(_) | VggLayer::Dense(_, Activation::Relu) => 2,
                _ => 1,
            };
            (name, layer)
        })
        .collect()
}

/// The names of VGG-16's convolution layers in torchvision's weight file
/// (from [`vgg16_layout`]).
///
/// ```
/// let names = convlab::vgg::vgg16_conv_names();
/// assert_eq!(names.len(), 13);
/// assert_eq!(names[2], "features.5");
/// assert_eq!(names[12], "features.28");
/// ```
pub fn vgg16_conv_names() -> Vec<String> {
    vgg16_layout()
        .into_iter()
        .filter(|(_, layer)| matches!(layer, VggLayer::Conv(_)))
        .map(|(name, _)| name)
        .collect()
}

/// The whole VGG-16 for 3×224×224 pictures, built from [`vgg16_layout`] with the same calls
/// as the notebook: 13 padded 3×3 convolutions with ReLU in five blocks each ended by 2×2 max
/// pooling, then flatten, two dense layers of 4096 with ReLU and dropout 0.5, a dense layer
/// of 1000 and softmax. Weights are random until [`Model::load_weights`](crate::weights)
/// fills them.
///
/// ```
/// let vgg = convlab::vgg::vgg16(tch::Device::Cpu)?;
/// assert_eq!(vgg.num_params(), convlab::vgg::VGG16_PARAMS);
/// assert_eq!(vgg.layer("features.28")?.output_shape(), &[512, 14, 14]);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn vgg16(device: Device) -> Result<Model> {
    let mut model = Model::new([3, 224, 224], device)?;
    for (name, layer) in vgg16_layout() {
        match layer {
            VggLayer::Conv(filters) => {
                model.add_zero_padding(1)?;
                model.add_conv(&name, filters, Activation::Relu)?
            }
            VggLayer::MaxPool => model.add_max_pool(2, 2)?,
            VggLayer::Flatten => model.add_flatten()?,
            VggLayer::Dense(units, activation) => model.add_dense(&name, units, activation)?,
            VggLayer::Dropout(rate) => model.add_dropout(rate)?,
        };
    }
    model.add_softmax()?;
    Ok(model)
}
