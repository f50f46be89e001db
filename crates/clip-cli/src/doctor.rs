//! `clip doctor`: what this binary actually loaded and can use, read from the running process.

use std::ffi::{CStr, c_char, c_int};
use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Result, ensure};
use libc::{RTLD_LAZY, RTLD_NOLOAD};
use libloading::os::unix::Library;
use tch::{Cuda, Device, Kind, Tensor};

/// Paths of the shared objects mapped into this process whose file name starts with `prefix`.
fn loaded_library(prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix)))
}

/// The version a libtorch folder declares: `build-version` (zips) or `version.py` (wheels).
fn libtorch_version(root: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(root.join("build-version")) {
        return Some(text.trim().to_owned());
    }
    let text = std::fs::read_to_string(root.join("version.py")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_owned())
}

/// An already-loaded library, without loading anything new.
fn already_loaded(soname: &str) -> Option<Library> {
    // SAFETY: RTLD_NOLOAD only returns a handle to a library the process has already initialised.
    unsafe { Library::open(Some(soname), RTLD_LAZY | RTLD_NOLOAD) }.ok()
}

fn has_symbol(library: &Library, symbol: &str) -> bool {
    // SAFETY: the symbol is only looked up, never called.
    unsafe { library.get::<*const ()>(symbol.as_bytes()) }.is_ok()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Name and memory of each CUDA device, from the driver API (tch exposes neither).
fn cuda_devices() -> Vec<String> {
    type CuInit = unsafe extern "C" fn(u32) -> c_int;
    type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type CuDeviceTotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
    let Some(driver) = already_loaded("libcuda.so.1") else { return Vec::new() };
    let count = Cuda::device_count().max(0);
    // SAFETY: signatures as declared in cuda.h; every out-pointer is a valid local, and the
    // driver was already initialised by libtorch when it counted devices.
    unsafe {
        let (Ok(init), Ok(get), Ok(name), Ok(mem)) = (
            driver.get::<CuInit>(b"cuInit"),
            driver.get::<CuDeviceGet>(b"cuDeviceGet"),
            driver.get::<CuDeviceGetName>(b"cuDeviceGetName"),
            driver.get::<CuDeviceTotalMem>(b"cuDeviceTotalMem_v2"),
        ) else {
            return Vec::new();
        };
        if init(0) != 0 {
            return Vec::new();
        }
        (0..count)
            .map(|ordinal| {
                let mut device = 0;
                let mut buf = [0 as c_char; 256];
                let mut bytes = 0usize;
                if get(&mut device, ordinal as c_int) != 0 || name(buf.as_mut_ptr(), 256, device) != 0 {
                    return format!("cuda:{ordinal}: (driver did not say)");
                }
                let _ = mem(&mut bytes, device);
                let label = CStr::from_ptr(buf.as_ptr()).to_string_lossy();
                format!("cuda:{ordinal}: {label}, {:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
            })
            .collect()
    }
}

/// NCCL's version as `major.minor.patch`, from the library libtorch_cuda loaded.
fn nccl_version() -> Option<String> {
    type NcclGetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;
    let nccl = already_loaded("libnccl.so.2")?;
    let mut code = 0;
    // SAFETY: ncclGetVersion(int*) as declared in nccl.h; the out-pointer is a valid local.
    let status = unsafe { nccl.get::<NcclGetVersion>(b"ncclGetVersion").ok()?(&mut code) };
    (status == 0).then(|| format!("{}.{}.{}", code / 10000, (code % 10000) / 100, code % 100))
}

/// Runs a matmul on `device` and compares it with the CPU's result: proof that kernels execute there.
fn smoke_test(device: Device) -> Result<String> {
    let a = Tensor::f_randn([256, 256], (Kind::Float, Device::Cpu))?;
    let expected = a.f_matmul(&a)?;
    let on_device = a.f_to_device(device)?;
    let start = Instant::now();
    let product = on_device.f_matmul(&on_device)?.f_to_device(Device::Cpu)?;
    let elapsed = start.elapsed();
    let max_diff = f64::try_from(product.f_sub(&expected)?.f_abs()?.f_max()?)?;
    ensure!(max_diff < 1e-2, "matmul on {device:?} differs from the CPU's by {max_diff}");
    Ok(format!("ok (256x256 matmul, {:.2} ms, max |diff| vs CPU {max_diff:.1e})", elapsed.as_secs_f64() * 1e3))
}

pub(crate) fn run() -> Result<()> {
    println!("clip-rs {}", env!("CARGO_PKG_VERSION"));
    let cpu_lib = loaded_library("libtorch_cpu.so");
    let root = cpu_lib.as_deref().and_then(Path::parent).and_then(Path::parent);
    match root {
        Some(root) => println!(
            "libtorch:  {} at {}",
            libtorch_version(root).unwrap_or_else(|| "(version unknown)".into()),
            root.display()
        ),
        None => println!("libtorch:  (libtorch_cpu.so not found among loaded libraries)"),
    }

    let cuda_lib = loaded_library("libtorch_cuda.so");
    println!(
        "CUDA:      available: {}; devices: {}; libtorch_cuda loaded: {}",
        yes_no(Cuda::is_available()),
        Cuda::device_count(),
        cuda_lib.as_ref().map_or("no".into(), |p| format!("yes ({})", p.display()))
    );
    for device in cuda_devices() {
        println!("           {device}");
    }
    let cudnn = tch::utils::version_cudnn();
    println!(
        "cuDNN:     available: {}; version: {}",
        yes_no(Cuda::cudnn_is_available()),
        if cudnn > 0 { cudnn.to_string() } else { "none".into() }
    );
    println!(
        "threads:   intra-op {}, inter-op {} (set with OMP_NUM_THREADS); MKL {}, oneDNN {}, OpenMP {}",
        tch::get_num_threads(),
        tch::get_num_interop_threads(),
        yes_no(tch::utils::has_mkl()),
        yes_no(tch::utils::has_mkldnn()),
        yes_no(tch::utils::has_openmp())
    );
    let gloo = already_loaded("libtorch_cpu.so")
        .is_some_and(|lib| has_symbol(&lib, "_ZN4c10d16ProcessGroupGloo19createDefaultDeviceEb"));
    println!("Gloo:      c10d ProcessGroupGloo in libtorch_cpu: {}", yes_no(gloo));
    let nccl = already_loaded("libtorch_cuda.so")
        .is_some_and(|lib| has_symbol(&lib, "_ZN4c10d16ProcessGroupNCCL10groupStartEv"));
    println!(
        "NCCL:      c10d ProcessGroupNCCL in libtorch_cuda: {}; libnccl: {}; compiled into clip-dist: {}",
        yes_no(nccl),
        nccl_version().unwrap_or_else(|| "not loaded".into()),
        yes_no(clip_dist::has_nccl())
    );
    println!("tensor op: cpu: {}", smoke_test(Device::Cpu)?);
    for ordinal in 0..Cuda::device_count().max(0) as usize {
        println!("           cuda:{ordinal}: {}", smoke_test(Device::Cuda(ordinal))?);
    }
    Ok(())
}
