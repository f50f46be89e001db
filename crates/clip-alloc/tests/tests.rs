//! Linking clip-alloc puts jemalloc, with its options, under every allocation of the process.

#![cfg(target_os = "linux")]

use std::ffi::{CStr, c_void};

use clip_alloc as _;

/// `opt.NAME` as the process's jemalloc holds it.
fn decay_ms(name: &CStr) -> isize {
    let (mut value, mut len) = (0isize, size_of::<isize>());
    // SAFETY: mallctl writes at most `len` bytes into `value`.
    let rc = unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), (&raw mut value).cast(), &raw mut len, std::ptr::null_mut(), 0) };
    assert_eq!((rc, len), (0, size_of::<isize>()), "mallctl {name:?}");
    value
}

/// The arena jemalloc allocated `ptr` from; fails unless jemalloc owns it.
fn arena_of(ptr: *mut c_void) -> u32 {
    let (mut arena, mut len) = (u32::MAX, size_of::<u32>());
    let mut ptr = ptr;
    // SAFETY: `arenas.lookup` reads one pointer and writes one unsigned.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arenas.lookup".as_ptr(),
            (&raw mut arena).cast(),
            &raw mut len,
            (&raw mut ptr).cast(),
            size_of::<*mut c_void>(),
        )
    };
    assert_eq!(rc, 0, "jemalloc does not own {ptr:?}");
    arena
}

#[test]
fn freed_pages_are_kept() {
    assert_eq!(decay_ms(c"opt.dirty_decay_ms"), -1);
    assert_eq!(decay_ms(c"opt.muzzy_decay_ms"), -1);
}

#[test]
fn shared_libraries_allocate_through_jemalloc() {
    // libtorch reaches malloc as libc's own strdup does: through the dynamic symbol, not Rust's.
    // SAFETY: strdup copies a C string literal into a buffer that free releases.
    unsafe {
        let copy = libc::strdup(c"clip-rs".as_ptr());
        assert!(!copy.is_null());
        arena_of(copy.cast());
        libc::free(copy.cast());
        let malloc = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
        assert!(!malloc.is_null());
        let malloc: unsafe extern "C" fn(usize) -> *mut c_void = std::mem::transmute(malloc);
        let big = malloc(64 << 20); // Over the 8 MiB of jemalloc's arena for large buffers.
        assert!(!big.is_null());
        arena_of(big);
        libc::free(big);
    }
}
