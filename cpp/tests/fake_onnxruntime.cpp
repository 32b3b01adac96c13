// A stand-in "libonnxruntime" that reports an old version: OrtGetApiBase works, GetApi returns
// null for any API version this SDK's headers ask for. The loader must refuse it with a message
// naming the version, never use it.
#include <cstdint>

namespace {
struct FakeApiBase {
  const void* (*GetApi)(uint32_t);
  const char* (*GetVersionString)();
};
const void* get_api(uint32_t) { return nullptr; }
const char* version() { return "1.10.0"; }
const FakeApiBase kBase{&get_api, &version};
}  // namespace

extern "C" __attribute__((visibility("default"))) const FakeApiBase* OrtGetApiBase() { return &kBase; }
