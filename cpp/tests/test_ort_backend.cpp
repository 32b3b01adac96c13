// ONNX Runtime loaded with dlopen runs a tiny model built in the test (y = 2x, dynamic batch).
// Needs the library: EDGE_SDK_ONNXRUNTIME_LIB (CTest sets it from the onnxruntime wheel);
// without it, or in a build without the ONNX Runtime headers, the test is skipped (exit 77).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "check.hpp"
#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/ort_library.hpp"
#include "tiny_onnx.hpp"

namespace fs = std::filesystem;

static std::string lib_path() {
  const char* p = std::getenv("EDGE_SDK_ONNXRUNTIME_LIB");
  return p ? p : "";
}

// Must run first: the library is loaded once per process.
EDGE_TEST(missing_library_is_a_clear_error) {
  edge_test::expect_error<edge::BackendError>([] { edge::load_onnxruntime("/nonexistent/libonnxruntime.so.1"); },
                                   "/nonexistent/libonnxruntime.so.1");
  edge_test::expect_error<edge::BackendError>([] { edge::load_onnxruntime("libm.so.6"); },
                                   "no symbol OrtGetApiBase");
  // A library older than the headers: refused with both versions named.
  edge_test::expect_error<edge::BackendError>([] { edge::load_onnxruntime(EDGE_TEST_FAKE_ORT); },
                                   "is version 1.10.0, older than the headers this SDK was built with (API version");
}

EDGE_TEST(loads_and_reports_version) {
  const auto& info = edge::load_onnxruntime(lib_path());
  std::printf("  loaded %s, version %s, providers:", info.path.c_str(), info.version.c_str());
  for (const auto& p : info.providers) std::printf(" %s", p.c_str());
  std::printf("\n");
  CHECK(!info.version.empty());
  CHECK(std::find(info.providers.begin(), info.providers.end(), "CPUExecutionProvider") != info.providers.end());
  // Loading again returns the same library; asking for another one is refused.
  CHECK(&edge::load_onnxruntime() == &info);
  edge_test::expect_error<edge::BackendError>([] { edge::load_onnxruntime("/tmp/other/libonnxruntime.so"); }, "already loaded");
}

EDGE_TEST(runs_tiny_model_on_cpu_with_any_batch) {
  const fs::path dir = fs::temp_directory_path() / ("edge_sdk_ort_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  tiny::write_bundle(dir, tiny::manifest(3, 5, 4), 2.0f);
  const edge::Bundle b = edge::load_bundle(dir.string());
  edge::BackendOptions opt;
  opt.threads = 1;
  auto backend = edge::make_backend(b, b.manifest.networks[0], opt);
  std::printf("  %s\n", backend->description().c_str());
  const int64_t max_batch = 4, per = 3 * 5 * 4;
  std::vector<float> in(size_t(max_batch * per)), out(size_t(max_batch * per), -1.0f);
  backend->bind(max_batch, {in.data()}, {out.data()});
  std::mt19937 gen(3);
  std::normal_distribution<float> n01;
  for (int64_t batch : {1, 4, 2, 4, 1}) {
    for (auto& v : in) v = n01(gen);
    std::fill(out.begin(), out.end(), -1.0f);
    backend->run(batch);
    for (int64_t i = 0; i < batch * per; ++i) CHECK(out[size_t(i)] == 2.0f * in[size_t(i)]);
    for (int64_t i = batch * per; i < max_batch * per; ++i) CHECK(out[size_t(i)] == -1.0f);  // untouched
  }
  edge_test::expect_error<edge::ArgumentError>([&] { backend->run(5); }, "batch 5");
  edge_test::expect_error<edge::ArgumentError>([&] { backend->run(0); }, "batch 0");

  // Execution providers this CPU-only onnxruntime lacks are a clear error, not a silent CPU run.
  opt.provider = "cuda";
  edge_test::expect_error<edge::BackendError>([&] { edge::make_backend(b, b.manifest.networks[0], opt); },
                                   "has no CUDAExecutionProvider");
  opt.provider = "tensorrt";
  edge_test::expect_error<edge::BackendError>([&] { edge::make_backend(b, b.manifest.networks[0], opt); },
                                   "has no TensorrtExecutionProvider");
  opt.provider = "npu";
  edge_test::expect_error<edge::ArgumentError>([&] { edge::make_backend(b, b.manifest.networks[0], opt); }, "provider");
  fs::remove_all(dir);
}

int main() {
  if (edge::available_backends().empty()) {
    std::printf("SKIP: built without the ONNX Runtime headers\n");
    return 77;
  }
  if (lib_path().empty()) {
    std::printf("SKIP: EDGE_SDK_ONNXRUNTIME_LIB not set (no onnxruntime wheel found at configure time)\n");
    return 77;
  }
  return edge_test::run_all();
}
