#include "trt_engine.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace edge {
namespace trt {

namespace {

std::string dims_text(const nvinfer1::Dims& d) {
  std::string s = "[";
  for (int32_t i = 0; i < d.nbDims; ++i) s += (i ? ", " : "") + std::to_string(d.d[i]);
  return s + "]";
}

}  // namespace

void TrtEngine::Logger::log(Severity severity, const char* msg) noexcept {
  if (severity <= Severity::kERROR) last_error = msg;
  if (severity <= Severity::kWARNING) std::fprintf(stderr, "[TensorRT] %s\n", msg);
}

void TrtEngine::check_cuda(cudaError_t err, const char* what) const {
  if (err != cudaSuccess)
    throw TrtError(source_ + ": CUDA error in " + what + ": " + cudaGetErrorString(err));
}

std::string TrtEngine::library_version() {
  return std::to_string(getInferLibMajorVersion()) + "." + std::to_string(getInferLibMinorVersion()) + "." +
         std::to_string(getInferLibPatchVersion()) + "." + std::to_string(getInferLibBuildVersion());
}

TrtEngine::TrtEngine(const std::vector<uint8_t>& plan, std::string source, const TrtEngineOptions& options)
    : source_(std::move(source)), options_(options) {
  if (options_.max_batch < 1) throw TrtError(source_ + ": max_batch must be >= 1");
  try {
    check_cuda(cudaSetDevice(options_.device_index), "cudaSetDevice");
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw TrtError(source_ + ": createInferRuntime failed: " + logger_.last_error);
    engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
    if (!engine_)
      throw TrtError(source_ + ": TensorRT could not deserialize the engine (built by another TensorRT "
                               "version or for another GPU?): " + logger_.last_error);
    if (engine_->getNbOptimizationProfiles() < 1) throw TrtError(source_ + ": the engine has no optimization profile");
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw TrtError(source_ + ": createExecutionContext failed: " + logger_.last_error);
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    if (!context_->setOptimizationProfileAsync(0, stream_))
      throw TrtError(source_ + ": setOptimizationProfileAsync(0) failed: " + logger_.last_error);

    const int32_t n = engine_->getNbIOTensors();
    tensors_.reserve(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      TrtTensor t;
      t.name = engine_->getIOTensorName(i);
      const char* name = t.name.c_str();
      t.is_input = engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
      // Strongly typed fp16/int8 variants keep float32 I/O (a Cast at each end of the graph).
      if (engine_->getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
        throw TrtError(source_ + ": tensor \"" + t.name + "\" is not float32; the runtime feeds float32 I/O");
      if (engine_->getTensorFormat(name) != nvinfer1::TensorFormat::kLINEAR)
        throw TrtError(source_ + ": tensor \"" + t.name + "\" is not in linear (NCHW) layout");
      nvinfer1::Dims shape = engine_->getTensorShape(name);
      if (t.is_input) {
        const nvinfer1::Dims lo = engine_->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN);
        const nvinfer1::Dims hi = engine_->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX);
        if (options_.max_batch > hi.d[0] || options_.max_batch < lo.d[0])
          throw TrtError(source_ + ": input \"" + t.name + "\" accepts batches " + std::to_string(lo.d[0]) + ".." +
                         std::to_string(hi.d[0]) + ", the runtime needs " + std::to_string(options_.max_batch));
        min_batch_ = std::max<int64_t>(min_batch_, lo.d[0]);
        shape = hi;
      }
      if (shape.nbDims < 1) throw TrtError(source_ + ": tensor \"" + t.name + "\" has no batch axis");
      t.item_count = 1;
      for (int32_t k = 1; k < shape.nbDims; ++k) {
        if (shape.d[k] < 0)
          throw TrtError(source_ + ": tensor \"" + t.name + "\" has a dynamic dimension besides the batch axis " +
                         dims_text(shape));
        t.item_shape.push_back(shape.d[k]);
        t.item_count *= shape.d[k];
      }
      tensors_.push_back(std::move(t));
    }
    // Buffers for the largest batch, allocated once and bound by name once: enqueue only sets shapes.
    for (TrtTensor& t : tensors_) {
      const size_t bytes = static_cast<size_t>(t.item_count * options_.max_batch) * sizeof(float);
      void* dev = nullptr;
      void* host = nullptr;
      check_cuda(cudaMalloc(&dev, bytes), "cudaMalloc");
      t.device = static_cast<float*>(dev);
      check_cuda(cudaHostAlloc(&host, bytes, cudaHostAllocDefault), "cudaHostAlloc");
      t.host = static_cast<float*>(host);
      if (!context_->setTensorAddress(t.name.c_str(), t.device))
        throw TrtError(source_ + ": setTensorAddress(\"" + t.name + "\") failed: " + logger_.last_error);
    }
  } catch (...) {
    release();
    throw;
  }
}

TrtEngine::~TrtEngine() { release(); }

