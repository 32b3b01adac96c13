// A deserialized TensorRT engine with everything it runs on allocated once at load: one execution
// context on its own CUDA stream, a device buffer and a pinned host buffer for every I/O tensor
// sized for the largest batch, tensor addresses bound once by name (setTensorAddress), and
// optionally one CUDA graph per batch size captured around enqueueV3.
//
// Compiled only where TensorRT's headers are found (EDGE_SDK_TENSORRT); without TensorRT's
// libraries (CI) the sources are compiled to object files only, so API misuse fails the build.
// Engines are built by converters/trt_builder.py (TensorRT's ONNX parser is a Python-side tool
// here); their manifest is checked (edge_sdk/runtime/engine_manifest.hpp, trt_backend.cpp) before they are deserialized.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edge {
namespace trt {

// A failure of TensorRT or CUDA; the message names the engine file and the tensor or call.
struct TrtError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TrtEngineOptions {
  int device_index = 0;
  int64_t max_batch = 1;   // buffers hold this many items; must lie in the engine's profile 0
  bool cuda_graph = false; // capture enqueueV3 once per batch size and replay it
};

struct TrtTensor {
  std::string name;
  bool is_input = false;
  std::vector<int64_t> item_shape;  // dimensions after the batch axis
  int64_t item_count = 0;           // floats per batch item
  float* device = nullptr;          // item_count * max_batch floats
  float* host = nullptr;            // pinned, same size
};

class TrtEngine {
 public:
  // `plan`: the serialized engine; `source` names it in errors.
  TrtEngine(const std::vector<uint8_t>& plan, std::string source, const TrtEngineOptions& options);
  ~TrtEngine();
  TrtEngine(const TrtEngine&) = delete;
  TrtEngine& operator=(const TrtEngine&) = delete;

  const std::vector<TrtTensor>& tensors() const { return tensors_; }
  const TrtTensor& tensor(const std::string& name) const;
  cudaStream_t stream() const { return stream_; }
  int64_t max_batch() const { return options_.max_batch; }
  int64_t profile_min_batch() const { return min_batch_; }

  int device_index() const { return options_.device_index; }

  // Runs the network on the device buffers for the first `batch` items, asynchronously on
  // stream(); no host synchronization, no allocation after the first call for a batch size.
  void enqueue(int64_t batch);
  // Sets the input shapes for `batch` items (no-op when already set). Callers replaying a CUDA
  // graph captured around enqueue() set the batch first, so the context matches the graph.
  void set_batch(int64_t batch);
  // Host convenience: copies `inputs` (one pointer per input tensor, in tensors() order) through
  // the pinned buffers, runs, copies the outputs back into `outputs` and synchronizes.
  void run_host(int64_t batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs);
  // The engine reads and writes the caller's device buffers (in tensors() order, as run_host)
  // instead of its own from now on; enqueue() then works on them. Before the first enqueue.
  void use_device_buffers(const std::vector<const float*>& inputs, const std::vector<float*>& outputs);
  // Waits until the work queued on the engine's stream is done.
  void synchronize();

  // "10.14.1.48" of the loaded library (major.minor.patch.build), as tensorrt.__version__ writes
  // it into engine manifests.
  static std::string library_version();

 private:
  class Logger : public nvinfer1::ILogger {
   public:
    void log(Severity severity, const char* msg) noexcept override;
    std::string last_error;
  };
  void check_cuda(cudaError_t err, const char* what) const;
  void release() noexcept;

  std::string source_;
  TrtEngineOptions options_;
  Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  cudaStream_t stream_ = nullptr;
  std::vector<TrtTensor> tensors_;
  int64_t min_batch_ = 1;
  int64_t shapes_batch_ = -1;                  // batch the input shapes are set for
  std::map<int64_t, cudaGraphExec_t> graphs_;  // by batch size
};

}  // namespace trt
}  // namespace edge
