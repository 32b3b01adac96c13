// Backend selection. Each backend is compiled only where its headers were found at build time.
#include "edge_sdk/runtime/backend.hpp"

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/ort_library.hpp"

#ifdef EDGE_SDK_WITH_ONNXRUNTIME
#include "onnxruntime/ort_backend.hpp"
#endif
#ifdef EDGE_SDK_WITH_TENSORRT
#include "trt/trt_backend.hpp"
#endif

namespace edge {

void Backend::bind_device(int64_t, const std::vector<const float*>&, const std::vector<float*>&) {
  throw ArgumentError("backend: " + description() + " cannot work on device memory (bind() host buffers)");
}

std::vector<std::string> available_backends() {
  std::vector<std::string> out;
#ifdef EDGE_SDK_WITH_ONNXRUNTIME
  out.push_back("onnxruntime");
#endif
#ifdef EDGE_SDK_WITH_TENSORRT
  out.push_back("tensorrt");
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
  bool onnxruntime = options.backend == "onnxruntime";
  if (options.backend == "auto") {
#ifdef EDGE_SDK_WITH_TENSORRT
    if (tensorrt_engine_available(bundle, network, options)) return make_tensorrt_backend(bundle, network, options);
#endif
    onnxruntime = true;
  }
  if (onnxruntime) {
#ifdef EDGE_SDK_WITH_ONNXRUNTIME
    return make_onnxruntime_backend(bundle, network, options);
#else
    load_onnxruntime();  // throws the explanation
#endif
  }
  if (options.backend == "tensorrt") {
#ifdef EDGE_SDK_WITH_TENSORRT
    return make_tensorrt_backend(bundle, network, options);
#else
    throw BackendError(
        "backend \"tensorrt\": this edge_sdk build has no TensorRT backend (it needs the CUDA toolkit and TensorRT's "
        "headers and libnvinfer at build time: set TENSORRT_ROOT and rebuild with EDGE_SDK_CUDA=ON). Without it, "
        "use backend=\"onnxruntime\" (provider=\"tensorrt\" runs ONNX Runtime's TensorRT execution provider where "
        "the installed onnxruntime has it)");
#endif
  }
  throw ArgumentError("backend: expected \"onnxruntime\", \"tensorrt\" or \"auto\", got \"" + options.backend + "\"");
}

}  // namespace edge
