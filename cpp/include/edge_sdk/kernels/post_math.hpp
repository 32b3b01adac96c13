// Arithmetic of the small post-processing steps (post.hpp), shared by their CPU implementation
// and their CUDA kernels (EDGE_HD), so the CPU tests check what the GPU runs: the order of image
// scores, the channel mean of a difference map and PatchCore's reweighting of an image score.
#pragma once

#include <cmath>
#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/kernels/knn_math.hpp"

namespace edge {

// (a, ia) comes before (b, ib) as an image score: NaN first (a grid that holds one is not
// judged), then the larger value, then the lower index (NumPy's argmax: the first maximum).
EDGE_HD bool score_before(float a, int64_t ia, float b, int64_t ib) {
  const bool na = a != a, nb = b != b;
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return ia < ib;
}

// Pixel p of the channel mean of x (c planes of `plane` values): channels added in order in
// float32, divided by c when c > 1 (NumPy's mean(axis=1, dtype=float32) over a few channels).
EDGE_HD float channel_mean_at(const float* x, int64_t c, int64_t plane, int64_t p) {
  float g = x[p];
  for (int64_t ch = 1; ch < c; ++ch) g += x[ch * plane + p];
  if (c > 1) g /= static_cast<float>(c);
  return g;
}

// PatchCore's reweighting (anomalib, edge_sdk.models.patchcore) of one image score: d = the
// distances from the most anomalous patch to its `neighbors` support rows of the bank (support:
// bank row indices), sorted ascending as the k-NN kernel orders results (exact double squared
// distances, ties to the lower position); weight = 1 - softmax(d)[0]; returns weight * score.
// A score that is not finite is returned as it is. d and order: `neighbors` entries of scratch.
template <typename BankT>
EDGE_HD float patchcore_reweight(const float* patch, const BankT* bank, const int64_t* support, int64_t neighbors,
                                 int64_t c, float score, double* d, int64_t* order) {
  if (!(score >= -3.402823466e+38f && score <= 3.402823466e+38f)) return score;
  // Insertion sort on (exact squared distance, position in the support set): few rows.
  for (int64_t j = 0; j < neighbors; ++j) {
    const double dj = exact_sq_dist(patch, bank + support[j] * c, c);
    int64_t pos = j;
    while (pos > 0 && neighbour_before(dj, j, d[pos - 1], order[pos - 1])) {
      d[pos] = d[pos - 1];
      order[pos] = order[pos - 1];
      --pos;
    }
    d[pos] = dj;
    order[pos] = j;
  }
  // Distances are reported in float32 (as the k-NN kernel returns them), the softmax in double.
  const double d0 = static_cast<double>(static_cast<float>(sqrt(d[0])));
  double sum = 0.0;
  for (int64_t j = 0; j < neighbors; ++j) sum += exp(static_cast<double>(static_cast<float>(sqrt(d[j]))) - d0);
  const double weight = 1.0 - 1.0 / sum;
  return static_cast<float>(weight * static_cast<double>(score));
}

}  // namespace edge
