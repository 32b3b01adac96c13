// Structural similarity between two batches of images.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

struct SsimParams {
  int window = 11;  // odd, 1..kSsimMaxWindow, at most the image height and width
  float sigma = 1.5f;
  float k1 = 0.01f;
  float k2 = 0.03f;
  float data_range = 1.0f;
};

// Throws ArgumentError naming the parameter if p cannot be applied to h x w images.
void validate_ssim(const SsimParams& p, int64_t h, int64_t w);

// Output map is "valid" filtered: (h - window + 1) x (w - window + 1) per channel, no padding.
inline int64_t ssim_map_height(const SsimParams& p, int64_t h) { return h - p.window + 1; }
inline int64_t ssim_map_width(const SsimParams& p, int64_t w) { return w - p.window + 1; }

// a, b: n images of c channels of h x w, contiguous float32 (NCHW), on the host.
// mean: n values, SSIM averaged over the map and then the channels (as pytorch_msssim).
// map: n*c*map_h*map_w values, or nullptr.
void ssim(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
          const SsimParams& p, float* mean, float* map, const Device& device = Device::cpu());

void ssim_cpu(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
              const SsimParams& p, float* mean, float* map, ThreadPool& pool);

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers; runs on `stream` (a cudaStream_t) without synchronizing. `workspace` holds
// ssim_cuda_workspace_floats(...) floats; `map` may be nullptr.
int64_t ssim_cuda_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, const SsimParams& p);
void ssim_cuda(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
               const SsimParams& p, float* mean, float* map, float* workspace, void* stream);
// Host pointers; copies to the device, runs, copies back.
void ssim_cuda_host(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
                    const SsimParams& p, float* mean, float* map, int device_index);
#endif

}  // namespace edge
