// OpenVINO loaded with dlopen runs a tiny model built in the test (y = 2x, dynamic batch), and
// backend="auto" times it against ONNX Runtime. Needs the library: EDGE_SDK_OPENVINO_LIB (CTest
// sets it from the openvino wheel); without it, or in a build without the OpenVINO backend, the
// test is skipped (exit 77).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "check.hpp"
#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/openvino_library.hpp"
#include "tiny_onnx.hpp"

namespace fs = std::filesystem;

static std::string lib_path() {
  const char* p = std::getenv("EDGE_SDK_OPENVINO_LIB");
  return p ? p : "";
}

static bool has_backend(const char* name) {
  const auto have = edge::available_backends();
  return std::find(have.begin(), have.end(), name) != have.end();
}

// Must run first: the library is loaded once per process (a failed load leaves nothing behind).
EDGE_TEST(missing_or_wrong_library_is_a_clear_error) {
  edge_test::expect_error<edge::BackendError>([] { edge::load_openvino("/nonexistent/libopenvino_c.so"); },
                                              "/nonexistent/libopenvino_c.so");
  edge_test::expect_error<edge::BackendError>([] { edge::load_openvino("libm.so.6"); },
                                              "no symbol ov_get_openvino_version");
  ::setenv("EDGE_TEST_FAKE_OV_VERSION", "2023.3.0-13775", 1);
  edge_test::expect_error<edge::BackendError>([] { edge::load_openvino(EDGE_TEST_FAKE_OV); },
                                              "is version 2023.3.0-13775, older than the OpenVINO C API");
  // Recent enough by its version, but without the functions the backend calls: each is named.
  ::setenv("EDGE_TEST_FAKE_OV_VERSION", "2026.4.1-1", 1);
  edge_test::expect_error<edge::BackendError>([] { edge::load_openvino(EDGE_TEST_FAKE_OV); },
                                              "lacks functions of the OpenVINO C API this SDK calls: ov_get_error_info");
  ::unsetenv("EDGE_TEST_FAKE_OV_VERSION");
}

EDGE_TEST(loads_and_reports_version) {
  const auto& info = edge::load_openvino(lib_path());
  std::printf("  loaded %s, version %s, devices:", info.path.c_str(), info.version.c_str());
  for (const auto& d : info.devices) std::printf(" %s", d.c_str());
  std::printf("\n");
  CHECK(info.version.rfind("20", 0) == 0);
  CHECK(std::find(info.devices.begin(), info.devices.end(), "CPU") != info.devices.end());
  CHECK(&edge::load_openvino() == &info);
  edge_test::expect_error<edge::BackendError>([] { edge::load_openvino("/tmp/other/libopenvino_c.so"); },
                                              "already loaded");
}

static void check_any_batch(edge::Backend& backend) {
  const int64_t max_batch = 4, per = 3 * 5 * 4;
  std::vector<float> in(size_t(max_batch * per)), out(size_t(max_batch * per), -1.0f);
  backend.bind(max_batch, {in.data()}, {out.data()});
  std::printf("  %s\n", backend.description().c_str());
  std::mt19937 gen(3);
  std::normal_distribution<float> n01;
  for (int64_t batch : {1, 4, 2, 4, 1, 1}) {
    for (auto& v : in) v = n01(gen);
    std::fill(out.begin(), out.end(), -1.0f);
    backend.run(batch);
    for (int64_t i = 0; i < batch * per; ++i) CHECK(out[size_t(i)] == 2.0f * in[size_t(i)]);
    for (int64_t i = batch * per; i < max_batch * per; ++i) CHECK(out[size_t(i)] == -1.0f);  // untouched
  }
  edge_test::expect_error<edge::ArgumentError>([&] { backend.run(5); }, "batch 5");
  edge_test::expect_error<edge::ArgumentError>([&] { backend.run(0); }, "batch 0");
}

EDGE_TEST(runs_tiny_model_on_cpu_with_any_batch) {
  const fs::path dir = fs::temp_directory_path() / ("edge_sdk_ov_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  tiny::write_bundle(dir, tiny::manifest(3, 5, 4), 2.0f);
  const edge::Bundle b = edge::load_bundle(dir.string());
  edge::BackendOptions opt;
  opt.backend = "openvino";
  opt.threads = 1;
  auto backend = edge::make_backend(b, b.manifest.networks[0], opt);
  check_any_batch(*backend);
  CHECK(backend->description().find("openvino 20") == 0);
  CHECK(backend->description().find(", CPU, f32, threads 1") != std::string::npos);

  // A device OpenVINO did not find, and a CUDA device for the pipeline, are clear errors.
  opt.openvino_device = "FOO";
  edge_test::expect_error<edge::BackendError>([&] { edge::make_backend(b, b.manifest.networks[0], opt); },
                                              "openvino_device \"FOO\": ");
  opt.openvino_device = "";
  opt.cuda_device = true;
  edge_test::expect_error<edge::ArgumentError>([&] { edge::make_backend(b, b.manifest.networks[0], opt); },
                                               "device must be \"cpu\"");

  // auto on the CPU: both libraries timed on the bound buffers, the faster kept and named.
  if (has_backend("onnxruntime") && std::getenv("EDGE_SDK_ONNXRUNTIME_LIB") && *std::getenv("EDGE_SDK_ONNXRUNTIME_LIB")) {
    edge::BackendOptions a;
    a.backend = "auto";
    a.threads = 1;
    a.library = std::getenv("EDGE_SDK_ONNXRUNTIME_LIB");
    auto chosen = edge::make_backend(b, b.manifest.networks[0], a);
    check_any_batch(*chosen);
    const std::string d = chosen->description();
    CHECK(d.find("; auto: picked ") != std::string::npos);
    CHECK(d.find(" over ") != std::string::npos);
    CHECK((d.rfind("openvino", 0) == 0) == (d.find("auto: picked openvino") != std::string::npos));
    // The same network again: the remembered pick, not timed again.
    auto again = edge::make_backend(b, b.manifest.networks[0], a);
    check_any_batch(*again);
    const std::string d2 = again->description();
    CHECK(d2.find("timed at an earlier open of this network in this process") != std::string::npos);
    CHECK(d2.substr(0, d2.find(' ')) == d.substr(0, d.find(' ')));
  }
  fs::remove_all(dir);
}

int main() {
  if (!has_backend("openvino")) {
    std::printf("SKIP: built with EDGE_SDK_OPENVINO=OFF\n");
    return 77;
  }
  if (lib_path().empty()) {
    std::printf("SKIP: EDGE_SDK_OPENVINO_LIB not set (no openvino wheel found at configure time)\n");
    return 77;
  }
  return edge_test::run_all();
}
