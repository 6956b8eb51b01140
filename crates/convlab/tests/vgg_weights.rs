//! Weight files: every accepted format round-trips into VGG-16, and every bad file (truncated,
//! VGG-19, missing or misnamed layer, wrong shape, wrong type) gives an error that names the
//! file and the layers. The files are VGG-16-shaped (528 MB each), written by the tests.
#![cfg(feature = "torch")]

use convlab::vgg::{vgg16, Activation, Model, VGG16_BLOCKS};
use convlab::weights::{self, read_file, write_file, write_test_weights, TEST_MARKER};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tch::{Device, Kind, Tensor};

/// The tests each hold ~2 GB at their peak: run them one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("convlab-vgg-weights-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

struct Cleanup(Vec<PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A value of the named tensor, to compare file and model.
fn probe(t: &Tensor) -> Vec<f32> {
    let flat = t.to_kind(Kind::Float).reshape([-1]);
    let n = flat.size()[0];
    [0, n / 2, n - 1]
        .iter()
        .map(|&i| flat.double_value(&[i]) as f32)
        .collect()
}

fn model_probe(m: &Model, name: &str) -> Vec<f32> {
    probe(&m.var_store().variables()[name])
}

#[test]
fn every_written_format_loads_with_its_values() {
    let _g = serial();
    for ext in ["safetensors", "ot", "npz"] {
        let path = dir().join(format!("test.{ext}"));
        let _c = Cleanup(vec![path.clone()]);
        write_test_weights(&path, 7).unwrap();
        let file = read_file(&path).unwrap();
        assert_eq!(file.len(), 33, "{ext}: 32 tensors and the test marker");
        let (_, first) = file.iter().find(|(n, _)| n == "features.0.weight").unwrap();
        let (_, last) = file.iter().find(|(n, _)| n == "classifier.6.bias").unwrap();
        let mut vgg = vgg16(Device::Cpu).unwrap();
        assert_ne!(model_probe(&vgg, "features.0.weight"), probe(first));
        let loaded = vgg.load_weights(&path).unwrap();
        assert_eq!(loaded.tensors, 32);
        assert_eq!(loaded.params, 138_357_544);
        assert!(loaded.random_test_weights, "{ext}: the marker must be seen");
        assert!(loaded.to_string().contains("RANDOM TEST WEIGHTS"));
        assert_eq!(
            model_probe(&vgg, "features.0.weight"),
            probe(first),
            "{ext}"
        );
        assert_eq!(model_probe(&vgg, "classifier.6.bias"), probe(last), "{ext}");
        // He-initialised weights keep the activations alive through 13 layers.
        let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        let deep = vgg.layer_output(&x, "features.28").unwrap();
        assert!(deep.abs().max().double_value(&[]) > 0.0);
        let p = vgg.forward(&x).unwrap();
        assert!((p.sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-4);
    }
}

/// Real files have no test marker: a file without it is reported as real weights.
#[test]
fn a_file_without_the_marker_is_not_called_random() {
    let _g = serial();
    let path = dir().join("plain.safetensors");
    let _c = Cleanup(vec![path.clone()]);
    let tensors = weights::random_tensors(&weights::vgg16_shapes(), 1);
    write_file(&path, &tensors).unwrap();
    let loaded = vgg16(Device::Cpu).unwrap().load_weights(&path).unwrap();
    assert!(!loaded.random_test_weights);
    assert!(!loaded.to_string().contains("RANDOM"));
}

#[test]
fn truncated_and_empty_files_are_named_and_nothing_changes() {
    let _g = serial();
    let good = dir().join("good.safetensors");
    let mut paths = vec![good.clone()];
    write_test_weights(&good, 2).unwrap();
    let mut vgg = vgg16(Device::Cpu).unwrap();
    vgg.load_weights(&good).unwrap();
    let before = model_probe(&vgg, "features.0.weight");
    let bytes = std::fs::read(&good).unwrap();
    for (name, cut) in [
        ("half.safetensors", bytes.len() / 2),
        ("head.safetensors", 100),
        ("empty.safetensors", 0),
    ] {
        let p = dir().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        paths.push(p.clone());
        let e = vgg.load_weights(&p).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
        assert!(e.contains("truncated") || e.contains("empty"), "{e}");
        assert_eq!(model_probe(&vgg, "features.0.weight"), before);
    }
    let ot = dir().join("good.ot");
    write_test_weights(&ot, 2).unwrap();
    let ot_bytes = std::fs::read(&ot).unwrap();
    let half_ot = dir().join("half.ot");
    std::fs::write(&half_ot, &ot_bytes[..ot_bytes.len() / 2]).unwrap();
    paths.extend([ot, half_ot.clone()]);
    let e = vgg.load_weights(&half_ot).unwrap_err().to_string();
    assert!(e.contains("half.ot") && e.contains("truncated"), "{e}");
    let _c = Cleanup(paths);
}

fn vgg19_shapes() -> Vec<(String, Vec<i64>)> {
    let mut out = Vec::new();
    let (mut index, mut channels) = (0, 3);
    for (filters, convs) in [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)] {
        for _ in 0..convs {
            out.push((
                format!("features.{index}.weight"),
                vec![filters, channels, 3, 3],
            ));
            out.push((format!("features.{index}.bias"), vec![filters]));
            channels = filters;
            index += 2;
        }
        index += 1;
    }
    for (name, shape) in weights::vgg16_shapes()
        .into_iter()
        .filter(|(n, _)| n.starts_with("classifier"))
    {
        out.push((name, shape));
    }
    out
}

#[test]
fn a_vgg19_file_is_recognised() {
    let _g = serial();
    let path = dir().join("vgg19.safetensors");
    let _c = Cleanup(vec![path.clone()]);
    write_file(&path, &weights::random_tensors(&vgg19_shapes(), 3)).unwrap();
    let e = vgg16(Device::Cpu)
        .unwrap()
        .load_weights(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vgg19.safetensors"), "{e}");
    assert!(
        e.contains("VGG-19") && e.contains("16 convolution layers"),
        "{e}"
    );
    assert!(
        e.contains("features.17.weight"),
        "names what VGG-16 misses: {e}"
    );
}

#[test]
fn missing_misnamed_and_misshaped_layers_are_named() {
    let _g = serial();
    let full = weights::random_tensors(&weights::vgg16_shapes(), 4);
    // A file without the last layer.
    let path = dir().join("no-classifier6.safetensors");
    let _c = Cleanup(vec![path.clone()]);
    let without: Vec<_> = full
        .iter()
        .filter(|(n, _)| !n.starts_with("classifier.6"))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    write_file(&path, &without).unwrap();
    let e = vgg16(Device::Cpu)
        .unwrap()
        .load_weights(&path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-classifier6.safetensors")
            && e.contains("classifier.6.bias, classifier.6.weight"),
        "{e}"
    );

    // A student's model with the second conv named features.1 and 128 filters in block 2's
    // second conv, loading a good file.
    let good = dir().join("good-for-student.safetensors");
    let _c2 = Cleanup(vec![good.clone()]);
    write_file(&good, &full).unwrap();
    let mut m = Model::new([3, 224, 224], Device::Cpu).unwrap();
    let mut names = convlab::vgg::vgg16_conv_names();
    names[1] = "features.1".into();
    let mut it = names.iter();
    for (b, (filters, convs)) in VGG16_BLOCKS.iter().enumerate() {
        for k in 0..*convs {
            m.add_zero_padding(1).unwrap();
            let f = if b == 1 && k == 1 { 256 } else { *filters };
            m.add_conv(it.next().unwrap(), f, Activation::Relu).unwrap();
        }
        m.add_max_pool(2, 2).unwrap();
    }
    m.add_flatten().unwrap();
    m.add_dense("classifier.0", 4096, Activation::Relu).unwrap();
    m.add_dense("classifier.3", 4096, Activation::Relu).unwrap();
    m.add_dense("classifier.6", 1000, Activation::Linear)
        .unwrap();
    let e = m.load_weights(&good).unwrap_err().to_string();
    assert!(
        e.contains("the model has layers the file lacks: features.1.bias, features.1.weight"),
        "{e}"
    );
    assert!(
        e.contains("the file has tensors the model lacks: features.2.bias, features.2.weight"),
        "{e}"
    );
    assert!(
        e.contains("features.7.weight: the model has [256, 128, 3, 3], the file [128, 128, 3, 3]"),
        "{e}"
    );
}

#[test]
fn unreadable_kinds_of_file_say_what_to_do() {
    let _g = serial();
    let mut vgg = vgg16(Device::Cpu).unwrap();
    let e = vgg
        .load_weights("/no/such/vgg16.safetensors")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/vgg16.safetensors"), "{e}");
    let mut paths = vec![];
    for (name, expect) in [
        ("vgg16-397923af.pth", "convert-weights"),
        ("vgg16_weights.h5", "Keras"),
        ("weights.txt", "unknown weight file type"),
        (
            "not-really.safetensors",
            "truncated, damaged or in another format",
        ),
        ("not-really.ot", "truncated, damaged or in another format"),
        ("not-really.npz", "truncated, damaged or in another format"),
        ("not-really.pt", "truncated, damaged or in another format"),
    ] {
        let p = dir().join(name);
        std::fs::write(&p, b"definitely not weights, but not empty either").unwrap();
        paths.push(p.clone());
        let e = vgg.load_weights(&p).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(expect), "{name}: {e}");
    }
    let _c = Cleanup(paths);
}

fn python_with_torch() -> String {
    let py = weights::python();
    let ok = std::process::Command::new(&py)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs Python with torch ({py}): source scripts/env.sh first"
    );
    py
}

