//! The backends geosr trains on: the CPU ones `--backend` picks and CUDA's GPUs, which
//! are probed before use. Code generic over the backend reaches it through [`Job`], so
//! the list of backends stands here once.

use anyhow::{bail, Result};
use burn::backend::{ndarray::NdArrayDevice, Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use geosr::launch::DeviceMemory;

/// What a GPU asked of a build without CUDA says.
pub const NO_CUDA: &str = "this geosr was built without CUDA; rebuild with `cargo build --release --features cuda`";

/// The CPU backends. Flex is the default and, with NdArray, embedded: they need nothing
/// at run time, and NdArray's training step on quick's models is 8-23% slower.
/// LibTorch (`--features tch`) runs PyTorch's kernels, 2.2-2.9x faster than Flex, but
/// needs a PyTorch install to build and to run (docs/performance.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum CpuBackend {
    #[default]
    Flex,
    Ndarray,
    #[cfg(feature = "tch")]
    Libtorch,
}

impl CpuBackend {
    /// The name `--backend` takes, which a run's manifest also records.
    pub fn name(self) -> &'static str {
        match self {
            CpuBackend::Flex => "flex",
            CpuBackend::Ndarray => "ndarray",
            #[cfg(feature = "tch")]
            CpuBackend::Libtorch => "libtorch",
        }
    }
}

/// Work generic over the backend; [`on_cpu`] and [`on_cuda`] pick the type.
pub trait Job {
    type Output;
    fn run<B: AutodiffBackend>(self, devices: &[B::Device]) -> Result<Self::Output>;
}

pub fn on_cpu<J: Job>(backend: CpuBackend, job: J) -> Result<J::Output> {
    match backend {
        CpuBackend::Flex => job.run::<Autodiff<Flex>>(&[Default::default()]),
        CpuBackend::Ndarray => job.run::<Autodiff<NdArray>>(&[NdArrayDevice::Cpu]),
        #[cfg(feature = "tch")]
        CpuBackend::Libtorch => {
            libtorch_threads();
            job.run::<Autodiff<burn::backend::LibTorch>>(&[burn::backend::libtorch::LibTorchDevice::Cpu])
        }
    }
}

/// The threads LibTorch's kernels run on: the sweep's share (RAYON_NUM_THREADS), as for
/// the embedded backends; LibTorch's own default is every core.
#[cfg(feature = "tch")]
fn libtorch_threads() {
    if let Some(n) = std::env::var("RAYON_NUM_THREADS").ok().and_then(|n| n.parse::<i32>().ok()) {
        tch::set_num_threads(n);
    }
}

/// Runs `job` on the GPUs `indices`, each probed first.
#[cfg(feature = "cuda")]
pub fn on_cuda<J: Job>(indices: &[usize], job: J) -> Result<J::Output> {
    let devices = indices.iter().map(|&i| cuda_device(i)).collect::<Result<Vec<_>>>()?;
    job.run::<Autodiff<burn::backend::Cuda>>(&devices)
}

#[cfg(not(feature = "cuda"))]
pub fn on_cuda<J: Job>(_: &[usize], _: J) -> Result<J::Output> {
    bail!(NO_CUDA)
}

/// GPU `index`, after checking that it can hold a tensor: without a driver or with
/// no such GPU, Burn's CUDA runtime panics on a worker thread, which would end
/// geosr with a backtrace instead of an error.
#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<burn::backend::cuda::CudaDevice> {
    use burn::backend::{cuda::CudaDevice, Cuda};
    use burn::tensor::Tensor;
    use std::sync::{Arc, Mutex};
    let device = CudaDevice::new(index);
    let first_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let seen = first_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        let mut slot = seen.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(match info.payload().downcast_ref::<String>() {
                Some(s) => s.clone(),
                None => info.payload().downcast_ref::<&str>().map_or_else(|| info.to_string(), |s| s.to_string()),
            });
        }
    }));
    let probe = device.clone();
    let works = std::panic::catch_unwind(move || Tensor::<Cuda, 1>::zeros([1], &probe).into_data()).is_ok();
    std::panic::set_hook(previous);
    if !works {
        let why = first_panic.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        bail!("--device cuda:{index}: the GPU cannot be used: {why}");
    }
    Ok(device)
}

/// How to read the memory GPU `index` holds, which the process's RSS does not show.
#[cfg(feature = "cuda")]
pub fn cuda_memory(index: usize) -> Option<DeviceMemory> {
    Some(DeviceMemory { read: cuda_reserved_bytes, index })
}

#[cfg(not(feature = "cuda"))]
pub fn cuda_memory(_: usize) -> Option<DeviceMemory> {
    None
}

/// Bytes Burn's CUDA allocator holds on GPU `index` (its pools keep what they
/// reserve, so the largest sample is the run's peak).
#[cfg(feature = "cuda")]
fn cuda_reserved_bytes(index: usize) -> Option<u64> {
    use cubecl::Runtime;
    let client = cubecl::cuda::CudaRuntime::client(&burn::backend::cuda::CudaDevice::new(index));
    client.memory_usage().ok().map(|usage| usage.bytes_reserved)
}
