// k-NN arithmetic shared by the CPU implementation and the CUDA kernels (EDGE_HD), so the CPU
// tests check what the GPU runs: binary16 decoding, the exact squared distance used to re-rank
// candidates, the running "k best" heap of the scans, and the order of the final results.
#pragma once

#include <cstdint>
#include <cstring>

#include "edge_sdk/common.hpp"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace edge {

// IEEE 754 binary16 bits -> float32; exact for every value (subnormals, infinities, NaN).
EDGE_HD float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // zero or subnormal: mantissa * 2^-24, exact in float32
    const float v = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  const uint32_t bits = exponent == 0x1f ? (sign | 0x7f800000u | (mantissa << 13))
                                         : (sign | ((exponent + 112u) << 23) | (mantissa << 13));
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

EDGE_HD float bank_value(const float* row, int64_t i) { return row[i]; }
EDGE_HD float bank_value(const uint16_t* row, int64_t i) { return half_bits_to_float(row[i]); }

// Squared Euclidean distance summed in double: each difference and square of two float32
// values is exact (or within 2^-53) in double, so this is the reference the re-rank trusts.
template <typename BankT>
EDGE_HD double exact_sq_dist(const float* q, const BankT* b, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    const double t = static_cast<double>(q[i]) - static_cast<double>(bank_value(b, i));
    s += t * t;
  }
  return s;
}

// Max-heap of n (value, index) pairs on value, largest at [0]: the running list of the n best
// candidates of a scan, whose root is the admission threshold. Replaces the root by (v, i).
// Entries start as (+inf, -1), so a list that is not full still has an infinite threshold.
EDGE_HD void heap_replace_top(float* val, int32_t* idx, int n, float v, int32_t i) {
  int pos = 0;
  for (;;) {
    int child = 2 * pos + 1;
    if (child >= n) break;
    if (child + 1 < n && val[child + 1] > val[child]) ++child;
    if (!(val[child] > v)) break;
    val[pos] = val[child];
    idx[pos] = idx[child];
    pos = child;
  }
  val[pos] = v;
  idx[pos] = i;
}

// Order of the final neighbours: ascending exact distance, ties broken by the lower index, so
// results do not depend on the thread count, the bank slicing or the device.
EDGE_HD bool neighbour_before(double da, int64_t ia, double db, int64_t ib) {
  return da < db || (da == db && ia < ib);
}

}  // namespace edge
