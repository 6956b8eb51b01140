//! VGG-16's pretrained weights (Learning Activity 11): where they are, how to fetch them,
//! which files are accepted, and loading them into a [`Model`] with clear errors.
//!
//! **Where.** The notebook looks for the file named by the environment variable
//! `CONVLAB_VGG_WEIGHTS`, else `data/vgg16.safetensors` ([`default_path`]).
//!
//! **Fetching.** `make fetch-weights` downloads torchvision's
//! `vgg16-397923af.pth` (528 MB; its SHA-256 starts with `397923af`, as torchvision's file
//! name says), with progress, resuming a cut-off download, verifying the checksum and writing
//! atomically; then converts it once to `data/vgg16.safetensors` with the Python torch of the
//! course's environment (`scripts/convert-vgg-weights.py`; the `.pth` is an old-style pickle
//! that libtorch's C++ side cannot read) and checks that it loads.
//!
//! **Accepted files**, chosen by extension, with torchvision's tensor names
//! (`features.0.weight`, …, `classifier.6.bias`):
//!
//! | extension | format | written by |
//! |---|---|---|
//! | `.safetensors` | safetensors | `fetch-weights`, `make-test-weights`, the `safetensors` Python package |
//! | `.ot` | libtorch C++ archive | `tch`'s `Tensor::save_multi`; tch-rs publishes `vgg16.ot` in this format |
//! | `.pt`, `.bin` | `torch.save` zip of a plain `{name: tensor}` dict | Python torch ≥ 1.6 |
//! | `.npz` | NumPy zip of `.npy` arrays | `numpy.savez` |
//!
//! Keras's `.h5` files (other names, other layout) and torchvision's `.pth` (convert it with
//! `convlab convert-weights IN.pth OUT.safetensors`) are refused with a message saying so.
//!
//! ```no_run
//! let mut vgg = convlab::vgg::vgg16(tch::Device::Cpu)?;
//! let loaded = vgg.load_weights(convlab::weights::default_path())?;
//! println!("{loaded}");
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::fetch::{self, Checksum};
use crate::vgg::{thousands, Model};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The environment variable naming the weight file.
pub const ENV_VAR: &str = "CONVLAB_VGG_WEIGHTS";
/// The weight file's name in the data folder when [`ENV_VAR`] is not set.
pub const DEFAULT_FILE: &str = "vgg16.safetensors";
/// Where torchvision publishes its VGG-16 ImageNet weights.
pub const TORCHVISION_URL: &str = "https://download.pytorch.org/models/vgg16-397923af.pth";
/// The downloaded file's name.
pub const TORCHVISION_FILE: &str = "vgg16-397923af.pth";
/// The published checksum: the first 8 hex digits of the file's SHA-256 (in its name).
pub const TORCHVISION_SHA256_PREFIX: &str = "397923af";
/// The name of the extra scalar tensor that marks a file of random test weights
/// (written by [`write_test_weights`]); its predictions are meaningless.
pub const TEST_MARKER: &str = "convlab.random_test_weights";
/// The converter from torchvision's `.pth`, run with Python torch.
pub const CONVERTER: &str = include_str!("../../../scripts/convert-vgg-weights.py");

/// The weight file: `$CONVLAB_VGG_WEIGHTS` when set, else `data/vgg16.safetensors`.
///
/// ```
/// std::env::set_var("CONVLAB_VGG_WEIGHTS", "/tmp/w.ot");
/// assert_eq!(convlab::weights::default_path(), std::path::PathBuf::from("/tmp/w.ot"));
/// ```
pub fn default_path() -> PathBuf {
    match std::env::var_os(ENV_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::data::data_dir().join(DEFAULT_FILE),
    }
}

/// What to do to get the weights, for a notebook cell that has none.
pub fn how_to_fetch() -> String {
    format!(
        "No VGG-16 weights at {}.\n\
         Fetch them (528 MB, once) from the repository's top folder:\n\
         \x20   make fetch-weights\n\
         or point {ENV_VAR} at a weight file you have (.safetensors, .ot, .pt, .npz), then restart the kernel.",
        default_path().display()
    )
}

/// The weight file when it exists, else `None` (print [`how_to_fetch`] then).
pub fn locate() -> Option<PathBuf> {
    let p = default_path();
    p.is_file().then_some(p)
}

