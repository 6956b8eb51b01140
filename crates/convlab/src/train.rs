//! Training your own network (LA16–LA18): the seed's small CIFAR-10 model, Keras's SGD
//! schedule, and a training loop with live progress, checkpoints and curves.
//!
//! * [`Stack`] is `tch::nn::seq_t()` with a name for every layer, so that
//!   [`Stack::summary`] can print Keras's table of layers, output shapes and weights.
//! * [`cifar_cnn`] is the seed's model (the classic Keras `cifar10_cnn` example).
//! * [`KerasSgd`] is Keras 1's `SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)`,
//!   update for update (see its docs for why this is not `tch::nn::Sgd`).
//! * [`fit`] trains with an [`ImageDataGenerator`], prints a progress line as it goes,
//!   evaluates on the test set after every epoch, and saves a checkpoint that a later run
//!   resumes from — only a run with the same settings: a checkpoint records a [`RunSpec`]
//!   (model, optimiser, augmentation, data, batch size, seed), and changed settings train a
//!   fresh run in a new folder next to it ([`choose_run_dir`]). Notebooks get a checkpoint
//!   folder of their own ([`checkpoint_dir`]).
//!
//! ```
//! use convlab::train::{cifar_cnn, KerasSgd};
//! use tch::nn;
//! let vs = nn::VarStore::new(tch::Device::Cpu);
//! let model = cifar_cnn(&vs.root());
//! let summary = model.summary(&vs, &[1, 3, 32, 32])?;
//! assert_eq!(summary.total_params, 1_250_858);
//! let opt = KerasSgd::new(&vs, 0.01, 0.9, 1e-6, true)?;
//! assert_eq!(opt.lr_now(), 0.01);
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::augment::ImageDataGenerator;
use crate::error::{Error, Result};
pub use crate::summary::{Summary, SummaryRow};

mod checkpoint;
pub use checkpoint::{
    checkpoint_dir, choose_run_dir, load_checkpoint, notebook_folder, save_checkpoint, AugmentSpec,
    DataSpec, ModelSpec, OptimizerSpec, Progress, RunDir, RunSpec,
};
use ndarray::{Array2, Array4, Axis};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

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

#[derive(Debug)]
struct Layer {
    name: String,
    module: Box<dyn ModuleT>,
}

/// A sequence of named layers: `tch::nn::seq_t()` that can also print a summary.
///
/// ```
/// use convlab::train::{keras_dense, Stack};
/// use tch::nn;
/// let vs = nn::VarStore::new(tch::Device::Cpu);
/// let p = vs.root();
/// let net = Stack::new()
///     .add("dense", keras_dense(&p / "dense", 4, 2))
///     .add_fn("relu", |x| x.relu());
/// let s = net.summary(&vs, &[1, 4])?;
/// assert_eq!(s.rows[0].params, 4 * 2 + 2);
/// assert_eq!(s.rows[1].output_shape, vec![1, 2]);
/// # Ok::<(), convlab::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Stack {
    layers: Vec<Layer>,
}

impl Stack {
    /// An empty stack.
    pub fn new() -> Stack {
        Stack::default()
    }

    /// Adds a layer with weights (convolution, dense). Give it the name of its `nn::Path`, so
    /// the summary finds its weights.
    pub fn add<M: ModuleT + 'static>(mut self, name: &str, module: M) -> Stack {
        self.layers.push(Layer {
            name: name.to_string(),
            module: Box::new(module),
        });
        self
    }

    /// Adds a function of the input (activation, pooling, flatten).
    pub fn add_fn<F: Fn(&Tensor) -> Tensor + Send + 'static>(self, name: &str, f: F) -> Stack {
        self.add(name, nn::func(f))
    }

    /// Adds a function that behaves differently in training (dropout).
    pub fn add_fn_t<F: Fn(&Tensor, bool) -> Tensor + Send + 'static>(
        self,
        name: &str,
        f: F,
    ) -> Stack {
        self.add(name, nn::func_t(f))
    }

    /// The layer names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// Runs a zero input of shape `input` through the layers (not training) and lists each
    /// layer's output shape and number of weights (the variables of `vs` whose path ends in
    /// the layer's name). Errors name the layer where the shapes stop fitting.
    pub fn summary(&self, vs: &nn::VarStore, input: &[i64]) -> Result<Summary> {
        let variables = vs.variables();
        let mut x = Tensor::zeros(input, (Kind::Float, vs.device()));
        let mut rows = Vec::new();
        for layer in &self.layers {
            let before = x.size();
            x = tch::no_grad(|| layer.module.f_forward_t(&x, false)).map_err(|e| {
                Error::Shape(format!(
                    "layer {:?} cannot take an input of shape {before:?}: {e}",
                    layer.name
                ))
            })?;
            let params: i64 = variables
                .iter()
                .filter(|(n, _)| n.rsplit('.').nth(1) == Some(layer.name.as_str()))
                .map(|(_, t)| t.numel() as i64)
                .sum();
            rows.push(SummaryRow::new(layer.name.clone(), "", x.size(), params));
        }
        let mut summary = Summary::new(input.to_vec(), rows);
        // Weights outside the named layers count too.
        summary.total_params = variables.values().map(|t| t.numel() as i64).sum();
        Ok(summary)
    }
}

