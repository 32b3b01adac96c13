// The network backend interface: runs one network of a bundle on buffers that the runtime
// allocates at load and reuses (host memory, or device memory for a backend that can bind it).
// ONNX Runtime and OpenVINO (both loaded with dlopen) implement it; a TensorRT backend implements
// the same interface where TensorRT is found at build time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/bundle.hpp"

namespace edge {

struct BackendOptions {
  // "onnxruntime", "openvino" (the runtime's device is the CPU; OpenVINO's own device is
  // openvino_device), "tensorrt" (engines built for this GPU, where the build has TensorRT) or
  // "auto": TensorRT when this build has it, the device is CUDA and the bundle holds a matching
  // engine; on the CPU, ONNX Runtime or OpenVINO, whichever runs the network faster at load (timed
  // there, see timed_choice.hpp); else ONNX Runtime.
  std::string backend = "onnxruntime";
  // Execution provider of ONNX Runtime: "cpu", "cuda" or "tensorrt" (the last two only where the
  // loaded ONNX Runtime has them; a clear error otherwise).
  std::string provider = "cpu";
  int device_index = 0;
  bool cuda_device = false;             // the runtime's device is "cuda[:N]" (the TensorRT backend needs one)
  int threads = 0;                      // intra-op threads; 0 = library default
  int64_t max_batch = 1;                // the largest batch the runtime runs ("auto" times at it)
  std::string library;                  // path of libonnxruntime; "" = search (see ort_library.hpp)
  std::string openvino_library;         // path of libopenvino_c; "" = search (see openvino_library.hpp)
  std::string openvino_device;          // OpenVINO device: "CPU" (""), "GPU", "GPU.1", "NPU", "AUTO"
  std::string precision = "fp32";       // network variant of the bundle
  std::string trt_cache_dir;            // TensorRT EP engine cache ("" = none)
  // TensorRT backend: folder of serialized engines with their manifests ("" = BUNDLE/engines).
  std::string engines_dir;
  bool cuda_graph = false;  // TensorRT backend: replay each engine's work as a CUDA graph per batch size
};

class Backend {
 public:
  virtual ~Backend() = default;
  // E.g. "onnxruntime 1.31.1 (/path/libonnxruntime.so.1.31.1), CPUExecutionProvider".
  virtual std::string description() const = 0;
  // Host buffers for the network's inputs and outputs, in the manifest's order, each with room
  // for max_batch items (NCHW float32). Called once after construction; the pointers stay valid
  // for the backend's lifetime.
  virtual void bind(int64_t max_batch, const std::vector<const float*>& inputs,
                    const std::vector<float*>& outputs) = 0;
  // Whether the backend can work on device memory of the runtime's CUDA device (TensorRT). When
  // every network's backend can, the runtime runs the whole cycle on that device: its buffers are
  // device memory, bound with bind_device() instead of bind().
  virtual bool can_bind_device() const { return false; }
  // As bind(), with device pointers; run() then returns once the outputs are written.
  virtual void bind_device(int64_t max_batch, const std::vector<const float*>& inputs,
                           const std::vector<float*>& outputs);
  // Runs the first `batch` items (1 <= batch <= max_batch) of the bound buffers. After the first
  // call for a given batch size no heap allocation is made by the backend itself.
  virtual void run(int64_t batch) = 0;
  // Called from another thread: asks a run() in progress to stop soon (it then throws
  // BackendError). A run() that starts later clears the request. Default: not interruptible.
  virtual void cancel() noexcept {}
};

// Throws BackendError (library missing or too old, provider unavailable, session creation failed)
// or BundleError (the session's inputs/outputs contradict the manifest).
std::unique_ptr<Backend> make_backend(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options);

// Names of the backends compiled into this build ("onnxruntime" when its headers were found,
// "openvino" unless built with EDGE_SDK_OPENVINO=OFF, "tensorrt" when TensorRT's headers and
// library were).
std::vector<std::string> available_backends();

}  // namespace edge
