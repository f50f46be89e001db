// A thin C ABI over the libtorch wheel's own c10d: TCPStore rendezvous, ProcessGroupGloo (CPU) and
// ProcessGroupNCCL (CUDA), the collectives clip-rs needs, and an all-gather that carries gradient
// (a torch::autograd::Function, which tch cannot express in Rust).
//
// Every entry point catches C++ exceptions and returns them as a malloc'd message (nullptr on
// success), freed with clip_dist_free_error: no exception may unwind into Rust.
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CLIP_DIST_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

struct ClipStore {
  c10::intrusive_ptr<c10d::Store> store;
};

struct ClipGroup {
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int size;
  // Set once a collective has failed: the group is then not torn down (ProcessGroupGloo's
  // destructor waits until every queued collective has run, each up to its timeout).
  std::atomic<bool> failed{false};
};

struct ClipReducer;

namespace {

char* error_message(const std::string& what) {
  char* out = static_cast<char*>(std::malloc(what.size() + 1));
  if (out != nullptr) std::memcpy(out, what.c_str(), what.size() + 1);
  return out;
}

// The message of the exception being handled: call it from a catch block only.
std::string current_error() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown C++ exception";
  }
}

template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (...) {
    return error_message(current_error());
  }
}

void wait(ClipGroup* g, const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (...) {
    g->failed = true;
    throw;
  }
}

// All ranks' tensors of the same shape, concatenated along dim 0 in rank order.
at::Tensor gather_cat(ClipGroup* g, const at::Tensor& input) {
  auto contiguous = input.contiguous();
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < g->size; ++r) outputs[0].push_back(at::empty_like(contiguous));
  std::vector<at::Tensor> inputs{contiguous};
  wait(g, g->backend->allgather(outputs, inputs));
  return at::cat(outputs[0], 0);
}

void allreduce_sum(ClipGroup* g, at::Tensor& t) {
  std::vector<at::Tensor> tensors{t};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  wait(g, g->backend->allreduce(tensors, options));
}

// forward: gather every rank's input; backward: each rank receives the sum over ranks of the
// gradient for its own block (what torch.distributed.nn.all_gather does).
struct AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, int64_t group) {
    auto* g = reinterpret_cast<ClipGroup*>(group);
    ctx->saved_data["group"] = group;
    ctx->saved_data["rows"] = input.size(0);
    at::AutoDispatchBelowADInplaceOrView guard;
    return gather_cat(g, input.detach());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* g = reinterpret_cast<ClipGroup*>(ctx->saved_data["group"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    at::Tensor grad = grads[0].contiguous().clone();
    allreduce_sum(g, grad);
    return {grad.narrow(0, g->rank * rows, rows), at::Tensor()};
  }
};

}  // namespace

// Averages parameters' gradients over ranks in fixed buckets: spans of gradient storage (views,
// no copies), each reduced by one in-place all-reduce, in a fixed launch order that every rank
// shares. Without hooks, finish() launches every bucket; with them (overlap), a bucket is
// launched from the post hook of the gradient accumulator that completes it, during the backward
// pass that arm() announced, once it and every bucket before it in the order are complete. The
// hooks sit on the accumulation itself, so they fire however the gradient arrives (a re-entrant
// backward of a checkpointed block included). They never throw: errors wait for finish().
struct ClipReducer {
  ClipGroup* group;
  std::vector<at::Tensor> params;
  std::vector<const void*> grad_data;        // each gradient's data at construction
  std::vector<at::Tensor> views;             // bucket -> its span of gradient storage
  std::vector<std::vector<int>> buckets_of;  // parameter -> the buckets it lies in
  std::vector<int> members;                  // bucket -> parameters in it
  std::vector<int> order;                    // launch order of the buckets
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;

  std::mutex mutex;
  bool armed = false;
  std::vector<int> pending;  // bucket -> parameters not final yet in the armed pass
  std::vector<char> ready;   // parameter -> final in the armed pass
  std::vector<c10::intrusive_ptr<c10d::Work>> works;  // bucket -> its collective this step
  size_t next = 0;           // place in `order` of the next bucket to launch
  int early = 0;             // buckets launched during the backward pass
  std::string error;         // the first error of this step

  ~ClipReducer() {
    for (auto& [node, key] : hooks) node->del_post_hook(key);
  }

  void fail(const std::string& what) {
    if (error.empty()) error = what;
  }

  // With `mutex` held.
  void launch(int bucket) {
    try {
      std::vector<at::Tensor> tensors{views[bucket]};
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      works[bucket] = group->backend->allreduce(tensors, options);
    } catch (...) {
      fail("launching gradient bucket " + std::to_string(bucket) + ": " + current_error());
    }
  }

