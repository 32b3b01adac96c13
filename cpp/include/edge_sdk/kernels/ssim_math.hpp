// SSIM arithmetic shared by the CPU implementation and the CUDA kernel (EDGE_HD), so the CPU
// tests check the formulas the GPU runs. Definitions follow Wang et al. 2004 and pytorch_msssim:
// Gaussian window, population (not sample) statistics, "valid" filtering.
#pragma once

#include <cmath>

#include "edge_sdk/common.hpp"

namespace edge {

constexpr int kSsimMaxWindow = 63;

// Normalized 1-D Gaussian taps at offsets i - size/2 (size odd), computed in double.
EDGE_HD void gaussian_taps(int size, float sigma, float* taps) {
  double sum = 0.0;
  for (int i = 0; i < size; ++i) {
    const double x = static_cast<double>(i - size / 2);
    const double v = exp(-(x * x) / (2.0 * static_cast<double>(sigma) * sigma));
    taps[i] = static_cast<float>(v);
    sum += v;
  }
  for (int i = 0; i < size; ++i) taps[i] = static_cast<float>(taps[i] / sum);
}

// SSIM at one pixel from the Gaussian-weighted moments E[x], E[y], E[x^2], E[y^2], E[xy].
EDGE_HD float ssim_from_moments(float mx, float my, float exx, float eyy, float exy, float c1,
                                float c2) {
  const float vx = exx - mx * mx;
  const float vy = eyy - my * my;
  const float cxy = exy - mx * my;
  const float cs = (2.0f * cxy + c2) / (vx + vy + c2);
  const float lum = (2.0f * mx * my + c1) / (mx * mx + my * my + c1);
  return lum * cs;
}

}  // namespace edge
