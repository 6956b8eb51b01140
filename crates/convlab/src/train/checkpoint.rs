//! Checkpoints that resume only the same run.
//!
//! A checkpoint folder holds the model's weights, the optimiser's velocities and
//! `progress.json`: the finished epochs and a [`RunSpec`], everything that defines the run —
//! the model (its parameters' names and shapes, and its output on a fixed test input with
//! fixed weights, which changes when its code does), the optimiser's settings, the
//! augmentation's settings, the data (counts, picture shape and a digest of the pictures and
//! labels), the batch size and the seed. [`fit`](super::fit) resumes a folder only when its
//! run is the same; otherwise it trains a fresh run in a new folder next to it (`NAME-2`,
//! `NAME-3`, …) and says so in one line, naming what changed. Going back to earlier settings
//! resumes their folder again.
//!
//! ```
//! use convlab::train::{choose_run_dir, RunSpec};
//! let base = std::env::temp_dir().join(format!("convlab-doc-run-{}", std::process::id()));
//! let spec = RunSpec::default();
//! let first = choose_run_dir(&base, &spec)?;
//! assert_eq!(first.dir, base);
//! assert!(first.note.is_none() && !first.resume);
//! # Ok::<(), convlab::Error>(())
//! ```

use super::{EpochStats, FitInputs, History};
use crate::augment::ImageDataGenerator;
use crate::error::{Error, Result};
use crate::sgd::KerasSgd;
use ndarray::{Array2, Array4, Axis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

pub(super) const PROGRESS_FILE: &str = "progress.json";
/// The sidecar file of checkpoints written before runs were recorded (never resumed).
const OLD_PROGRESS_FILE: &str = "progress.txt";
const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Bumped when the meaning of a [`RunSpec`] changes: older checkpoints then count as other runs.
const SPEC_VERSION: u32 = 1;

/// The optimiser's settings (Keras 1's `SGD`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSpec {
    /// Initial learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Learning rate decay per update.
    pub decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// Which pictures the run trains and tests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Training pictures.
    pub train: usize,
    /// Test pictures.
    pub test: usize,
    /// One picture's shape `(C, H, W)`.
    pub picture: Vec<usize>,
    /// SHA-256 (hex, first 16 digits) of the training pictures (a strided sample of the
    /// values, all of them for small sets) and all training labels.
    pub train_digest: String,
    /// The same for the test set.
    pub test_digest: String,
}

/// The model: its weights' names and shapes, and what it computes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Every variable of the variable store, by name, with its shape.
    pub parameters: Vec<(String, Vec<i64>)>,
    /// The model's output, in training mode (dropout on, random generator seeded), on a fixed
    /// input of two pictures with every weight set to fixed values: a change in the model's
    /// code (a layer, an activation, a dropout rate) changes these numbers.
    pub probe: Vec<f64>,
    /// The device the probe ran on (random numbers differ between devices, so probes made on
    /// different devices are not compared).
    pub probe_device: String,
}

/// Everything that defines a training run (what makes a checkpoint resumable).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The format's version.
    pub version: u32,
    /// The model.
    pub model: ModelSpec,
    /// The optimiser's settings.
    pub optimizer: OptimizerSpec,
    /// The augmentation's and normalisation's settings (not the fitted mean and spread,
    /// which follow from the data).
    pub augmentation: ImageDataGenerator,
    /// The data.
    pub data: DataSpec,
    /// Pictures per update.
    pub batch_size: usize,
    /// [`FitOptions::seed`](crate::train::FitOptions::seed).
    pub seed: u64,
}

