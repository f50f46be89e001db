// Reads the records of a PyTorch zip archive (what torch.save and torch.jit.save write) through
// libtorch's own reader, caffe2::serialize::PyTorchStreamReader: the reader torch.load uses, so
// zip64, the 64-byte data alignment and the archive-name prefix are handled exactly as torch does.
// Nothing here interprets a record; the caller decides what to do with the bytes.
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

char* clip_zip_message(const std::string& what) {
  char* message = static_cast<char*>(std::malloc(what.size() + 1));
  if (message != nullptr) std::memcpy(message, what.c_str(), what.size() + 1);
  return message;
}

}  // namespace

extern "C" {

struct ClipZip {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  std::vector<std::string> names;
};

#define CLIP_ZIP_TRY try {
#define CLIP_ZIP_CATCH                                                  \
  }                                                                     \
  catch (const c10::Error& e) {                                         \
    return clip_zip_message(e.what_without_backtrace());                \
  }                                                                     \
  catch (const std::exception& e) {                                     \
    return clip_zip_message(e.what());                                  \
  }                                                                     \
  catch (...) {                                                         \
    return clip_zip_message("unknown C++ exception");                   \
  }

// On success returns nullptr and sets *out; on failure returns a malloc'd message.
char* clip_zip_open(const char* path, ClipZip** out) {
  CLIP_ZIP_TRY
  auto zip = std::make_unique<ClipZip>();
  zip->reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::string(path));
  zip->names = zip->reader->getAllRecords();
  *out = zip.release();
  return nullptr;
  CLIP_ZIP_CATCH
}

size_t clip_zip_len(const ClipZip* zip) { return zip->names.size(); }

// A record's name, relative to the archive's top folder (`data.pkl`, `data/0`).
const char* clip_zip_name(const ClipZip* zip, size_t i) { return zip->names[i].c_str(); }

// The uncompressed size of a record, or an error if there is none of that name.
char* clip_zip_size(ClipZip* zip, const char* name, uint64_t* size) {
  CLIP_ZIP_TRY
  *size = zip->reader->getRecordSize(std::string(name));
  return nullptr;
  CLIP_ZIP_CATCH
}

// Copies a record of exactly `n` bytes into `dst`.
char* clip_zip_read(ClipZip* zip, const char* name, void* dst, size_t n) {
  CLIP_ZIP_TRY
  size_t got = zip->reader->getRecord(std::string(name), dst, n);
  if (got != n) return clip_zip_message("record " + std::string(name) + " is shorter than its directory entry");
  return nullptr;
  CLIP_ZIP_CATCH
}

void clip_zip_free(ClipZip* zip) { delete zip; }

void clip_zip_free_error(char* message) { std::free(message); }

}  // extern "C"
