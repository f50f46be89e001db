//! The C ABI of `csrc/dist.cpp`. Tensors cross as tch's `C_tensor` pointers (`at::Tensor*`).

use std::ffi::{CStr, c_char, c_int};

use torch_sys::C_tensor;

/// Opaque `ClipStore`.
#[repr(C)]
pub(crate) struct RawStore {
    _private: [u8; 0],
}

/// Opaque `ClipGroup`.
#[repr(C)]
pub(crate) struct RawGroup {
    _private: [u8; 0],
}

/// Opaque `ClipReducer`.
#[repr(C)]
pub(crate) struct RawReducer {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub(crate) fn clip_dist_free_error(message: *mut c_char);
    pub(crate) fn clip_dist_store(
        host: *const c_char,
        port: c_int,
        world_size: c_int,
        is_server: c_int,
        timeout_ms: i64,
        prefix: *const c_char,
        out: *mut *mut RawStore,
    ) -> *mut c_char;
    pub(crate) fn clip_dist_store_free(store: *mut RawStore);
    pub(crate) fn clip_dist_store_set(store: *mut RawStore, key: *const c_char, value: *const c_char) -> *mut c_char;
    pub(crate) fn clip_dist_store_add(store: *mut RawStore, key: *const c_char, delta: i64, out: *mut i64) -> *mut c_char;
    pub(crate) fn clip_dist_group(
        store: *mut RawStore,
        rank: c_int,
        size: c_int,
        cuda: c_int,
        gloo_host: *const c_char,
        timeout_ms: i64,
        out: *mut *mut RawGroup,
    ) -> *mut c_char;
    pub(crate) fn clip_dist_group_free(group: *mut RawGroup);
    pub(crate) fn clip_dist_has_nccl() -> c_int;
    pub(crate) fn clip_dist_allreduce(group: *mut RawGroup, tensor: *mut C_tensor, op: c_int) -> *mut c_char;
    pub(crate) fn clip_dist_allgather(group: *mut RawGroup, input: *mut C_tensor, out: *mut *mut C_tensor) -> *mut c_char;
    pub(crate) fn clip_dist_allgather_with_grad(
        group: *mut RawGroup,
        input: *mut C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    pub(crate) fn clip_dist_broadcast(group: *mut RawGroup, tensor: *mut C_tensor, root: c_int) -> *mut c_char;
    pub(crate) fn clip_dist_barrier(group: *mut RawGroup) -> *mut c_char;
    pub(crate) fn clip_dist_grad_layout(
        params: *const *mut C_tensor,
        n: c_int,
        storage_of: *mut i64,
        offset: *mut i64,
        numel: *mut i64,
    ) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn clip_dist_reducer_new(
        group: *mut RawGroup,
        params: *const *mut C_tensor,
        n: c_int,
        spans: *const i64,
        buckets: c_int,
        member_start: *const i64,
        member_params: *const i64,
        order: *const i64,
        hooks: c_int,
        out: *mut *mut RawReducer,
    ) -> *mut c_char;
    pub(crate) fn clip_dist_reducer_free(reducer: *mut RawReducer);
    pub(crate) fn clip_dist_reducer_arm(reducer: *mut RawReducer);
    pub(crate) fn clip_dist_reducer_finish(reducer: *mut RawReducer, early: *mut c_int) -> *mut c_char;
}

/// Turns the shim's error convention (null, or a malloc'd message) into a `Result`.
pub(crate) fn check(message: *mut c_char) -> Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string from malloc, owned by us from here.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    // SAFETY: freed exactly once, with the shim's own free.
    unsafe { clip_dist_free_error(message) };
    Err(text)
}
