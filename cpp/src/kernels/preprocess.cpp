#include "edge_sdk/kernels/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bilinear_rows.hpp"
#include "edge_sdk/scratch.hpp"
#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/preprocess_math.hpp"

namespace edge {
namespace {

constexpr int64_t kRowsPerTask = 32;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void validate_preprocess(const PreprocessParams& p, int64_t n, int64_t h, int64_t w, int64_t c) {
  if (n < 1 || h < 1 || w < 1)
    throw ArgumentError("images: expected a non-empty batch (N, H, W, C), got N=" +
                        std::to_string(n) + ", H=" + std::to_string(h) + ", W=" + std::to_string(w));
  if (h > kMaxImageSide || w > kMaxImageSide)
    throw ArgumentError("images: height and width must be at most " + std::to_string(kMaxImageSide) +
                        ", got " + std::to_string(h) + " x " + std::to_string(w));
  if (c != 1 && c != 3)
    throw ArgumentError("images: expected 1 or 3 channels (last axis, HWC), got " + std::to_string(c));
  if (p.out_h < 1 || p.out_w < 1 || p.out_h > kMaxImageSide || p.out_w > kMaxImageSide)
    throw ArgumentError("size: expected (out_h, out_w) in [1, " + std::to_string(kMaxImageSide) +
                        "], got (" + std::to_string(p.out_h) + ", " + std::to_string(p.out_w) + ")");
  if (p.channels != 1 && p.channels != 3)
    throw ArgumentError("channels: expected 1 or 3, got " + std::to_string(p.channels));
  if (p.channels == 1 && c != 1)
    throw ArgumentError("channels: 1 output channel needs single-channel images, got " +
                        std::to_string(c) + " channels (no RGB to gray conversion is done)");
  if (!std::isfinite(p.scale) || !(p.scale > 0.0f))
    throw ArgumentError("scale: expected a finite value > 0, got " + num(p.scale));
  for (int ch = 0; ch < p.channels; ++ch) {
    if (!std::isfinite(p.mean[ch]))
      throw ArgumentError("mean: entry " + std::to_string(ch) + " is not finite");
    if (!std::isfinite(p.std[ch]) || !(p.std[ch] > 0.0f))
      throw ArgumentError("std: entry " + std::to_string(ch) + " must be finite and > 0, got " +
                          num(p.std[ch]));
  }
}

namespace {

// Resampling to the same size weighs each pixel by exactly 1 and its neighbour by 0 (linear_tap),
// so the output is the normalized scaled samples themselves: tasks of (image, rows) write every
// output channel.
// The strided gather and the (vectorized) division run as separate loops: fused, or with the
// stride a compile-time 3 (which GCC vectorizes with shuffles), this was 2.5x slower.
template <typename T>
void normalize_rows(const T* src, int64_t C, int64_t w, int64_t rows, int64_t plane, const PreprocessParams& p,
                    float* out, float* row) {
  const int64_t oc = p.channels;
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * w * C;
    for (int64_t ch = 0; ch < oc; ++ch) {
      const int64_t sc = preprocess_source_channel(ch, C);
      if (ch == 0 || sc != preprocess_source_channel(ch - 1, C))
        for (int64_t x = 0; x < w; ++x) row[x] = scaled_sample(in[x * C + sc], p.scale);
      const float m = p.mean[ch], s = p.std[ch];
      float* o = out + ch * plane + r * w;
      for (int64_t x = 0; x < w; ++x) o[x] = normalize_channel(row[x], m, s);
    }
  }
}

template <typename T>
void preprocess_same_size(const T* images, int64_t n, int64_t h, int64_t w, int64_t c, const PreprocessParams& p,
                          float* out, ThreadPool& pool) {
  const int64_t blocks = (h + kRowsPerTask - 1) / kRowsPerTask, oc = p.channels;
  pool.parallel_for(n * blocks, [&](int64_t t0, int64_t t1) {
    struct SameSizeRowTag;
    std::vector<float>& row = thread_scratch<SameSizeRowTag, float>(static_cast<size_t>(w));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / blocks, r0 = (t % blocks) * kRowsPerTask;
      const int64_t rows = std::min(h, r0 + kRowsPerTask) - r0;
      const T* src = images + (img * h + r0) * w * c;
      float* dst = out + img * oc * h * w + r0 * w;
      normalize_rows(src, c, w, rows, h * w, p, dst, row.data());
    }
  });
}

// Antialiased resampling: the weights of one axis, output i reading inputs first[i] ..
// first[i] + count[i] - 1 with weights w[i * taps ...], each raw triangle weight divided by their
// sum (in float, in torch's order; the CUDA kernel computes the same values on the fly).
struct AaTable {
  int64_t taps = 0;
  std::vector<int64_t> first, count;
  std::vector<float> w;
};

void aa_table(int64_t in, int64_t out, AaTable& t) {
  const AaAxis a = aa_axis(in, out);
  t.taps = aa_max_taps(a);
  t.first.assign(static_cast<size_t>(out), 0);
  t.count.assign(static_cast<size_t>(out), 0);
  t.w.assign(static_cast<size_t>(out * t.taps), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    int64_t first = 0, count = 0;
    aa_span(a, i, in, &first, &count);
    if (count > t.taps) throw std::logic_error("preprocess: antialiasing span exceeds its table");
    float* w = &t.w[static_cast<size_t>(i * t.taps)];
    float total = 0.0f;
    for (int64_t k = 0; k < count; ++k) total += (w[k] = aa_raw_weight(a, i, first, k));
    if (total != 0.0f)
      for (int64_t k = 0; k < count; ++k) w[k] /= total;
    t.first[static_cast<size_t>(i)] = first;
    t.count[static_cast<size_t>(i)] = count;
  }
}

// Tasks are (image, source channel): the width is resampled for every input row into a
// scratch plane, then the height, and each output row is normalized into every output channel it
// feeds.
template <typename T>
void preprocess_antialias(const T* images, int64_t n, int64_t h, int64_t w, int64_t c, const PreprocessParams& p,
                          float* out, ThreadPool& pool) {
  const int64_t oh = p.out_h, ow = p.out_w, oc = p.channels;
  AaTable xt, yt;
  aa_table(w, ow, xt);
  aa_table(h, oh, yt);
  const int64_t src_channels = std::min<int64_t>(c, oc);
  pool.parallel_for(n * src_channels, [&](int64_t t0, int64_t t1) {
    struct AaPlaneTag;
    struct AaRowTag;
    std::vector<float>& plane = thread_scratch<AaPlaneTag, float>(static_cast<size_t>(h * ow));
    std::vector<float>& row = thread_scratch<AaRowTag, float>(static_cast<size_t>(ow));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / src_channels, sc = t % src_channels;
      const T* src = images + img * h * w * c;
      for (int64_t y = 0; y < h; ++y) {
        const T* in = src + y * w * c + sc;
        float* o = plane.data() + y * ow;
        for (int64_t x = 0; x < ow; ++x) {
          const float* wx = &xt.w[static_cast<size_t>(x * xt.taps)];
          const T* px = in + xt.first[static_cast<size_t>(x)] * c;
          float acc = 0.0f;
          for (int64_t k = 0; k < xt.count[static_cast<size_t>(x)]; ++k) acc += wx[k] * scaled_sample(px[k * c], p.scale);
          o[x] = acc;
        }
      }
      for (int64_t y = 0; y < oh; ++y) {
        std::fill(row.begin(), row.end(), 0.0f);
        const float* wy = &yt.w[static_cast<size_t>(y * yt.taps)];
        for (int64_t k = 0; k < yt.count[static_cast<size_t>(y)]; ++k) {
          const float* r = plane.data() + (yt.first[static_cast<size_t>(y)] + k) * ow;
          const float wk = wy[k];
          for (int64_t x = 0; x < ow; ++x) row[static_cast<size_t>(x)] += wk * r[x];
        }
        for (int64_t ch = 0; ch < oc; ++ch) {
          if (preprocess_source_channel(ch, c) != sc) continue;
          const float m = p.mean[ch], s = p.std[ch];
          float* o = out + ((img * oc + ch) * oh + y) * ow;
          for (int64_t x = 0; x < ow; ++x) o[x] = normalize_channel(row[static_cast<size_t>(x)], m, s);
        }
      }
    }
  });
}

