//! The CUDA backend: a binary built against PyPI's torch links only `libtorch_cpu`, so
//! `device()` loads `libtorch_cuda.so` itself. Without a GPU we can still check that the
//! library is found and mapped into the process (the GPU half runs in scripts/check-cuda.sh).
#![cfg(feature = "torch")]

use convlab::device::{describe, device, load_cuda_backend};

/// Is a libtorch_cuda.so on the loader path (torch's lib/, which scripts/env.sh puts there)?
fn torch_ships_cuda() -> bool {
    std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| std::path::Path::new(d).join("libtorch_cuda.so").exists())
}

fn mapped(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.contains(name))
        .unwrap_or(false)
}

#[test]
fn device_loads_the_cuda_backend_and_honours_convlab_device() {
    let dev = device();
    if torch_ships_cuda() {
        assert_eq!(load_cuda_backend().as_deref(), Some("libtorch_cuda.so"));
        assert!(
            mapped("libtorch_cuda.so"),
            "libtorch_cuda.so is not in /proc/self/maps"
        );
    } else {
        assert_eq!(load_cuda_backend(), None);
        assert!(
            describe(dev).contains("no CUDA library"),
            "{}",
            describe(dev)
        );
    }
    if !tch::Cuda::is_available() {
        assert_eq!(dev, tch::Device::Cpu);
        assert!(describe(dev).starts_with("CPU ("), "{}", describe(dev));
    }
    // CONVLAB_DEVICE=cpu forces the CPU (read on each call; no other test here sets it).
    std::env::set_var("CONVLAB_DEVICE", "cpu");
    assert_eq!(device(), tch::Device::Cpu);
    std::env::remove_var("CONVLAB_DEVICE");
}
