// A thin C ABI over the libtorch wheel's own c10d: TCPStore rendezvous, ProcessGroupGloo (CPU) and
// ProcessGroupNCCL (CUDA), the collectives clip-rs needs, and an all-gather that carries gradient
// (a torch::autograd::Function, which tch cannot express in Rust).
//
// Every entry point catches C++ exceptions and returns them as a malloc'd message (nullptr on
// success), freed with clip_dist_free_error: no exception may unwind into Rust.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CLIP_DIST_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct ClipStore {
  c10::intrusive_ptr<c10d::Store> store;
};

struct ClipGroup {
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int size;
};

namespace {

char* error_message(const std::string& what) {
  char* out = static_cast<char*>(std::malloc(what.size() + 1));
  if (out != nullptr) std::memcpy(out, what.c_str(), what.size() + 1);
  return out;
}

template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    return error_message(e.what());
  } catch (...) {
    return error_message("unknown C++ exception");
  }
}

void wait(const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait();
}

// All ranks' tensors of the same shape, concatenated along dim 0 in rank order.
at::Tensor gather_cat(ClipGroup* g, const at::Tensor& input) {
  auto contiguous = input.contiguous();
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < g->size; ++r) outputs[0].push_back(at::empty_like(contiguous));
  std::vector<at::Tensor> inputs{contiguous};
  wait(g->backend->allgather(outputs, inputs));
  return at::cat(outputs[0], 0);
}

void allreduce_sum(ClipGroup* g, at::Tensor& t) {
  std::vector<at::Tensor> tensors{t};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  wait(g->backend->allreduce(tensors, options));
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

void clip_dist_group_free(ClipGroup* g) { delete g; }

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
    wait(g->backend->allreduce(tensors, options));
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
    wait(g->backend->broadcast(tensors, options));
  });
}

char* clip_dist_barrier(ClipGroup* g) {
  return guarded([&] { wait(g->backend->barrier()); });
}

}  // extern "C"
