// Heatmap post-processing: bilinear resize, Gaussian blur, difference and normalizations.
// All buffers are contiguous float32. Host-pointer functions pick the CPU or a CUDA device; the
// *_cuda variants take device pointers and a cudaStream_t and do not synchronize.
//
// Aliasing: abs_diff, minmax_normalize and calibrated_normalize may write in place (out == x);
// resize_bilinear and gaussian_blur need `out` separate from `x`.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// ---- resize_bilinear: n planes of h x w -> n planes of out_h x out_w ------------------------
// Equal to torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False).
// Throws ArgumentError naming the argument for non-positive or oversized dimensions.
constexpr int64_t kMaxImageSide = 1 << 15;
void validate_resize(int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w);

void resize_bilinear(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                     float* out, const Device& device = Device::cpu());
void resize_bilinear_cpu(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                         int64_t out_w, float* out, ThreadPool& pool);

// ---- gaussian_blur: n planes of h x w, same size out ------------------------------------------
// Equal to scipy.ndimage.gaussian_filter(plane, sigma, mode="reflect", truncate=4.0): separable,
// radius int(4 * sigma + 0.5), reflect border repeated as often as needed (any image size works).
// Returns the radius; throws ArgumentError("sigma: ...") unless 0 < sigma and radius <= 128.
int gaussian_radius(double sigma);
void validate_blur(int64_t n, int64_t h, int64_t w, double sigma);

void gaussian_blur(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                   const Device& device = Device::cpu());
void gaussian_blur_cpu(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                       ThreadPool& pool);

// ---- resize_blur: resize_bilinear to (out_h, out_w), then gaussian_blur(sigma), as one operator --
// The heatmap path of the embedding models (a score grid of a few dozen cells to the image size,
// then a blur). Both steps are linear and separable, so along each axis their composition is one
// banded matrix (weights computed in double); applying it to the small grid costs a few
// multiply-adds per output pixel instead of a full-size resize and a (2r+1)-tap blur. Equal to
// the two steps up to float rounding (~1e-7 relative). sigma == 0 means no blur (resize_bilinear).
// Where a band would be wide (strong downsampling, or sigma far above the resize factor) the two
// steps run as they are. On a CUDA device the two existing kernels run one after the other.
void validate_resize_blur(int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w, double sigma);

void resize_blur(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                 double sigma, float* out, const Device& device = Device::cpu());
void resize_blur_cpu(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                     double sigma, float* out, ThreadPool& pool);

// ---- element-wise -------------------------------------------------------------------------------
// out[i] = |a[i] - b[i]| for i < count.
void abs_diff(const float* a, const float* b, int64_t count, float* out,
              const Device& device = Device::cpu());
void abs_diff_cpu(const float* a, const float* b, int64_t count, float* out, ThreadPool& pool);

// Per plane of `plane` values: (x - min) / (max - min), in [0, 1]; a constant plane gives zeros.
// Throws ArgumentError("x: ...") when a plane holds NaN or infinity, or when its max - min
// overflows float32.
void minmax_normalize(const float* x, int64_t n, int64_t plane, float* out,
                      const Device& device = Device::cpu());
void minmax_normalize_cpu(const float* x, int64_t n, int64_t plane, float* out, ThreadPool& pool);

// clip((x - threshold) / (max - min) + 0.5, 0, 1) element-wise: the image-level calibration of a
// model (raw-score threshold and the min/max of normal scores).
struct Calibration {
  float threshold = 0.0f;
  float min = 0.0f;
  float max = 1.0f;
};
// Throws ArgumentError naming the field for non-finite values or max <= min.
void validate_calibration(const Calibration& c);

void calibrated_normalize(const float* x, int64_t count, const Calibration& c, float* out,
                          const Device& device = Device::cpu());
void calibrated_normalize_cpu(const float* x, int64_t count, const Calibration& c, float* out,
                              ThreadPool& pool);

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers, asynchronous on `stream` (a cudaStream_t; nullptr = default stream).
void resize_bilinear_cuda(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                          int64_t out_w, float* out, void* stream);
// `workspace` holds n * h * w floats (the vertically filtered planes).
int64_t gaussian_blur_cuda_workspace_floats(int64_t n, int64_t h, int64_t w);
void gaussian_blur_cuda(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                        float* workspace, void* stream);
void abs_diff_cuda(const float* a, const float* b, int64_t count, float* out, void* stream);
// `workspace` holds 2 * n floats (per-plane min and max). Non-finite values are not detected on
// the GPU (the host-pointer path checks them); they make that plane's output NaN.
void minmax_normalize_cuda(const float* x, int64_t n, int64_t plane, float* out, float* workspace,
                           void* stream);
void calibrated_normalize_cuda(const float* x, int64_t count, const Calibration& c, float* out,
                               void* stream);

// Host pointers: copy to device `device_index`, run, copy back.
void resize_bilinear_cuda_host(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                               int64_t out_w, float* out, int device_index);
void gaussian_blur_cuda_host(const float* x, int64_t n, int64_t h, int64_t w, double sigma,
                             float* out, int device_index);
void abs_diff_cuda_host(const float* a, const float* b, int64_t count, float* out, int device_index);
void minmax_normalize_cuda_host(const float* x, int64_t n, int64_t plane, float* out,
                                int device_index);
void calibrated_normalize_cuda_host(const float* x, int64_t count, const Calibration& c, float* out,
                                    int device_index);
#endif

}  // namespace edge
