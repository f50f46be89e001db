//! Compiles the small C++ shims (`csrc/`) against the same libtorch that torch-sys links.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/checkpoint.cpp");
    println!("cargo:rerun-if-changed=csrc/jit.cpp");
    println!("cargo:rerun-if-changed=csrc/zip.cpp");
    // torch-sys (links = "tch") exports its lib dir to direct dependents as DEP_TCH_LIBTORCH_LIB.
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report libtorch's lib dir"),
    );
    let root = lib.parent().expect("libtorch lib dir has a parent").to_path_buf();
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .warnings(false)
        .file("csrc/autocast.cpp")
        .file("csrc/checkpoint.cpp")
        .file("csrc/jit.cpp")
        .file("csrc/zip.cpp")
        .compile("clip_tensor_shim");
}
