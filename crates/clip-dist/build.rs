//! Compiles the c10d shim (`csrc/dist.cpp`) against the libtorch that torch-sys links.
//!
//! Gloo needs gloo's own headers (Debian's `libgloo-dev`; libtorch ships only c10d's). NCCL support
//! is compiled in when libtorch has CUDA and the CUDA and NCCL headers from the torch wheel's
//! `nvidia-*` packages are beside it (`cargo xtask setup` installs them).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report libtorch's lib dir"),
    );
    let root = lib.parent().expect("libtorch lib dir has a parent").to_path_buf();
    let gloo = ["/usr/include", "/usr/local/include"].iter().map(Path::new).find(|p| p.join("gloo/algorithm.h").exists());
    let Some(gloo) = gloo else {
        panic!("gloo headers not found (gloo/algorithm.h): install Debian's libgloo-dev; `cargo xtask setup` does it as root");
    };
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .include(gloo)
        .warnings(false)
        .file("csrc/dist.cpp");
    // The wheel keeps CUDA's and NCCL's headers in site-packages/nvidia, beside torch/.
    let nvidia = root.parent().map(|site| site.join("nvidia"));
    if let Some(nvidia) = nvidia.filter(|n| lib.join("libtorch_cuda.so").exists() && n.join("cu13/include/cuda_runtime.h").exists() && n.join("nccl/include/nccl.h").exists()) {
        build
            .define("CLIP_DIST_NCCL", None)
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .include(nvidia.join("cu13/include"))
            .include(nvidia.join("cu13/include/cccl"))
            .include(nvidia.join("nccl/include"));
        // ProcessGroupNCCL lives in libtorch_cuda; make sure the linker keeps it.
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    build.compile("clip_dist_shim");
}
