// Autocast control that tch does not expose: per-device enablement and the low-precision dtype.
// tch's own `autocast` toggles only the CUDA flag and leaves its dtype at fp16; CLIP training wants bf16.
// Every entry point catches C++ exceptions: none may unwind into Rust.
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
at::ScalarType low_precision(int dtype) { return dtype == 1 ? at::kHalf : at::kBFloat16; }
}  // namespace

extern "C" {

// Enables autocast on CPU (cuda = 0) or CUDA (cuda = 1) with bf16 (dtype = 0) or fp16 (dtype = 1).
// Writes the previous state to *prev_enabled and *prev_dtype (an at::ScalarType) for the exit call.
// Returns 0 on success, -1 if libtorch refused.
int clip_autocast_enter(int cuda, int dtype, int* prev_enabled, int* prev_dtype) {
  try {
    const auto device = device_type(cuda);
    *prev_enabled = at::autocast::is_autocast_enabled(device) ? 1 : 0;
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(device));
    at::autocast::set_autocast_dtype(device, low_precision(dtype));
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Restores the state saved by clip_autocast_enter; drops the cast cache when the outermost region ends,
// as torch.autocast's __exit__ does.
int clip_autocast_exit(int cuda, int prev_enabled, int prev_dtype) {
  try {
    const auto device = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device, prev_enabled != 0);
    at::autocast::set_autocast_dtype(device, static_cast<at::ScalarType>(prev_dtype));
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