/// Reads every named tensor of a weight file (format by extension, see the
/// [module docs](self)), onto the CPU.
pub fn read_file(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(Error::format(
            path,
            "the file is empty or not a file: fetch the weights again",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let damaged = |e: tch::TchError, what: &str| {
        Error::format(
            path,
            format!(
                "cannot be read as {what} ({}): the file is truncated, damaged or in another format; fetch it again",
                first_line(&e.to_string())
            ),
        )
    };
    match ext.as_str() {
        "safetensors" => Tensor::read_safetensors(path).map_err(|e| damaged(e, "safetensors")),
        "ot" => Tensor::load_multi_with_device(path, Device::Cpu).map_err(|e| damaged(e, "a libtorch archive (.ot)")),
        "pt" | "bin" => Tensor::loadz_multi_with_device(path, Device::Cpu)
            .map_err(|e| damaged(e, "a torch.save zip of a {name: tensor} dict")),
        "npz" => Tensor::read_npz(path).map_err(|e| damaged(e, "a NumPy .npz")),
        "pth" => Err(Error::format(
            path,
            "torchvision's .pth files are old-style Python pickles that libtorch cannot read: convert it once with \
             `scripts/convlab convert-weights FILE.pth data/vgg16.safetensors` (needs Python torch)",
        )),
        "h5" | "hdf5" | "keras" => Err(Error::format(
            path,
            "Keras HDF5 weight files are not read here (other layer names and layout): use torchvision's weights \
             (`make fetch-weights`)",
        )),
        _ => Err(Error::format(
            path,
            format!(
                "unknown weight file type {:?}: use .safetensors, .ot, .pt/.bin (torch.save zip) or .npz",
                ext
            ),
        )),
    }
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.len() > 200 {
        format!(
            "{}…",
            &line[..line.char_indices().nth(200).map_or(line.len(), |(i, _)| i)]
        )
    } else {
        line.to_string()
    }
}

/// What [`Model::load_weights`] loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The weight file.
    pub path: PathBuf,
    /// How many tensors were copied into the model.
    pub tensors: usize,
    /// How many numbers they hold.
    pub params: i64,
    /// `true` for random test weights ([`write_test_weights`]): predictions are meaningless.
    pub random_test_weights: bool,
}

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensors ({} weights) from {}",
            self.tensors,
            thousands(self.params),
            self.path.display()
        )?;
        if self.random_test_weights {
            write!(
                f,
                "\nNOTE: these are RANDOM TEST WEIGHTS written by `convlab make-test-weights`, not trained ones: \
                 every prediction and picture below is computed for real but means nothing. \
                 Fetch the real weights with `make fetch-weights`."
            )?;
        }
        Ok(())
    }
}

fn conv_layers(names: &BTreeMap<String, Vec<i64>>) -> Vec<String> {
    names
        .iter()
        .filter(|(n, s)| s.len() == 4 && n.ends_with(".weight"))
        .map(|(n, _)| n.trim_end_matches(".weight").to_string())
        .collect()
}

/// Compares the tensors of a file with the tensors a model expects and explains every
/// difference: missing names, extra names, shapes that differ, and a VGG-19 file.
pub fn check_compatible(
    path: &Path,
    expected: &BTreeMap<String, Vec<i64>>,
    found: &BTreeMap<String, Vec<i64>>,
) -> Result<()> {
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !found.contains_key(*k))
        .collect();
    let extra: Vec<&String> = found
        .keys()
        .filter(|k| !expected.contains_key(*k) && *k != TEST_MARKER)
        .collect();
    let mismatched = shape_differences(expected, found);
    if missing.is_empty() && extra.is_empty() && mismatched.is_empty() {
        return Ok(());
    }
    let mut reason = String::from("the weights do not fit the model:");
    reason += &conv_count_note(expected, found);
    if !missing.is_empty() {
        reason += &format!(
            "\n  the model has layers the file lacks: {} (is a layer misnamed, or added in the wrong place?)",
            first_names(&missing)
        );
    }
    if !extra.is_empty() {
        reason += &format!(
            "\n  the file has tensors the model lacks: {}",
            first_names(&extra)
        );
    }
    reason += &shape_notes(&mismatched);
    Err(Error::format(path, reason))
}

/// The tensors both have with different shapes, each as "name: the model has …, the file …".
fn shape_differences(
    expected: &BTreeMap<String, Vec<i64>>,
    found: &BTreeMap<String, Vec<i64>>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(k, s)| match found.get(k) {
            Some(f) if f != s => Some(format!("{k}: the model has {s:?}, the file {f:?}")),
            _ => None,
        })
        .collect()
}

