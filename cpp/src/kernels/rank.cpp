// CPU kernel of frame_extremes: tasks are (acquisition, block of pixels); within a block the
// frames are read one after the other, each a contiguous run the compiler vectorizes.
#include <algorithm>
#include <cstring>
#include <string>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/rank.hpp"
#include "edge_sdk/kernels/rank_math.hpp"

namespace edge {
namespace {
constexpr int64_t kPixelsPerTask = 1 << 14;
constexpr int64_t kMaxPixels = int64_t(1) << 31;  // one frame: 2^31 values (46k x 46k)
}  // namespace

void validate_frame_extremes(int64_t n, int64_t k, int64_t pixels) {
  if (n < 1) throw ArgumentError("frames: expected at least one acquisition, got " + std::to_string(n));
  if (k < 2 || k > kMaxAcquisitionFrames)
    throw ArgumentError("frames: expected 2 to " + std::to_string(kMaxAcquisitionFrames) +
                        " frames an acquisition, got " + std::to_string(k));
  if (pixels < 1 || pixels > kMaxPixels)
    throw ArgumentError("frames: expected 1 to " + std::to_string(kMaxPixels) + " values a frame, got " +
                        std::to_string(pixels));
}

template <typename T>
void frame_extremes_cpu(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, ThreadPool& pool) {
  validate_frame_extremes(n, k, pixels);
  const int64_t blocks = (pixels + kPixelsPerTask - 1) / kPixelsPerTask;
  pool.parallel_for(n * blocks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / blocks, i0 = (t % blocks) * kPixelsPerTask;
      const int64_t len = std::min(kPixelsPerTask, pixels - i0);
      const T* first = frames + a * k * pixels + i0;
      T* l = lo + a * pixels + i0;
      T* h = hi + a * pixels + i0;
      std::memcpy(l, first, static_cast<size_t>(len) * sizeof(T));
      std::memcpy(h, first, static_cast<size_t>(len) * sizeof(T));
      for (int64_t f = 1; f < k; ++f) {
        const T* x = first + f * pixels;
        for (int64_t i = 0; i < len; ++i) extremes_step(x[i], l[i], h[i]);
      }
    }
  });
}

template <typename T>
void frame_extremes(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, const Device& device) {
  validate_frame_extremes(n, k, pixels);
  run_on_device(
      device, [&](ThreadPool& pool) { frame_extremes_cpu(frames, n, k, pixels, lo, hi, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(frame_extremes_cuda_host(frames, n, k, pixels, lo, hi, index);) });
}

template void frame_extremes_cpu<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, uint8_t*, uint8_t*, ThreadPool&);
template void frame_extremes_cpu<float>(const float*, int64_t, int64_t, int64_t, float*, float*, ThreadPool&);
template void frame_extremes<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, uint8_t*, uint8_t*, const Device&);
template void frame_extremes<float>(const float*, int64_t, int64_t, int64_t, float*, float*, const Device&);

}  // namespace edge
