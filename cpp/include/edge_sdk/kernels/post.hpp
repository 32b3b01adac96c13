// Small steps of the runtime's post-processing that the other kernels do not cover: image scores
// (maximum of a grid or map), 1 - SSIM, the channel mean of |X - X^|, the region-of-interest
// product and PatchCore's reweighting. CPU (host pointers) and CUDA (device pointers, on a
// stream, no synchronization, no allocation) implementations of the same arithmetic
// (post_math.hpp); the runtime's post-processing kinds call them on the device they run on.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// Per row of x (rows x cols): the first maximum (score_before: a NaN wins) and, when index is
// not nullptr, its column.
void row_first_max_cpu(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index);
// Per row: the maximum, NaN when the row holds one. Sixteen independent running maxima: the
// compiler vectorizes them (one serial max over a 256 x 256 map costs as much as making it).
void row_max_cpu(const float* x, int64_t rows, int64_t cols, float* value);
// out[i] = 1 - x[i]
void one_minus_cpu(const float* x, int64_t n, float* out);
// x (n, c, plane) -> out (n, plane): channel_mean_at for every pixel.
void channel_mean_cpu(const float* x, int64_t n, int64_t c, int64_t plane, float* out);
// out[k, p] = x[k, p] * roi[p] for n planes.
void multiply_plane_cpu(const float* x, const float* roi, int64_t n, int64_t plane, float* out);
// PatchCore, step 1: for each of n images, the bank row nearest to its most anomalous patch
// (nearest[k * l + best[k]]) as a float32 query row (queries: n x c).
void gather_bank_rows_cpu(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                          int64_t c, int64_t n, float* queries);
// Step 2: scores[k] = patchcore_reweight of value[k] with the patch features[k, best[k]] and
// the support rows support[k, :] (n x neighbors). scratch: neighbors doubles and int64s.
void patchcore_reweight_cpu(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                            const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n,
                            float* scores, double* scratch_d, int64_t* scratch_order);

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers, asynchronous on `stream` (a cudaStream_t).
void row_first_max_cuda(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index, void* stream);
void one_minus_cuda(const float* x, int64_t n, float* out, void* stream);
void channel_mean_cuda(const float* x, int64_t n, int64_t c, int64_t plane, float* out, void* stream);
void multiply_plane_cuda(const float* x, const float* roi, int64_t n, int64_t plane, float* out, void* stream);
void gather_bank_rows_cuda(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                           int64_t c, int64_t n, float* queries, void* stream);
// One thread per image with its sort in registers: neighbors <= kMaxReweightNeighborsCuda.
constexpr int64_t kMaxReweightNeighborsCuda = 64;
void patchcore_reweight_cuda(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                             const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n,
                             float* scores, void* stream);
#endif

}  // namespace edge
