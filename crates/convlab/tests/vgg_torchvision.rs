//! convlab's VGG-16 against torchvision's own `vgg16()`, on the same random weights and the
//! same pictures.
//!
//! `vgg_torchvision.py` (next to this file, run with the course's Python) builds torchvision's
//! model with random weights, saves them in every format the weight loader reads, and
//! computes, independently of the crate, both preprocessings of the portrait, the cat and
//! four random pictures and the outputs of every layer notebook 2 shows (the first, second,
//! eighth and last three convolutions after their ReLU, the last pooling), the logits and the
//! softmax. This test loads each file through `Model::load_weights` into `vgg16()` and checks:
//!
//! * the crate's preprocessing (Caffe's B, G, R minus the means; torchvision's /255, mean,
//!   spread) gives torchvision's inputs;
//! * every weight arrives bit for bit, whatever the file's format;
//! * every layer's output, the logits (max abs difference ≤ 1e-4) and the softmax agree, and
//!   the top 5 of every picture is the same.
//!
//! A transposed kernel, a swapped channel order, a dense layer's weights taken the wrong way
//! round or a bias mapped to the wrong layer fails here.
#![cfg(feature = "torch")]

use convlab::cifar::Rng;
use convlab::image::{load_colour, resize};
use convlab::vgg::{vgg16, Model, Preprocessing};
use convlab::weights;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Layers compared, as the reference names them (see vgg_torchvision.py).
const LAYERS: [&str; 8] = [
    "features.0",
    "features.2",
    "features.17",
    "features.24",
    "features.26",
    "features.28",
    "maxpool.last",
    "classifier.6",
];

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

fn top5(p: &Tensor) -> Vec<i64> {
    let (_, idx) = p.topk(5, -1, true, true);
    Vec::<i64>::try_from(&idx.flatten(0, -1)).unwrap()
}

/// The crate's layer position for a reference name.
fn position(model: &Model, name: &str) -> usize {
    if name == "maxpool.last" {
        let flatten = model
            .layers()
            .iter()
            .position(|l| l.kind() == "Flatten")
            .unwrap();
        assert_eq!(model.layers()[flatten - 1].kind(), "MaxPooling2D");
        return flatten - 1;
    }
    model
        .layers()
        .iter()
        .position(|l| l.name() == name)
        .unwrap_or_else(|| panic!("no layer {name}"))
}

fn pictures(dir: &Path) -> (Vec<PathBuf>, Tensor) {
    let paths: Vec<PathBuf> = ["grace_hopper.jpg", "cat.png"]
        .iter()
        .map(|n| convlab::data::ensure(n).expect("the course pictures (source scripts/env.sh)"))
        .collect();
    let mut all: Vec<f32> = Vec::new();
    for p in &paths {
        let rgb = load_colour(p).unwrap();
        all.extend(resize(&rgb.view(), 224, 224).unwrap().iter());
    }
    // Four random pictures of whole 0–255 values (resizing 224×224 keeps them as they are).
    let mut rng = Rng::new(4);
    all.extend((0..4 * 224 * 224 * 3).map(|_| rng.below(256) as f32));
    let t = Tensor::from_slice(&all).view([6, 224, 224, 3]);
    Tensor::write_npz(&[("pictures", &t)], dir.join("pictures.npz")).unwrap();
    (paths, t)
}

/// The crate's input for the six pictures: the photos through `image_tensor` (load, resize,
/// preprocess), the random ones through `Preprocessing::apply`.
fn crate_input(prep: Preprocessing, paths: &[PathBuf], rgb: &Tensor) -> Tensor {
    let mut xs: Vec<Tensor> = paths
        .iter()
        .map(|p| convlab::vgg::image_tensor(p, prep).unwrap())
        .collect();
    for i in 2..6 {
        let a = convlab::vgg::tensor_to_array(&rgb.get(i)).unwrap();
        xs.push(prep.apply(&a).unwrap());
    }
    Tensor::cat(&xs, 0)
}

