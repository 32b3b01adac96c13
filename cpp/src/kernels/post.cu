#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/post.hpp"
#include "edge_sdk/kernels/post_math.hpp"

namespace edge {
namespace {

constexpr int kThreads = 256;

void check_launch(const char* what) { cuda_check(cudaGetLastError(), what); }

__global__ void row_first_max_kernel(const float* x, long long cols, float* value, int64_t* index) {
  __shared__ float sv[kThreads];
  __shared__ long long si[kThreads];
  const float* row = x + blockIdx.x * cols;
  float v = -INFINITY;
  long long i = 0x7fffffffffffffffll;
  for (long long p = threadIdx.x; p < cols; p += blockDim.x)
    if (score_before(row[p], p, v, i)) v = row[p], i = p;
  sv[threadIdx.x] = v;
  si[threadIdx.x] = i;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && score_before(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + s];
      si[threadIdx.x] = si[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    value[blockIdx.x] = sv[0];
    if (index) index[blockIdx.x] = si[0];
  }
}

__global__ void one_minus_kernel(const float* x, long long n, float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) out[i] = 1.0f - x[i];
}

__global__ void channel_mean_kernel(const float* x, long long n, long long c, long long plane, float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n * plane) return;
  const long long k = i / plane;
  out[i] = channel_mean_at(x + k * c * plane, c, plane, i % plane);
}

__global__ void multiply_plane_kernel(const float* x, const float* roi, long long n, long long plane, float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n * plane) out[i] = x[i] * roi[i % plane];
}

template <typename BankT>
__global__ void gather_kernel(const int64_t* best, const int64_t* nearest, long long l, const BankT* bank, long long c,
                              long long n, float* queries) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n * c) return;
  const long long k = i / c;
  queries[i] = bank_value(bank + nearest[k * l + best[k]] * c, i % c);
}

template <typename BankT>
__global__ void reweight_kernel(const float* features, long long l, long long c, const int64_t* best, const float* value,
                                const BankT* bank, const int64_t* support, long long neighbors, long long n,
                                float* scores) {
  const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (k >= n) return;
  double d[kMaxReweightNeighborsCuda];
  int64_t order[kMaxReweightNeighborsCuda];
  scores[k] = patchcore_reweight(features + (k * l + best[k]) * c, bank, support + k * neighbors, neighbors, c,
                                 value[k], d, order);
}

}  // namespace

void row_first_max_cuda(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index, void* stream) {
  if (rows <= 0) return;
  if (cols < 1) throw ArgumentError("cols: expected >= 1, got " + std::to_string(cols));
  row_first_max_kernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, cols, value,
                                                                                                      index);
  check_launch("row_first_max");
}

void one_minus_cuda(const float* x, int64_t n, float* out, void* stream) {
  if (n <= 0) return;
  one_minus_kernel<<<blocks_for(n, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n, out);
  check_launch("one_minus");
}

void channel_mean_cuda(const float* x, int64_t n, int64_t c, int64_t plane, float* out, void* stream) {
  if (n * plane <= 0) return;
  channel_mean_kernel<<<blocks_for(n * plane, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n, c,
                                                                                                         plane, out);
  check_launch("channel_mean");
}

void multiply_plane_cuda(const float* x, const float* roi, int64_t n, int64_t plane, float* out, void* stream) {
  if (n * plane <= 0) return;
  multiply_plane_kernel<<<blocks_for(n * plane, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, roi, n, plane, out);
  check_launch("multiply_plane");
}

void gather_bank_rows_cuda(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                           int64_t c, int64_t n, float* queries, void* stream) {
  if (n * c <= 0) return;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (bank_f16)
    gather_kernel<<<blocks_for(n * c, kThreads), kThreads, 0, s>>>(best, nearest, l, static_cast<const uint16_t*>(bank),
                                                                   c, n, queries);
  else
    gather_kernel<<<blocks_for(n * c, kThreads), kThreads, 0, s>>>(best, nearest, l, static_cast<const float*>(bank), c,
                                                                   n, queries);
  check_launch("gather_bank_rows");
}

void patchcore_reweight_cuda(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                             const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n,
                             float* scores, void* stream) {
  if (n <= 0) return;
  if (neighbors < 1 || neighbors > kMaxReweightNeighborsCuda)
    throw ArgumentError("neighbors: expected 1.." + std::to_string(kMaxReweightNeighborsCuda) + " on a CUDA device, got " +
                        std::to_string(neighbors));
  constexpr int kSmall = 64;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (bank_f16)
    reweight_kernel<<<blocks_for(n, kSmall), kSmall, 0, s>>>(features, l, c, best, value,
                                                             static_cast<const uint16_t*>(bank), support, neighbors, n,
                                                             scores);
  else
    reweight_kernel<<<blocks_for(n, kSmall), kSmall, 0, s>>>(features, l, c, best, value,
                                                             static_cast<const float*>(bank), support, neighbors, n,
                                                             scores);
  check_launch("patchcore_reweight");
}

}  // namespace edge
