// Heatmap arithmetic shared by the CPU implementation and the CUDA kernels (EDGE_HD), so the CPU
// tests check the formulas the GPU runs.
//
// Bilinear resampling follows torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False, antialias=False) on the CPU, operation for operation in float32: the same
// source-index formula, the same clamping, the same order of the two 1-D interpolations. The
// Gaussian blur follows scipy.ndimage.gaussian_filter(mode="reflect", truncate=4.0).
#pragma once

#include <cmath>
#include <cstdint>

#include "edge_sdk/common.hpp"

namespace edge {

// a * b + c rounded once, as the fused multiply-add that torch's CPU kernels are compiled to:
// matching it keeps resize_bilinear equal to torch's interpolate to the last bit, not just ~1e-6.
EDGE_HD float fused_mul_add(float a, float b, float c) {
#if defined(__CUDA_ARCH__) || defined(__FMA__) || defined(__aarch64__)
  return fmaf(a, b, c);  // one instruction on these targets
#else
  // Baseline x86-64 has no FMA instruction and the library fmaf is a slow call. The product of
  // two floats is exact in double, so this rounds only the sum (to double, then to float), which
  // equals the fused result except in vanishingly rare double-rounding ties; it vectorizes.
  return static_cast<float>(static_cast<double>(a) * static_cast<double>(b) + static_cast<double>(c));
#endif
}

// The two source samples and weights of one output coordinate along one axis.
struct LinearTap {
  int64_t i0, i1;
  float w0, w1;
};

// Output coordinate `o` of a resampling from `in` to `out` samples (align_corners=False).
// Mirrors torch's compute_source_index_and_lambda: equal sizes copy; otherwise the source index
// (o + 0.5) * in / out - 0.5, clamped at 0, split into floor and fraction, the upper sample clamped
// to the last one.
EDGE_HD LinearTap linear_tap(int64_t o, int64_t in, int64_t out) {
  LinearTap t;
  if (in == out) {
    t.i0 = o;
    t.i1 = o;
    t.w0 = 1.0f;
    t.w1 = 0.0f;
    return t;
  }
  const float ratio = static_cast<float>(in) / static_cast<float>(out);
  // Fused, as in torch: a separately rounded product moves the source index by an ulp, which at
  // coordinates in the hundreds changes the weights by ~1e-6 .. 1e-5.
  float src = fused_mul_add(ratio, static_cast<float>(o) + 0.5f, -0.5f);
  if (src < 0.0f) src = 0.0f;
  int64_t i0 = static_cast<int64_t>(floorf(src));
  if (i0 > in - 1) i0 = in - 1;
  float l1 = src - static_cast<float>(i0);
  l1 = l1 < 0.0f ? 0.0f : (l1 > 1.0f ? 1.0f : l1);
  t.i0 = i0;
  t.i1 = i0 + (i0 < in - 1 ? 1 : 0);
  t.w1 = l1;
  t.w0 = 1.0f - l1;
  return t;
}

// One 1-D linear interpolation, v0 * w0 + v1 * w1 with the first product fused (torch's
// contraction); the 2-D value is lerp(lerp(row y0), lerp(row y1)) in that order.
EDGE_HD float lerp_tap(float v0, float v1, float w0, float w1) {
  return fused_mul_add(v0, w0, v1 * w1);
}

// A source sample as the resampler sees it: converted to float, then multiplied by `scale`
// (preprocessing scales raw pixels before resizing; resize_bilinear uses scale 1, which is exact).
template <typename T>
EDGE_HD float scaled_sample(T v, float scale) {
  return static_cast<float>(v) * scale;
}

// Bilinear value at one output pixel of channel `ch` of an interleaved image (w pixels per row,
// c channels per pixel; c = 1 for a plane). The CPU path computes the same two row
// interpolations once per row and reuses them (bilinear_rows.hpp), in the same order.
template <typename T>
EDGE_HD float bilinear_sample(const T* img, int64_t w, int64_t c, int64_t ch, float scale,
                              const LinearTap& ty, const LinearTap& tx) {
  const T* r0 = img + ty.i0 * w * c + ch;
  const T* r1 = img + ty.i1 * w * c + ch;
  const float a = lerp_tap(scaled_sample(r0[tx.i0 * c], scale), scaled_sample(r0[tx.i1 * c], scale),
                           tx.w0, tx.w1);
  const float b = lerp_tap(scaled_sample(r1[tx.i0 * c], scale), scaled_sample(r1[tx.i1 * c], scale),
                           tx.w0, tx.w1);
  return lerp_tap(a, b, ty.w0, ty.w1);
}

// --- Gaussian blur ---------------------------------------------------------------------------
// scipy's truncate=4.0: radius int(4 * sigma + 0.5), taps exp(-x^2 / (2 sigma^2)) normalized.
constexpr double kBlurTruncate = 4.0;
// Taps travel to the GPU inside the kernel arguments, so their count has a fixed upper bound:
// radius <= 128 allows sigma below 32.125 (heatmaps are blurred with sigma around 4).
constexpr int kMaxBlurRadius = 128;

EDGE_HD int64_t blur_radius_unchecked(double sigma) {
  return static_cast<int64_t>(kBlurTruncate * sigma + 0.5);
}

// Normalized taps at offsets -radius..radius (2 * radius + 1 values), computed in double as
// scipy.ndimage._gaussian_kernel1d does.
EDGE_HD void blur_taps(double sigma, int radius, float* taps) {
  const double k = -0.5 / (sigma * sigma);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) sum += exp(k * static_cast<double>(i) * i);
  for (int i = -radius; i <= radius; ++i)
    taps[i + radius] = static_cast<float>(exp(k * static_cast<double>(i) * i) / sum);
}

// scipy's "reflect" border (d c b a | a b c d | d c b a), applied as often as needed: an index
// far outside [0, n) keeps bouncing between the two edges, so images smaller than the kernel
// radius are filtered exactly as scipy filters them.
EDGE_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  const int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// --- normalizations ----------------------------------------------------------------------------
EDGE_HD float minmax_value(float x, float lo, float range) {
  return range > 0.0f ? (x - lo) / range : 0.0f;
}

// clip((x - threshold) / (max - min) + 0.5, 0, 1): 0.5 at the threshold, 0 and 1 half a
// normal-score range below and above it.
EDGE_HD float calibrated_value(float x, float threshold, float range) {
  const float v = (x - threshold) / range + 0.5f;
  return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

}  // namespace edge