void TrtEngine::release() noexcept {
  for (auto& [batch, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  for (TrtTensor& t : tensors_) {
    if (t.device) cudaFree(t.device);
    if (t.host) cudaFreeHost(t.host);
    t.device = t.host = nullptr;
  }
  context_.reset();  // before the engine and the runtime that own it
  engine_.reset();
  runtime_.reset();
  if (stream_) cudaStreamDestroy(stream_);
  stream_ = nullptr;
}

const TrtTensor& TrtEngine::tensor(const std::string& name) const {
  for (const TrtTensor& t : tensors_)
    if (t.name == name) return t;
  throw TrtError(source_ + ": no tensor named \"" + name + "\"");
}

void TrtEngine::set_batch(int64_t batch) {
  if (batch == shapes_batch_) return;
  if (batch < min_batch_ || batch > options_.max_batch)
    throw TrtError(source_ + ": batch " + std::to_string(batch) + " outside " + std::to_string(min_batch_) + ".." +
                   std::to_string(options_.max_batch));
  for (const TrtTensor& t : tensors_) {
    if (!t.is_input) continue;
    nvinfer1::Dims d{};
    d.nbDims = static_cast<int32_t>(t.item_shape.size() + 1);
    d.d[0] = batch;
    for (size_t k = 0; k < t.item_shape.size(); ++k) d.d[k + 1] = t.item_shape[k];
    if (!context_->setInputShape(t.name.c_str(), d))
      throw TrtError(source_ + ": setInputShape(\"" + t.name + "\", " + dims_text(d) + ") failed: " + logger_.last_error);
  }
  if (!context_->allInputDimensionsSpecified())
    throw TrtError(source_ + ": not every input shape is specified");
  shapes_batch_ = batch;
}

void TrtEngine::enqueue(int64_t batch) {
  if (batch < min_batch_ || batch > options_.max_batch)
    throw TrtError(source_ + ": batch " + std::to_string(batch) + " outside " + std::to_string(min_batch_) + ".." +
                   std::to_string(options_.max_batch));
  const bool shapes_changed = batch != shapes_batch_;
  set_batch(batch);
  if (!options_.cuda_graph) {
    if (!context_->enqueueV3(stream_)) throw TrtError(source_ + ": enqueueV3 failed: " + logger_.last_error);
    return;
  }
  auto it = graphs_.find(batch);
  if (it == graphs_.end() || shapes_changed) {
    // TensorRT defers shape-dependent work to the first enqueue after setInputShape; run it once
    // outside the capture so the captured graph holds only the kernels.
    if (!context_->enqueueV3(stream_)) throw TrtError(source_ + ": enqueueV3 failed: " + logger_.last_error);
    if (it == graphs_.end()) {
      cudaGraph_t graph = nullptr;
      check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      const bool ok = context_->enqueueV3(stream_);
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      if (!ok || end != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        throw TrtError(source_ + ": capturing enqueueV3 into a CUDA graph failed (" +
                       (ok ? std::string(cudaGetErrorString(end)) : logger_.last_error) +
                       "); run without CUDA graphs for this engine");
      }
      cudaGraphExec_t exec = nullptr;
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      check_cuda(inst, "cudaGraphInstantiate");
      graphs_[batch] = exec;
    }
    return;  // this call's work was done by the uncaptured enqueue
  }
  check_cuda(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
}

void TrtEngine::run_host(int64_t batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) {
  size_t ni = 0, no = 0;
  for (const TrtTensor& t : tensors_) (t.is_input ? ni : no)++;
  if (inputs.size() != ni || outputs.size() != no)
    throw TrtError(source_ + ": expected " + std::to_string(ni) + " input and " + std::to_string(no) +
                   " output buffers, got " + std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
  size_t i = 0;
  for (const TrtTensor& t : tensors_) {
    if (!t.is_input) continue;
    const size_t bytes = static_cast<size_t>(t.item_count * batch) * sizeof(float);
    std::memcpy(t.host, inputs[i++], bytes);
    check_cuda(cudaMemcpyAsync(t.device, t.host, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync H2D");
  }
  enqueue(batch);
  for (const TrtTensor& t : tensors_) {
    if (t.is_input) continue;
    check_cuda(cudaMemcpyAsync(t.host, t.device, static_cast<size_t>(t.item_count * batch) * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync D2H");
  }
  check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  size_t o = 0;
  for (const TrtTensor& t : tensors_)
    if (!t.is_input) std::memcpy(outputs[o++], t.host, static_cast<size_t>(t.item_count * batch) * sizeof(float));
}

void TrtEngine::use_device_buffers(const std::vector<const float*>& inputs, const std::vector<float*>& outputs) {
  size_t i = 0, o = 0;
  for (const TrtTensor& t : tensors_) {
    void* p = t.is_input ? const_cast<float*>(i < inputs.size() ? inputs[i++] : nullptr)
                         : static_cast<void*>(o < outputs.size() ? outputs[o++] : nullptr);
    if (!p) throw TrtError(source_ + ": no device buffer given for tensor \"" + t.name + "\"");
    if (!context_->setTensorAddress(t.name.c_str(), p))
      throw TrtError(source_ + ": setTensorAddress(\"" + t.name + "\") failed: " + logger_.last_error);
  }
  if (i != inputs.size() || o != outputs.size())
    throw TrtError(source_ + ": more device buffers given than the engine has tensors");
}

void TrtEngine::synchronize() { check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

}  // namespace trt
}  // namespace edge
