//! The training loop, loss and optimiser for real: the seed's model, optimiser and
//! augmentation must learn a small synthetic 10-class task, and a run cut after one epoch
//! must resume to the same weights as a run that was never cut.
#![cfg(feature = "torch")]

use convlab::augment::ImageDataGenerator;
use convlab::cifar;
use convlab::train::{cifar_cnn, fit, predict, FitOptions, KerasSgd};
use ndarray::{Array2, Array4};
use tch::{nn, Device, Kind};

fn data(n: usize, seed: u64) -> (Array4<f32>, Array2<f32>, Vec<u8>) {
    let s = cifar::synthetic(n, seed);
    (
        cifar::to_unit_float(&s.images),
        cifar::one_hot(&s.labels, 10),
        s.labels,
    )
}

/// libtorch's random generator (dropout) and thread count are global to the process, so the
/// tests here take turns: a run must be repeatable for the resume test to compare.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("convlab-cifar-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn seed_model_learns_a_synthetic_task() {
    let _turn = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(2);
    let (x, y, _) = data(600, 1);
    let (xt, yt, labels_t) = data(200, 2);
    let mut datagen = ImageDataGenerator::seed_settings();
    datagen.fit(&x).unwrap();
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = cifar_cnn(&vs.root());
    let mut opt = KerasSgd::seed_settings(&vs).unwrap();
    let options = FitOptions {
        epochs: 3,
        batch_size: 32,
        ..Default::default()
    };
    let history = fit(
        &model, &mut vs, &mut opt, &datagen, &x, &y, &xt, &yt, &options,
    )
    .unwrap();
    assert_eq!(history.epochs.len(), 3);
    assert_eq!(opt.iterations, 3 * 600u64.div_ceil(32));
    let (first, second) = (&history.epochs[0], &history.epochs[1]);
    assert!(
        second.train_loss < first.train_loss,
        "training loss did not fall: {history:?}"
    );
    // SGD with momentum can spike once the loss is near zero on a task this easy, so the
    // check is that the network got far above chance (0.1) on unseen pictures, not that the
    // last epoch is its best.
    let best = history
        .epochs
        .iter()
        .map(|e| e.test_accuracy)
        .fold(0.0, f64::max);
    assert!(
        best > 0.6,
        "best test accuracy {best} on a task where chance is 0.1: {history:?}"
    );
    let last = &history.epochs[2];
    // predict agrees with the accuracy fit reported.
    let pred = predict(
        &model,
        &datagen.standardize_all(&xt).unwrap(),
        64,
        Device::Cpu,
    );
    let right = pred
        .iter()
        .zip(&labels_t)
        .filter(|(p, &t)| **p == usize::from(t))
        .count();
    assert!((right as f64 / 200.0 - last.test_accuracy).abs() < 1e-9);
}

fn weights(vs: &nn::VarStore) -> Vec<(String, tch::Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn interrupted_run_resumes_where_it_stopped() {
    let _turn = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let (x, y, _) = data(96, 3);
    let (xt, yt, _) = data(20, 4);
    let mut datagen = ImageDataGenerator::seed_settings();
    datagen.fit(&x).unwrap();
    let run = |epochs: usize, dir: &std::path::Path| {
        tch::manual_seed(7);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = cifar_cnn(&vs.root());
        let mut opt = KerasSgd::seed_settings(&vs).unwrap();
        let options = FitOptions {
            epochs,
            batch_size: 32,
            seed: 11,
            checkpoint_dir: Some(dir.to_path_buf()),
            ..Default::default()
        };
        let h = fit(
            &model, &mut vs, &mut opt, &datagen, &x, &y, &xt, &yt, &options,
        )
        .unwrap();
        (vs, opt.iterations, h)
    };
    let whole = tmp("whole");
    let (vs_whole, it_whole, h_whole) = run(2, &whole);
    let cut = tmp("cut");
    let (_, it_one, h_one) = run(1, &cut);
    assert_eq!(it_one, 3);
    // A new process would start here: fresh model, fresh optimiser, same checkpoint folder.
    let (vs_resumed, it_resumed, h_resumed) = run(2, &cut);
    assert_eq!(it_resumed, it_whole);
    assert_eq!(h_resumed.epochs.len(), 2);
    assert_eq!(
        h_resumed.epochs[0], h_one.epochs[0],
        "the first epoch comes from the checkpoint"
    );
    assert!((h_resumed.epochs[1].train_loss - h_whole.epochs[1].train_loss).abs() < 1e-4);
    for ((n, a), (_, b)) in weights(&vs_whole).iter().zip(weights(&vs_resumed).iter()) {
        let diff = (a - b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]).max(1e-3);
        assert!(diff / scale < 1e-4, "{n} differs by {diff} after resuming");
    }
    // Running again with everything done trains nothing and returns the history.
    let (vs_again, it_again, h_again) = run(2, &cut);
    assert_eq!(it_again, it_whole);
    assert_eq!(h_again, h_resumed);
    let w = |vs: &nn::VarStore| {
        vs.variables()["conv1.weight"]
            .sum(Kind::Double)
            .double_value(&[])
    };
    assert_eq!(w(&vs_again), w(&vs_resumed));
    // A checkpoint of another run is refused with advice.
    let (x_small, y_small, _) = data(64, 3);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = cifar_cnn(&vs.root());
    let mut opt = KerasSgd::seed_settings(&vs).unwrap();
    let options = FitOptions {
        epochs: 3,
        checkpoint_dir: Some(cut.clone()),
        ..Default::default()
    };
    let err = fit(
        &model, &mut vs, &mut opt, &datagen, &x_small, &y_small, &xt, &yt, &options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("another run") && err.contains("delete"),
        "{err}"
    );
}
