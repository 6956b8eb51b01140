//! Training your own network (LA16–LA18): a training loop with live progress, checkpoints
//! and curves. The notebook's other names are re-exported here from the modules that hold
//! them.
//!
//! * [`Stack`] ([`sequential`](crate::sequential)) is `tch::nn::seq_t()` with a name for every
//!   layer, so that [`Stack::summary`] can print Keras's table of layers, output shapes and
//!   weights; [`keras_conv2d`] and [`keras_dense`] ([`keras`](crate::keras)) are its layers.
//! * [`cifar_cnn`] is the seed's model (the classic Keras `cifar10_cnn` example).
//! * [`KerasSgd`] ([`sgd`](crate::sgd)) is Keras 1's `SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)`,
//!   update for update (see its docs for why this is not `tch::nn::Sgd`).
//! * [`fit`] trains with an [`ImageDataGenerator`], prints a progress line as it goes,
//!   evaluates on the test set after every epoch, and saves a checkpoint that a later run
//!   resumes from — only a run with the same settings: a checkpoint records a [`RunSpec`]
//!   (model, optimiser, augmentation, data, batch size, seed), and changed settings train a
//!   fresh run in a new folder next to it ([`choose_run_dir`], in [`checkpoint`]). Notebooks get a checkpoint folder of their own
//!   ([`checkpoint_dir`]).
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
use crate::tensor::array_to_tensor;
use ndarray::{Array2, Array4, Axis};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

pub mod checkpoint;
pub use crate::keras::{glorot_uniform, keras_conv2d, keras_dense, Padding};
pub use crate::sequential::Stack;
pub use crate::sgd::{keras_lr, KerasSgd};
pub use crate::summary::{Summary, SummaryRow};
pub use checkpoint::{
    checkpoint_dir, choose_run_dir, load_checkpoint, notebook_folder, save_checkpoint, DataSpec,
    ModelSpec, OptimizerSpec, Progress, RunDir, RunSpec,
};

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

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
    array_to_tensor(x).to_device(device)
}

/// One-hot labels `(N, K)` as a tensor on `device`.
pub fn labels_tensor(y: &Array2<f32>, device: Device) -> Tensor {
    array_to_tensor(y).to_device(device)
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
    let kind = logits.kind();
    -(targets * logits.log_softmax(-1, kind))
        .sum_dim_intlist(1, false, kind)
        .mean(kind)
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

/// What [`fit`] is given besides the model and its optimiser: the augmentation, the data and
/// the options. A checkpoint records it ([`RunSpec::describe`]).
#[derive(Clone, Copy, Debug)]
pub struct FitInputs<'a> {
    /// The fitted augmentation and normalisation.
    pub datagen: &'a ImageDataGenerator,
    /// Training pictures `(N, C, H, W)`.
    pub x_train: &'a Array4<f32>,
    /// One-hot training labels `(N, K)`.
    pub y_train: &'a Array2<f32>,
    /// Test pictures.
    pub x_test: &'a Array4<f32>,
    /// One-hot test labels.
    pub y_test: &'a Array2<f32>,
    /// How to train.
    pub options: &'a FitOptions,
}

impl FitInputs<'_> {
    /// Refuses data whose pictures and labels do not pair up, and a zero batch size.
    fn check(&self) -> Result<()> {
        let n = self.x_train.len_of(Axis(0));
        let n_test = self.x_test.len_of(Axis(0));
        if n == 0 || self.y_train.nrows() != n || n_test != self.y_test.nrows() {
            return Err(Error::Shape(format!(
                "fit needs as many labels as pictures: {} training pictures, {} labels; {} test pictures, {} labels",
                n,
                self.y_train.nrows(),
                n_test,
                self.y_test.nrows()
            )));
        }
        if self.options.batch_size == 0 {
            return Err(Error::Value(
                "batch_size must be at least 1 (the seed uses 32)".into(),
            ));
        }
        Ok(())
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
///
/// Its nine arguments are Keras's `model.fit_generator(datagen.flow(X_train, Y_train,
/// batch_size), …, validation_data=(X_test, Y_test))` of the seed notebook, one for one.
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
    let inputs = FitInputs {
        datagen,
        x_train,
        y_train,
        x_test,
        y_test,
        options,
    };
    inputs.check()?;
    let (mut history, run) = match &options.checkpoint_dir {
        Some(base) => open_run(model, vs, opt, &inputs, base)?,
        None => (History::default(), None),
    };
    let x_test_t = to_tensor(&datagen.standardize_all(x_test)?, options.device);
    let y_test_t = labels_tensor(y_test, options.device);
    let run_start = Instant::now();
    let first_epoch = history.epochs.len();
    for epoch in first_epoch..options.epochs {
        let start = Instant::now();
        let (train_loss, train_accuracy, seen) = train_epoch(model, opt, &inputs, epoch)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy) = evaluate(model, &x_test_t, &y_test_t, 256);
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds: start.elapsed().as_secs_f64(),
            images_per_sec: seen as f64 / train_seconds,
        };
        let per_epoch = run_start.elapsed().as_secs_f64() / (epoch + 1 - first_epoch) as f64;
        println!(
            "{}  {} left",
            epoch_line(&stats, options.epochs),
            duration(per_epoch * (options.epochs - epoch - 1) as f64)
        );
        let _ = std::io::stdout().flush();
        history.epochs.push(stats);
        if let Some((dir, spec)) = &run {
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

/// The run's checkpoint folder and record, and the epochs a checkpoint of the same run there
/// has already trained (restoring its weights and velocities).
fn open_run(
    model: &impl ModuleT,
    vs: &mut nn::VarStore,
    opt: &mut KerasSgd,
    inputs: &FitInputs,
    base: &std::path::Path,
) -> Result<(History, Option<(PathBuf, RunSpec)>)> {
    let spec = RunSpec::describe(model, vs, opt, inputs)?;
    let run = choose_run_dir(base, &spec)?;
    if let Some(note) = &run.note {
        println!("{note}");
    }
    let mut history = History::default();
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
            println!("{}", epoch_line(e, inputs.options.epochs));
        }
    }
    Ok((history, Some((run.dir, spec))))
}

/// One pass over the augmented training pictures: mean loss, accuracy and pictures seen.
/// Prints a progress line every `report_every` seconds.
fn train_epoch(
    model: &impl ModuleT,
    opt: &mut KerasSgd,
    inputs: &FitInputs,
    epoch: usize,
) -> Result<(f64, f64, usize)> {
    let options = inputs.options;
    let n = inputs.x_train.len_of(Axis(0));
    let batches = n.div_ceil(options.batch_size);
    tch::manual_seed(options.seed.wrapping_mul(1000).wrapping_add(epoch as u64) as i64);
    let (start, mut last_report) = (Instant::now(), Instant::now());
    let (mut loss_sum, mut right, mut seen) = (0.0f64, 0i64, 0usize);
    let flow = inputs.datagen.flow(
        inputs.x_train,
        inputs.y_train,
        options.batch_size,
        options.seed.wrapping_mul(7919).wrapping_add(epoch as u64),
    );
    for (b, batch) in flow.enumerate() {
        let (xb, yb) = batch?;
        let len = xb.len_of(Axis(0));
        let xs = to_tensor(&xb, options.device);
        let ys = labels_tensor(&yb, options.device);
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
        if last_report.elapsed().as_secs_f64() >= options.report_every && b + 1 < batches {
            last_report = Instant::now();
            let rate = seen as f64 / start.elapsed().as_secs_f64();
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
    Ok((loss_sum / seen as f64, right as f64 / seen as f64, seen))
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