impl RunSpec {
    /// The run that [`fit`](super::fit) is asked to make. Runs the model once on a fixed input
    /// with fixed weights (the weights of `vs` are restored afterwards).
    pub fn describe(
        model: &impl ModuleT,
        vs: &nn::VarStore,
        opt: &KerasSgd,
        inputs: &FitInputs,
    ) -> Result<RunSpec> {
        let mut parameters: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        parameters.sort();
        let (_, c, h, w) = inputs.x_train.dim();
        let probe = probe(model, vs, [c, h, w])?;
        Ok(RunSpec {
            version: SPEC_VERSION,
            model: ModelSpec {
                parameters,
                probe,
                probe_device: format!("{:?}", vs.device()),
            },
            optimizer: OptimizerSpec {
                lr: opt.lr,
                momentum: opt.momentum,
                decay: opt.decay,
                nesterov: opt.nesterov,
            },
            augmentation: ImageDataGenerator {
                mean: None,
                std: None,
                ..inputs.datagen.clone()
            },
            data: DataSpec {
                train: inputs.x_train.len_of(Axis(0)),
                test: inputs.x_test.len_of(Axis(0)),
                picture: vec![c, h, w],
                train_digest: digest(inputs.x_train, inputs.y_train),
                test_digest: digest(inputs.x_test, inputs.y_test),
            },
            batch_size: inputs.options.batch_size,
            seed: inputs.options.seed,
        })
    }

    /// What differs from `other`, one short phrase per difference ("learning rate 0.01 →
    /// 0.05"); empty when `other` is the same run.
    ///
    /// ```
    /// use convlab::train::RunSpec;
    /// let a = RunSpec::default();
    /// let mut b = a.clone();
    /// b.optimizer.lr = 0.05;
    /// b.seed = 3;
    /// assert_eq!(a.differences(&b), ["learning rate 0 → 0.05", "seed 0 → 3"]);
    /// assert!(a.differences(&a).is_empty());
    /// ```
    pub fn differences(&self, other: &RunSpec) -> Vec<String> {
        let (d, e) = (&self.data, &other.data);
        let mut out = changed(
            vec![("format", self.version.to_string())],
            vec![("format", other.version.to_string())],
        );
        out.extend(self.model.difference(&other.model));
        out.extend(changed(self.settings(), other.settings()));
        if d.train == e.train && d.train_digest != e.train_digest {
            out.push("training data (other pictures or labels)".into());
        }
        if d.test == e.test && d.test_digest != e.test_digest {
            out.push("test data (other pictures or labels)".into());
        }
        out.extend(changed(self.batches(), other.batches()));
        out
    }

    /// The optimiser's, the augmentation's and the data's settings, by name, as text.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let (o, d) = (&self.optimizer, &self.data);
        let mut out = vec![
            ("learning rate", o.lr.to_string()),
            ("momentum", o.momentum.to_string()),
            ("decay", o.decay.to_string()),
            ("nesterov", o.nesterov.to_string()),
        ];
        out.extend(self.augmentation.settings());
        out.extend([
            ("training pictures", d.train.to_string()),
            ("test pictures", d.test.to_string()),
            ("picture shape", format!("{:?}", d.picture)),
        ]);
        out
    }

    /// The batch size and the seed, as text.
    fn batches(&self) -> Vec<(&'static str, String)> {
        vec![
            ("batch size", self.batch_size.to_string()),
            ("seed", self.seed.to_string()),
        ]
    }
}

impl ModelSpec {
    /// What differs from `other`'s model, in a phrase: other weights, or the same weights
    /// computing something else (probes from different devices are not compared).
    fn difference(&self, other: &ModelSpec) -> Option<String> {
        if self.parameters != other.parameters {
            let names = |p: &[(String, Vec<i64>)]| {
                p.iter()
                    .map(|(name, shape)| format!("{name}{shape:?}"))
                    .collect::<Vec<_>>()
            };
            let (a, b) = (names(&self.parameters), names(&other.parameters));
            let gone: Vec<&String> = a.iter().filter(|x| !b.contains(x)).collect();
            let new: Vec<&String> = b.iter().filter(|x| !a.contains(x)).collect();
            let (gone, new) = (list(&gone, "none"), list(&new, "none"));
            Some(format!("model weights {gone} → {new}"))
        } else if self.probe_device == other.probe_device && !close(&self.probe, &other.probe) {
            Some("model (its layers compute something else)".into())
        } else {
            None
        }
    }
}

/// `what a → b` for each setting that differs between `a` and `b` (the same names in the
/// same order).
fn changed(a: Vec<(&'static str, String)>, b: Vec<(&'static str, String)>) -> Vec<String> {
    a.into_iter()
        .zip(b)
        .filter(|((_, x), (_, y))| x != y)
        .map(|((what, x), (_, y))| format!("{what} {x} → {y}"))
        .collect()
}

