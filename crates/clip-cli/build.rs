//! Link settings for the `clip` binary (and this package's tests), which must run with no
//! environment tricks and see the GPU when there is one:
//! - an rpath to libtorch's `lib/`, so `target/release/clip` starts without `LD_LIBRARY_PATH`;
//! - `libtorch_cuda` linked with `--no-as-needed`: nothing references it by symbol, so the
//!   default `--as-needed` drops it and CUDA then silently looks absent.

use std::path::PathBuf;

fn main() {
    // torch-sys (links = "tch") exports its lib dir to direct dependents as DEP_TCH_LIBTORCH_LIB.
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report libtorch's lib dir"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
