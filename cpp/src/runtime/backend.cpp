// Backend selection. Each backend is compiled only where its headers were found at build time.
#include "edge_sdk/runtime/backend.hpp"

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/ort_library.hpp"

#ifdef EDGE_SDK_WITH_ONNXRUNTIME
#include "onnxruntime/ort_backend.hpp"
#endif

namespace edge {

std::vector<std::string> available_backends() {
  std::vector<std::string> out;
#ifdef EDGE_SDK_WITH_ONNXRUNTIME
  out.push_back("onnxruntime");
#endif
  return out;
}

#ifndef EDGE_SDK_WITH_ONNXRUNTIME
const OrtLibraryInfo& load_onnxruntime(const std::string&) {
  throw BackendError(
      "this edge_sdk build has no ONNX Runtime backend: its headers were not found at build time "
      "(run scripts/fetch_onnxruntime_headers.sh or set ONNXRUNTIME_ROOT, then rebuild)");
}
#endif

std::unique_ptr<Backend> make_backend(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options) {
  if (options.backend == "onnxruntime") {
#ifdef EDGE_SDK_WITH_ONNXRUNTIME
    return make_onnxruntime_backend(bundle, network, options);
#else
    load_onnxruntime();  // throws the explanation
#endif
  }
  if (options.backend == "tensorrt")
    throw ArgumentError("backend: \"tensorrt\" is not available in this build (TensorRT was not found at build time)");
  throw ArgumentError("backend: expected \"onnxruntime\" or \"tensorrt\", got \"" + options.backend + "\"");
}

}  // namespace edge