trait ForwardChecked {
    fn f_forward_t(&self, x: &Tensor, train: bool) -> std::result::Result<Tensor, tch::TchError>;
}

impl ForwardChecked for Box<dyn ModuleT> {
    /// libtorch reports shape mismatches by throwing, which tch turns into a panic in the
    /// infallible API; catch it so that a notebook cell gets an error naming the layer.
    fn f_forward_t(&self, x: &Tensor, train: bool) -> std::result::Result<Tensor, tch::TchError> {
        let out =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.forward_t(x, train)));
        out.map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tch::TchError::Shape(msg.lines().next().unwrap_or("").to_string())
        })
    }
}

impl ModuleT for Stack {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for layer in &self.layers {
            x = layer.module.forward_t(&x, train);
        }
        x
    }
}

/// The seed's model: Keras's `cifar10_cnn` example.
///
/// | layers | output for a 32×32 picture |
/// |---|---|
/// | conv 32 3×3 same + ReLU | 32×32×32 |
/// | conv 32 3×3 valid + ReLU, max-pool 2, dropout 0.25 | 32×15×15 |
/// | conv 64 3×3 same + ReLU | 64×15×15 |
/// | conv 64 3×3 valid + ReLU, max-pool 2, dropout 0.25 | 64×6×6 |
/// | flatten, dense 512 + ReLU, dropout 0.5 | 512 |
/// | dense 10 (+ softmax, applied in the loss and in [`predict_proba`]) | 10 |
///
/// The model returns the 10 *logits*; the softmax lives in the loss
/// (`log_softmax` + categorical cross-entropy, the same numbers as Keras's softmax layer
/// followed by `categorical_crossentropy`, computed without overflow).
pub fn cifar_cnn(p: &nn::Path) -> Stack {
    CIFAR_LAYOUT
        .iter()
        .fold(Stack::default(), |stack, (name, part)| {
            part.append(stack, p, name)
        })
}

/// One part of a layer layout (see [`CIFAR_LAYOUT`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part {
    /// A Keras convolution: input channels, filters, kernel side, padding.
    Conv(i64, i64, i64, Padding),
    /// A Keras dense layer: inputs, units.
    Dense(i64, i64),
    /// `max(0, x)`.
    Relu,
    /// Max-pooling over `k`×`k` squares, stride `k`.
    MaxPool(i64),
    /// Dropout of this fraction, in training only.
    Dropout(f64),
    /// One long vector per picture.
    Flatten,
}

impl Part {
    /// `stack` with this part added under `name` (weights at `p / name`).
    pub fn append(self, stack: Stack, p: &nn::Path, name: &str) -> Stack {
        match self {
            Part::Conv(input, filters, k, padding) => {
                stack.add(name, keras_conv2d(p / name, input, filters, k, padding))
            }
            Part::Dense(input, units) => stack.add(name, keras_dense(p / name, input, units)),
            Part::Relu => stack.add_fn(name, Tensor::relu),
            Part::MaxPool(k) => stack.add_fn(name, move |t| t.max_pool2d_default(k)),
            Part::Dropout(rate) => {
                stack.add_fn_t(name, move |t, training| t.dropout(rate, training))
            }
            Part::Flatten => stack.add_fn(name, Tensor::flat_view),
        }
    }
}

