// The TensorRT network backend behind the runtime's Backend interface: one serialized engine per
// bundle network, chosen from the bundle's engines/ folder by its manifest (engine_manifest.hpp:
// the TensorRT version, GPU and driver of this machine, the sha256 of the bundle's ONNX file, the
// precision, the batch profile and the input shapes) and verified against its own sha256 before
// it is deserialized. Engines are built by `edge-sdk build-engine` (converters/trt_builder.py):
// TensorRT's ONNX parser is a Python-side tool here, so the C++ backend never rebuilds one.
//
// Bound with device buffers (bind_device: every network of the runtime on TensorRT) the engine
// works on the runtime's device memory and the whole pipeline runs on the GPU (runtime.cpp, the
// same pipeline as on the CPU); bound with host buffers (networks mixed with another backend)
// they go through the engine's pinned and device buffers (TrtEngine::run_host).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/engine_manifest.hpp"
#include "trt_engine.hpp"

namespace edge {

// Throws ArgumentError (no CUDA device given), BackendError (no usable engine, with each candidate
// and what differs; no CUDA device; TensorRT refusing the engine) or BundleError (the engine's
// tensors contradict the manifest).
std::unique_ptr<Backend> make_tensorrt_backend(const Bundle& bundle, const NetworkSpec& network,
                                               const BackendOptions& options);

// For backend "auto": whether an engine of this network and precision matches this machine and
// bundle (batch profile not checked: the runtime's max_batch is only known at bind).
bool tensorrt_engine_available(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options);

namespace trt {

// This machine as engine manifests describe it (TensorRT of this process, CUDA version of the
// driver, GPU name and compute capability of `device_index`); the driver release is not known
// here (only a note in the rules anyway).
EngineMachine this_machine(int device_index);

// Where the engines of a bundle are: options.engines_dir, else BUNDLE/engines for a bundle
// directory (an archived bundle needs engines_dir).
std::string engines_folder(const Bundle& bundle, const BackendOptions& options);

struct SelectedEngine {
  std::string path;
  std::vector<uint8_t> plan;
  EngineManifest manifest;
};

// The engine of `network` matching this machine and the bundle (max_batch < 1: not checked).
// Throws BackendError listing every candidate and what differs, or how to build one.
SelectedEngine select_engine(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options,
                             int64_t max_batch);

class TrtBackend final : public Backend {
 public:
  TrtBackend(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options);
  std::string description() const override { return description_; }
  void bind(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) override;
  bool can_bind_device() const override { return true; }
  void bind_device(int64_t max_batch, const std::vector<const float*>& inputs,
                   const std::vector<float*>& outputs) override;
  void run(int64_t batch) override;

 private:
  const Bundle& bundle_;
  NetworkSpec net_;
  BackendOptions options_;
  std::string description_;
  std::unique_ptr<TrtEngine> engine_;
  void load(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs);

  // The runtime's buffers in the engine's tensor order: host memory for TrtEngine::run_host, or
  // device memory the engine works on directly (device_).
  std::vector<const float*> inputs_;
  std::vector<float*> outputs_;
  bool device_ = false;
};

}  // namespace trt
}  // namespace edge
