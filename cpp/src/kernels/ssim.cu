// CUDA twin of ssim.cpp: the same separable filtering, taps and per-pixel formula (ssim_math.hpp).
#include "cuda_util.cuh"
#include "edge_sdk/kernels/ssim.hpp"
#include "edge_sdk/kernels/ssim_math.hpp"

namespace edge {
namespace {

struct SsimArgs {
  int win;
  float c1, c2;
  float taps[kSsimMaxWindow];
};

// One thread per (plane, input row, output column): the five horizontally filtered moments.
__global__ void ssim_hpass(const float* a, const float* b, long long planes, long long h,
                           long long w, long long mw, SsimArgs args, float* hbuf) {
  const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long row = blockIdx.y, plane = blockIdx.z;
  if (x >= mw) return;
  const float* ra = a + (plane * h + row) * w + x;
  const float* rb = b + (plane * h + row) * w + x;
  float s[5] = {0, 0, 0, 0, 0};
  for (int k = 0; k < args.win; ++k) {
    const float t = args.taps[k], va = ra[k], vb = rb[k];
    s[0] += t * va;
    s[1] += t * vb;
    s[2] += t * (va * va);
    s[3] += t * (vb * vb);
    s[4] += t * (va * vb);
  }
  const long long stride = planes * h * mw;
  const long long o = (plane * h + row) * mw + x;
  for (int q = 0; q < 5; ++q) hbuf[q * stride + o] = s[q];
}

__global__ void ssim_vpass(const float* hbuf, long long planes, long long h, long long mh,
                           long long mw, SsimArgs args, float* map) {
  const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long r = blockIdx.y, plane = blockIdx.z;
  if (x >= mw) return;
  const long long stride = planes * h * mw;
  float m[5] = {0, 0, 0, 0, 0};
  for (int k = 0; k < args.win; ++k) {
    const long long o = (plane * h + r + k) * mw + x;
    for (int q = 0; q < 5; ++q) m[q] += args.taps[k] * hbuf[q * stride + o];
  }
  map[(plane * mh + r) * mw + x] = ssim_from_moments(m[0], m[1], m[2], m[3], m[4], args.c1, args.c2);
}

// One block per image: mean over each channel's map, then over channels.
__global__ void ssim_reduce(const float* map, long long c, long long per_plane, float* mean) {
  __shared__ double part[256];
  const long long img = blockIdx.x;
  double total = 0.0;
  for (long long ch = 0; ch < c; ++ch) {
    const float* p = map + (img * c + ch) * per_plane;
    double s = 0.0;
    for (long long i = threadIdx.x; i < per_plane; i += blockDim.x) s += p[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off /= 2) {
      if (threadIdx.x < off) part[threadIdx.x] += part[threadIdx.x + off];
      __syncthreads();
    }
    if (threadIdx.x == 0) total += part[0] / static_cast<double>(per_plane);
    __syncthreads();
  }
  if (threadIdx.x == 0) mean[img] = static_cast<float>(total / static_cast<double>(c));
}

}  // namespace

int64_t ssim_cuda_workspace_floats(int64_t n, int64_t c, int64_t h, int64_t w, const SsimParams& p) {
  const int64_t mh = ssim_map_height(p, h), mw = ssim_map_width(p, w);
  return 5 * n * c * h * mw + n * c * mh * mw;
}

void ssim_cuda(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
               const SsimParams& p, float* mean, float* map, float* workspace, void* stream) {
  validate_ssim(p, h, w);
  if (n == 0) return;
  SsimArgs args{};
  args.win = p.window;
  gaussian_taps(p.window, p.sigma, args.taps);
  args.c1 = (p.k1 * p.data_range) * (p.k1 * p.data_range);
  args.c2 = (p.k2 * p.data_range) * (p.k2 * p.data_range);
  const int64_t mh = ssim_map_height(p, h), mw = ssim_map_width(p, w), planes = n * c;
  float* hbuf = workspace;
  float* out_map = map ? map : workspace + 5 * planes * h * mw;
  auto s = static_cast<cudaStream_t>(stream);
  constexpr int kThreads = 128;
  ssim_hpass<<<dim3(blocks_for(mw, kThreads), h, planes), kThreads, 0, s>>>(a, b, planes, h, w, mw, args, hbuf);
  ssim_vpass<<<dim3(blocks_for(mw, kThreads), mh, planes), kThreads, 0, s>>>(hbuf, planes, h, mh, mw, args, out_map);
  ssim_reduce<<<n, 256, 0, s>>>(out_map, c, mh * mw, mean);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void ssim_cuda_host(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
                    const SsimParams& p, float* mean, float* map, int device_index) {
  if (n == 0) return;
  CudaDeviceGuard guard(device_index);
  const size_t count = static_cast<size_t>(n * c * h * w);
  const size_t map_count = static_cast<size_t>(n * c * ssim_map_height(p, h) * ssim_map_width(p, w));
  DeviceBuffer<float> da(count), db(count), dmean(n), dmap(map ? map_count : 0),
      ws(static_cast<size_t>(ssim_cuda_workspace_floats(n, c, h, w, p)));
  da.upload(a, count);
  db.upload(b, count);
  ssim_cuda(da.get(), db.get(), n, c, h, w, p, dmean.get(), map ? dmap.get() : nullptr, ws.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dmean.download(mean, n);
  if (map) dmap.download(map, map_count);
}

}  // namespace edge