fn list(items: &[&String], empty: &str) -> String {
    match items.len() {
        0 => empty.to_string(),
        1..=3 => items
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        n => format!("{}, … ({n} in all)", items[0]),
    }
}

/// Probes agree when each number is within 1e-3 of the other (relative to its size): the same
/// code gives the same numbers up to the order of float sums (thread counts).
fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-3 * (1.0 + x.abs().max(y.abs())))
}

/// The pictures and labels' digest: SHA-256 over the shape, at most about 200 000 of the
/// values (evenly strided) and every label.
fn digest(x: &Array4<f32>, y: &Array2<f32>) -> String {
    let mut h = Sha256::new();
    for d in x.shape().iter().chain(y.shape()) {
        h.update((*d as u64).to_le_bytes());
    }
    let stride = (x.len() / 200_000).max(1);
    for v in x.iter().step_by(stride) {
        h.update(v.to_le_bytes());
    }
    for v in y.iter() {
        h.update(v.to_le_bytes());
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fixed numbers for a tensor of `shape`: a sine pattern scaled to `1/√fan_in`, so that
/// activations stay of order 1 through the layers.
fn fixed_values(shape: &[i64], salt: f64) -> Tensor {
    let numel: i64 = shape.iter().product();
    let fan_in = if shape.len() > 1 {
        (numel / shape[0].max(1)).max(1)
    } else {
        1
    };
    ((Tensor::arange(numel, (Kind::Double, Device::Cpu)) * 0.618 + salt).sin()
        * (1.0 / (fan_in as f64).sqrt()))
    .to_kind(Kind::Float)
    .reshape(shape)
}

fn probe(model: &impl ModuleT, vs: &nn::VarStore, picture: [usize; 3]) -> Result<Vec<f64>> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let saved: Vec<Tensor> = vars.iter().map(|(_, t)| t.copy()).collect();
    tch::no_grad(|| {
        for (i, (_, t)) in vars.iter_mut().enumerate() {
            let values = fixed_values(&t.size(), i as f64).to_device(t.device());
            t.copy_(&values.to_kind(t.kind()));
        }
    });
    let [c, h, w] = picture.map(|d| d as i64);
    let input = fixed_values(&[2, c, h, w], 0.5).to_device(vs.device()) * (h as f64).sqrt();
    tch::manual_seed(20_251_130);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tch::no_grad(|| model.forward_t(&input, true))
    }));
    tch::no_grad(|| {
        for ((_, t), s) in vars.iter_mut().zip(&saved) {
            t.copy_(s);
        }
    });
    let out = out.map_err(|_| {
        Error::Shape(format!(
            "the model cannot take a batch of pictures of shape {picture:?} (the training data's)"
        ))
    })?;
    let out = out
        .to_kind(Kind::Double)
        .to_device(Device::Cpu)
        .flatten(0, -1);
    let n = out.numel().min(64);
    let mut values = vec![0f64; n];
    out.narrow(0, 0, n as i64).copy_data(&mut values, n);
    Ok(values)
}

/// What the checkpoint's `progress.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The run the checkpoint belongs to.
    pub run: RunSpec,
    /// Updates made (the optimiser's `iterations`).
    pub iterations: u64,
    /// The finished epochs.
    pub epochs: Vec<EpochStats>,
}

impl Progress {
    /// The finished epochs as a [`History`].
    pub fn history(&self) -> History {
        History {
            epochs: self.epochs.clone(),
        }
    }

