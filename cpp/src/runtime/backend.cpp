// Backend selection. Each backend is compiled only where its headers were found at build time.
#include "edge_sdk/runtime/backend.hpp"

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/openvino_library.hpp"
#include "edge_sdk/runtime/ort_library.hpp"
#include "timed_choice.hpp"

#ifdef EDGE_SDK_WITH_ONNXRUNTIME
#include "onnxruntime/ort_backend.hpp"
#endif
#ifdef EDGE_SDK_WITH_OPENVINO
#include "openvino/ov_backend.hpp"
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
#ifdef EDGE_SDK_WITH_OPENVINO
  out.push_back("openvino");
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

#ifndef EDGE_SDK_WITH_OPENVINO
const OpenVinoLibraryInfo& load_openvino(const std::string&) {
  throw BackendError("backend \"openvino\": this edge_sdk build has no OpenVINO backend (it was configured with "
                     "EDGE_SDK_OPENVINO=OFF; reconfigure with EDGE_SDK_OPENVINO=ON and rebuild)");
}
#endif

namespace {

std::unique_ptr<Backend> make_openvino([[maybe_unused]] const Bundle& bundle, [[maybe_unused]] const NetworkSpec& network,
                                       const BackendOptions& options) {
  if (options.cuda_device)
    throw ArgumentError("backend \"openvino\": the runtime's device must be \"cpu\" (OpenVINO reads and writes host "
                        "memory; its own device is the openvino_device option: CPU, GPU, NPU), got a CUDA device");
#ifdef EDGE_SDK_WITH_OPENVINO
  return make_openvino_backend(bundle, network, options);
#else
  load_openvino();  // throws the explanation
  return nullptr;
#endif
}

// backend="auto" on the CPU: every CPU backend that can be created here, timed at bind (or the
// pick of an earlier timing of the same network content at the same thread count and batch).
std::unique_ptr<Backend> make_cpu_auto([[maybe_unused]] const Bundle& bundle, [[maybe_unused]] const NetworkSpec& network,
                                       [[maybe_unused]] const BackendOptions& options) {
  std::vector<BackendFactory> factories;
  factories.push_back({"onnxruntime", [&]() -> std::unique_ptr<Backend> {
#ifdef EDGE_SDK_WITH_ONNXRUNTIME
                         return make_onnxruntime_backend(bundle, network, options);
#else
                         load_onnxruntime();  // throws the explanation
                         return nullptr;
#endif
                       }});
#ifdef EDGE_SDK_WITH_OPENVINO
  factories.push_back({"openvino", [&] { return make_openvino_backend(bundle, network, options); }});
#endif
  auto file = bundle.manifest.files.find(network.file);
  const std::string content = file != bundle.manifest.files.end() ? file->second.sha256 : bundle.path + "/" + network.file;
  return make_timed_choice(content + "|threads " + std::to_string(options.threads), options.max_batch, factories);
}

}  // namespace

std::unique_ptr<Backend> make_backend(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options) {
  if (network.precision == "bf16") {
    // Only OpenVINO computes a float32 graph in bfloat16; "auto" has nothing to choose from.
    if (options.backend == "openvino" || options.backend == "auto") return make_openvino(bundle, network, options);
    throw ArgumentError("precision \"bf16\": the bfloat16 variant is computed by the \"openvino\" backend only "
                        "(OpenVINO's inference precision hint on the fp32 graph); backend \"" + options.backend +
                        "\" cannot run it: use backend \"openvino\" or \"auto\", or another precision");
  }
  // The accuracy gate admitted the int8 variant as ONNX Runtime computes it on the CPU (Q/DQ pairs
  // in float: the same on every CPU). OpenVINO fuses them into its integer kernels: scores 6 % from
  // that on an AVX512-VNNI CPU, different again on others, and never gated.
  const bool cpu_int8 = network.precision == "int8" && !options.cuda_device;
  if (cpu_int8 && options.backend == "openvino")
    throw ArgumentError("precision \"int8\": the int8 variant was admitted by the accuracy gate as ONNX Runtime computes it "
                        "(quantize / dequantize in float); OpenVINO computes it with its integer kernels, whose scores "
                        "differ and were not gated: use backend \"onnxruntime\" or \"auto\", or another precision");
  bool onnxruntime = options.backend == "onnxruntime";
  if (options.backend == "auto") {
#ifdef EDGE_SDK_WITH_TENSORRT
    if (tensorrt_engine_available(bundle, network, options)) return make_tensorrt_backend(bundle, network, options);
#endif
    if (!options.cuda_device && options.provider == "cpu" && !cpu_int8) return make_cpu_auto(bundle, network, options);
    onnxruntime = true;
  }
  if (options.backend == "openvino") return make_openvino(bundle, network, options);
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
  throw ArgumentError("backend: expected \"onnxruntime\", \"openvino\", \"tensorrt\" or \"auto\", got \"" +
                      options.backend + "\"");
}

}  // namespace edge
