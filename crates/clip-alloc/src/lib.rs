//! The process allocator of the clip-rs binaries: jemalloc in place of `malloc` for the whole
//! process (libtorch and the C++ shims included), never returning freed pages to the system.
//!
//! A binary links it with `use clip_alloc as _;` at its root; libraries never depend on it, since
//! it changes every allocation of the program that links it.
//!
//! Why: a training step frees and reallocates gigabytes of activations. Pages given back to the
//! system are zero-filled again on first touch, which cost ViT-B-32 at batch 32 about 3 s of a
//! 14 s step on two cores, so freed pages stay with the process. glibc's allocator, told the same,
//! reused them worse: a checkpointed ViT-B-32 step at batch 128 peaked at 4.87 GB with 3.25 GB
//! live, and at 4.12 GB under jemalloc (size classes, an arena of its own for buffers over 8 MiB).

#[cfg(target_os = "linux")]
mod jemalloc {
    use tikv_jemalloc_sys as _;

    /// jemalloc's start-up options: freed pages are kept (never purged, dirty or muzzy). jemalloc
    /// reads this symbol at its first allocation, before `main`; `MALLOC_CONF` is read after it.
    #[unsafe(no_mangle)]
    #[used]
    #[allow(non_upper_case_globals)] // jemalloc's name.
    static malloc_conf: Options = Options(c"dirty_decay_ms:-1,muzzy_decay_ms:-1".as_ptr());

    /// A C string pointer that may sit in a `static`.
    #[repr(transparent)]
    struct Options(*const std::ffi::c_char);

    // SAFETY: it points at a string literal, immutable for the whole program.
    unsafe impl Sync for Options {}
}