/// A line saying that the file has another number of convolution layers than the model
/// (naming VGG-16 or VGG-19 when the count says so); empty when the counts agree or the
/// file has none.
fn conv_count_note(
    expected: &BTreeMap<String, Vec<i64>>,
    found: &BTreeMap<String, Vec<i64>>,
) -> String {
    let (model_convs, file_convs) = (conv_layers(expected).len(), conv_layers(found).len());
    if file_convs == model_convs || file_convs == 0 {
        return String::new();
    }
    let hint = match file_convs {
        16 => " — this looks like VGG-19 weights (16 convolution layers)",
        13 => " — this looks like VGG-16 weights",
        _ => "",
    };
    format!("\n  the file has {file_convs} convolution layers, the model {model_convs}{hint}")
}

/// The first 8 names, joined with commas, and how many more there are.
fn first_names(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(8).map(|s| s.as_str()).collect();
    let more = if names.len() > 8 {
        format!(" and {} more", names.len() - 8)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// A line for each of the first 8 shape differences, and one that counts the rest.
fn shape_notes(mismatched: &[String]) -> String {
    let mut notes = String::new();
    for m in mismatched.iter().take(8) {
        notes += &format!("\n  shape differs for {m}");
    }
    if mismatched.len() > 8 {
        notes += &format!("\n  … and {} more shape differences", mismatched.len() - 8);
    }
    notes
}

impl Model {
    /// Loads weights from a file (any [accepted format](self)) into the model, after checking
    /// that every layer's tensors are there with the right shapes; on any difference nothing
    /// is changed and the error names the layers and shapes.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<Loaded> {
        let path = path.as_ref();
        let tensors = read_file(path)?;
        let found: BTreeMap<String, Vec<i64>> =
            tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let mut vars = self.var_store().variables();
        let expected: BTreeMap<String, Vec<i64>> =
            vars.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        check_compatible(path, &expected, &found)?;
        let random_test_weights = found.contains_key(TEST_MARKER);
        let mut params = 0;
        let device = self.device();
        tch::no_grad(|| -> Result<()> {
            for (name, src) in &tensors {
                if let Some(dst) = vars.get_mut(name) {
                    let src = src.f_to_kind(Kind::Float)?.f_to_device(device)?;
                    dst.f_copy_(&src)?;
                    params += src.numel() as i64;
                }
            }
            Ok(())
        })?;
        Ok(Loaded {
            path: path.to_path_buf(),
            tensors: expected.len(),
            params,
            random_test_weights,
        })
    }
}

/// The names and shapes of VGG-16's tensors, in torchvision's naming, from
/// [`vgg16_layout`](crate::vgg::vgg16_layout).
///
/// ```
/// let shapes = convlab::weights::vgg16_shapes();
/// assert_eq!(shapes.len(), 32);
/// assert_eq!(shapes[0], ("features.0.weight".to_string(), vec![64, 3, 3, 3]));
/// let total: i64 = shapes.iter().map(|(_, s)| s.iter().product::<i64>()).sum();
/// assert_eq!(total, convlab::vgg::VGG16_PARAMS);
/// ```
pub fn vgg16_shapes() -> Vec<(String, Vec<i64>)> {
    use crate::vgg::VggLayer;
    let (mut channels, mut side, mut inputs) = (3, 224, 0);
    let mut out = Vec::new();
    for (name, layer) in crate::vgg::vgg16_layout() {
        let (weight, bias) = match layer {
            VggLayer::Conv(filters) => {
                let shape = vec![filters, channels, 3, 3];
                channels = filters;
                (shape, filters)
            }
            VggLayer::Dense(units, _) => {
                let shape = vec![units, inputs];
                inputs = units;
                (shape, units)
            }
            VggLayer::MaxPool => {
                side /= 2;
                continue;
            }
            VggLayer::Flatten => {
                inputs = channels * side * side;
                continue;
            }
            VggLayer::Dropout(_) => continue,
        };
        out.push((format!("{name}.weight"), weight));
        out.push((format!("{name}.bias"), vec![bias]));
    }
    out
}

/// Writes named tensors to `path` in the format its extension names (`.safetensors`, `.ot`,
/// `.npz`), through a `.part` file renamed when complete.
pub fn write_file(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let part = fetch::part_path(path);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let result = match ext {
        "safetensors" => Tensor::write_safetensors(tensors, &part),
        "ot" => Tensor::save_multi(tensors, &part),
        "npz" => Tensor::write_npz(tensors, &part),
        _ => return Err(Error::format(
            path,
            "can write .safetensors, .ot or .npz weight files (.pt comes from Python's torch.save)",
        )),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(Error::format(path, format!("could not be written: {e}")));
    }
    std::fs::rename(&part, path).map_err(|e| Error::io(path, e))
}

/// Random tensors of the given shapes, like a freshly initialised network: normal values
/// with standard deviation √(2 / inputs) for weights (He initialisation, so activations
/// neither vanish nor explode) and 0.01 for biases.
pub fn random_tensors(shapes: &[(String, Vec<i64>)], seed: i64) -> Vec<(String, Tensor)> {
    tch::manual_seed(seed);
    shapes
        .iter()
        .map(|(name, shape)| {
            let fan_in: i64 = shape[1..].iter().product::<i64>().max(1);
            let std = if shape.len() > 1 {
                (2.0 / fan_in as f64).sqrt()
            } else {
                0.01
            };
            (
                name.clone(),
                Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * std,
            )
        })
        .collect()
}

/// Writes a VGG-16-shaped file of random weights to `path` (format by extension), marked as
/// test weights ([`TEST_MARKER`]) so that the notebook says its predictions are meaningless.
/// Used by the tests, which cannot download the real weights.
pub fn write_test_weights(path: &Path, seed: i64) -> Result<()> {
    let mut tensors = random_tensors(&vgg16_shapes(), seed);
    tensors.push((TEST_MARKER.to_string(), Tensor::from_slice(&[1.0f32])));
    write_file(path, &tensors)
}

/// The Python to run the converter with: `$CONVLAB_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("CONVLAB_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Converts torchvision's `.pth` into a file this crate reads: runs
/// `scripts/convert-vgg-weights.py` with Python torch to write a `.pt` zip, then rewrites it
/// as `dest` (any format [`write_file`] writes), checking its tensors against VGG-16.
pub fn convert_pth(src: &Path, dest: &Path) -> Result<()> {
    if !src.is_file() {
        return Err(Error::io(
            src,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such weight file"),
        ));
    }
    let tmp_pt = dest.with_extension("convert.pt");
    let output = std::process::Command::new(python())
        .arg("-")
        .arg(src)
        .arg(&tmp_pt)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("piped").write_all(CONVERTER.as_bytes())?;
            child.wait_with_output()
        })
        .map_err(|e| {
            Error::format(
                src,
                format!("could not run {} to convert it ({e}): source scripts/env.sh or set CONVLAB_PYTHON", python()),
            )
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp_pt);
        return Err(Error::format(
            src,
            format!(
                "the converter failed: {}",
                String::from_utf8_lossy(&output.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("no message")
            ),
        ));
    }
    let result = (|| {
        let tensors = read_file(&tmp_pt)?;
        let found = tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let expected = vgg16_shapes().into_iter().collect();
        check_compatible(src, &expected, &found)?;
        write_file(dest, &tensors)
    })();
    let _ = std::fs::remove_file(&tmp_pt);
    result
}

