// CPU micro-kernels of the k-NN scan (internal to knn.cpp). A tile is mr packed queries against
// a panel of nr packed bank vectors: the kernel forms the mr x nr dot products in registers and
// offers each approximate ranking value ||b||^2 - 2 q.b to the query's candidate heap.
//
// Packed layouts (both centred on the bank mean by the caller, zero-padded):
//   queries: [d][mr] floats per group of mr queries
//   bank:    [d][nr] floats per panel of nr vectors, 64-byte aligned; norms[nr] = ||b||^2, +inf
//            for padding lanes so they are never admitted.
// A bf16 kernel reads the same layouts with depth ceil(d / 2): each 32-bit slot holds the
// bfloat16 values of two consecutive dimensions (the lower one in the low half; an odd d is padded
// with zero), and the norms stay float32.
#pragma once

#include <cstdint>

#include "edge_sdk/kernels/knn.hpp"

namespace edge {
namespace knn_detail {

// heap_val/heap_idx: the nq heaps of kp entries, query i's at offset i * kp.
using TileFn = void (*)(const float* qpack, const float* bpanel, const float* bnorm, int64_t d,
                        int nq, int32_t base, float* heap_val, int32_t* heap_idx, int kp);
// Widens n binary16 values to float32.
using HalfRowFn = void (*)(const uint16_t* src, float* dst, int64_t n);

struct TileKernel {
  KnnIsa isa;
  int mr, nr;
  TileFn tile;
  HalfRowFn half_to_float;
  bool bf16 = false;  // the packed layouts hold bfloat16 pairs (depth ceil(d / 2))
};

// isa must be Scalar, Avx2, Avx512 or Avx512Bf16 and supported by this CPU.
TileKernel tile_kernel(KnnIsa isa);
bool cpu_has(KnnIsa isa);

}  // namespace knn_detail
}  // namespace edge
