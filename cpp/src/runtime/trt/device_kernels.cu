#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "device_kernels.cuh"
#include "edge_sdk/kernels/knn_math.hpp"

namespace edge {
namespace trt {
namespace {

constexpr int kThreads = 256;

unsigned blocks(long long n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error launching ") + what + ": " + cudaGetErrorString(err));
}

// (a, ia) comes before (b, ib) as the image score: NaN first, then the larger value, then the lower index.
__device__ bool better(float a, long long ia, float b, long long ib) {
  const bool na = isnan(a), nb = isnan(b);
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return ia < ib;
}

__global__ void row_argmax_kernel(const float* x, long long cols, float* value, int64_t* index) {
  __shared__ float sv[kThreads];
  __shared__ long long si[kThreads];
  const float* row = x + blockIdx.x * cols;
  float v = -INFINITY;
  long long i = 0x7fffffffffffffffll;
  for (long long p = threadIdx.x; p < cols; p += blockDim.x)
    if (better(row[p], p, v, i)) v = row[p], i = p;
  sv[threadIdx.x] = v;
  si[threadIdx.x] = i;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
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
  const long long k = i / plane, p = i % plane;
  const float* src = x + k * c * plane + p;
  float g = src[0];
  for (long long ch = 1; ch < c; ++ch) g += src[ch * plane];
  if (c > 1) g /= static_cast<float>(c);
  out[i] = g;
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
  const long long k = i / c, j = i % c;
  const int64_t row = nearest[k * l + best[k]];
  queries[i] = bank_value(bank + row * c, j);
}

template <typename BankT>
__global__ void reweight_kernel(const float* features, long long l, long long c, const int64_t* best, const float* value,
                                const BankT* bank, const int64_t* support, long long neighbors, long long n,
                                float* scores) {
  const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (k >= n) return;
  const float score = value[k];
  if (!isfinite(score)) {
    scores[k] = score;
    return;
  }
  const float* f = features + (k * l + best[k]) * c;
  double d[kMaxReweightNeighbors];
  long long order[kMaxReweightNeighbors];
  // Insertion sort on (exact squared distance, position in the support set): the order of the
  // CPU's k-NN over the support rows.
  for (long long j = 0; j < neighbors; ++j) {
    const double dj = exact_sq_dist(f, bank + support[k * neighbors + j] * c, c);
    long long pos = j;
    while (pos > 0 && neighbour_before(dj, j, d[pos - 1], order[pos - 1])) {
      d[pos] = d[pos - 1];
      order[pos] = order[pos - 1];
      --pos;
    }
    d[pos] = dj;
    order[pos] = j;
  }
  const double d0 = static_cast<double>(static_cast<float>(sqrt(d[0])));
  double sum = 0.0;
  for (long long j = 0; j < neighbors; ++j) sum += exp(static_cast<double>(static_cast<float>(sqrt(d[j]))) - d0);
  const double weight = 1.0 - 1.0 / sum;
  scores[k] = static_cast<float>(weight * static_cast<double>(score));
}

}  // namespace

void row_argmax_cuda(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index, cudaStream_t stream) {
  if (rows <= 0) return;
  if (cols < 1) throw std::invalid_argument("row_argmax_cuda: cols must be >= 1");
  row_argmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, cols, value, index);
  check_launch("row_argmax");
}

void one_minus_cuda(const float* x, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  one_minus_kernel<<<blocks(n, kThreads), kThreads, 0, stream>>>(x, n, out);
  check_launch("one_minus");
}

void channel_mean_cuda(const float* x, int64_t n, int64_t c, int64_t plane, float* out, cudaStream_t stream) {
  if (n * plane <= 0) return;
  channel_mean_kernel<<<blocks(n * plane, kThreads), kThreads, 0, stream>>>(x, n, c, plane, out);
  check_launch("channel_mean");
}

void multiply_plane_cuda(const float* x, const float* roi, int64_t n, int64_t plane, float* out, cudaStream_t stream) {
  if (n * plane <= 0) return;
  multiply_plane_kernel<<<blocks(n * plane, kThreads), kThreads, 0, stream>>>(x, roi, n, plane, out);
  check_launch("multiply_plane");
}

void gather_bank_rows_cuda(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                           int64_t c, int64_t n, float* queries, cudaStream_t stream) {
  if (n * c <= 0) return;
  if (bank_f16)
    gather_kernel<<<blocks(n * c, kThreads), kThreads, 0, stream>>>(best, nearest, l, static_cast<const uint16_t*>(bank),
                                                                    c, n, queries);
  else
    gather_kernel<<<blocks(n * c, kThreads), kThreads, 0, stream>>>(best, nearest, l, static_cast<const float*>(bank), c,
                                                                    n, queries);
  check_launch("gather_bank_rows");
}

void reweight_cuda(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                   const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n, float* scores,
                   cudaStream_t stream) {
  if (n <= 0) return;
  if (neighbors < 1 || neighbors > kMaxReweightNeighbors)
    throw std::invalid_argument("reweight_cuda: neighbors must be in 1.." + std::to_string(kMaxReweightNeighbors));
  constexpr int kSmall = 64;
  if (bank_f16)
    reweight_kernel<<<blocks(n, kSmall), kSmall, 0, stream>>>(features, l, c, best, value,
                                                              static_cast<const uint16_t*>(bank), support, neighbors, n,
                                                              scores);
  else
    reweight_kernel<<<blocks(n, kSmall), kSmall, 0, stream>>>(features, l, c, best, value,
                                                              static_cast<const float*>(bank), support, neighbors, n,
                                                              scores);
  check_launch("reweight");
}

}  // namespace trt
}  // namespace edge
