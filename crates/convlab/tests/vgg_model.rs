//! VGG-16 built layer by layer: shapes, parameter counts, forward pass, preprocessing,
//! top-k and the looking-inside helpers, with the errors a student meets.
#![cfg(feature = "torch")]

use convlab::vgg::{
    self, closest_filter, image_tensor, oriented, top_k, vgg16, Activation, Model, Preprocessing,
};
use convlab::Error;
use ndarray::{Array2, Array3, Array4};
use tch::{Device, Kind, Tensor};

fn small() -> Model {
    let mut m = Model::new([3, 16, 16], Device::Cpu).unwrap();
    m.add_zero_padding(1).unwrap();
    m.add_conv("features.0", 4, Activation::Relu).unwrap();
    m.add_max_pool(2, 2).unwrap();
    m.add_flatten().unwrap();
    m.add_dense("classifier.0", 5, Activation::Linear).unwrap();
    m.add_softmax().unwrap();
    m
}

#[test]
fn vgg16_has_the_published_shapes_and_parameter_count() {
    let vgg = vgg16(Device::Cpu).unwrap();
    let summary = vgg.summary();
    assert_eq!(summary.total(), 138_357_544);
    assert_eq!(vgg.num_params(), vgg::VGG16_PARAMS);
    let text = summary.to_string();
    assert!(text.contains("138,357,544"), "{text}");
    assert!(text.contains("features.0 (Conv2D, ReLU)"), "{text}");
    // Keras's layer list: padding, conv, padding, conv, pool, … : 13 paddings + 13 convs +
    // 5 pools + flatten + 3 dense + 2 dropouts + softmax.
    assert_eq!(vgg.layers().len(), 13 * 2 + 5 + 1 + 3 + 2 + 1);
    assert_eq!(vgg.layer(0usize).unwrap().output_shape(), &[3, 226, 226]);
    assert_eq!(vgg.layer(1usize).unwrap().name(), "features.0");
    assert_eq!(vgg.layer(1usize).unwrap().params(), 1792);
    assert_eq!(
        vgg.layer("features.28").unwrap().output_shape(),
        &[512, 14, 14]
    );
    assert_eq!(vgg.layer("flatten_1").unwrap().output_shape(), &[25088]);
    assert_eq!(
        vgg.layer("classifier.0").unwrap().params(),
        25088 * 4096 + 4096
    );
    assert_eq!(vgg.output_shape(), &[1000]);
    let convs = vgg.conv_names();
    assert_eq!(convs, vgg::vgg16_conv_names());
    assert_eq!(convs[7], "features.17");
    assert_eq!(vgg.layer(&convs[7]).unwrap().output_shape(), &[512, 28, 28]);
    // The tensors the model expects are exactly those of the weight file.
    let mut names: Vec<String> = vgg.var_store().variables().into_keys().collect();
    names.sort();
    let mut file: Vec<String> = convlab::weights::vgg16_shapes()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    file.sort();
    assert_eq!(names, file);
}

#[test]
fn forward_gives_probabilities_and_layer_outputs() {
    let m = small();
    tch::manual_seed(1);
    let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
    let p = m.forward(&x).unwrap();
    assert_eq!(p.size(), vec![2, 5]);
    let sums = p.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    for i in 0..2 {
        assert!((sums.double_value(&[i]) - 1.0).abs() < 1e-5);
    }
    let by_index = m.layer_output(&x, 1usize).unwrap();
    let by_name = m.layer_output(&x, "features.0").unwrap();
    assert_eq!(by_index.size(), vec![4, 16, 16]);
    assert!(by_index.equal(&by_name));
    assert!(
        by_index.min().double_value(&[]) >= 0.0,
        "ReLU output is never negative"
    );
    // The pooled layer is the 2×2 maximum of the conv output.
    let pooled = m.layer_output(&x, 2usize).unwrap();
    assert_eq!(pooled.size(), vec![4, 8, 8]);
    let a = vgg::tensor_to_array(&by_index).unwrap();
    let b = vgg::tensor_to_array(&pooled).unwrap();
    let max = a[[3, 4, 6]]
        .max(a[[3, 4, 7]])
        .max(a[[3, 5, 6]])
        .max(a[[3, 5, 7]]);
    assert_eq!(b[[3, 2, 3]], max);
}