/// The seed's model as a table: each layer's name and part, in order ([`cifar_cnn`] builds it).
///
/// ```
/// use convlab::train::{Part, CIFAR_LAYOUT};
/// let weighted: Vec<&str> = CIFAR_LAYOUT.iter()
///     .filter(|(_, part)| matches!(part, Part::Conv(..) | Part::Dense(..)))
///     .map(|(name, _)| *name)
///     .collect();
/// assert_eq!(weighted, ["conv1", "conv2", "conv3", "conv4", "dense1", "dense2"]);
/// ```
pub const CIFAR_LAYOUT: [(&str, Part); 17] = {
    use Padding::{Same, Valid};
    use Part::*;
    [
        ("conv1", Conv(3, 32, 3, Same)),
        ("relu1", Relu),
        ("conv2", Conv(32, 32, 3, Valid)),
        ("relu2", Relu),
        ("pool1", MaxPool(2)),
        ("drop1", Dropout(0.25)),
        ("conv3", Conv(32, 64, 3, Same)),
        ("relu3", Relu),
        ("conv4", Conv(64, 64, 3, Valid)),
        ("relu4", Relu),
        ("pool2", MaxPool(2)),
        ("drop2", Dropout(0.25)),
        ("flatten", Flatten),
        ("dense1", Dense(64 * 6 * 6, 512)),
        ("relu5", Relu),
        ("drop3", Dropout(0.5)),
        ("dense2", Dense(512, 10)),
    ]
};

// ---------------------------------------------------------------------------------------
// The optimiser
// ---------------------------------------------------------------------------------------

/// Keras 1's learning rate after `iterations` updates: `lr0 / (1 + decay · iterations)`.
///
/// ```
/// use convlab::train::keras_lr;
/// assert_eq!(keras_lr(0.01, 1e-6, 0), 0.01);
/// assert!((keras_lr(0.01, 1e-6, 1_000_000) - 0.005).abs() < 1e-15);
/// ```
pub fn keras_lr(lr0: f64, decay: f64, iterations: u64) -> f64 {
    let t = iterations as f64;
    lr0 / (1.0 + decay * t)
}

/// Keras 1's `SGD(lr, momentum, decay, nesterov)`, exactly.
///
/// For every weight `p` with gradient `g`, at update number `t` (0, 1, 2, …):
///
/// ```text
/// lr = lr0 / (1 + decay · t)
/// v  = momentum · v − lr · g              (v starts at 0)
/// p  = p + momentum · v − lr · g          (Nesterov; plain momentum: p = p + v)
/// ```
///
/// Why not `tch::nn::Sgd` with `set_lr` every step? Libtorch's SGD keeps its velocity
/// *without* the learning rate (`b = μ·b + g; p −= lr·(g + μ·b)`). With a constant rate
/// the two are the same updates; with Keras's decaying rate they drift apart slightly, and
/// libtorch's velocity cannot be saved, so a resumed run would restart it from zero. This
/// optimiser keeps Keras's velocity and saves it with the checkpoint. (The unit tests check
/// that it makes the very same updates as `tch::nn::Sgd` when `decay` is 0.)
#[derive(Debug)]
pub struct KerasSgd {
    /// Initial learning rate (`lr0`).
    pub lr: f64,
    /// Momentum `μ`.
    pub momentum: f64,
    /// Learning rate decay per update.
    pub decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Updates made so far (Keras's `iterations`).
    pub iterations: u64,
    params: Vec<(String, Tensor)>,
    velocity: Vec<Tensor>,
}

impl KerasSgd {
    /// An optimiser for the trainable variables of `vs`.
    pub fn new(
        vs: &nn::VarStore,
        lr: f64,
        momentum: f64,
        decay: f64,
        nesterov: bool,
    ) -> Result<KerasSgd> {
        for (name, v) in [("lr", lr), ("momentum", momentum), ("decay", decay)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Value(format!(
                    "{name} = {v}: it must be a number ≥ 0"
                )));
            }
        }
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        if params.is_empty() {
            return Err(Error::Value(
                "the variable store has no trainable weights: build the model on vs.root() before the optimiser".into(),
            ));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let velocity = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Ok(KerasSgd {
            lr,
            momentum,
            decay,
            nesterov,
            iterations: 0,
            params,
            velocity,
        })
    }