// Tasks are (image, source channel, block of output rows). Each resampled row is normalized into
// every output channel it feeds (one, or three for a gray image and channels == 3).
template <typename T>
void preprocess_cpu_impl(const T* images, int64_t n, int64_t h, int64_t w, int64_t c,
                         const PreprocessParams& p, float* out, ThreadPool& pool) {
  validate_preprocess(p, n, h, w, c);
  const int64_t oh = p.out_h, ow = p.out_w, oc = p.channels;
  thread_local std::vector<LinearTap> xtaps_buf, ytaps_buf;
  const auto& xtaps = detail::linear_taps(w, ow, xtaps_buf);
  const auto& ytaps = detail::linear_taps(h, oh, ytaps_buf);
  const int64_t src_channels = std::min<int64_t>(c, oc);
  const int64_t blocks = (oh + kRowsPerTask - 1) / kRowsPerTask;
  if (oh == h && ow == w) return preprocess_same_size(images, n, h, w, c, p, out, pool);
  if (p.antialias) return preprocess_antialias(images, n, h, w, c, p, out, pool);
  pool.parallel_for(n * src_channels * blocks, [&](int64_t t0, int64_t t1) {
    struct RowTag;
    std::vector<float>& row = thread_scratch<RowTag, float>(static_cast<size_t>(ow));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % blocks;
      const int64_t sc = (t / blocks) % src_channels;
      const int64_t img = t / (blocks * src_channels);
      detail::BilinearRows<T> rows(images + img * h * w * c, w, c, sc, p.scale, xtaps);
      const int64_t r1 = std::min(oh, (blk + 1) * kRowsPerTask);
      for (int64_t r = blk * kRowsPerTask; r < r1; ++r) {
        rows.row(ytaps[static_cast<size_t>(r)], row.data());
        for (int64_t ch = 0; ch < oc; ++ch) {
          if (preprocess_source_channel(ch, c) != sc) continue;
          const float m = p.mean[ch], s = p.std[ch];
          float* o = out + ((img * oc + ch) * oh + r) * ow;
          for (int64_t x = 0; x < ow; ++x) o[x] = normalize_channel(row[static_cast<size_t>(x)], m, s);
        }
      }
    }
  });
}

template <typename T>
void preprocess_dispatch(const T* images, int64_t n, int64_t h, int64_t w, int64_t c,
                         const PreprocessParams& p, float* out, const Device& device) {
  validate_preprocess(p, n, h, w, c);
  if (device.is_cuda()) {
    require_device(device);
#ifdef EDGE_SDK_WITH_CUDA
    preprocess_cuda_host(images, n, h, w, c, p, out, device.index);
    return;
#endif
  }
  preprocess_cpu_impl(images, n, h, w, c, p, out, default_pool());
}

}  // namespace

void preprocess_cpu(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PreprocessParams& p, float* out, ThreadPool& pool) {
  preprocess_cpu_impl(images, n, h, w, c, p, out, pool);
}
void preprocess_cpu(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PreprocessParams& p, float* out, ThreadPool& pool) {
  preprocess_cpu_impl(images, n, h, w, c, p, out, pool);
}
void preprocess(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                const PreprocessParams& p, float* out, const Device& device) {
  preprocess_dispatch(images, n, h, w, c, p, out, device);
}
void preprocess(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                const PreprocessParams& p, float* out, const Device& device) {
  preprocess_dispatch(images, n, h, w, c, p, out, device);
}

}  // namespace edge