/// Where to fetch weights from.
#[derive(Clone, Debug)]
pub struct Source {
    /// Download address.
    pub url: String,
    /// Published checksum of the downloaded file.
    pub checksum: Checksum,
    /// The downloaded file's name in the destination's folder; a `.pth` is converted.
    pub file_name: String,
}

impl Source {
    /// torchvision's ImageNet VGG-16 weights.
    pub fn torchvision() -> Source {
        Source {
            url: TORCHVISION_URL.to_string(),
            checksum: Checksum::Sha256Prefix(TORCHVISION_SHA256_PREFIX.to_string()),
            file_name: TORCHVISION_FILE.to_string(),
        }
    }
}

/// Downloads `source` next to `dest` (checked, resumable, atomic: see [`fetch::download`]),
/// converts it to `dest` when it is a `.pth`, and checks that `dest` loads into VGG-16.
/// Returns `dest`. A `dest` that already loads is kept.
pub fn fetch(source: &Source, dest: &Path) -> Result<PathBuf> {
    if dest.is_file() {
        match check_loads(dest) {
            Ok(l) if !l.random_test_weights => {
                println!("{} is already there and loads", dest.display());
                return Ok(dest.to_path_buf());
            }
            Ok(_) => println!(
                "{} holds random test weights: replacing them",
                dest.display()
            ),
            Err(e) => println!("{} does not load ({e}): fetching it again", dest.display()),
        }
    }
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let downloaded = dir.join(&source.file_name);
    fetch::download(&source.url, &downloaded, &source.checksum)?;
    if downloaded.extension().is_some_and(|e| e == "pth") {
        println!("converting {} to {}", downloaded.display(), dest.display());
        convert_pth(&downloaded, dest)?;
    } else if downloaded != dest {
        std::fs::rename(&downloaded, dest).map_err(|e| Error::io(dest, e))?;
    }
    let loaded = check_loads(dest)?;
    println!("{loaded}");
    Ok(dest.to_path_buf())
}

/// Builds VGG-16 on the CPU and loads `path` into it.
pub fn check_loads(path: &Path) -> Result<Loaded> {
    crate::vgg::vgg16(Device::Cpu)?.load_weights(path)
}
