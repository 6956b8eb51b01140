//! Choosing where tensors live: CUDA when a GPU is usable, else the CPU.
//!
//! A binary built against PyPI's torch links only `libtorch_cpu` and `libc10`: the linker
//! drops `libtorch_cuda` because no symbol of it is used directly, and then libtorch never
//! registers its CUDA backend, so `tch::Cuda::is_available()` says `false` even on a GPU
//! machine. [`device`] loads `libtorch_cuda.so` (when torch ships it) before asking, which
//! registers the backend.
//!
//! ```
//! let dev = convlab::device::device();
//! println!("running on {}", convlab::device::describe(dev));
//! ```

use std::sync::OnceLock;
use tch::Device;

static CUDA_LIB: OnceLock<Option<String>> = OnceLock::new();

/// Loads `libtorch_cuda.so` once, globally, so that libtorch's CUDA backend registers.
/// Returns where it was found, or `None` when torch has no CUDA library.
pub fn load_cuda_backend() -> Option<String> {
    CUDA_LIB
        .get_or_init(|| {
            let name = "libtorch_cuda.so";
            // SAFETY: loading libtorch's own CUDA library runs its static initialisers,
            // which only register CUDA kernels and hooks with the already loaded libtorch.
            let lib = unsafe {
                libloading::os::unix::Library::open(
                    Some(name),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            };
            let lib = lib.ok()?;
            std::mem::forget(lib); // keep it loaded for the life of the process
            Some(name.to_string())
        })
        .clone()
}

/// CUDA device 0 when a GPU is usable, else the CPU. `CONVLAB_DEVICE=cpu` forces the CPU.
pub fn device() -> Device {
    if std::env::var("CONVLAB_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("cpu")) {
        return Device::Cpu;
    }
    load_cuda_backend();
    Device::cuda_if_available()
}

/// A line for the notebook: which device, and why.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!(
            "CUDA device {i} ({} GPU(s) visible)",
            tch::Cuda::device_count()
        ),
        _ => {
            let why = if load_cuda_backend().is_none() {
                "this libtorch has no CUDA library"
            } else {
                "no usable GPU found"
            };
            format!("CPU ({why}; {} threads)", tch::get_num_threads())
        }
    }
}