/// Python's torch writes the two other formats: torchvision's old-style `.pth` (converted) and
/// a `torch.save` zip `.pt` (read directly).
#[test]
fn python_written_pth_converts_and_pt_loads() {
    let _g = serial();
    let py = python_with_torch();
    let pth = dir().join("vgg16-test.pth");
    let pt = dir().join("vgg16-test.pt");
    let out = dir().join("converted.safetensors");
    let _c = Cleanup(vec![pth.clone(), pt.clone(), out.clone()]);
    let shapes: Vec<String> = weights::vgg16_shapes()
        .iter()
        .map(|(n, s)| format!("({n:?}, {s:?})"))
        .collect();
    let script = format!(
        "import torch, collections\n\
         torch.manual_seed(0)\n\
         sd = collections.OrderedDict((n, torch.randn(*s) * 0.01) for n, s in [{}])\n\
         torch.save(sd, {:?}, _use_new_zipfile_serialization=False)\n\
         torch.save(dict(sd), {:?})\n",
        shapes.join(", "),
        pth.to_str().unwrap(),
        pt.to_str().unwrap()
    );
    let status = std::process::Command::new(&py)
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    // The old-style pickle is not readable by libtorch: the error says how to convert it.
    assert!(read_file(&pth)
        .unwrap_err()
        .to_string()
        .contains("convert-weights"));
    weights::convert_pth(&pth, &out).unwrap();
    let mut a = vgg16(Device::Cpu).unwrap();
    let la = a.load_weights(&out).unwrap();
    assert!(!la.random_test_weights);
    let mut b = vgg16(Device::Cpu).unwrap();
    b.load_weights(&pt).unwrap();
    for name in [
        "features.0.weight",
        "features.28.bias",
        "classifier.6.weight",
    ] {
        assert_eq!(model_probe(&a, name), model_probe(&b, name), "{name}");
    }
    // Converting something that is not a VGG-16 state dict fails with the converter's reason.
    let junk = dir().join("junk.pth");
    std::fs::write(&junk, b"junk").unwrap();
    let e = weights::convert_pth(&junk, &dir().join("junk.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("junk.pth") && e.contains("converter failed"),
        "{e}"
    );
    let _ = std::fs::remove_file(junk);
    assert!(!Path::new(TEST_MARKER).exists());
}