#[test]
fn builder_errors_name_the_problem() {
    let mut m = Model::new([3, 16, 16], Device::Cpu).unwrap();
    let e = m
        .add_dense("classifier.0", 10, Activation::Relu)
        .unwrap_err();
    assert!(e.to_string().contains("add_flatten()"), "{e}");
    m.add_conv("features.0", 4, Activation::Relu).unwrap();
    let e = m.add_conv("features.0", 4, Activation::Relu).unwrap_err();
    assert!(e.to_string().contains("already used by layer 0"), "{e}");
    let e = m.add_conv("features..2", 4, Activation::Relu).unwrap_err();
    assert!(e.to_string().contains("not usable"), "{e}");
    let e = m.add_max_pool(20, 2).unwrap_err();
    assert!(e.to_string().contains("does not fit in a 14×14"), "{e}");
    m.add_flatten().unwrap();
    let e = m.add_conv("features.2", 4, Activation::Relu).unwrap_err();
    assert!(e.to_string().contains("(784)"), "{e}");
    let e = m.add_dropout(1.5).unwrap_err();
    assert!(e.to_string().contains("1.5"), "{e}");
    assert!(Model::new([3, 0, 4], Device::Cpu).is_err());
    let mut tiny = Model::new([3, 4, 4], Device::Cpu).unwrap();
    tiny.add_conv("a", 2, Activation::Relu).unwrap();
    let e = tiny.add_conv("b", 2, Activation::Relu).unwrap_err();
    assert!(e.to_string().contains("2×2"), "{e}");
}

#[test]
fn forward_refuses_wrong_inputs_and_layers() {
    let m = small();
    let x = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let e = m.forward(&x).unwrap_err();
    assert!(
        e.to_string().contains("(N, 3, 16, 16)") && e.to_string().contains("[1, 3, 32, 32]"),
        "{e}"
    );
    let x = Tensor::zeros([3, 16, 16], (Kind::Float, Device::Cpu));
    assert!(matches!(m.forward(&x), Err(Error::Shape(_))));
    let x = Tensor::zeros([1, 3, 16, 16], (Kind::Double, Device::Cpu));
    assert!(m.forward(&x).unwrap_err().to_string().contains("f32"));
    let x = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
    let e = m.layer_output(&x, 6usize).unwrap_err();
    assert!(e.to_string().contains("6 layers (0 to 5)"), "{e}");
    let e = m.layer_output(&x, "features.9").unwrap_err();
    assert!(e.to_string().contains("features.0"), "{e}");
    let e = m.conv_filters("flatten_1").unwrap_err();
    assert!(e.to_string().contains("no filters"), "{e}");
    assert_eq!(m.conv_filters("features.0").unwrap().dim(), (4, 3, 3, 3));
    let empty = Model::new([3, 16, 16], Device::Cpu).unwrap();
    assert!(empty
        .forward(&x)
        .unwrap_err()
        .to_string()
        .contains("no layers"));
}

#[test]
fn caffe_preprocessing_is_bgr_minus_mean_channel_first() {
    // A 64×48 picture: left half pure red, right half pure blue (resizing keeps flat areas).
    let img = Array3::<f32>::from_shape_fn((64, 48, 3), |(_, x, c)| match (x < 24, c) {
        (true, 0) | (false, 2) => 255.0,
        _ => 0.0,
    });
    let x = Preprocessing::Caffe.to_chw(&img).unwrap();
    assert_eq!(x.dim(), (3, 224, 224));
    // channel 0 is blue, 2 is red
    assert!((x[[0, 100, 5]] - (0.0 - 103.939)).abs() < 1e-3);
    assert!((x[[2, 100, 5]] - (255.0 - 123.68)).abs() < 1e-3);
    assert!((x[[0, 100, 220]] - (255.0 - 103.939)).abs() < 1e-3);
    assert!((x[[1, 100, 220]] - (0.0 - 116.779)).abs() < 1e-3);
    let t = Preprocessing::Torchvision.to_chw(&img).unwrap();
    assert!((t[[0, 100, 5]] - (1.0 - 0.485) / 0.229).abs() < 1e-4);
    assert!((t[[2, 100, 5]] - (0.0 - 0.406) / 0.225).abs() < 1e-4);
    let batch = Preprocessing::Torchvision.apply(&img).unwrap();
    assert_eq!(batch.size(), vec![1, 3, 224, 224]);
    assert_eq!(batch.kind(), Kind::Float);
    // Undoing gives the resized picture back.
    for p in [Preprocessing::Caffe, Preprocessing::Torchvision] {
        let back = p.to_picture(&p.to_chw(&img).unwrap()).unwrap();
        assert!((back[[100, 5, 0]] - 255.0).abs() < 1e-2 && back[[100, 5, 2]].abs() < 1e-2);
    }
}

