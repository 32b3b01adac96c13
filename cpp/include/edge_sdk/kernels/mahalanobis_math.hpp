// Mahalanobis arithmetic shared by the CPU implementation and the CUDA kernels (EDGE_HD), so the
// CPU tests check the formulas the GPU runs.
//
// The distance of x to a Gaussian (mu, Sigma = chol chol^T) is ||z|| with z the solution of
// chol z = x - mu, found by forward substitution on the lower Cholesky factor. Sigma^-1 is never
// formed: the substitution is backward stable, an explicit inverse of an ill-conditioned
// covariance is not.
//
// Every dot product is split into kMahaLanes partial sums (lane k takes the terms j = k mod
// kMahaLanes in increasing j), combined pairwise in a fixed order. The lanes let the CPU vectorize
// along j and the GPU overlap loads; the tiled CPU path, which vectorizes across vectors instead,
// keeps exactly this grouping, so all paths round alike and a result does not depend on how the
// batch was split.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"

// The host side of these functions is always inlined: the CPU code compiles them inside its
// AVX-512 / AVX2 clones, and an out-of-line copy would run without those instructions (and
// round differently, without FMA contraction).
#if defined(__CUDACC__)
#define EDGE_HD_HOT EDGE_HD
#elif defined(__GNUC__)
#define EDGE_HD_HOT EDGE_HD __attribute__((always_inline))
#else
#define EDGE_HD_HOT EDGE_HD
#endif

#if defined(__CUDACC__)
#define EDGE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__) && !defined(__clang__)
#define EDGE_UNROLL _Pragma("GCC unroll 8")
#else
#define EDGE_UNROLL
#endif

namespace edge {

constexpr int kMahaLanes = 8;
constexpr float kFloatMax = 3.402823466e+38f;

// False for NaN and +-inf (no <cmath> call, so it reads the same on host and device).
EDGE_HD_HOT bool is_finite_value(float v) { return v >= -kFloatMax && v <= kFloatMax; }

// A usable Cholesky diagonal entry: finite and > 0 (zero would divide by zero; a negative or
// non-finite one means the factor is not one of a positive definite covariance).
EDGE_HD_HOT bool valid_cholesky_diagonal(float d) { return d > 0.0f && d <= kFloatMax; }

// The fixed pairwise combination of the lane partial sums.
EDGE_HD_HOT float combine_lanes(const float* p) {
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

// Row i of the forward substitution chol z = r:
//   z_i = (r_i - sum_{j<i} chol_ij z_j) / chol_ii.
// `row` points at chol_i0 (only row[0..i] is read: the lower triangle); z(j) returns z_j, j < i.
template <class ZAt>
EDGE_HD_HOT float substitution_row(const float* row, int64_t i, float r, ZAt z) {
  float p[kMahaLanes];
  EDGE_UNROLL
  for (int k = 0; k < kMahaLanes; ++k) p[k] = 0.0f;
  int64_t j = 0;
  for (; j + kMahaLanes <= i; j += kMahaLanes) {
    EDGE_UNROLL
    for (int k = 0; k < kMahaLanes; ++k) p[k] += row[j + k] * z(j + k);
  }
  EDGE_UNROLL
  for (int k = 0; k < kMahaLanes; ++k)
    if (j + k < i) p[k] += row[j + k] * z(j + k);
  return (r - combine_lanes(p)) / row[i];
}

// sum_i (a_i - b_i)^2 over c values, computed directly from the differences (no
// |a|^2 - 2ab + |b|^2 cancellation), with the same lane grouping.
EDGE_HD_HOT float squared_distance(const float* a, const float* b, int64_t c) {
  float p[kMahaLanes];
  EDGE_UNROLL
  for (int k = 0; k < kMahaLanes; ++k) p[k] = 0.0f;
  int64_t j = 0;
  for (; j + kMahaLanes <= c; j += kMahaLanes) {
    EDGE_UNROLL
    for (int k = 0; k < kMahaLanes; ++k) {
      const float d = a[j + k] - b[j + k];
      p[k] += d * d;
    }
  }
  EDGE_UNROLL
  for (int k = 0; k < kMahaLanes; ++k)
    if (j + k < c) {
      const float d = a[j + k] - b[j + k];
      p[k] += d * d;
    }
  return combine_lanes(p);
}

}  // namespace edge
