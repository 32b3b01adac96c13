// CPU bilinear resampling one output row at a time, shared by resize_bilinear and preprocess.
// Each source row is interpolated horizontally once and kept while consecutive output rows still
// need it (upsampling reuses a row pair for several output rows); the vertical step is then a
// vectorizable blend of two buffers. Arithmetic and order equal bilinear_sample (heatmap_math.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "edge_sdk/kernels/heatmap_math.hpp"
#include "edge_sdk/scratch.hpp"

namespace edge {
namespace detail {

// Fills `taps` (reused storage: no allocation once it is large enough) and returns it.
inline const std::vector<LinearTap>& linear_taps(int64_t in, int64_t out, std::vector<LinearTap>& taps) {
  taps.resize(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) taps[static_cast<size_t>(o)] = linear_tap(o, in, out);
  return taps;
}

template <typename T>
class BilinearRows {
 public:
  // img: one interleaved image (h rows of w pixels of c channels); channel ch is resampled.
  BilinearRows(const T* img, int64_t w, int64_t c, int64_t ch, float scale,
               const std::vector<LinearTap>& xtaps)
      : img_(img), w_(w), c_(c), ch_(ch), scale_(scale), xtaps_(xtaps), buf_(thread_buffers()) {
    for (int k = 0; k < 2; ++k) buf_[k].resize(xtaps.size());
  }

  // Writes the output row whose vertical tap is ty into dst (xtaps.size() values).
  void row(const LinearTap& ty, float* dst) {
    const float* r0 = source_row(ty.i0, -1);
    const float* r1 = source_row(ty.i1, ty.i0);
    const float w0 = ty.w0, w1 = ty.w1;
    const size_t n = xtaps_.size();
    for (size_t i = 0; i < n; ++i) dst[i] = lerp_tap(r0[i], r1[i], w0, w1);
  }

 private:
  // Horizontally interpolated source row `y`, computed unless cached; never evicts row `keep`.
  const float* source_row(int64_t y, int64_t keep) {
    for (int k = 0; k < 2; ++k)
      if (tag_[k] == y) return buf_[k].data();
    const int slot = tag_[0] == keep ? 1 : 0;
    const T* src = img_ + y * w_ * c_ + ch_;
    float* out = buf_[slot].data();
    const size_t n = xtaps_.size();
    for (size_t i = 0; i < n; ++i) {
      const LinearTap& t = xtaps_[i];
      out[i] = lerp_tap(scaled_sample(src[t.i0 * c_], scale_), scaled_sample(src[t.i1 * c_], scale_),
                        t.w0, t.w1);
    }
    tag_[slot] = y;
    return out;
  }

  const T* img_;
  int64_t w_, c_, ch_;
  float scale_;
  // The two row buffers live in thread-local storage (no allocation per task once warm): a
  // BilinearRows is a per-task local, so one thread never has two alive at once.
  static std::vector<float>* thread_buffers() {
    thread_local std::vector<float> buffers[2];
    return buffers;
  }

  const std::vector<LinearTap>& xtaps_;
  std::vector<float>* buf_;
  int64_t tag_[2] = {-1, -1};
};

}  // namespace detail
}  // namespace edge
