// Gradient checkpointing for blocks written in Rust: torch.utils.checkpoint's reentrant variant
// (use_reentrant=True) as a C++ autograd function, since tch has none. The forward runs the block
// without a graph and keeps only its input; the backward calls back into Rust to run the block
// again under autograd, with the RNG and autocast state of the forward, and back-propagates the
// incoming gradient through that graph: parameters' gradients accumulate into their .grad (a
// nested backward, as torch's reentrant checkpoint does) and the input's is returned.
//
// Every extern "C" entry point catches C++ exceptions, so none unwinds into Rust; the Rust
// callback catches its panics and reports them as a message, so none unwinds into C++.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/ivalue.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

extern "C" {
// Runs the block on `input` (a new at::Tensor handle the callee owns), with `recompute` = 1 in
// the backward. On success stores the result in *output and returns 0; on failure passes a
// message to clip_checkpoint_set_error(error, …) and returns non-zero.
typedef int (*clip_block_fn)(void* closure, int recompute, at::Tensor* input, at::Tensor* output, void* error);
// Frees the closure.
typedef void (*clip_drop_fn)(void* closure);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr at::DeviceType kAutocastDevices[] = {at::kCPU, at::kCUDA};

// Which devices autocast is on for and at which dtype: what a recompute must run under.
struct AutocastState {
  bool enabled[2] = {false, false};
  at::ScalarType dtype[2] = {at::kBFloat16, at::kHalf};

  static AutocastState current() {
    AutocastState s;
    for (int i = 0; i < 2; ++i) {
      s.enabled[i] = at::autocast::is_autocast_enabled(kAutocastDevices[i]);
      s.dtype[i] = at::autocast::get_autocast_dtype(kAutocastDevices[i]);
    }
    return s;
  }

  bool any() const { return enabled[0] || enabled[1]; }

  void apply() const {
    for (int i = 0; i < 2; ++i) {
      at::autocast::set_autocast_dtype(kAutocastDevices[i], dtype[i]);
      at::autocast::set_autocast_enabled(kAutocastDevices[i], enabled[i]);
    }
  }
};

// The forward's autocast state, entered as torch.autocast does and left on scope exit.
class AutocastRegion {
 public:
  explicit AutocastRegion(const AutocastState& state) : previous_(AutocastState::current()), active_(state.any()) {
    state.apply();
    if (active_) at::autocast::increment_nesting();
  }
  ~AutocastRegion() {
    if (active_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    previous_.apply();
  }
  AutocastRegion(const AutocastRegion&) = delete;
  AutocastRegion& operator=(const AutocastRegion&) = delete;

 private:
  AutocastState previous_;
  bool active_;
};

// No cast cache while the forward runs without a graph: a weight cast cached there would carry
// no grad_fn into a later use of the same weight under autograd.
class NoCastCache {
 public:
  NoCastCache() : previous_(at::autocast::is_autocast_cache_enabled()) { at::autocast::set_autocast_cache_enabled(false); }
  ~NoCastCache() { at::autocast::set_autocast_cache_enabled(previous_); }
  NoCastCache(const NoCastCache&) = delete;
  NoCastCache& operator=(const NoCastCache&) = delete;

 private:
  bool previous_;
};

at::Tensor rng_state(const at::Generator& generator) {
  at::Generator g = generator;
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_rng_state(const at::Generator& generator, const at::Tensor& state) {
  at::Generator g = generator;
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// torch.random.fork_rng: the generators set to the forward's states, and put back as they were
// on scope exit, so the recompute draws what the forward drew and the stream after it is the
// same as without checkpointing.
class RngFork {
 public:
  RngFork(const at::Tensor& cpu, const std::optional<std::pair<at::Device, at::Tensor>>& device) {
    auto& context = at::globalContext();
    cpu_ = context.defaultGenerator(at::kCPU);
    cpu_now_ = rng_state(cpu_);
    if (device) {
      device_ = context.defaultGenerator(device->first);
      device_now_ = rng_state(*device_);
    }
    set_rng_state(cpu_, cpu);
    if (device) set_rng_state(*device_, device->second);
  }
  ~RngFork() {
    try {
      set_rng_state(cpu_, cpu_now_);
      if (device_) set_rng_state(*device_, device_now_);
    } catch (...) {
      // A destructor may not throw; a state the generator accepted once it accepts again.
    }
  }
  RngFork(const RngFork&) = delete;
  RngFork& operator=(const RngFork&) = delete;

 private:
  at::Generator cpu_;
  at::Tensor cpu_now_;
  std::optional<at::Generator> device_;
  at::Tensor device_now_;
};

// The Rust closure, freed through its own drop function with the last reference (the graph
// node that holds it, or the call that failed), and the state of the forward it ran in.
struct Block : torch::CustomClassHolder {
  Block(clip_block_fn call, void* closure, clip_drop_fn drop) : call(call), closure(closure), drop(drop) {}
  ~Block() override { drop(closure); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  at::Tensor run(const at::Tensor& input, bool recompute) {
    at::Tensor output;
    std::string error;
    if (call(closure, recompute ? 1 : 0, new at::Tensor(input), &output, &error) != 0) {
      throw std::runtime_error("gradient checkpointing: the block failed " + std::string(recompute ? "in its recompute: " : "in the forward: ") + error);
    }
    if (!output.defined()) throw std::runtime_error("gradient checkpointing: the block returned no tensor");
    return output;
  }

  clip_block_fn call;
  void* closure;
  clip_drop_fn drop;
  at::Tensor cpu_rng;
  std::optional<std::pair<at::Device, at::Tensor>> device_rng;
  AutocastState autocast;
};

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const c10::intrusive_ptr<Block>& block) {
    auto& context = at::globalContext();
    block->cpu_rng = rng_state(context.defaultGenerator(at::kCPU));
    if (input.device().type() != at::kCPU) {
      block->device_rng.emplace(input.device(), rng_state(context.defaultGenerator(input.device())));
    }
    block->autocast = AutocastState::current();
    ctx->save_for_backward({input});
    ctx->saved_data["block"] = c10::IValue::make_capsule(block);
    NoCastCache no_cache;
    // The output's storage is taken before the block's temporaries, so that with a heap that
    // keeps freed memory (clip_tensor::alloc) the kept outputs of successive blocks stack up
    // instead of splitting the space their temporaries reuse: ViT-B-32 at batch 128 peaked
    // ~0.8 GB higher without this. A block whose output is not shaped like its input keeps its
    // own.
    at::Tensor buffer = at::empty_like(input, at::MemoryFormat::Contiguous);
    at::Tensor output = block->run(input, false);
    if (output.sizes() != buffer.sizes() || output.scalar_type() != buffer.scalar_type()) return output;
    buffer.copy_(output);
    return buffer;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto block = c10::static_intrusive_pointer_cast<Block>(ctx->saved_data["block"].toCapsule());
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    at::Tensor input = saved[0].detach();
    input.requires_grad_(true);
    at::Tensor output;
    {
      RngFork rng(block->cpu_rng, block->device_rng);
      AutocastRegion autocast(block->autocast);
      at::AutoGradMode grad(true);
      output = block->run(input, true);
    }
    if (output.requires_grad()) {
      torch::autograd::backward({output}, {grads[0]});
    }
    return {input.grad(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

// Whether a checkpoint would record anything: gradient mode on, not inference mode, and an
// input that requires a gradient. Otherwise the caller runs the block plainly.
int clip_checkpoint_wanted(const at::Tensor* input) {
  try {
    return at::GradMode::is_enabled() && !c10::InferenceMode::is_enabled() && input->requires_grad() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// Runs the closure as a checkpointed block on *input. Takes ownership of `closure` (freed by
// `drop` exactly once, whatever happens). Returns 0 and sets *out to a new at::Tensor handle the
// caller owns; or returns -1 and sets *error to a malloc'd message (nullptr if even that failed).
int clip_checkpoint(const at::Tensor* input, clip_block_fn call, void* closure, clip_drop_fn drop, at::Tensor** out, char** error) {
  *error = nullptr;
  c10::intrusive_ptr<Block> block;
  try {
    block = c10::make_intrusive<Block>(call, closure, drop);
  } catch (...) {
    drop(closure);
    return -1;
  }
  try {
    at::Tensor result = Checkpoint::apply(*input, block);
    *out = new at::Tensor(std::move(result));
    return 0;
  } catch (const std::exception& e) {
    *error = strdup(e.what());
  } catch (...) {
    *error = strdup("unknown C++ exception");
  }
  return -1;
}

// Stores the block's result (called by the Rust callback). Returns 0, or -1 if it threw.
int clip_checkpoint_set_output(at::Tensor* slot, const at::Tensor* value) {
  try {
    *slot = *value;
    return 0;
  } catch (...) {
    return -1;
  }
}

// Stores the callback's error message (`len` bytes, not NUL-terminated).
void clip_checkpoint_set_error(void* error, const char* message, size_t len) {
  try {
    static_cast<std::string*>(error)->assign(message, len);
  } catch (...) {
  }
}

void clip_checkpoint_free_error(char* message) { std::free(message); }

}  // extern "C"
