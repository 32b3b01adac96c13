// Image preprocessing: THE conversion from camera/dataset images to network input, shared by
// training (through edge_sdk.kernels.preprocess), export checks and the C++ runtime, so the
// numbers are identical everywhere.
//
// images: n images of h x w pixels, c interleaved channels (HWC, c = 1 or 3; RGB order, or BGR with
// color_order), uint8 or float32, contiguous. Output: float32 (n, channels, out_h, out_w), planar (NCHW):
//   v = pixel * scale; v = bilinear resize of v (exactly resize_bilinear, i.e. torch's
//   interpolate(mode="bilinear", align_corners=False, antialias=False); with antialias, torch's
//   antialias=True: every input pixel under the stretched triangle filter is averaged; the height
//   is resampled first, torch does the width first, so the two differ by float rounding only); a single input channel is replicated when channels == 3;
//   out = (v - mean[ch]) / std[ch]. At an unchanged size both are the identity.
#pragma once

#include <cstdint>
#include <string>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// Channel order of 3-channel input images; single-channel images read the same either way. RGB is
// 0 so that zeroed memory (and the C ABI's default) means the order training used.
enum class ColorOrder : int { RGB = 0, BGR = 1 };

// "rgb" / "bgr" -> ColorOrder; throws ArgumentError naming `arg` otherwise.
ColorOrder parse_color_order(const std::string& text, const char* arg = "color_order");
const char* color_order_name(ColorOrder order);  // "rgb", "bgr" ("invalid" for other values)

struct PreprocessParams {
  int64_t out_h = 0, out_w = 0;
  int channels = 3;           // 1 or 3; channels == 1 needs c == 1 (no RGB -> gray conversion)
  float scale = 1.0f / 255.0f;  // applied to the raw pixel before resizing
  float mean[3] = {0.0f, 0.0f, 0.0f};  // first `channels` entries used
  float std[3] = {1.0f, 1.0f, 1.0f};   // first `channels` entries used, each > 0
  bool antialias = false;     // antialiased resampling when the size changes (see above)
  ColorOrder color_order = ColorOrder::RGB;  // of 3-channel images; BGR is read as its RGB twin
};

// Throws ArgumentError naming the argument (images, size, channels, scale, mean, std, color_order).
void validate_preprocess(const PreprocessParams& p, int64_t n, int64_t h, int64_t w, int64_t c);

// Host pointers; `out` holds n * channels * out_h * out_w floats.
void preprocess(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                const PreprocessParams& p, float* out, const Device& device = Device::cpu());
void preprocess(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                const PreprocessParams& p, float* out, const Device& device = Device::cpu());
void preprocess_cpu(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PreprocessParams& p, float* out, ThreadPool& pool);
void preprocess_cpu(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PreprocessParams& p, float* out, ThreadPool& pool);

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers, asynchronous on `stream` (a cudaStream_t).
void preprocess_cuda(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                     const PreprocessParams& p, float* out, void* stream);
void preprocess_cuda(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                     const PreprocessParams& p, float* out, void* stream);
// Host pointers: copy to device `device_index`, run, copy back.
void preprocess_cuda_host(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const PreprocessParams& p, float* out, int device_index);
void preprocess_cuda_host(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const PreprocessParams& p, float* out, int device_index);
#endif

}  // namespace edge