#[test]
fn vgg16_equals_torchvision_in_every_weight_format() {
    let dir = std::env::temp_dir().join(format!("convlab-vgg-torchvision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let start = std::time::Instant::now();
    let (paths, rgb) = pictures(&dir);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vgg_torchvision.py");
    let py = weights::python();
    let out = std::process::Command::new(&py)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run {py} (source scripts/env.sh): {e}"));
    assert!(
        out.status.success(),
        "{} failed (needs torch and torchvision from requirements.txt; source scripts/env.sh):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{} ({:.0} s)",
        String::from_utf8_lossy(&out.stdout).trim(),
        start.elapsed().as_secs_f64()
    );
    let reference: HashMap<String, Tensor> = Tensor::read_npz(dir.join("reference.npz"))
        .unwrap()
        .into_iter()
        .collect();
    let r = |k: &str| {
        reference
            .get(k)
            .unwrap_or_else(|| panic!("reference.npz has no {k}"))
    };

    // Preprocessing: the crate's inputs are torchvision's.
    let mut inputs = Vec::new();
    for (name, prep) in [
        ("caffe", Preprocessing::Caffe),
        ("torchvision", Preprocessing::Torchvision),
    ] {
        let x = crate_input(prep, &paths, &rgb);
        let d = max_abs_diff(&x, r(&format!("{name}.input")));
        eprintln!("{name} preprocessing: max abs difference {d:.2e}");
        assert!(
            d <= 1e-4,
            "{name} preprocessing differs from torchvision's by {d}"
        );
        inputs.push((name, x));
    }

    // Every accepted format: the fetch-weights path (torchvision's .pth converted to
    // .safetensors by `convlab convert-weights`), the files Python writes directly (.pt, .bin,
    // .npz) and libtorch's C++ archive (.ot, as tch writes it).
    let torch_weights: Vec<(String, Tensor)> = Tensor::read_npz(dir.join("vgg16.npz")).unwrap();
    assert_eq!(torch_weights.len(), 32);
    let safetensors = dir.join("converted.safetensors");
    weights::convert_pth(&dir.join("vgg16.pth"), &safetensors).unwrap();
    weights::write_file(&dir.join("tch.ot"), &torch_weights).unwrap();
    std::fs::copy(dir.join("vgg16.pt"), dir.join("vgg16.bin")).unwrap();
    let files: Vec<PathBuf> = [
        "converted.safetensors",
        "vgg16.pt",
        "vgg16.bin",
        "vgg16.npz",
        "tch.ot",
    ]
    .map(|f| dir.join(f))
    .to_vec();
    let torch_weights: HashMap<String, Tensor> = torch_weights.into_iter().collect();

    for (k, file) in files.iter().enumerate() {
        let mut model = vgg16(Device::Cpu).unwrap();
        let loaded = model.load_weights(file).unwrap();
        assert!(!loaded.random_test_weights);
        let vars = model.var_store().variables();
        assert_eq!(vars.len(), 32, "{}", file.display());
        for (name, want) in &torch_weights {
            let got = vars
                .get(name)
                .unwrap_or_else(|| panic!("{}: the model has no {name}", file.display()));
            assert!(
                got.equal(want),
                "{}: {name} differs from torchvision's (shape {:?} vs {:?})",
                file.display(),
                got.size(),
                want.size()
            );
        }
        // The first file: every layer, both preprocessings, all six pictures. The others hold
        // the same weights bit for bit (checked above); their logits are checked once more
        // all the same, on the two photos with torchvision's preprocessing.
        let photos = [("torchvision", inputs[1].1.narrow(0, 0, 2))];
        let preps = if k == 0 { &inputs[..] } else { &photos[..] };
        let layers: &[&str] = if k == 0 { &LAYERS } else { &["classifier.6"] };
        for (prep, x) in preps {
            let n = x.size()[0];
            let mut wanted: Vec<usize> = layers.iter().map(|l| position(&model, l)).collect();
            wanted.push(model.layers().len() - 1); // the softmax
            let outs = model.forward_layers(x, &wanted).unwrap();
            for (layer, got) in layers.iter().zip(&outs) {
                let want = &r(&format!("{prep}.{layer}")).narrow(0, 0, n);
                let d = max_abs_diff(got, want);
                let scale = want.abs().max().double_value(&[]);
                if k == 0 {
                    eprintln!("{prep:>11} {layer:<12} max abs difference {d:.2e} (largest value {scale:.3e})");
                }
                // Logits: 1e-4 absolute. Inside the network values reach thousands with the
                // Caffe input, so there the bound is 1e-4 of the layer's largest value.
                let bound = if *layer == "classifier.6" {
                    1e-4
                } else {
                    1e-4 * scale.max(1.0)
                };
                assert!(
                    d <= bound,
                    "{}, {prep} preprocessing: {layer} differs from torchvision's by {d} (bound {bound})",
                    file.display()
                );
            }
            let probs = outs.last().unwrap();
            let want = &r(&format!("{prep}.softmax")).narrow(0, 0, n);
            let d = max_abs_diff(probs, want);
            assert!(
                d <= 1e-6,
                "{}, {prep}: softmax differs by {d}",
                file.display()
            );
            for i in 0..n {
                assert_eq!(
                    top5(&probs.get(i)),
                    top5(&want.get(i)),
                    "{}, {prep} preprocessing, picture {i}: another top 5",
                    file.display()
                );
            }
            let sums = probs.sum_dim_intlist(1, false, Kind::Double);
            assert!(max_abs_diff(&sums, &sums.ones_like()) < 1e-5);
        }
        eprintln!(
            "{}: every weight and output as torchvision's ({:.0} s)",
            file.display(),
            start.elapsed().as_secs_f64()
        );
    }
}
