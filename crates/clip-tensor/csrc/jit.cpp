// Reads every named tensor (parameters and buffers, e.g. BatchNorm running statistics) of a
// TorchScript archive, such as OpenAI's released CLIP `.pt` files. tch exposes a module's
// parameters but not its buffers, hence this.
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

extern "C" {

struct ClipNamedTensors {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
};

// On success returns nullptr and sets *out; on failure returns a malloc'd message.
char* clip_jit_read(const char* path, ClipNamedTensors** out) {
  try {
    auto module = torch::jit::load(std::string(path), at::Device(at::kCPU));
    auto result = new ClipNamedTensors();
    for (const auto& p : module.named_parameters(/*recurse=*/true)) {
      result->names.push_back(p.name);
      result->tensors.push_back(p.value.detach());
    }
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
      result->names.push_back(b.name);
      result->tensors.push_back(b.value.detach());
    }
    *out = result;
    return nullptr;
  } catch (const std::exception& e) {
    std::string what = e.what();
    char* message = static_cast<char*>(std::malloc(what.size() + 1));
    if (message != nullptr) std::memcpy(message, what.c_str(), what.size() + 1);
    return message;
  }
}

size_t clip_jit_len(const ClipNamedTensors* t) { return t->names.size(); }

const char* clip_jit_name(const ClipNamedTensors* t, size_t i) { return t->names[i].c_str(); }

// A new at::Tensor handle the caller owns (tch's C_tensor).
at::Tensor* clip_jit_tensor(const ClipNamedTensors* t, size_t i) { return new at::Tensor(t->tensors[i]); }

void clip_jit_free(ClipNamedTensors* t) { delete t; }

void clip_jit_free_error(char* message) { std::free(message); }

}  // extern "C"
