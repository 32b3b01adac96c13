// CUDA twin of mahalanobis.cpp: one thread per (vector, location), the same per-row substitution
// and squared distance (mahalanobis_math.hpp), the same checks (reported through `status`, then
// explained on the host with the CPU's messages).
#include <cfloat>
#include <cmath>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "edge_sdk/kernels/mahalanobis_math.hpp"

namespace edge {
namespace {

// z_j of this thread in the workspace, laid out [j][thread] so a warp's accesses coalesce.
struct WorkspaceAt {
  const float* ws;
  long long stride, t;
  __device__ float operator()(long long j) const { return ws[j * stride + t]; }
};

// Thread t handles vector t % n at location t / n: threads of a warp mostly share a location, so
// their chol reads are broadcasts.
__global__ void solve_kernel(const float* x, const float* mu, const float* chol, long long n,
                             long long l, long long c, float* dist, float* zout, float* ws,
                             unsigned long long* status) {
  const long long total = n * l;
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (t >= total) return;
  const long long loc = t / n, v = t % n;
  const float* xv = x + (v * l + loc) * c;
  const float* m = mu + loc * c;
  const float* ch = chol + loc * c * c;
  bool bad = false;
  for (long long i = 0; i < c; ++i) bad |= !valid_cholesky_diagonal(ch[i * c + i]);
  float norm = 0.0f;
  if (!bad) {
    const WorkspaceAt z{ws, total, t};
    for (long long i = 0; i < c; ++i) {
      const float zi = substitution_row(ch + i * c, i, xv[i] - m[i], z);
      ws[i * total + t] = zi;
      if (zout) zout[(v * l + loc) * c + i] = zi;
      norm += zi * zi;
      bad |= !is_finite_value(zi);
    }
    if (dist) {
      dist[v * l + loc] = sqrtf(norm);
      bad |= !is_finite_value(norm);
    }
  }
  if (bad && status) atomicMin(status, static_cast<unsigned long long>(loc));
}

__global__ void nearest_kernel(const float* z, const float* centroids, long long n, long long l,
                               long long k, long long c, float* dist,
                               unsigned long long* status) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (t >= n * l) return;
  const long long loc = t / n, v = t % n;
  const float* zv = z + (v * l + loc) * c;
  const float* cl = centroids + loc * k * c;
  float best = INFINITY;
  bool bad = false;
  for (long long j = 0; j < k; ++j) {
    const float s = squared_distance(zv, cl + j * c, c);
    bad |= !is_finite_value(s);
    best = s < best ? s : best;
  }
  dist[v * l + loc] = sqrtf(best);
  if (bad && status) atomicMin(status, static_cast<unsigned long long>(loc));
}

constexpr int kThreads = 128;

}  // namespace

int64_t mahalanobis_cuda_workspace_floats(int64_t n, int64_t l, int64_t c) { return n * l * c; }

void mahalanobis_whiten_cuda(const float* features, const float* mean, const float* chol,
                             int64_t n, int64_t l, int64_t c, float* dist, float* z,
                             float* workspace, unsigned long long* status, void* stream) {
  validate_mahalanobis_sizes(n, l, c);
  if (!dist && !z) throw ArgumentError("dist, z: expected at least one output");
  auto s = static_cast<cudaStream_t>(stream);
  if (status) EDGE_CUDA_CHECK(cudaMemsetAsync(status, 0xff, sizeof(unsigned long long), s));
  solve_kernel<<<blocks_for(n * l, kThreads), kThreads, 0, s>>>(features, mean, chol, n, l, c,
                                                                dist, z, workspace, status);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void local_nearest_cuda(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                        int64_t c, float* dist, unsigned long long* status, void* stream) {
  validate_local_nearest_sizes(n, l, k, c);
  auto s = static_cast<cudaStream_t>(stream);
  if (status) EDGE_CUDA_CHECK(cudaMemsetAsync(status, 0xff, sizeof(unsigned long long), s));
  nearest_kernel<<<blocks_for(n * l, kThreads), kThreads, 0, s>>>(z, centroids, n, l, k, c, dist,
                                                                  status);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void mahalanobis_whiten_cuda_host(const float* features, const float* mean, const float* chol,
                                  int64_t n, int64_t l, int64_t c, float* dist, float* z,
                                  int device_index) {
  validate_mahalanobis_sizes(n, l, c);
  CudaDeviceGuard guard(device_index);
  const size_t nx = static_cast<size_t>(n * l * c), nd = static_cast<size_t>(n * l);
  DeviceBuffer<float> dx(nx), dmu(static_cast<size_t>(l * c)), dch(static_cast<size_t>(l * c * c)),
      ddist(dist ? nd : 0), dz(z ? nx : 0),
      ws(static_cast<size_t>(mahalanobis_cuda_workspace_floats(n, l, c)));
  DeviceBuffer<unsigned long long> dstatus(1);
  dx.upload(features, nx);
  dmu.upload(mean, static_cast<size_t>(l * c));
  dch.upload(chol, static_cast<size_t>(l * c * c));
  mahalanobis_whiten_cuda(dx.get(), dmu.get(), dch.get(), n, l, c, dist ? ddist.get() : nullptr,
                          z ? dz.get() : nullptr, ws.get(), dstatus.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  unsigned long long status = kCudaStatusOk;
  dstatus.download(&status, 1);
  if (dist) ddist.download(dist, nd);
  if (z) dz.download(z, nx);
  if (status != kCudaStatusOk)
    for (int64_t loc = static_cast<int64_t>(status); loc < l; ++loc)
      explain_mahalanobis_failure(features, mean, chol, n, l, c, loc, dist, z);
}

void local_nearest_cuda_host(const float* z, const float* centroids, int64_t n, int64_t l,
                             int64_t k, int64_t c, float* dist, int device_index) {
  validate_local_nearest_sizes(n, l, k, c);
  CudaDeviceGuard guard(device_index);
  const size_t nz = static_cast<size_t>(n * l * c), nc = static_cast<size_t>(l * k * c),
               nd = static_cast<size_t>(n * l);
  DeviceBuffer<float> dz(nz), dc(nc), ddist(nd);
  DeviceBuffer<unsigned long long> dstatus(1);
  dz.upload(z, nz);
  dc.upload(centroids, nc);
  local_nearest_cuda(dz.get(), dc.get(), n, l, k, c, ddist.get(), dstatus.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  unsigned long long status = kCudaStatusOk;
  dstatus.download(&status, 1);
  ddist.download(dist, nd);
  if (status != kCudaStatusOk)
    for (int64_t loc = static_cast<int64_t>(status); loc < l; ++loc)
      explain_local_nearest_failure(z, centroids, n, l, k, c, loc, dist);
}

}  // namespace edge