  // The post hook of parameter `index`'s gradient accumulator.
  void on_ready(int index) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex);
      if (!armed) return;
      if (ready[index]) {
        fail("parameter #" + std::to_string(index) +
             " received its gradient twice in one backward pass, after its bucket may have been reduced "
             "(a parameter reached by two backward passes; train with dist.overlap = false)");
        return;
      }
      ready[index] = 1;
      for (int b : buckets_of[index]) --pending[b];
      while (next < order.size() && pending[order[next]] == 0) {
        launch(order[next++]);
        ++early;
      }
    } catch (...) {
      // Nothing may leave a hook. A bucket this failed to launch is launched by finish().
    }
  }

  // A step's state, cleared. With `mutex` held.
  void reset() {
    works.assign(views.size(), {});
    next = 0;
    early = 0;
    error.clear();
  }

  void arm() {
    std::lock_guard<std::mutex> lock(mutex);
    reset();
    armed = true;
    pending = members;
    ready.assign(params.size(), 0);
  }

  // Launches what is left, waits for every bucket, divides by the world size. On the first failed
  // collective it stops waiting (the others would fail or time out one after another).
  int finish() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) reset();
    armed = false;
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor grad = params[i].grad();
      if (!grad.defined() || grad.const_data_ptr() != grad_data[i]) {
        fail("the gradient of parameter #" + std::to_string(i) +
             " was replaced during the step, so its bucket no longer covers it");
      }
    }
    for (; next < order.size(); ++next) launch(order[next]);
    for (int b : order) {
      if (!works[b]) {
        fail("gradient bucket " + std::to_string(b) + " was never launched");
        break;
      }
      try {
        works[b]->wait();
      } catch (...) {
        group->failed = true;
        fail("gradient bucket " + std::to_string(b) + " of " + std::to_string(views.size()) + ": " + current_error());
        break;
      }
    }
    works.assign(views.size(), {});
    if (!error.empty()) throw std::runtime_error(error);
    at::NoGradGuard no_grad;
    for (auto& view : views) view.div_(group->size);
    // On CUDA the waits above only order the streams: wait for the device too, so that what the
    // caller times is the reduction itself (the gradient norm that follows waits anyway).
    if (!views.empty() && views[0].is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(views[0].get_device());
    return early;
  }
};

extern "C" {

void clip_dist_free_error(char* message) { std::free(message); }

// Connects to (or, with is_server, hosts) the rendezvous store at host:port.
char* clip_dist_store(const char* host, int port, int world_size, int is_server, int64_t timeout_ms,
                      const char* prefix, ClipStore** out) {
  return guarded([&] {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = is_server != 0;
    options.numWorkers = std::nullopt;
    options.waitWorkers = false;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    if (prefix != nullptr && prefix[0] != '\0') {
      store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), store);
    }
    *out = new ClipStore{store};
  });
}

void clip_dist_store_free(ClipStore* store) { delete store; }

char* clip_dist_store_set(ClipStore* s, const char* key, const char* value) {
  return guarded([&] {
    std::string v(value);
    s->store->set(std::string(key), std::vector<uint8_t>(v.begin(), v.end()));
  });
}

// Adds `delta` to the integer at `key` (0 reads it); *out is the new value.
char* clip_dist_store_add(ClipStore* s, const char* key, int64_t delta, int64_t* out) {
  return guarded([&] { *out = s->store->add(std::string(key), delta); });
}

// A process group over `store`: Gloo (cuda = 0) bound to `gloo_host`'s interface, or NCCL.
char* clip_dist_group(ClipStore* s, int rank, int size, int cuda, const char* gloo_host, int64_t timeout_ms,
                      ClipGroup** out) {
  return guarded([&] {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Backend> backend;
    if (cuda != 0) {
#ifdef CLIP_DIST_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      auto store = c10::make_intrusive<c10d::PrefixStore>("nccl", s->store);
      backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
#else
      throw std::runtime_error("this build of clip-dist has no NCCL support (libtorch without CUDA, or no CUDA headers at build time)");
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (gloo_host != nullptr && gloo_host[0] != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(gloo_host));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      auto store = c10::make_intrusive<c10d::PrefixStore>("gloo", s->store);
      backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
    }
    *out = new ClipGroup{backend, rank, size};
  });
}

void clip_dist_group_free(ClipGroup* g) {
  if (g->failed) {
    // Left to the process's end: tearing it down would wait out every queued collective.
    (void)g->backend.release();
  }
  delete g;
}

int clip_dist_has_nccl() {
#ifdef CLIP_DIST_NCCL
  return 1;
#else
  return 0;
#endif
}

// op: 0 sum, 1 max, 2 min, 3 product. In place.
char* clip_dist_allreduce(ClipGroup* g, at::Tensor* t, int op) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*t};
    c10d::AllreduceOptions options;
    switch (op) {
      case 1: options.reduceOp = c10d::ReduceOp::MAX; break;
      case 2: options.reduceOp = c10d::ReduceOp::MIN; break;
      case 3: options.reduceOp = c10d::ReduceOp::PRODUCT; break;
      default: options.reduceOp = c10d::ReduceOp::SUM; break;
    }
    wait(g, g->backend->allreduce(tensors, options));
  });
}

