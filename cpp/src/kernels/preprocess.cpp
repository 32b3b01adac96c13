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

ColorOrder parse_color_order(const std::string& text, const char* arg) {
  if (text == "rgb") return ColorOrder::RGB;
  if (text == "bgr") return ColorOrder::BGR;
  // Bounded: the value may be anything a caller typed.
  const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  throw ArgumentError(std::string(arg) + ": expected \"rgb\" or \"bgr\", got \"" + shown + "\"");
}

const char* color_order_name(ColorOrder order) {
  switch (order) {
    case ColorOrder::RGB: return "rgb";
    case ColorOrder::BGR: return "bgr";
  }
  return "invalid";
}

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
  if (p.color_order != ColorOrder::RGB && p.color_order != ColorOrder::BGR)
    throw ArgumentError("color_order: expected RGB (0) or BGR (1), got " + std::to_string(static_cast<int>(p.color_order)));
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
  const bool bgr = p.color_order == ColorOrder::BGR;
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * w * C;
    for (int64_t ch = 0; ch < oc; ++ch) {
      const int64_t sc = preprocess_source_channel(ch, C, bgr);
      if (ch == 0 || sc != preprocess_source_channel(ch - 1, C, bgr))
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
// first[i] + count[i] - 1, each raw triangle weight divided by their sum (in float, in torch's
// order; the CUDA kernel computes the same values on the fly). Stored [tap][output] with zero
// weights past count[i], so a pass can run over outputs for each tap (independent accumulators,
// no chain of dependent additions); a zero weight on a zero-padded input adds exactly +0.
struct AaTable {
  int64_t taps = 0;
  std::vector<int64_t> first, count;
  std::vector<float> w;  // w[k * out + i]
  float weight(int64_t k, int64_t i, int64_t out) const { return w[static_cast<size_t>(k * out + i)]; }
};

void aa_table(int64_t in, int64_t out, AaTable& t) {
  const AaAxis a = aa_axis(in, out);
  t.taps = aa_max_taps(a);
  t.first.assign(static_cast<size_t>(out), 0);
  t.count.assign(static_cast<size_t>(out), 0);
  t.w.assign(static_cast<size_t>(t.taps * out), 0.0f);
  std::vector<float> w(static_cast<size_t>(t.taps));
  for (int64_t i = 0; i < out; ++i) {
    int64_t first = 0, count = 0;
    aa_span(a, i, in, &first, &count);
    if (count > t.taps) throw std::logic_error("preprocess: antialiasing span exceeds its table");
    float total = 0.0f;
    for (int64_t k = 0; k < count; ++k) total += (w[static_cast<size_t>(k)] = aa_raw_weight(a, i, first, k));
    for (int64_t k = 0; k < count; ++k)
      t.w[static_cast<size_t>(k * out + i)] = total != 0.0f ? w[static_cast<size_t>(k)] / total : w[static_cast<size_t>(k)];
    t.first[static_cast<size_t>(i)] = first;
    t.count[static_cast<size_t>(i)] = count;
  }
}

// Tasks are (image, block of output rows). The height is resampled first, over whole
// interleaved input rows (contiguous, so it vectorizes; a large camera frame shrinks to the
// output's rows at once), then the width of each source channel; each output row is normalized
// into every output channel it feeds. Every output is sum_kx wx * (sum_ky wy * v), both sums in
// increasing tap order from 0, as the CUDA kernel computes it.
template <typename T>
void preprocess_antialias(const T* images, int64_t n, int64_t h, int64_t w, int64_t c, const PreprocessParams& p,
                          float* out, ThreadPool& pool) {
  const int64_t oh = p.out_h, ow = p.out_w, oc = p.channels;
  AaTable xt, yt;
  aa_table(w, ow, xt);
  aa_table(h, oh, yt);
  const int64_t src_channels = std::min<int64_t>(c, oc);
  const bool bgr = p.color_order == ColorOrder::BGR;
  const int64_t blocks = (oh + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(n * blocks, [&](int64_t t0, int64_t t1) {
    struct AaColumnTag;
    struct AaRowTag;
    // the height-resampled row (channels interleaved), zero-padded so every tap of the table
    // reads inside it
    std::vector<float>& col = thread_scratch<AaColumnTag, float>(static_cast<size_t>((w + xt.taps) * c));
    std::vector<float>& row = thread_scratch<AaRowTag, float>(static_cast<size_t>(ow));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / blocks, blk = t % blocks;
      const T* src = images + img * h * w * c;
      for (int64_t y = blk * kRowsPerTask; y < std::min(oh, (blk + 1) * kRowsPerTask); ++y) {
        std::fill(col.begin(), col.end(), 0.0f);
        float* cv = col.data();
        const int64_t fy = yt.first[static_cast<size_t>(y)];
        for (int64_t k = 0; k < yt.count[static_cast<size_t>(y)]; ++k) {
          const float wk = yt.weight(k, y, oh);
          const T* in = src + (fy + k) * w * c;
          for (int64_t i = 0; i < w * c; ++i) cv[i] += wk * scaled_sample(in[i], p.scale);
        }
        for (int64_t sc = 0; sc < src_channels; ++sc) {
          std::fill(row.begin(), row.end(), 0.0f);
          for (int64_t k = 0; k < xt.taps; ++k)
            for (int64_t x = 0; x < ow; ++x)
              row[static_cast<size_t>(x)] += xt.weight(k, x, ow) * cv[(xt.first[static_cast<size_t>(x)] + k) * c + sc];
          for (int64_t ch = 0; ch < oc; ++ch) {
            if (preprocess_source_channel(ch, c, bgr) != sc) continue;
            const float m = p.mean[ch], s = p.std[ch];
            float* o = out + ((img * oc + ch) * oh + y) * ow;
            for (int64_t x = 0; x < ow; ++x) o[x] = normalize_channel(row[static_cast<size_t>(x)], m, s);
          }
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
  if (oh == h && ow == w) return preprocess_same_size(images, n, h, w, c, p, out, pool);
  if (p.antialias) return preprocess_antialias(images, n, h, w, c, p, out, pool);
  thread_local std::vector<LinearTap> xtaps_buf, ytaps_buf;
  const auto& xtaps = detail::linear_taps(w, ow, xtaps_buf);
  const auto& ytaps = detail::linear_taps(h, oh, ytaps_buf);
  const int64_t src_channels = std::min<int64_t>(c, oc);
  const bool bgr = p.color_order == ColorOrder::BGR;
  const int64_t blocks = (oh + kRowsPerTask - 1) / kRowsPerTask;
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
          if (preprocess_source_channel(ch, c, bgr) != sc) continue;
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
  run_on_device(
      device, [&](ThreadPool& pool) { preprocess_cpu_impl(images, n, h, w, c, p, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(preprocess_cuda_host(images, n, h, w, c, p, out, index);) });
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
