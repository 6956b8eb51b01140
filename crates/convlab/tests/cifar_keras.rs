//! The seed's CIFAR model and optimiser against Keras 1's arithmetic, written again
//! independently in PyTorch by `cifar_keras.py` next to this file: the same initial weights
//! and batch, three SGD steps with Nesterov momentum and the decay schedule, both sides in
//! float64; every parameter within 1e-12 after each step. And `ImageDataGenerator::fit`'s
//! featurewise statistics and standardisation against NumPy on the same batch.
//!
//! Dropout is off in both (the seed's model in evaluation mode, the reference without it):
//! random masks cannot be matched across two programs; the rest of the training step is the
//! same computation as `fit` makes.
#![cfg(feature = "torch")]

use convlab::augment::ImageDataGenerator;
use convlab::cifar;
use convlab::train::{cifar_cnn, cross_entropy, labels_tensor, to_tensor, KerasSgd};
use std::collections::HashMap;
use std::path::Path;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reference(dir: &Path) -> HashMap<String, Tensor> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cifar_keras.py");
    let py = convlab::weights::python();
    let out = std::process::Command::new(&py)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run {py} (source scripts/env.sh): {e}"));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    Tensor::read_npz(dir.join("after.npz"))
        .unwrap()
        .into_iter()
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Three steps with `settings` (lr, momentum, decay, nesterov): the crate against Keras.
fn three_steps(name: &str, lr: f64, momentum: f64, decay: f64, nesterov: bool) {
    let dir =
        std::env::temp_dir().join(format!("convlab-cifar-keras-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let split = cifar::synthetic(16, 9);
    let x = cifar::to_unit_float(&split.images);
    let y = cifar::one_hot(&split.labels, 10);

    // libtorch's generator is one for the whole process: the two tests take turns, so that
    // each one starts from the same weights on every run.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(3);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = cifar_cnn(&vs.root());
    // Both sides in float64. In float32 the rounding decides near-ties of max-pooling and
    // ReLU differently from float64: 4 seeds of 25 then differed by 1e-6 to 2e-5 after a step,
    // which compares rounding, not the update rule.
    vs.double();
    let mut opt = KerasSgd::new(&vs, lr, momentum, decay, nesterov).unwrap();
    let xs = to_tensor(&x, Device::Cpu).to_kind(Kind::Double);
    let ys = labels_tensor(&y, Device::Cpu).to_kind(Kind::Double);
    let steps = 3;
    let settings = Tensor::from_slice(&[
        lr,
        momentum,
        decay,
        f64::from(u8::from(nesterov)),
        steps as f64,
    ]);
    let mut start: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    start.push(("x".into(), xs.shallow_clone()));
    start.push(("y".into(), ys.shallow_clone()));
    start.push(("settings".into(), settings));
    Tensor::write_npz(&start, dir.join("start.npz")).unwrap();
    let initial = vs.variables()["dense2.weight"].copy();
    let keras = reference(&dir);

    for step in 1..=steps {
        let logits = model.forward_t(&xs, false);
        let loss = cross_entropy(&logits, &ys);
        let want_loss = keras[&format!("{step}.loss")].double_value(&[0]);
        assert!(
            (loss.double_value(&[]) - want_loss).abs() < 1e-12,
            "{name}, step {step}: loss {} against Keras's {want_loss}",
            loss.double_value(&[])
        );
        let before: HashMap<String, Tensor> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        opt.backward_step(&loss);
        let mut worst = (0.0, String::new());
        for (var, got) in vs.variables() {
            let want = &keras[&format!("{step}.{var}")];
            let d = max_abs_diff(&got, want);
            if d > worst.0 {
                worst = (d, var.clone());
            }
            assert!(
                d <= 1e-12,
                "{name}, after step {step}: {var} differs from Keras's update by {d}"
            );
            // And well below the step itself: another update rule (plain momentum for
            // Nesterov, libtorch's velocity, no decay) would be off by a good part of it.
            let update = max_abs_diff(want, &before[&var]);
            assert!(
                d <= 0.01 * update,
                "{name}, step {step}: {var} moved by {update}, {d} away from Keras's update"
            );
        }
        // The step really moved the weights (a test that nothing changes would pass too).
        let moved = max_abs_diff(&vs.variables()["dense2.weight"], &initial);
        assert!(moved > 1e-4, "{name}: step {step} did not move the weights");
        eprintln!(
            "{name}, after step {step}: largest difference {:.1e} ({})",
            worst.0, worst.1
        );
    }
    assert_eq!(opt.iterations, 3);

    // Featurewise statistics and standardisation, as NumPy computes Keras 1's.
    let mut datagen = ImageDataGenerator::seed_settings();
    datagen.fit(&x).unwrap();
    let as_tensor = |a: &ndarray::Array3<f32>| {
        Tensor::from_slice(a.as_standard_layout().as_slice().unwrap()).view([3, 32, 32])
    };
    let mean = as_tensor(datagen.mean.as_ref().unwrap());
    let std = as_tensor(datagen.std.as_ref().unwrap());
    assert!(max_abs_diff(&mean, &keras["mean"]) < 1e-6);
    assert!(max_abs_diff(&std, &keras["std"]) < 1e-6);
    let standardized = to_tensor(&datagen.standardize_all(&x).unwrap(), Device::Cpu);
    let d = max_abs_diff(&standardized, &keras["standardized"]);
    assert!(d < 1e-4, "standardised pictures differ from NumPy's by {d}");
    assert!(
        keras["std"].min().double_value(&[]) > 0.01,
        "a batch with spread in every value"
    );
}

/// The seed's settings: SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True).
#[test]
fn seed_sgd_steps_equal_keras() {
    three_steps("seed", 0.01, 0.9, 1e-6, true);
}

/// A strong decay, so that the schedule changes the rate between the steps (with 1e-6 it
/// would not show), and plain momentum.
#[test]
fn decaying_plain_momentum_steps_equal_keras() {
    three_steps("decay", 0.05, 0.5, 0.5, false);
}