#[test]
fn preprocessing_refuses_grey_tiny_and_channel_first_pictures() {
    let grey = Array2::<f32>::zeros((100, 100));
    let e = Preprocessing::Caffe.to_chw(&grey).unwrap_err();
    assert!(
        e.to_string().contains("grey picture (100×100)") && e.to_string().contains("load_colour"),
        "{e}"
    );
    let one = Array3::<f32>::zeros((100, 100, 1));
    assert!(Preprocessing::Caffe
        .to_chw(&one)
        .unwrap_err()
        .to_string()
        .contains("grey"));
    let tiny = Array3::<f32>::zeros((8, 12, 3));
    let e = Preprocessing::Torchvision.apply(&tiny).unwrap_err();
    assert!(e.to_string().contains("8×12"), "{e}");
    let chw = Array3::<f32>::zeros((3, 100, 100));
    assert!(Preprocessing::Caffe
        .to_chw(&chw)
        .unwrap_err()
        .to_string()
        .contains("colour axis first"));
    let mut nan = Array3::<f32>::zeros((40, 40, 3));
    nan[[1, 1, 1]] = f32::NAN;
    assert!(Preprocessing::Caffe.to_chw(&nan).is_err());
}

#[test]
fn image_tensor_names_a_missing_file() {
    let e = image_tensor("/no/such/dir/kitten.png", Preprocessing::Caffe).unwrap_err();
    assert!(e.to_string().contains("/no/such/dir/kitten.png"), "{e}");
    let dir = std::env::temp_dir().join(format!("convlab-vgg-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("not-a-picture.png");
    std::fs::write(&bad, b"hello").unwrap();
    let e = image_tensor(&bad, Preprocessing::Caffe).unwrap_err();
    assert!(e.to_string().contains("not-a-picture.png"), "{e}");
    // A grey PNG file loads as colour (grey repeated in R, G, B) and works.
    let grey_png = dir.join("grey.png");
    ::image::GrayImage::from_fn(60, 40, |x, _| ::image::Luma([(x * 4) as u8]))
        .save(&grey_png)
        .unwrap();
    let t = image_tensor(&grey_png, Preprocessing::Torchvision).unwrap();
    assert_eq!(t.size(), vec![1, 3, 224, 224]);
    let tiny_png = dir.join("tiny.png");
    ::image::GrayImage::new(5, 5).save(&tiny_png).unwrap();
    assert!(image_tensor(&tiny_png, Preprocessing::Caffe)
        .unwrap_err()
        .to_string()
        .contains("5×5"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn top_k_sorts_and_labels() {
    let mut p = vec![0.0f32; 1000];
    p[0] = 0.1;
    p[281] = 0.5;
    p[285] = 0.3;
    p[999] = 0.05;
    let t = Tensor::from_slice(&p).reshape([1, 1000]);
    let top = top_k(&t, 3).unwrap();
    let got: Vec<(usize, &str)> = top.iter().map(|g| (g.class, g.label)).collect();
    assert_eq!(
        got,
        vec![(281, "tabby"), (285, "Egyptian cat"), (0, "tench")]
    );
    assert!((top[0].probability - 0.5).abs() < 1e-6);
    assert!(top[0].to_string().contains("50.0%  tabby"));
    let e = top_k(&Tensor::zeros([2, 1000], (Kind::Float, Device::Cpu)), 5).unwrap_err();
    assert!(e.to_string().contains("[2, 1000]"), "{e}");
    assert!(top_k(&Tensor::zeros([10], (Kind::Float, Device::Cpu)), 5).is_err());
    assert_eq!(vgg::imagenet_classes()[999], "toilet tissue");
    let chart = vgg::guesses_chart("top-3", &top).unwrap();
    assert!(chart.rgb.width() > 100);
}

#[test]
fn closest_filter_allows_for_channel_order_and_flip() {
    let target = convlab::filters::brown_channel_first();
    tch::manual_seed(3);
    let noise =
        vgg::tensor_to_array(&Tensor::randn([64, 3, 3, 3], (Kind::Float, Device::Cpu))).unwrap();
    let mut bank: Array4<f32> = noise.into_dimensionality().unwrap();
    let planted = oriented(&target, true, true).mapv(|v| v * 3.0);
    bank.index_axis_mut(ndarray::Axis(0), 17).assign(&planted);
    let m = closest_filter(&bank, &target).unwrap();
    assert_eq!((m.index, m.channels_reversed, m.flipped), (17, true, true));
    assert!((m.score - 1.0).abs() < 1e-5, "{m}");
    assert!(closest_filter(&bank, &Array3::zeros((3, 5, 5))).is_err());
    let pic = vgg::filter_picture(&target).unwrap();
    assert!(pic.rgb.width() >= 120);
}

#[test]
fn activation_picture_tiles_all_channels() {
    let acts = Tensor::rand([64, 20, 20], (Kind::Float, Device::Cpu));
    let pic = vgg::activation_picture(&acts, 5, 1.0, 10_000).unwrap();
    assert_eq!(pic.rgb.dimensions(), (8 * 25, 8 * 25));
    let small = vgg::activation_picture(&acts, 5, 1.0, 100).unwrap();
    assert_eq!(small.rgb.dimensions(), (100, 100));
    assert!(vgg::activation_picture(
        &Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu)),
        1,
        0.0,
        100
    )
    .is_err());
}