    /// Reads the `progress.json` of the checkpoint in `dir`, if there is one.
    pub fn read(dir: &Path) -> Result<Option<Progress>> {
        let path = dir.join(PROGRESS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::format(
                &path,
                format!("unreadable checkpoint record ({e}); delete its folder to start again"),
            )
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises") + "\n"
    }
}

/// Where [`fit`](super::fit) trains: the folder, whether it resumes a checkpoint there, and
/// the line to print when the run moved to a new folder.
#[derive(Clone, Debug, PartialEq)]
pub struct RunDir {
    /// The checkpoint folder of this run.
    pub dir: PathBuf,
    /// A checkpoint of this same run is there.
    pub resume: bool,
    /// One line saying why the run trains in a new folder (settings changed).
    pub note: Option<String>,
}

fn candidate(base: &Path, k: usize) -> PathBuf {
    if k == 1 {
        return base.to_path_buf();
    }
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    base.with_file_name(format!("{name}-{k}"))
}

/// Chooses the checkpoint folder for `spec` under the name `base`: the first of `base`,
/// `base-2`, `base-3`, … that holds a checkpoint of the same run (resumed), else the first
/// one that holds none (a fresh run; when that is not `base`, `note` says what changed
/// since the checkpoint in `base`).
///
/// ```
/// use convlab::train::{choose_run_dir, RunSpec};
/// let base = std::env::temp_dir().join(format!("convlab-doc-choose-{}", std::process::id()));
/// let run = choose_run_dir(&base, &RunSpec::default())?;
/// assert_eq!((run.dir, run.resume), (base, false));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn choose_run_dir(base: &Path, spec: &RunSpec) -> Result<RunDir> {
    let mut first_difference: Option<String> = None;
    for k in 1.. {
        let dir = candidate(base, k);
        let old_format = dir.join(OLD_PROGRESS_FILE).exists();
        let differs = match Progress::read(&dir) {
            Ok(Some(p)) => {
                let d = p.run.differences(spec);
                if d.is_empty() {
                    return Ok(RunDir {
                        dir,
                        resume: true,
                        note: None,
                    });
                }
                d.join(", ")
            }
            Ok(None) if old_format => "a checkpoint from an older convlab".to_string(),
            Ok(None) => {
                let note = first_difference.map(|d| {
                    format!(
                        "settings changed since the checkpoint in {} ({d}): training a fresh run in {}",
                        base.display(),
                        dir.display()
                    )
                });
                return Ok(RunDir {
                    dir,
                    resume: false,
                    note,
                });
            }
            Err(_) => "an unreadable checkpoint record".to_string(),
        };
        first_difference.get_or_insert(differs);
    }
    unreachable!("the loop returns")
}

/// Saves the model, the optimiser and the progress into `dir`: each file is written next to
/// its place and renamed into it, the progress file last, so a run cut off while saving
/// resumes from the previous epoch.
pub fn save_checkpoint(
    dir: &Path,
    vs: &nn::VarStore,
    opt: &KerasSgd,
    progress: &Progress,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The extension stays last: VarStore::save chooses safetensors by it.
    let part = |name: &str| dir.join(format!("part-{name}"));
    vs.save(part(MODEL_FILE))
        .map_err(|e| Error::format(part(MODEL_FILE), e.to_string()))?;
    opt.save(&part(OPTIMIZER_FILE))?;
    let p = part(PROGRESS_FILE);
    std::fs::write(&p, progress.to_json()).map_err(|e| Error::io(&p, e))?;
    for name in [MODEL_FILE, OPTIMIZER_FILE, PROGRESS_FILE] {
        std::fs::rename(part(name), dir.join(name)).map_err(|e| Error::io(dir.join(name), e))?;
    }
    Ok(())
}

/// Restores the model and optimiser saved in `dir`; returns the progress, or `None` when
/// there is no checkpoint there. (It does not check that the checkpoint is of the same run:
/// [`choose_run_dir`] does.)
pub fn load_checkpoint(
    dir: &Path,
    vs: &mut nn::VarStore,
    opt: &mut KerasSgd,
) -> Result<Option<Progress>> {
    let Some(progress) = Progress::read(dir)? else {
        return Ok(None);
    };
    let model = dir.join(MODEL_FILE);
    vs.load(&model).map_err(|e| {
        Error::format(
            &model,
            format!(
                "{e}; the checkpoint is of another model: delete {} to start again",
                dir.display()
            ),
        )
    })?;
    opt.load(&dir.join(OPTIMIZER_FILE))?;
    opt.iterations = progress.iterations;
    Ok(Some(progress))
}

