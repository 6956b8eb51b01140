//! Is CUDA usable, and how fast is VGG-16 on this machine's device? Run through
//! `scripts/check-cuda.sh`. Prints what it finds; exits non-zero only if the forward fails.

use convlab::device::{describe, device, load_cuda_backend};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn main() -> convlab::Result<()> {
    let lib = load_cuda_backend();
    println!(
        "libtorch CUDA library: {}",
        lib.as_deref().unwrap_or("absent")
    );
    println!(
        "CUDA available: {} ({} device(s)), cuDNN: {}",
        tch::Cuda::is_available(),
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available()
    );
    let dev = device();
    println!("device chosen: {}", describe(dev));
    if !dev.is_cuda() {
        println!("CUDA absent: running the check on the CPU");
    }
    let vgg = convlab::vgg::vgg16(dev)?;
    for batch in [1i64, 8] {
        let x = Tensor::randn([batch, 3, 224, 224], (Kind::Float, dev));
        let warm = Instant::now();
        let p = vgg.forward(&x)?;
        sync(dev);
        let first = warm.elapsed().as_secs_f64();
        let t = Instant::now();
        let p2 = vgg.forward(&x)?;
        sync(dev);
        let second = t.elapsed().as_secs_f64();
        let sums = p.sum(Kind::Float).double_value(&[]);
        assert!(
            (sums - batch as f64).abs() < 1e-3 && p.equal(&p2),
            "softmax rows must sum to 1 and repeat"
        );
        println!("VGG-16 forward, batch {batch:>2}: first {first:.3} s, then {second:.3} s ({:.1} images/s) on {:?}", batch as f64 / second, p.device());
    }
    Ok(())
}

fn sync(dev: Device) {
    if let Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
}
