// Shared by the build scripts of `clip-cli` and `clip-benches` (`include!`d): binaries that must
// start without `LD_LIBRARY_PATH` and see the GPU when there is one.

/// An rpath to libtorch's `lib/`, and `libtorch_cuda` linked with `--no-as-needed`: nothing
/// references it by symbol, so the default `--as-needed` drops it and CUDA then silently looks
/// absent.
fn link_libtorch() {
    // torch-sys (links = "tch") exports its lib dir to direct dependents as DEP_TCH_LIBTORCH_LIB.
    let lib = std::path::PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report libtorch's lib dir"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
