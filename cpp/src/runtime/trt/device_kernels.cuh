// Small device steps of the post-processing that the kernel library has no function for: the
// image score (first maximum of a grid or map, NaN winning, as the CPU post-processing's argmax),
// 1 - SSIM, the channel mean of |X - X^|, the region-of-interest product, and PatchCore's
// reweighting. Each reproduces the CPU post-processing's arithmetic (cpp/src/runtime/postprocess_*.cpp)
// so the device path's scores equal the host path's. All asynchronous on `stream`, no allocation,
// so they can be captured into a CUDA graph.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace edge {
namespace trt {

// Per row of x (rows x cols): value of the first maximum, or NaN when the row holds a NaN; index
// (may be nullptr) of that element (the first NaN when there is one).
void row_argmax_cuda(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index, cudaStream_t stream);

// out[i] = 1 - x[i] (float32)
void one_minus_cuda(const float* x, int64_t n, float* out, cudaStream_t stream);

// x (n, c, plane) -> out (n, plane): channels added in order in float32, divided by c when c > 1.
void channel_mean_cuda(const float* x, int64_t n, int64_t c, int64_t plane, float* out, cudaStream_t stream);

// out[k, p] = x[k, p] * roi[p] for n planes.
void multiply_plane_cuda(const float* x, const float* roi, int64_t n, int64_t plane, float* out, cudaStream_t stream);

// PatchCore reweighting, step 1: for each of n images, the bank row nearest to its most anomalous
// patch (nearest[k * l + best[k]]) as a float32 query row (queries: n x c).
void gather_bank_rows_cuda(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                           int64_t c, int64_t n, float* queries, cudaStream_t stream);

// Step 2: d = distances (ascending, float64 sums as the k-NN re-rank) from the image's most
// anomalous patch features[k, best[k]] to its `neighbors` support rows support[k, :] of the bank;
// scores[k] = (1 - 1 / sum_j exp(d_j - d_0)) * value[k] (value[k] when not finite).
// neighbors <= kMaxReweightNeighbors.
constexpr int64_t kMaxReweightNeighbors = 64;
void reweight_cuda(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                   const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n, float* scores,
                   cudaStream_t stream);

}  // namespace trt
}  // namespace edge
