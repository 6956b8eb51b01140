//! The training loop, loss and optimiser for real: the seed's model, optimiser and
//! augmentation must learn a small synthetic 10-class task, and a run cut after one epoch
//! must resume to the same weights as a run that was never cut.
#![cfg(feature = "torch")]

use convlab::augment::ImageDataGenerator;
use convlab::cifar;
use convlab::train::{cifar_cnn, fit, predict, FitInputs, FitOptions, KerasSgd, RunSpec};
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
    // Same seed, one thread, the velocities saved: the very same numbers, bit for bit.
    assert_eq!(h_resumed.epochs[1].train_loss, h_whole.epochs[1].train_loss);
    for ((n, a), (_, b)) in weights(&vs_whole).iter().zip(weights(&vs_resumed).iter()) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(a.equal(b), "{n} differs by {diff} after resuming");
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
    // A changed setting is another run: it trains in a new folder next to the checkpoint,
    // which stays as it was, and going back to the old settings resumes the old folder.
    let before = std::fs::read_to_string(cut.join("progress.json")).unwrap();
    let changed = |vs: &mut nn::VarStore, lr: f64, datagen: &ImageDataGenerator| {
        let model = cifar_cnn(&vs.root());
        let mut opt = KerasSgd::new(vs, lr, 0.9, 1e-6, true).unwrap();
        let options = FitOptions {
            epochs: 1,
            batch_size: 32,
            seed: 11,
            checkpoint_dir: Some(cut.clone()),
            ..Default::default()
        };
        fit(&model, vs, &mut opt, datagen, &x, &y, &xt, &yt, &options).unwrap();
        opt.iterations
    };
    let mut vs = nn::VarStore::new(Device::Cpu);
    assert_eq!(changed(&mut vs, 0.05, &datagen), 3, "trained from scratch");
    let second = cut.with_file_name(format!("{}-2", cut.file_name().unwrap().to_string_lossy()));
    assert!(second.join("progress.json").exists());
    assert!(std::fs::read_to_string(second.join("progress.json"))
        .unwrap()
        .contains("0.05"));
    assert_eq!(
        std::fs::read_to_string(cut.join("progress.json")).unwrap(),
        before
    );
    let mut no_flip = datagen.clone();
    no_flip.horizontal_flip = false;
    let mut vs = nn::VarStore::new(Device::Cpu);
    assert_eq!(changed(&mut vs, 0.05, &no_flip), 3);
    let third = cut.with_file_name(format!("{}-3", cut.file_name().unwrap().to_string_lossy()));
    assert!(third.join("progress.json").exists());
    let mut vs = nn::VarStore::new(Device::Cpu);
    assert_eq!(
        changed(&mut vs, 0.01, &datagen),
        6,
        "the first run's settings resume its folder"
    );
    for d in [&whole, &cut, &second, &third] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// What a checkpoint records tells apart every setting that defines a run, the model's code
/// included, and names what changed.
#[test]
fn run_spec_tells_runs_apart() {
    let _turn = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    let (x, y, _) = data(20, 5);
    let (xt, yt, _) = data(10, 6);
    let mut datagen = ImageDataGenerator::seed_settings();
    datagen.fit(&x).unwrap();
    let options = FitOptions::default();
    let spec_of = |build: &dyn Fn(&nn::Path) -> convlab::train::Stack,
                   lr: f64,
                   datagen: &ImageDataGenerator,
                   x: &Array4<f32>,
                   options: &FitOptions| {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs.root());
        let before = vs.variables()["conv1.weight"].copy();
        let opt = KerasSgd::new(&vs, lr, 0.9, 1e-6, true).unwrap();
        let inputs = FitInputs {
            datagen,
            x_train: x,
            y_train: &y,
            x_test: &xt,
            y_test: &yt,
            options,
        };
        let spec = RunSpec::describe(&model, &vs, &opt, &inputs).unwrap();
        assert!(
            before.equal(&vs.variables()["conv1.weight"]),
            "describing the run leaves the weights as they were"
        );
        spec
    };
    let base = spec_of(&|p| cifar_cnn(p), 0.01, &datagen, &x, &options);
    assert!(base
        .differences(&spec_of(&|p| cifar_cnn(p), 0.01, &datagen, &x, &options))
        .is_empty());
    // Another dropout rate: the same weights, other code.
    let other_dropout = |p: &nn::Path| {
        use convlab::train::{keras_conv2d, keras_dense, Padding, Stack};
        Stack::new()
            .add("conv1", keras_conv2d(p / "conv1", 3, 32, 3, Padding::Same))
            .add_fn("relu1", |x| x.relu())
            .add(
                "conv2",
                keras_conv2d(p / "conv2", 32, 32, 3, Padding::Valid),
            )
            .add_fn("relu2", |x| x.relu())
            .add_fn("pool1", |x| x.max_pool2d_default(2))
            .add_fn_t("drop1", |x, train| x.dropout(0.5, train))
            .add("conv3", keras_conv2d(p / "conv3", 32, 64, 3, Padding::Same))
            .add_fn("relu3", |x| x.relu())
            .add(
                "conv4",
                keras_conv2d(p / "conv4", 64, 64, 3, Padding::Valid),
            )
            .add_fn("relu4", |x| x.relu())
            .add_fn("pool2", |x| x.max_pool2d_default(2))
            .add_fn_t("drop2", |x, train| x.dropout(0.25, train))
            .add_fn("flatten", |x| x.flat_view())
            .add("dense1", keras_dense(p / "dense1", 64 * 6 * 6, 512))
            .add_fn("relu5", |x| x.relu())
            .add_fn_t("drop3", |x, train| x.dropout(0.5, train))
            .add("dense2", keras_dense(p / "dense2", 512, 10))
    };
    let d = base.differences(&spec_of(&other_dropout, 0.01, &datagen, &x, &options));
    assert_eq!(d, ["model (its layers compute something else)"]);
    let d = base.differences(&spec_of(&|p| cifar_cnn(p), 0.02, &datagen, &x, &options));
    assert_eq!(d, ["learning rate 0.01 → 0.02"]);
    let mut g = datagen.clone();
    g.width_shift_range = 0.2;
    let d = base.differences(&spec_of(&|p| cifar_cnn(p), 0.01, &g, &x, &options));
    assert_eq!(d, ["width_shift_range 0.1 → 0.2"]);
    let mut x2 = x.clone();
    x2[[3, 1, 4, 5]] += 0.25;
    let d = base.differences(&spec_of(&|p| cifar_cnn(p), 0.01, &datagen, &x2, &options));
    assert_eq!(d, ["training data (other pictures or labels)"]);
    let o = FitOptions {
        batch_size: 16,
        seed: 4,
        ..Default::default()
    };
    let d = base.differences(&spec_of(&|p| cifar_cnn(p), 0.01, &datagen, &x, &o));
    assert_eq!(d, ["batch size 32 → 16", "seed 0 → 4"]);
}