    /// The seed's settings: `SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)`.
    pub fn seed_settings(vs: &nn::VarStore) -> Result<KerasSgd> {
        let (lr, momentum, decay, nesterov) = (0.01, 0.9, 1e-6, true);
        KerasSgd::new(vs, lr, momentum, decay, nesterov)
    }

    /// The learning rate the next update will use.
    pub fn lr_now(&self) -> f64 {
        keras_lr(self.lr, self.decay, self.iterations)
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) {
        let lr = self.lr_now();
        let mu = self.momentum;
        tch::no_grad(|| {
            for ((_, p), v) in self.params.iter_mut().zip(&mut self.velocity) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let lr_g = &g * lr;
                *v *= mu;
                *v -= &lr_g;
                if self.nesterov {
                    let update = &*v * mu - &lr_g;
                    *p += update;
                } else {
                    *p += &*v;
                }
            }
        });
        self.iterations += 1;
    }

    /// `zero_grad`, `backward`, `step`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Saves the velocities (safetensors) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let named: Vec<(String, Tensor)> = self
            .params
            .iter()
            .zip(&self.velocity)
            .map(|((n, _), v)| (n.clone(), v.to_device(Device::Cpu).contiguous()))
            .collect();
        Tensor::write_safetensors(&named, path).map_err(|e| Error::format(path, e.to_string()))
    }

    /// Loads velocities saved by [`save`](Self::save); the names and shapes must match.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let loaded =
            Tensor::read_safetensors(path).map_err(|e| Error::format(path, e.to_string()))?;
        let map: std::collections::HashMap<String, Tensor> = loaded.into_iter().collect();
        for ((name, _), v) in self.params.iter().zip(&mut self.velocity) {
            let t = map.get(name).ok_or_else(|| {
                Error::format(path, format!("no velocity for {name}: the checkpoint is of another model; delete the checkpoint folder"))
            })?;
            if t.size() != v.size() {
                return Err(Error::format(
                    path,
                    format!("velocity of {name} is {:?}, the model has {:?}; delete the checkpoint folder", t.size(), v.size()),
                ));
            }
            tch::no_grad(|| v.copy_(t));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Passes over the training set (the total: a resumed run trains the missing ones).
    pub epochs: usize,
    /// Pictures per update (Keras's default and the seed's: 32).
    pub batch_size: usize,
    /// Seeds the shuffling, the augmentation and the dropout.
    pub seed: u64,
    /// Save a checkpoint here after every epoch and resume from it.
    pub checkpoint_dir: Option<PathBuf>,
    /// Also print a progress line inside an epoch at most this often (seconds).
    pub report_every: f64,
    /// Where to train.
    pub device: Device,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            seed: 0,
            checkpoint_dir: None,
            report_every: 15.0,
            device: Device::Cpu,
        }
    }
}

/// The numbers of one epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// 1, 2, …
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (dropout on, as Keras reports it).
    pub train_loss: f64,
    /// Fraction of training pictures classified right during the epoch.
    pub train_accuracy: f64,
    /// Loss on the test set after the epoch.
    pub test_loss: f64,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: f64,
    /// Seconds the epoch took (training and testing).
    pub seconds: f64,
    /// Training pictures per second.
    pub images_per_sec: f64,
}

/// What [`fit`] returns: one [`EpochStats`] per epoch, resumed ones included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// In epoch order.
    pub epochs: Vec<EpochStats>,
}

impl History {
    /// Training and test loss per epoch, ready for [`crate::plot::lines`].
    pub fn loss_series(&self) -> Vec<(&'static str, Vec<(f64, f64)>)> {
        vec![
            (
                "training",
                self.epochs
                    .iter()
                    .map(|e| (e.epoch as f64, e.train_loss))
                    .collect(),
            ),
            (
                "test",
                self.epochs
                    .iter()
                    .map(|e| (e.epoch as f64, e.test_loss))
                    .collect(),
            ),
        ]
    }

    /// Training and test accuracy per epoch, ready for [`crate::plot::lines`].
    pub fn accuracy_series(&self) -> Vec<(&'static str, Vec<(f64, f64)>)> {
        vec![
            (
                "training",
                self.epochs
                    .iter()
                    .map(|e| (e.epoch as f64, e.train_accuracy))
                    .collect(),
            ),
            (
                "test",
                self.epochs
                    .iter()
                    .map(|e| (e.epoch as f64, e.test_accuracy))
                    .collect(),
            ),
        ]
    }
}