/// The folder a notebook's checkpoints go in: `JPY_SESSION_NAME` (the notebook's path, set by
/// JupyterLab and by `tools/nbrun.py`) gives its stem, prefixed by its folder's name unless
/// that is `notebooks` (so `notebooks/03-cifar10.ipynb` → `03-cifar10`,
/// `notebooks/student/03-cifar10.ipynb` → `student-03-cifar10`); `None` outside a notebook.
///
/// ```
/// use convlab::train::notebook_folder;
/// assert_eq!(notebook_folder("/home/a/course/notebooks/03-cifar10.ipynb").as_deref(), Some("03-cifar10"));
/// assert_eq!(notebook_folder("student/03-cifar10.ipynb").as_deref(), Some("student-03-cifar10"));
/// assert_eq!(notebook_folder("03-cifar10.ipynb").as_deref(), Some("03-cifar10"));
/// assert_eq!(notebook_folder(""), None);
/// ```
pub fn notebook_folder(session_name: &str) -> Option<String> {
    let path = Path::new(session_name.trim());
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty() && p != "notebooks");
    Some(match parent {
        Some(p) => format!("{}-{}", clean(&p), clean(&stem)),
        None => clean(&stem),
    })
}

/// A checkpoint folder for a run called `name`: `CONVLAB_CHECKPOINT_DIR` when set, else
/// `data/checkpoints`; then, inside a notebook, a folder for the notebook
/// ([`notebook_folder`]), so that the answer and the student notebook never share one; then
/// `name`.
///
/// ```
/// std::env::set_var("CONVLAB_CHECKPOINT_DIR", "/tmp/ck");
/// std::env::set_var("JPY_SESSION_NAME", "/c/notebooks/student/03-cifar10.ipynb");
/// assert_eq!(convlab::train::checkpoint_dir("cifar10-quick"),
///            std::path::PathBuf::from("/tmp/ck/student-03-cifar10/cifar10-quick"));
/// ```
pub fn checkpoint_dir(name: &str) -> PathBuf {
    let mut root = match std::env::var_os("CONVLAB_CHECKPOINT_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate::data::data_dir().join("checkpoints"),
    };
    if let Some(folder) = std::env::var("JPY_SESSION_NAME")
        .ok()
        .and_then(|s| notebook_folder(&s))
    {
        root.push(folder);
    }
    root.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_setting_moves_to_a_new_folder_and_says_why_in_one_line() {
        let base = std::env::temp_dir()
            .join(format!("convlab-choose-{}", std::process::id()))
            .join("cifar10-quick");
        let _ = std::fs::remove_dir_all(base.parent().unwrap());
        let mut first = RunSpec::default();
        first.optimizer.lr = 0.01;
        let record = |dir: &Path, run: &RunSpec| {
            std::fs::create_dir_all(dir).unwrap();
            let p = Progress {
                run: run.clone(),
                iterations: 3,
                epochs: Vec::new(),
            };
            std::fs::write(dir.join(PROGRESS_FILE), p.to_json()).unwrap();
        };
        record(&base, &first);
        let same = choose_run_dir(&base, &first).unwrap();
        assert_eq!(
            (same.dir.as_path(), same.resume, same.note),
            (base.as_path(), true, None)
        );

        let mut second = first.clone();
        second.optimizer.lr = 0.05;
        let moved = choose_run_dir(&base, &second).unwrap();
        let note = moved.note.unwrap();
        assert_eq!(moved.dir, base.with_file_name("cifar10-quick-2"));
        assert!(!moved.resume);
        assert!(!note.contains('\n'), "{note}");
        assert!(
            note.contains("learning rate 0.01 → 0.05") && note.contains("cifar10-quick-2"),
            "{note}"
        );
        // Once that run has a checkpoint, it resumes there; the first run still resumes its own.
        record(&moved.dir, &second);
        assert_eq!(choose_run_dir(&base, &second).unwrap().dir, moved.dir);
        assert_eq!(choose_run_dir(&base, &first).unwrap().dir, base);
        // A folder from before runs were recorded is never resumed.
        let old = base.with_file_name("old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join(OLD_PROGRESS_FILE), "fingerprint x\n").unwrap();
        let fresh = choose_run_dir(&old, &first).unwrap();
        assert_eq!(fresh.dir, base.with_file_name("old-2"));
        assert!(fresh.note.unwrap().contains("older convlab"));
        let _ = std::fs::remove_dir_all(base.parent().unwrap());
    }
}
