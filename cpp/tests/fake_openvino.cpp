// A stand-in "libopenvino_c" exporting only the version call, reporting the version named by
// EDGE_TEST_FAKE_OV_VERSION (default 2023.3.0): the loader must refuse it as too old, or, given a
// recent version, name the C API functions it lacks; never use it.
#include <cstdlib>

namespace {
struct Version {
  const char* build_number;
  const char* description;
};
}  // namespace

extern "C" __attribute__((visibility("default"))) int ov_get_openvino_version(Version* v) {
  const char* env = std::getenv("EDGE_TEST_FAKE_OV_VERSION");
  v->build_number = env && *env ? env : "2023.3.0-13775-ceeafaf64f3-releases/2023/3";
  v->description = "fake OpenVINO";
  return 0;
}

extern "C" __attribute__((visibility("default"))) void ov_version_free(Version*) {}