char* clip_dist_allgather(ClipGroup* g, at::Tensor* input, at::Tensor** out) {
  return guarded([&] { *out = new at::Tensor(gather_cat(g, *input)); });
}

char* clip_dist_allgather_with_grad(ClipGroup* g, at::Tensor* input, at::Tensor** out) {
  return guarded([&] {
    *out = new at::Tensor(AllGatherWithGrad::apply(*input, reinterpret_cast<int64_t>(g)));
  });
}

char* clip_dist_broadcast(ClipGroup* g, at::Tensor* t, int root) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*t};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait(g, g->backend->broadcast(tensors, options));
  });
}

// For each of `n` parameters: gives it a zero gradient if it has none yet (so buckets can be views
// of it from the start), checks that the gradient is dense and contiguous, and reports the index
// of the first parameter whose gradient shares its storage, its storage offset and its numel.
char* clip_dist_grad_layout(at::Tensor** params, int n, int64_t* storage_of, int64_t* offset, int64_t* numel) {
  return guarded([&] {
    std::unordered_map<const void*, int> first;
    for (int i = 0; i < n; ++i) {
      at::Tensor& p = *params[i];
      if (!p.requires_grad()) throw std::runtime_error("parameter #" + std::to_string(i) + " does not require grad");
      if (!p.grad().defined()) {
        at::NoGradGuard no_grad;
        p.mutable_grad() = at::zeros_like(p, at::MemoryFormat::Contiguous);
      }
      const at::Tensor grad = p.grad();
      if (grad.layout() != at::kStrided || !grad.is_contiguous()) {
        throw std::runtime_error("the gradient of parameter #" + std::to_string(i) + " is not dense and contiguous");
      }
      const void* storage = grad.storage().unsafeGetStorageImpl();
      auto [it, inserted] = first.emplace(storage, i);
      if (!inserted && params[it->second]->grad().scalar_type() != grad.scalar_type()) {
        throw std::runtime_error("parameters #" + std::to_string(it->second) + " and #" + std::to_string(i) +
                                 " have gradients of different dtypes in one storage");
      }
      storage_of[i] = it->second;
      offset[i] = grad.storage_offset();
      numel[i] = grad.numel();
    }
  });
}

// A reducer over `n` parameters and `buckets` buckets. Bucket b is the spans[3b + 2] elements from
// offset spans[3b + 1] of the storage of parameter spans[3b]'s gradient; its parameters are
// member_params[member_start[b] .. member_start[b + 1]]; `order` is the launch order. With
// `hooks`, buckets are launched during an armed backward pass.
char* clip_dist_reducer_new(ClipGroup* g, at::Tensor** params, int n, const int64_t* spans, int buckets,
                            const int64_t* member_start, const int64_t* member_params, const int64_t* order,
                            int hooks, ClipReducer** out) {
  return guarded([&] {
    auto r = std::make_unique<ClipReducer>();
    r->group = g;
    r->buckets_of.resize(n);
    for (int i = 0; i < n; ++i) {
      r->params.push_back(*params[i]);
      r->grad_data.push_back(params[i]->grad().const_data_ptr());
    }
    for (int b = 0; b < buckets; ++b) {
      const at::Tensor base = params[spans[3 * b]]->grad();
      r->views.push_back(base.as_strided({spans[3 * b + 2]}, {1}, spans[3 * b + 1]));
      r->members.push_back(static_cast<int>(member_start[b + 1] - member_start[b]));
      for (int64_t k = member_start[b]; k < member_start[b + 1]; ++k) r->buckets_of[member_params[k]].push_back(b);
      r->order.push_back(static_cast<int>(order[b]));
    }
    if (hooks != 0) {
      ClipReducer* self = r.get();
      for (int i = 0; i < n; ++i) {
        auto node = torch::autograd::impl::grad_accumulator(*params[i]);
        if (!node) throw std::runtime_error("parameter #" + std::to_string(i) + " is not a leaf that requires grad");
        auto hook = std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [self, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
              self->on_ready(i);
              return outputs;
            });
        const uintptr_t key = node->add_post_hook(std::move(hook));
        r->hooks.emplace_back(std::move(node), key);
      }
    }
    *out = r.release();
  });
}

void clip_dist_reducer_free(ClipReducer* r) { delete r; }

// The next backward pass completes the gradients: with hooks, buckets are launched during it.
void clip_dist_reducer_arm(ClipReducer* r) { r->arm(); }

// Every bucket reduced and averaged; *early: how many were launched during the backward pass.
char* clip_dist_reducer_finish(ClipReducer* r, int* early) {
  return guarded([&] { *early = r->finish(); });
}

char* clip_dist_barrier(ClipGroup* g) {
  return guarded([&] { wait(g, g->backend->barrier()); });
}

}  // extern "C"
