// The post-processing of each postprocess.kind on the device, for TrtPipeline: the same recipe
// and arithmetic as the host post-processing (cpp/src/runtime/postprocess_*.cpp), through the
// kernel library's *_cuda functions, reading the engines' output tensors in device memory.
//
//   mahalanobis  mahalanobis_whiten_cuda(features) -> grid
//   mhbc         mahalanobis_whiten_cuda -> z -> local_nearest_cuda -> grid
//   knn          knn_cuda(features, bank) -> grid (+ PatchCore reweighting: knn_cuda from m* over
//                the bank, then the softmax weight of the patch's distances to that support set)
//   ssim         ssim_cuda(X, X^) -> 1 - mean; abs_diff_cuda + channel mean -> grid at model size
//   mask         second engine (mask head) on its own stream joined by events, P (* ROI) ->
//                gaussian_blur_cuda at model size -> score; P -> map
// then the grid -> resize_bilinear_cuda to the image size -> gaussian_blur_cuda (sigma > 0) -> map,
// and the image score = first maximum of the grid ("max_raw") or of the map ("max_blurred").
//
// Every buffer is allocated at construction for max_batch images of one size; run() only enqueues
// work on the given stream (capturable into a CUDA graph).
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/bundle.hpp"
#include "trt_pipeline.hpp"

namespace edge {
namespace trt {

// The bundle's arrays in device memory, uploaded once and shared by the post-processing of every
// image size.
class DeviceArrays {
 public:
  DeviceArrays(const Bundle& bundle, int device_index);
  ~DeviceArrays();
  DeviceArrays(const DeviceArrays&) = delete;
  DeviceArrays& operator=(const DeviceArrays&) = delete;
  const void* get(const std::string& name) const;  // TrtError when absent

 private:
  std::map<std::string, void*> ptrs_;
};

// A kind or setting without a device implementation: the runtime keeps the host path for it.
struct DevicePathUnsupported : TrtError {
  using TrtError::TrtError;
};

class DevicePost {
 public:
  virtual ~DevicePost() = default;
  // See DevicePostprocess (trt_pipeline.hpp): scores (batch) and, when maps is not nullptr, maps
  // (batch x map_h x map_w) in device memory. `first` is the engine of the bundle's first network.
  virtual void run(const TrtEngine& first, int64_t batch, float* scores, float* maps, cudaStream_t stream) = 0;
  DevicePostprocess callable() {
    return [this](const TrtEngine& e, int64_t b, float* s, float* m, cudaStream_t st) { run(e, b, s, m, st); };
  }
};

// `engines`: one per network of the post-processing, in PostProcessor::networks() order. Throws
// DevicePathUnsupported when a kind or setting has no device implementation, TrtError for CUDA
// failures and BundleError for manifest fields (already checked by the host post-processing).
std::unique_ptr<DevicePost> make_device_post(const Bundle& bundle, std::shared_ptr<const DeviceArrays> arrays,
                                             const std::vector<TrtEngine*>& engines, int64_t max_batch, int64_t map_h,
                                             int64_t map_w);

}  // namespace trt
}  // namespace edge