/// Pictures `(N, C, H, W)` as a tensor on `device`.
pub fn to_tensor(x: &Array4<f32>, device: Device) -> Tensor {
    let (n, c, h, w) = x.dim();
    let x = x.as_standard_layout();
    Tensor::from_slice(x.as_slice().expect("standard layout"))
        .view([n as i64, c as i64, h as i64, w as i64])
        .to_device(device)
}

/// One-hot labels `(N, K)` as a tensor on `device`.
pub fn labels_tensor(y: &Array2<f32>, device: Device) -> Tensor {
    let (n, k) = y.dim();
    let y = y.as_standard_layout();
    Tensor::from_slice(y.as_slice().expect("standard layout"))
        .view([n as i64, k as i64])
        .to_device(device)
}

/// Categorical cross-entropy of `logits` against one-hot `targets`, averaged over the
/// batch: `−mean Σ_k y_k · log softmax(logits)_k`.
///
/// ```
/// let logits = tch::Tensor::from_slice(&[0.0f32, 0.0]).view([1, 2]);
/// let y = tch::Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
/// let loss = convlab::train::cross_entropy(&logits, &y).double_value(&[]);
/// assert!((loss - 2f64.ln()).abs() < 1e-6);
/// ```
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    -(targets * logits.log_softmax(-1, Kind::Float))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
}

/// How many rows of `logits` have their largest value at the one-hot target's 1.
pub fn correct(logits: &Tensor, targets: &Tensor) -> i64 {
    logits
        .argmax(-1, false)
        .eq_tensor(&targets.argmax(-1, false))
        .sum(Kind::Int64)
        .int64_value(&[])
}

/// Mean loss and accuracy of `model` over standardised pictures `x` with one-hot `y`, in
/// batches of `batch_size`, not training (no dropout).
pub fn evaluate(model: &impl ModuleT, x: &Tensor, y: &Tensor, batch_size: i64) -> (f64, f64) {
    let n = x.size()[0];
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (mut loss_sum, mut right) = (0.0, 0i64);
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch_size.min(n - start);
            let xb = x.narrow(0, start, len);
            let yb = y.narrow(0, start, len);
            let logits = model.forward_t(&xb, false);
            loss_sum += cross_entropy(&logits, &yb).double_value(&[]) * len as f64;
            right += correct(&logits, &yb);
            start += len;
        }
    });
    (loss_sum / n as f64, right as f64 / n as f64)
}

/// Class probabilities (softmax of the logits) for standardised pictures `x`, `(N, 10)`.
pub fn predict_proba(
    model: &impl ModuleT,
    x: &Array4<f32>,
    batch_size: usize,
    device: Device,
) -> Array2<f32> {
    let n = x.len_of(Axis(0));
    let mut rows: Vec<f32> = Vec::new();
    let mut k = 0;
    tch::no_grad(|| {
        for start in (0..n).step_by(batch_size.max(1)) {
            let end = (start + batch_size.max(1)).min(n);
            let xb = to_tensor(
                &x.slice(ndarray::s![start..end, .., .., ..]).to_owned(),
                device,
            );
            let p = model
                .forward_t(&xb, false)
                .softmax(-1, Kind::Float)
                .to_device(Device::Cpu);
            k = p.size()[1] as usize;
            let mut buf = vec![0f32; p.numel()];
            p.copy_data(&mut buf, p.numel());
            rows.extend(buf);
        }
    });
    Array2::from_shape_vec((n, k), rows).expect("n rows of k")
}

