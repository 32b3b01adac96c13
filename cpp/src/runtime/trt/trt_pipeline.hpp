// The whole inspection cycle on one CUDA stream without host round trips: raw images are copied
// once into pinned and then device memory, preprocessed on the device (preprocess_cuda, THE
// preprocessing) straight into the engine's input buffer, run through the TensorRT engine, scored
// by the model's device post-processing (the k-NN / Mahalanobis / SSIM / heatmap kernels, supplied
// per post-processing kind by device_post.hpp), normalized (calibrated_normalize_cuda) and decided
// (decide_cuda); only scores, normalized scores, verdicts and the requested heatmaps come back.
// With cuda_graph the cycle is captured once per batch size and replayed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/preprocess.hpp"
#include "trt_engine.hpp"

namespace edge {
namespace trt {

// Writes, for the first `batch` images, the raw image scores (batch floats) and, when maps is not
// nullptr (the caller wants heatmaps), the raw anomaly maps (batch * map_h * map_w floats) into
// device memory, reading the engine's output tensors (engine.tensor(name).device). Must only
// enqueue work on `stream` or on streams joined back to it by events (no synchronization, no
// allocation: it may be captured into a CUDA graph).
using DevicePostprocess =
    std::function<void(const TrtEngine& engine, int64_t batch, float* scores, float* maps, cudaStream_t stream)>;

struct TrtPipelineSpec {
  std::string input_tensor;                     // the engine input that receives preprocessed images
  int64_t image_h = 0, image_w = 0, image_c = 3;  // raw image size accepted (uint8 HWC)
  PreprocessParams preprocess;                  // out_h/out_w/channels must match the input tensor
  Calibration calibration;                      // raw-score threshold and normalization statistics
  float review_band = 0.0f;
  int64_t map_h = 0, map_w = 0;                 // raw anomaly map size (0 = no maps)
  bool cuda_graph = false;
};

// Device milliseconds of the stages of the last run (CUDA events on the stream). With a CUDA graph
// the stages are not separable: the whole device cycle is reported as `network`, the rest 0.
struct TrtPipelineTimes {
  double host_to_device = 0, preprocess = 0, network = 0, postprocess = 0, decision = 0, device_to_host = 0;
};

struct TrtPipelineResults {
  float* scores = nullptr;      // host, batch values
  float* normalized = nullptr;  // host, batch values
  uint8_t* verdicts = nullptr;  // host, batch values (decision.cuh codes)
  float* maps = nullptr;        // host, batch * map_h * map_w values, or nullptr (not copied back)
  TrtPipelineTimes times;       // filled by run()
};

class TrtPipeline {
 public:
  // The engine must have been created without its own CUDA graphs (the pipeline captures the
  // whole cycle instead) and with max_batch images of room.
  TrtPipeline(TrtEngine& engine, const TrtPipelineSpec& spec, DevicePostprocess postprocess);
  ~TrtPipeline();
  TrtPipeline(const TrtPipeline&) = delete;
  TrtPipeline& operator=(const TrtPipeline&) = delete;

  // images: batch uint8 HWC images of image_h x image_w x image_c, contiguous, on the host.
  // Synchronizes before returning and copies the results into the caller's buffers.
  void run(const uint8_t* images, int64_t batch, TrtPipelineResults& results);
  // The same with one pointer per image (each image contiguous; staged into pinned memory).
  void run(const uint8_t* const* images, int64_t batch, TrtPipelineResults& results);

  const TrtPipelineSpec& spec() const { return spec_; }

 private:
  void check_batch(int64_t batch, bool want_maps) const;
  void launch(int64_t batch, TrtPipelineResults& results);
  void cycle(int64_t batch, bool want_maps, bool timed);
  void mark(int stage, bool timed);
  void check_cuda(cudaError_t err, const char* what) const;
  void release() noexcept;

  TrtEngine& engine_;
  TrtPipelineSpec spec_;
  DevicePostprocess postprocess_;
  const TrtTensor* input_ = nullptr;
  size_t image_bytes_ = 0;  // one raw image
  uint8_t* images_host_ = nullptr;  // pinned staging of the raw images
  uint8_t* images_dev_ = nullptr;
  float* scores_dev_ = nullptr;
  float* normalized_dev_ = nullptr;
  uint8_t* verdicts_dev_ = nullptr;
  float* maps_dev_ = nullptr;
  float* scores_host_ = nullptr;  // pinned results
  float* normalized_host_ = nullptr;
  uint8_t* verdicts_host_ = nullptr;
  float* maps_host_ = nullptr;
  std::map<std::pair<int64_t, bool>, cudaGraphExec_t> graphs_;  // by (batch, maps copied back)
  static constexpr int kEvents = 7;  // stage boundaries: start, H2D, preprocess, network, post, decision, D2H
  cudaEvent_t events_[kEvents] = {};
};

}  // namespace trt
}  // namespace edge
