// CUDA twin of knn.cpp. The scan sums squared differences in float32 (no cancellation, unlike
// the CPU's GEMM expansion, so it needs no certification pass): one query per thread, the bank
// streamed through shared-memory tiles, each thread keeping its k + kExtra best candidates in a
// heap (heap_replace_top) with the admission threshold in a register. The candidates are then
// re-ranked in double with exact_sq_dist and ordered by neighbour_before, as on the CPU.
#include <algorithm>
#include <cmath>
#include <memory>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/knn_math.hpp"

namespace edge {
namespace {

constexpr int kThreads = 128;       // queries per block, one per thread
constexpr int kTileRows = 32;       // bank rows per shared-memory tile (accumulators per thread)
constexpr int kTileDims = 32;       // dimensions per shared-memory tile
constexpr int kExtra = 8;           // candidates beyond k kept for the re-rank
constexpr int64_t kQueryBatch = 1 << 16;
constexpr int64_t kTargetBlocks = 512;
constexpr size_t kWorkspaceBudget = size_t{1} << 30;

// Queries of one batch x slices of the bank (grid.y), so that few queries still fill the GPU.
struct CudaPlan {
  int64_t batch, nslices, slice, kp;
  size_t bytes_per_query;  // candidates + re-rank buffers
};

CudaPlan plan(int64_t q, int64_t m, int64_t k) {
  CudaPlan p;
  const int64_t kp0 = std::min<int64_t>(m, k + kExtra);
  p.batch = std::min<int64_t>(q, kQueryBatch);
  const int64_t qblocks = (p.batch + kThreads - 1) / kThreads;
  p.nslices = std::max<int64_t>(1, std::min<int64_t>((kTargetBlocks + qblocks - 1) / qblocks, m / 1024));
  p.slice = (m + p.nslices - 1) / p.nslices;
  p.nslices = (m + p.slice - 1) / p.slice;
  p.kp = std::min(kp0, p.slice);
  // per query: value + index per candidate (scan), distance + index per candidate (re-rank)
  p.bytes_per_query = static_cast<size_t>(p.nslices * p.kp) * (sizeof(float) + sizeof(int32_t) + sizeof(double) + sizeof(int64_t));
  const int64_t fit = static_cast<int64_t>(kWorkspaceBudget / p.bytes_per_query);
  p.batch = std::max<int64_t>(1, std::min(p.batch, fit));
  return p;
}

template <typename BankT>
__global__ void knn_scan(const float* __restrict__ queries, long long nq,
                         const BankT* __restrict__ bank, long long m, long long d, long long slice,
                         int kp, float* cand_val, int32_t* cand_idx) {
  __shared__ float qs[kThreads][kTileDims + 1];  // +1: no bank conflicts on per-thread rows
  __shared__ float bs[kTileRows][kTileDims];
  const long long q_first = static_cast<long long>(blockIdx.x) * kThreads;
  const long long qi = q_first + threadIdx.x;
  const long long s = blockIdx.y;
  const long long b0 = s * slice, b1 = min(m, b0 + slice);
  const bool active = qi < nq;
  float* hv = cand_val + (s * nq + qi) * kp;
  int32_t* hi = cand_idx + (s * nq + qi) * kp;
  if (active)
    for (int j = 0; j < kp; ++j) {
      hv[j] = INFINITY;
      hi[j] = -1;
    }
  float thr = INFINITY;
  for (long long t0 = b0; t0 < b1; t0 += kTileRows) {
    float acc[kTileRows];
#pragma unroll
    for (int r = 0; r < kTileRows; ++r) acc[r] = 0.0f;
    for (long long d0 = 0; d0 < d; d0 += kTileDims) {
      for (int e = threadIdx.x; e < kThreads * kTileDims; e += kThreads) {
        const int r = e / kTileDims, c = e % kTileDims;
        const long long gq = q_first + r, gd = d0 + c;
        qs[r][c] = (gq < nq && gd < d) ? queries[gq * d + gd] : 0.0f;
      }
      for (int e = threadIdx.x; e < kTileRows * kTileDims; e += kThreads) {
        const int r = e / kTileDims, c = e % kTileDims;
        const long long gb = t0 + r, gd = d0 + c;
        bs[r][c] = (gb < b1 && gd < d) ? bank_value(bank + gb * d, gd) : 0.0f;
      }
      __syncthreads();
      const int dn = static_cast<int>(min(static_cast<long long>(kTileDims), d - d0));
      for (int x = 0; x < dn; ++x) {
        const float qv = qs[threadIdx.x][x];
#pragma unroll
        for (int r = 0; r < kTileRows; ++r) {
          const float diff = qv - bs[r][x];  // same address for all threads: a broadcast
          acc[r] = fmaf(diff, diff, acc[r]);
        }
      }
      __syncthreads();
    }
    if (active) {
#pragma unroll
      for (int r = 0; r < kTileRows; ++r)
        if (t0 + r < b1 && acc[r] < thr) {
          heap_replace_top(hv, hi, kp, acc[r], static_cast<int32_t>(t0 + r));
          thr = hv[0];
        }
    }
  }
}

// In-place heapsort of n (distance, index) pairs into neighbour_before order.
__device__ void sort_neighbours(double* dist, int64_t* idx, int n) {
  auto sift = [&](int pos, int len) {
    for (;;) {
      int child = 2 * pos + 1;
      if (child >= len) return;
      if (child + 1 < len && neighbour_before(dist[child], idx[child], dist[child + 1], idx[child + 1])) ++child;
      if (!neighbour_before(dist[pos], idx[pos], dist[child], idx[child])) return;
      const double td = dist[pos];
      dist[pos] = dist[child];
      dist[child] = td;
      const int64_t ti = idx[pos];
      idx[pos] = idx[child];
      idx[child] = ti;
      pos = child;
    }
  };
  for (int i = n / 2 - 1; i >= 0; --i) sift(i, n);
  for (int end = n - 1; end > 0; --end) {
    const double td = dist[0];
    dist[0] = dist[end];
    dist[end] = td;
    const int64_t ti = idx[0];
    idx[0] = idx[end];
    idx[end] = ti;
    sift(0, end);
  }
}

template <typename BankT>
__global__ void knn_rerank(const float* __restrict__ queries, long long nq,
                           const BankT* __restrict__ bank, long long d, long long nslices, int kp,
                           const int32_t* cand_idx, double* work_dist, int64_t* work_idx,
                           long long k, float* distances, int64_t* indices) {
  const long long qi = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (qi >= nq) return;
  const long long width = nslices * kp;
  double* wd = work_dist + qi * width;
  int64_t* wi = work_idx + qi * width;
  const float* qv = queries + qi * d;
  int n = 0;
  for (long long s = 0; s < nslices; ++s) {
    const int32_t* ids = cand_idx + (s * nq + qi) * kp;
    for (int j = 0; j < kp; ++j)
      if (ids[j] >= 0) {
        wd[n] = exact_sq_dist(qv, bank + static_cast<long long>(ids[j]) * d, d);
        wi[n] = ids[j];
        ++n;
      }
  }
  sort_neighbours(wd, wi, n);
  for (long long r = 0; r < k; ++r) {
    distances[qi * k + r] = static_cast<float>(sqrt(wd[r]));
    indices[qi * k + r] = wi[r];
  }
}

template <typename BankT>
void run(const float* queries, int64_t q, const BankT* bank, int64_t m, int64_t d, int64_t k,
         float* distances, int64_t* indices, void* workspace, cudaStream_t stream) {
  const CudaPlan p = plan(q, m, k);
  char* ws = static_cast<char*>(workspace);
  const size_t cand = static_cast<size_t>(p.nslices * p.batch * p.kp);
  auto* cand_val = reinterpret_cast<float*>(ws);
  auto* cand_idx = reinterpret_cast<int32_t*>(ws + cand * sizeof(float));
  auto* work_dist = reinterpret_cast<double*>(ws + cand * (sizeof(float) + sizeof(int32_t)));
  auto* work_idx = reinterpret_cast<int64_t*>(ws + cand * (sizeof(float) + sizeof(int32_t) + sizeof(double)));
  for (int64_t q0 = 0; q0 < q; q0 += p.batch) {
    const int64_t nb = std::min(p.batch, q - q0);
    const dim3 grid(blocks_for(nb, kThreads), static_cast<unsigned>(p.nslices));
    knn_scan<BankT><<<grid, kThreads, 0, stream>>>(queries + q0 * d, nb, bank, m, d, p.slice,
                                                   static_cast<int>(p.kp), cand_val, cand_idx);
    knn_rerank<BankT><<<blocks_for(nb, kThreads), kThreads, 0, stream>>>(
        queries + q0 * d, nb, bank, d, p.nslices, static_cast<int>(p.kp), cand_idx, work_dist,
        work_idx, k, distances + q0 * k, indices + q0 * k);
    EDGE_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

size_t knn_cuda_workspace_bytes(int64_t q, int64_t m, int64_t k) {
  const CudaPlan p = plan(q, m, k);
  // 8-byte alignment of the double and int64 sections
  return static_cast<size_t>(p.batch) * p.bytes_per_query + 16;
}

void knn_cuda(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
              int64_t d, int64_t k, float* distances, int64_t* indices, void* workspace,
              void* stream) {
  validate_knn(q, m, d, k);
  auto s = static_cast<cudaStream_t>(stream);
  if (bank_type == KnnBankType::F16)
    run(queries, q, static_cast<const uint16_t*>(bank), m, d, k, distances, indices, workspace, s);
  else
    run(queries, q, static_cast<const float*>(bank), m, d, k, distances, indices, workspace, s);
}

struct KnnCudaIndex::Impl {
  Impl(const void* host_bank, KnnBankType t, int64_t rows, int64_t cols, int dev)
      : bank(static_cast<size_t>(rows * cols) * (t == KnnBankType::F16 ? 2 : 4)),
        type(t), m(rows), d(cols), device(dev) {
    bank.upload(static_cast<const char*>(host_bank), bank.size());
  }
  DeviceBuffer<char> bank;  // m x d float32 or binary16, as given
  KnnBankType type;
  int64_t m, d;
  int device;
};

KnnCudaIndex::KnnCudaIndex(const void* bank, KnnBankType bank_type, int64_t m, int64_t d,
                           int device_index) {
  validate_knn(1, m, d, 1);
  if (bank == nullptr) throw ArgumentError("bank: null pointer");
  CudaDeviceGuard guard(device_index);
  impl_ = std::make_unique<const Impl>(bank, bank_type, m, d, device_index);
}

KnnCudaIndex::~KnnCudaIndex() {
  if (!impl_) return;
  // buffers are freed on their own device
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(impl_->device);
  impl_.reset();
  cudaSetDevice(previous);
}
KnnCudaIndex::KnnCudaIndex(KnnCudaIndex&&) noexcept = default;
KnnCudaIndex& KnnCudaIndex::operator=(KnnCudaIndex&&) noexcept = default;

int64_t KnnCudaIndex::rows() const { return impl_->m; }
int64_t KnnCudaIndex::dim() const { return impl_->d; }
KnnBankType KnnCudaIndex::bank_type() const { return impl_->type; }
int KnnCudaIndex::device_index() const { return impl_->device; }
const void* KnnCudaIndex::device_bank() const { return impl_->bank.get(); }

void KnnCudaIndex::search_device(const float* queries, int64_t q, int64_t k, float* distances,
                                 int64_t* indices, void* workspace, void* stream) const {
  knn_cuda(queries, q, impl_->bank.get(), impl_->type, impl_->m, impl_->d, k, distances, indices,
           workspace, stream);
}

void KnnCudaIndex::search_host(const float* queries, int64_t q, int64_t k, float* distances,
                               int64_t* indices) const {
  const Impl& ix = *impl_;
  validate_knn(q, ix.m, ix.d, k);
  CudaDeviceGuard guard(ix.device);
  const size_t qn = static_cast<size_t>(q * ix.d), out = static_cast<size_t>(q * k);
  DeviceBuffer<float> dq(qn), ddist(out);
  DeviceBuffer<int64_t> didx(out);
  DeviceBuffer<char> ws(knn_cuda_workspace_bytes(q, ix.m, k));
  dq.upload(queries, qn);
  search_device(dq.get(), q, k, ddist.get(), didx.get(), ws.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  ddist.download(distances, out);
  didx.download(indices, out);
}

void knn_cuda_host(const float* queries, int64_t q, const void* bank, KnnBankType bank_type,
                   int64_t m, int64_t d, int64_t k, float* distances, int64_t* indices,
                   int device_index) {
  validate_knn(q, m, d, k);
  KnnCudaIndex(bank, bank_type, m, d, device_index).search_host(queries, q, k, distances, indices);
}

}  // namespace edge