/// The most likely class of each standardised picture.
pub fn predict(
    model: &impl ModuleT,
    x: &Array4<f32>,
    batch_size: usize,
    device: Device,
) -> Vec<usize> {
    predict_proba(model, x, batch_size, device)
        .outer_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

/// Counts `[true][predicted]` over `classes` classes: the confusion matrix.
///
/// ```
/// let m = convlab::train::confusion_counts(&[0, 1, 1], &[0, 0, 1], 2);
/// assert_eq!(m, vec![vec![1, 0], vec![1, 1]]);
/// ```
pub fn confusion_counts(truth: &[usize], predicted: &[usize], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; classes]; classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < classes && p < classes {
            m[t][p] += 1;
        }
    }
    m
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Trains `model` (whose weights live in `vs`) with `opt` on `(x_train, y_train)`, augmented
/// and standardised by the fitted `datagen`, and tests it on `(x_test, y_test)` (standardised,
/// not augmented) after every epoch.
///
/// Prints one line per epoch as it finishes (loss, accuracy, pictures per second, time
/// left), and inside long epochs a progress line every `report_every` seconds. (In Jupyter
/// with the Rust kernel, output arrives line by line, so these are whole lines rather than
/// one line redrawn with `\r`.) With a `checkpoint_dir`, saves after every epoch and, when a
/// checkpoint of the same run is there, resumes after its last finished epoch; a checkpoint
/// of a run with other settings (model, optimiser, augmentation, data, batch size, seed) is
/// left alone and the run trains in a new folder next to it, saying so in one line (see
/// [`choose_run_dir`]).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &impl ModuleT,
    vs: &mut nn::VarStore,
    opt: &mut KerasSgd,
    datagen: &ImageDataGenerator,
    x_train: &Array4<f32>,
    y_train: &Array2<f32>,
    x_test: &Array4<f32>,
    y_test: &Array2<f32>,
    options: &FitOptions,
) -> Result<History> {
    let n = x_train.len_of(Axis(0));
    if n == 0 || y_train.nrows() != n || x_test.len_of(Axis(0)) != y_test.nrows() {
        return Err(Error::Shape(format!(
            "fit needs as many labels as pictures: {} training pictures, {} labels; {} test pictures, {} labels",
            n,
            y_train.nrows(),
            x_test.len_of(Axis(0)),
            y_test.nrows()
        )));
    }
    if options.batch_size == 0 {
        return Err(Error::Value(
            "batch_size must be at least 1 (the seed uses 32)".into(),
        ));
    }
    let mut history = History::default();
    let run_dir = match &options.checkpoint_dir {
        Some(base) => {
            let spec = RunSpec::describe(
                model, vs, opt, datagen, x_train, y_train, x_test, y_test, options,
            )?;
            let run = choose_run_dir(base, &spec)?;
            if let Some(note) = &run.note {
                println!("{note}");
            }
            if run.resume {
                let p = load_checkpoint(&run.dir, vs, opt)?.expect("progress exists");
                println!(
                    "resuming from {} after epoch {} ({} updates made)",
                    run.dir.display(),
                    p.epochs.len(),
                    p.iterations
                );
                history = p.history();
                for e in &history.epochs {
                    println!("{}", epoch_line(e, options.epochs));
                }
            }
            Some((run.dir, spec))
        }
        None => None,
    };
    let device = options.device;
    let x_test_t = to_tensor(&datagen.standardize_all(x_test)?, device);
    let y_test_t = labels_tensor(y_test, device);
    let batches_per_epoch = n.div_ceil(options.batch_size);
    let run_start = Instant::now();
    let first_epoch = history.epochs.len();
    for epoch in first_epoch..options.epochs {
        tch::manual_seed(options.seed.wrapping_mul(1000).wrapping_add(epoch as u64) as i64);
        let start = Instant::now();
        let mut last_report = Instant::now();
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0i64, 0usize);
        let flow = datagen.flow(
            x_train,
            y_train,
            options.batch_size,
            options.seed.wrapping_mul(7919).wrapping_add(epoch as u64),
        );
        for (b, batch) in flow.enumerate() {
            let (xb, yb) = batch?;
            let len = xb.len_of(Axis(0));
            let xs = to_tensor(&xb, device);
            let ys = labels_tensor(&yb, device);
            let logits = model.forward_t(&xs, true);
            let loss = cross_entropy(&logits, &ys);
            opt.backward_step(&loss);
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(Error::Value(format!(
                    "the loss became {l} in epoch {} at batch {b}: training diverged; lower the learning rate",
                    epoch + 1
                )));
            }
            loss_sum += l * len as f64;
            right += correct(&logits, &ys);
            seen += len;
            if last_report.elapsed().as_secs_f64() >= options.report_every
                && b + 1 < batches_per_epoch
            {
                last_report = Instant::now();
                let t = start.elapsed().as_secs_f64();
                let rate = seen as f64 / t;
                println!(
                    "  epoch {}/{}  {seen:>6}/{n}  loss {:.4}  acc {:.4}  {rate:.0} img/s  epoch ends in {}",
                    epoch + 1,
                    options.epochs,
                    loss_sum / seen as f64,
                    right as f64 / seen as f64,
                    duration((n - seen) as f64 / rate)
                );
                let _ = std::io::stdout().flush();
            }
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy) = evaluate(model, &x_test_t, &y_test_t, 256);
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: right as f64 / seen as f64,
            test_loss,
            test_accuracy,
            seconds: start.elapsed().as_secs_f64(),
            images_per_sec: seen as f64 / train_seconds,
        };
        let done = epoch + 1 - first_epoch;
        let per_epoch = run_start.elapsed().as_secs_f64() / done as f64;
        println!(
            "{}  {} left",
            epoch_line(&stats, options.epochs),
            duration(per_epoch * (options.epochs - epoch - 1) as f64)
        );
        let _ = std::io::stdout().flush();
        history.epochs.push(stats);
        if let Some((dir, spec)) = &run_dir {
            let progress = Progress {
                run: spec.clone(),
                iterations: opt.iterations,
                epochs: history.epochs.clone(),
            };
            save_checkpoint(dir, vs, opt, &progress)?;
        }
    }
    Ok(history)
}

