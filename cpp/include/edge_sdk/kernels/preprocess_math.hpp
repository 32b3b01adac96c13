// Preprocessing arithmetic shared by the CPU implementation and the CUDA kernel (EDGE_HD). The
// plain resampling is bilinear_sample / linear_tap from heatmap_math.hpp, so preprocess resizes
// exactly as resize_bilinear does; the antialiased one is aa_span / aa_weight below.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"

namespace edge {

// The input channel an output channel reads: a single gray channel feeds all three; a BGR image
// (OpenCV's order) feeds output channel ch from input channel 2 - ch, so BGR frames are read in
// place, with the arithmetic of their RGB twin and no conversion pass.
EDGE_HD int64_t preprocess_source_channel(int64_t out_channel, int64_t in_channels, bool bgr) {
  if (in_channels == 1) return 0;
  return bgr ? in_channels - 1 - out_channel : out_channel;
}

// (v - mean) / std: a division, not a multiplication by 1/std, so it rounds as the PyTorch
// reference (x - mean) / std does.
EDGE_HD float normalize_channel(float v, float mean, float std) { return (v - mean) / std; }

// Antialiased bilinear resampling along one axis, as torch's interpolate(mode="bilinear",
// antialias=True, align_corners=False) and PIL's BILINEAR resize compute it: output i is the
// normalized average of the inputs under a triangle filter centred on it and, when shrinking,
// stretched by the scale, so every input pixel contributes (a plain bilinear sample reads only 2 of
// the `scale` inputs per output, and a thin crack can fall between samples). Float arithmetic in
// torch's order. Upscaling, it equals plain bilinear (support 1, weights renormalized at the border).
struct AaAxis {
  float scale, support, invscale;
};

EDGE_HD AaAxis aa_axis(int64_t in_size, int64_t out_size) {
  AaAxis a;
  a.scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  a.support = a.scale >= 1.0f ? a.scale : 1.0f;
  a.invscale = a.scale >= 1.0f ? 1.0f / a.scale : 1.0f;
  return a;
}

// Inputs [first, first + count) feed output i.
EDGE_HD void aa_span(const AaAxis& a, int64_t i, int64_t in_size, int64_t* first, int64_t* count) {
  const float center = a.scale * (static_cast<float>(i) + 0.5f);
  int64_t lo = static_cast<int64_t>(center - a.support + 0.5f);
  lo = lo < 0 ? 0 : lo;
  int64_t hi = static_cast<int64_t>(center + a.support + 0.5f);
  hi = hi > in_size ? in_size : hi;
  *first = lo;
  *count = hi > lo ? hi - lo : 0;
}

// Unnormalized weight of input `first + t` for output i (the triangle filter).
EDGE_HD float aa_raw_weight(const AaAxis& a, int64_t i, int64_t first, int64_t t) {
  const float center = a.scale * (static_cast<float>(i) + 0.5f);
  float x = (static_cast<float>(first + t) - center + 0.5f) * a.invscale;
  x = x < 0.0f ? -x : x;
  return x < 1.0f ? 1.0f - x : 0.0f;
}

// Upper bound on the taps of one output (count of aa_span): sizes the CPU's weight tables.
EDGE_HD int64_t aa_max_taps(const AaAxis& a) { return static_cast<int64_t>(2.0f * a.support) + 3; }

}  // namespace edge
