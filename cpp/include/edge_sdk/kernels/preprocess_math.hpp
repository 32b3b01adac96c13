// Preprocessing arithmetic shared by the CPU implementation and the CUDA kernel (EDGE_HD). The
// resampling itself is bilinear_sample / linear_tap from heatmap_math.hpp, so preprocess resizes
// exactly as resize_bilinear does.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"

namespace edge {

// The input channel an output channel reads: a single gray channel feeds all three.
EDGE_HD int64_t preprocess_source_channel(int64_t out_channel, int64_t in_channels) {
  return in_channels == 1 ? 0 : out_channel;
}

// (v - mean) / std: a division, not a multiplication by 1/std, so it rounds as the PyTorch
// reference (x - mean) / std does.
EDGE_HD float normalize_channel(float v, float mean, float std) { return (v - mean) / std; }

}  // namespace edge