fn epoch_line(e: &EpochStats, epochs: usize) -> String {
    format!(
        "epoch {:>2}/{epochs}  loss {:.4}  acc {:.4}  test loss {:.4}  test acc {:.4}  {:.0} img/s  {}",
        e.epoch,
        e.train_loss,
        e.train_accuracy,
        e.test_loss,
        e.test_accuracy,
        e.images_per_sec,
        duration(e.seconds)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_schedule_by_hand() {
        assert_eq!(keras_lr(0.01, 1e-6, 0), 0.01);
        // 0.01 / (1 + 1e-6 · 1563) = 0.01 / 1.001563
        assert!((keras_lr(0.01, 1e-6, 1563) - 0.009_984_394_391_566).abs() < 1e-15);
        assert!((keras_lr(0.01, 1e-6, 3_000_000) - 0.0025).abs() < 1e-15);
        assert_eq!(keras_lr(0.1, 0.0, 12345), 0.1);
    }

    /// One weight w = [1.0], loss = 0.5·w² so the gradient is w. Three Keras updates by hand
    /// (lr0 = 0.1, μ = 0.9, decay = 0.5, Nesterov):
    /// t=0: lr=0.1,    g=1,        v=−0.1,              w = 1 + 0.9·(−0.1) − 0.1 = 0.81
    /// t=1: lr=0.1/1.5, g=0.81,    v=0.9·(−0.1) − 0.054 = −0.144,
    ///                             w = 0.81 + 0.9·(−0.144) − 0.054 = 0.6264
    /// t=2: lr=0.05,   g=0.6264,   v=0.9·(−0.144) − 0.03132 = −0.16092,
    ///                             w = 0.6264 − 0.144828 − 0.03132 = 0.450252
    #[test]
    fn keras_nesterov_updates_by_hand() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let mut opt = KerasSgd::new(&vs, 0.1, 0.9, 0.5, true).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let loss = (&w * &w).sum(Kind::Float) * 0.5;
            opt.backward_step(&loss);
            got.push(w.double_value(&[0]));
        }
        for (g, want) in got.iter().zip([0.81, 0.6264, 0.450252]) {
            assert!((g - want).abs() < 1e-6, "got {got:?}");
        }
        assert_eq!(opt.iterations, 3);
        assert!((opt.lr_now() - 0.1 / 2.5).abs() < 1e-15);
    }

    #[test]
    fn plain_momentum_by_hand() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let mut opt = KerasSgd::new(&vs, 0.1, 0.5, 0.0, false).unwrap();
        // t=0: v = −0.1, w = 0.9; t=1: v = −0.05 − 0.09 = −0.14, w = 0.76
        for _ in 0..2 {
            let loss = (&w * &w).sum(Kind::Float) * 0.5;
            opt.backward_step(&loss);
        }
        assert!((w.double_value(&[0]) - 0.76).abs() < 1e-6);
    }

    #[test]
    fn same_updates_as_libtorch_sgd_without_decay() {
        use tch::nn::OptimizerConfig;
        let run = |keras: bool| {
            // Fixed numbers, not the global random generator: tests run in parallel threads.
            let fixed = |n: i64, f: f64| (Tensor::arange(n, (Kind::Float, Device::Cpu)) * f).sin();
            let vs = nn::VarStore::new(Device::Cpu);
            let lin = nn::linear(vs.root() / "l", 6, 3, Default::default());
            tch::no_grad(|| {
                lin.ws
                    .shallow_clone()
                    .copy_(&fixed(18, 0.37).reshape([3, 6]));
                if let Some(bs) = &lin.bs {
                    bs.shallow_clone().copy_(&fixed(3, 1.1));
                }
            });
            let x = fixed(48, 0.71).reshape([8, 6]);
            let y = fixed(24, 1.3).reshape([8, 3]);
            let mut k = KerasSgd::new(&vs, 0.05, 0.9, 0.0, true).unwrap();
            let mut t = nn::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                wd: 0.0,
                nesterov: true,
            }
            .build(&vs, 0.05)
            .unwrap();
            for _ in 0..20 {
                let loss = (lin.forward_t(&x, true) - &y).square().mean(Kind::Float);
                if keras {
                    k.backward_step(&loss);
                } else {
                    t.backward_step(&loss);
                }
            }
            lin.ws.copy()
        };
        let (a, b) = (run(true), run(false));
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "KerasSgd and nn::Sgd differ by {diff}");
    }

    #[test]
    fn seed_model_shapes_and_weight_counts() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = cifar_cnn(&vs.root());
        let s = model.summary(&vs, &[2, 3, 32, 32]).unwrap();
        let row = |n: &str| s.layer(n).unwrap().clone();
        assert_eq!(row("conv1").params, 3 * 3 * 3 * 32 + 32);
        assert_eq!(row("conv2").params, 3 * 3 * 32 * 32 + 32);
        assert_eq!(row("conv2").output_shape, vec![2, 32, 30, 30]);
        assert_eq!(row("pool1").output_shape, vec![2, 32, 15, 15]);
        assert_eq!(row("conv4").output_shape, vec![2, 64, 13, 13]);
        assert_eq!(row("flatten").output_shape, vec![2, 2304]);
        assert_eq!(row("dense2").output_shape, vec![2, 10]);
        assert_eq!(row("dense1").params, 2304 * 512 + 512);
        assert_eq!(s.total_params, 1_250_858);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), vec![32, 3, 3, 3]);
        assert_eq!(
            vars["conv1.bias"].double_value(&[0]),
            0.0,
            "Keras biases start at zero"
        );
        let table = s.to_string();
        assert!(
            table.contains("1,250,858") && table.contains("(2, 32, 30, 30)"),
            "{table}"
        );
    }

    #[test]
    fn summary_names_the_layer_where_shapes_break() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = cifar_cnn(&vs.root());
        let err = model.summary(&vs, &[1, 3, 28, 28]).unwrap_err().to_string();
        assert!(err.contains("dense1"), "{err}");
    }

    #[test]
    fn progress_round_trips() {
        let mut run = RunSpec::default();
        run.optimizer.lr = 0.01;
        run.model.probe = vec![0.1, -2.5e-7, 3.0];
        run.model.parameters = vec![("conv1.weight".into(), vec![32, 3, 3, 3])];
        let p = Progress {
            run,
            iterations: 9,
            epochs: vec![EpochStats {
                epoch: 1,
                train_loss: 2.25,
                train_accuracy: 0.1,
                test_loss: 2.0 / 3.0,
                test_accuracy: 0.5,
                seconds: 1.5,
                images_per_sec: 100.0,
            }],
        };
        let dir = std::env::temp_dir().join(format!("convlab-progress-{}", std::process::id()));
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = cifar_cnn(&vs.root());
        let opt = KerasSgd::seed_settings(&vs).unwrap();
        save_checkpoint(&dir, &vs, &opt, &p).unwrap();
        let back = Progress::read(&dir).unwrap().unwrap();
        assert_eq!(back, p, "floats come back exactly");
        std::fs::write(dir.join("progress.json"), "{\"run\": 1}").unwrap();
        let err = Progress::read(&dir).unwrap_err().to_string();
        assert!(
            err.contains("progress.json") && err.contains("delete"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn confusion_and_duration() {
        assert_eq!(
            confusion_counts(&[2, 2, 0], &[2, 1, 0], 3),
            vec![vec![1, 0, 0], vec![0, 0, 0], vec![0, 1, 1]]
        );
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(61.0), "1m01s");
        assert_eq!(duration(3725.0), "1h02m");
    }
}
