#include "trt_pipeline.hpp"

#include <cstring>

#include "decision.cuh"

namespace edge {
namespace trt {

void TrtPipeline::check_cuda(cudaError_t err, const char* what) const {
  if (err != cudaSuccess) throw TrtError(std::string("TensorRT pipeline: CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

namespace {
template <typename T>
T* device_alloc(size_t count, cudaError_t& err) {
  void* p = nullptr;
  err = count ? cudaMalloc(&p, count * sizeof(T)) : cudaSuccess;
  return static_cast<T*>(p);
}
template <typename T>
T* host_alloc(size_t count, cudaError_t& err) {
  void* p = nullptr;
  err = count ? cudaHostAlloc(&p, count * sizeof(T), cudaHostAllocDefault) : cudaSuccess;
  return static_cast<T*>(p);
}
}  // namespace

TrtPipeline::TrtPipeline(TrtEngine& engine, const TrtPipelineSpec& spec, DevicePostprocess postprocess)
    : engine_(engine), spec_(spec), postprocess_(std::move(postprocess)) {
  input_ = &engine_.tensor(spec_.input_tensor);
  if (!input_->is_input) throw TrtError("TensorRT pipeline: \"" + spec_.input_tensor + "\" is not an engine input");
  const PreprocessParams& p = spec_.preprocess;
  validate_preprocess(p, 1, spec_.image_h, spec_.image_w, spec_.image_c);
  const std::vector<int64_t> want{p.channels, p.out_h, p.out_w};
  if (input_->item_shape != want)
    throw TrtError("TensorRT pipeline: input \"" + spec_.input_tensor + "\" does not take (" +
                   std::to_string(p.channels) + ", " + std::to_string(p.out_h) + ", " + std::to_string(p.out_w) +
                   ") images; the engine was built for another input size");
  validate_calibration(spec_.calibration);
  if (!postprocess_) throw TrtError("TensorRT pipeline: no device post-processing given");

  const size_t n = static_cast<size_t>(engine_.max_batch());
  const size_t map = static_cast<size_t>(spec_.map_h * spec_.map_w);
  image_bytes_ = static_cast<size_t>(spec_.image_h * spec_.image_w * spec_.image_c);
  cudaError_t err = cudaSuccess;
  // Everything the cycle touches is allocated here, once.
  auto step = [&](const char* what) {
    if (err != cudaSuccess) release();
    check_cuda(err, what);
  };
  images_host_ = host_alloc<uint8_t>(n * image_bytes_, err); step("cudaHostAlloc(images)");
  images_dev_ = device_alloc<uint8_t>(n * image_bytes_, err); step("cudaMalloc(images)");
  scores_dev_ = device_alloc<float>(n, err); step("cudaMalloc(scores)");
  normalized_dev_ = device_alloc<float>(n, err); step("cudaMalloc(normalized)");
  verdicts_dev_ = device_alloc<uint8_t>(n, err); step("cudaMalloc(verdicts)");
  maps_dev_ = device_alloc<float>(n * map, err); step("cudaMalloc(maps)");
  scores_host_ = host_alloc<float>(n, err); step("cudaHostAlloc(scores)");
  normalized_host_ = host_alloc<float>(n, err); step("cudaHostAlloc(normalized)");
  verdicts_host_ = host_alloc<uint8_t>(n, err); step("cudaHostAlloc(verdicts)");
  maps_host_ = host_alloc<float>(n * map, err); step("cudaHostAlloc(maps)");
  for (cudaEvent_t& e : events_) {
    err = cudaEventCreate(&e);
    step("cudaEventCreate");
  }
}

TrtPipeline::~TrtPipeline() { release(); }

void TrtPipeline::release() noexcept {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  for (cudaEvent_t& e : events_) {
    if (e) cudaEventDestroy(e);
    e = nullptr;
  }
  for (void* p : {static_cast<void*>(images_dev_), static_cast<void*>(scores_dev_), static_cast<void*>(normalized_dev_),
                  static_cast<void*>(verdicts_dev_), static_cast<void*>(maps_dev_)})
    if (p) cudaFree(p);
  for (void* p : {static_cast<void*>(images_host_), static_cast<void*>(scores_host_),
                  static_cast<void*>(normalized_host_), static_cast<void*>(verdicts_host_), static_cast<void*>(maps_host_)})
    if (p) cudaFreeHost(p);
  images_dev_ = verdicts_dev_ = images_host_ = verdicts_host_ = nullptr;
  scores_dev_ = normalized_dev_ = maps_dev_ = scores_host_ = normalized_host_ = maps_host_ = nullptr;
}

void TrtPipeline::mark(int stage, bool timed) {
  if (timed) check_cuda(cudaEventRecord(events_[stage], engine_.stream()), "cudaEventRecord");
}

void TrtPipeline::cycle(int64_t batch, bool want_maps, bool timed) {
  cudaStream_t s = engine_.stream();
  const size_t nb = static_cast<size_t>(batch);
  const size_t map = static_cast<size_t>(spec_.map_h * spec_.map_w);
  mark(0, timed);
  check_cuda(cudaMemcpyAsync(images_dev_, images_host_, nb * image_bytes_, cudaMemcpyHostToDevice, s), "H2D images");
  mark(1, timed);
  preprocess_cuda(images_dev_, batch, spec_.image_h, spec_.image_w, spec_.image_c, spec_.preprocess, input_->device, s);
  mark(2, timed);
  engine_.enqueue(batch);
  mark(3, timed);
  postprocess_(engine_, batch, scores_dev_, map && want_maps ? maps_dev_ : nullptr, s);
  mark(4, timed);
  calibrated_normalize_cuda(scores_dev_, batch, spec_.calibration, normalized_dev_, s);
  decide_cuda(scores_dev_, normalized_dev_, batch, spec_.calibration.threshold, spec_.review_band, verdicts_dev_, s);
  mark(5, timed);
  check_cuda(cudaMemcpyAsync(scores_host_, scores_dev_, nb * sizeof(float), cudaMemcpyDeviceToHost, s), "D2H scores");
  check_cuda(cudaMemcpyAsync(normalized_host_, normalized_dev_, nb * sizeof(float), cudaMemcpyDeviceToHost, s),
             "D2H normalized");
  check_cuda(cudaMemcpyAsync(verdicts_host_, verdicts_dev_, nb, cudaMemcpyDeviceToHost, s), "D2H verdicts");
  if (want_maps && map)
    check_cuda(cudaMemcpyAsync(maps_host_, maps_dev_, nb * map * sizeof(float), cudaMemcpyDeviceToHost, s), "D2H maps");
  mark(6, timed);
}

void TrtPipeline::check_batch(int64_t batch, bool want_maps) const {
  if (batch < engine_.profile_min_batch() || batch > engine_.max_batch())
    throw TrtError("TensorRT pipeline: batch " + std::to_string(batch) + " outside " +
                   std::to_string(engine_.profile_min_batch()) + ".." + std::to_string(engine_.max_batch()));
  if (want_maps && spec_.map_h * spec_.map_w == 0)
    throw TrtError("TensorRT pipeline: heatmaps requested but this model's post-processing makes none");
}

void TrtPipeline::run(const uint8_t* images, int64_t batch, TrtPipelineResults& results) {
  check_batch(batch, results.maps != nullptr);
  std::memcpy(images_host_, images, static_cast<size_t>(batch) * image_bytes_);
  launch(batch, results);
}

void TrtPipeline::run(const uint8_t* const* images, int64_t batch, TrtPipelineResults& results) {
  check_batch(batch, results.maps != nullptr);
  for (int64_t i = 0; i < batch; ++i) {
    if (!images[i]) throw TrtError("TensorRT pipeline: image " + std::to_string(i) + " is a null pointer");
    std::memcpy(images_host_ + static_cast<size_t>(i) * image_bytes_, images[i], image_bytes_);
  }
  launch(batch, results);
}

void TrtPipeline::launch(int64_t batch, TrtPipelineResults& results) {
  const bool want_maps = results.maps != nullptr;
  cudaStream_t s = engine_.stream();
  const auto key = std::make_pair(batch, want_maps);
  auto it = graphs_.find(key);
  bool graph_run = false;
  if (!spec_.cuda_graph) {
    cycle(batch, want_maps, true);
  } else if (it != graphs_.end()) {
    // The context's input shapes must be those the graph was captured with.
    engine_.set_batch(batch);
    mark(0, true);
    check_cuda(cudaGraphLaunch(it->second, s), "cudaGraphLaunch");
    mark(6, true);
    graph_run = true;
  } else {
    cycle(batch, want_maps, true);  // uncaptured first: TensorRT's shape-dependent setup happens here
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      cycle(batch, want_maps, false);
    } catch (...) {
      cudaStreamEndCapture(s, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    check_cuda(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(inst, "cudaGraphInstantiate");
    graphs_[key] = exec;
  }
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  auto ms = [&](int a, int b) {
    float t = 0.0f;
    check_cuda(cudaEventElapsedTime(&t, events_[a], events_[b]), "cudaEventElapsedTime");
    return static_cast<double>(t);
  };
  TrtPipelineTimes& t = results.times;
  t = TrtPipelineTimes{};
  if (graph_run) {
    t.network = ms(0, 6);
  } else {
    t.host_to_device = ms(0, 1);
    t.preprocess = ms(1, 2);
    t.network = ms(2, 3);
    t.postprocess = ms(3, 4);
    t.decision = ms(4, 5);
    t.device_to_host = ms(5, 6);
  }
  const size_t nb = static_cast<size_t>(batch);
  std::memcpy(results.scores, scores_host_, nb * sizeof(float));
  std::memcpy(results.normalized, normalized_host_, nb * sizeof(float));
  std::memcpy(results.verdicts, verdicts_host_, nb);
  if (want_maps)
    std::memcpy(results.maps, maps_host_, nb * static_cast<size_t>(spec_.map_h * spec_.map_w) * sizeof(float));
}

}  // namespace trt
}  // namespace edge
