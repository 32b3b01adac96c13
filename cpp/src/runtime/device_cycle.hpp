// The whole inspection cycle on the GPU, for runtimes whose networks all run on the TensorRT
// backend: raw images -> preprocess_cuda -> engine(s) -> device post-processing -> maps and
// scores, without host round trips (trt/trt_pipeline.hpp, trt/device_post.hpp). The runtime
// offers it each chunk of whole images; chunks it does not take (images of different sizes,
// float32 pixels, frames cut into regions) run on the host path: the same engines behind the
// Backend interface, host preprocessing and host post-processing, with the same results.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/runtime.hpp"

namespace edge {

class DeviceCycle {
 public:
  virtual ~DeviceCycle() = default;
  // Raw scores of n whole images (and their raw maps at the images' size, n planes one after the
  // other, when maps is not nullptr). Returns false, having done nothing, when these images cannot
  // take the device path; throws (std::exception) when the device fails.
  // Stage times of the call are added to `times`.
  virtual bool run(const ImageView* images, int64_t n, float* scores, float* maps, StageTimes& times) = 0;
};

// The device path over the runtime's backends (in PostProcessor::networks() order), or nullptr
// when they are not all TensorRT backends, or the build has no TensorRT. `max_batch`: the
// runtime's chunk size.
std::unique_ptr<DeviceCycle> make_device_cycle(const Bundle& bundle, const RuntimeOptions& options,
                                               const std::vector<std::unique_ptr<Backend>>& backends,
                                               int64_t max_batch);

}  // namespace edge
