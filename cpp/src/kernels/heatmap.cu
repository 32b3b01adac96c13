// CUDA twins of heatmap.cpp: the same taps, border rule and per-element formulas
// (heatmap_math.hpp), one thread per output value.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"

namespace edge {
namespace {

constexpr int kThreads = 256;

__global__ void resize_kernel(const float* x, long long h, long long w, long long oh, long long ow,
                              float* out) {
  const long long ox = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long oy = blockIdx.y, img = blockIdx.z;
  if (ox >= ow) return;
  const LinearTap ty = linear_tap(oy, h, oh);
  const LinearTap tx = linear_tap(ox, w, ow);
  out[(img * oh + oy) * ow + ox] = bilinear_sample(x + img * h * w, w, 1, 0, 1.0f, ty, tx);
}

struct BlurArgs {
  int radius;
  float taps[2 * kMaxBlurRadius + 1];  // taps[radius + k] for offset k
};

// Vertical pass: one thread per pixel, symmetric taps paired as on the CPU.
__global__ void blur_vertical(const float* x, long long h, long long w, BlurArgs args, float* tmp) {
  const long long col = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long y = blockIdx.y, img = blockIdx.z;
  if (col >= w) return;
  const float* src = x + img * h * w + col;
  const float* mid = args.taps + args.radius;
  float acc = mid[0] * src[y * w];
  for (int k = 1; k <= args.radius; ++k)
    acc += mid[k] * (src[reflect_index(y - k, h) * w] + src[reflect_index(y + k, h) * w]);
  tmp[(img * h + y) * w + col] = acc;
}

__global__ void blur_horizontal(const float* tmp, long long h, long long w, BlurArgs args,
                                float* out) {
  const long long col = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long y = blockIdx.y, img = blockIdx.z;
  if (col >= w) return;
  const float* row = tmp + (img * h + y) * w;
  const float* mid = args.taps + args.radius;
  float acc = mid[0] * row[col];
  for (int k = 1; k <= args.radius; ++k)
    acc += mid[k] * (row[reflect_index(col - k, w)] + row[reflect_index(col + k, w)]);
  out[(img * h + y) * w + col] = acc;
}

__global__ void abs_diff_kernel(const float* a, const float* b, long long count, float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < count) out[i] = fabsf(a[i] - b[i]);
}

// One block per plane: min and max (NaN propagates, so the host can detect it).
__global__ void minmax_reduce(const float* x, long long plane, float* lohi) {
  __shared__ float lo_s[kThreads], hi_s[kThreads];
  const float* p = x + blockIdx.x * plane;
  float lo = p[0], hi = p[0];
  for (long long i = threadIdx.x; i < plane; i += blockDim.x) {
    const float v = p[i];
    if (v != v) { lo = v; hi = v; break; }
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  lo_s[threadIdx.x] = lo;
  hi_s[threadIdx.x] = hi;
  __syncthreads();
  for (int off = blockDim.x / 2; off > 0; off /= 2) {
    if (threadIdx.x < off) {
      const float l = lo_s[threadIdx.x + off], u = hi_s[threadIdx.x + off];
      // fminf would drop a NaN; keep it so the whole plane is flagged.
      lo_s[threadIdx.x] = (l != l || lo_s[threadIdx.x] != lo_s[threadIdx.x]) ? NAN : fminf(lo_s[threadIdx.x], l);
      hi_s[threadIdx.x] = (u != u || hi_s[threadIdx.x] != hi_s[threadIdx.x]) ? NAN : fmaxf(hi_s[threadIdx.x], u);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    lohi[2 * blockIdx.x] = lo_s[0];
    lohi[2 * blockIdx.x + 1] = hi_s[0];
  }
}

__global__ void minmax_apply(const float* x, long long plane, const float* lohi, float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long img = blockIdx.y;
  if (i >= plane) return;
  const float lo = lohi[2 * img], hi = lohi[2 * img + 1];
  const float range = hi - lo;
  // A plane with NaN/inf gets NaN (the host-pointer path raises for it before returning).
  const bool bad = !isfinite(lo) || !isfinite(hi) || !isfinite(range);
  out[img * plane + i] = bad ? NAN : minmax_value(x[img * plane + i], lo, range);
}

__global__ void calibrated_kernel(const float* x, long long count, float threshold, float range,
                                  float* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < count) out[i] = calibrated_value(x[i], threshold, range);
}

// Grid for one thread per element of `count`, up to 2^31 - 1 blocks along x.
unsigned flat_blocks(long long count) { return blocks_for(count, kThreads); }

// gridDim.y and .z are limited to 65535: batches are launched in slices of at most that many.
constexpr int64_t kMaxGridYZ = 65535;

}  // namespace

void resize_bilinear_cuda(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                          int64_t out_w, float* out, void* stream) {
  validate_resize(n, h, w, out_h, out_w);
  auto s = static_cast<cudaStream_t>(stream);
  for (int64_t b = 0; b < n; b += kMaxGridYZ) {
    const int64_t nb = std::min(kMaxGridYZ, n - b);
    resize_kernel<<<dim3(blocks_for(out_w, kThreads), out_h, nb), kThreads, 0, s>>>(
        x + b * h * w, h, w, out_h, out_w, out + b * out_h * out_w);
  }
  EDGE_CUDA_CHECK(cudaGetLastError());
}

int64_t gaussian_blur_cuda_workspace_floats(int64_t n, int64_t h, int64_t w) { return n * h * w; }

void gaussian_blur_cuda(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                        float* workspace, void* stream) {
  validate_blur(n, h, w, sigma);
  BlurArgs args{};
  args.radius = gaussian_radius(sigma);
  blur_taps(sigma, args.radius, args.taps);
  auto s = static_cast<cudaStream_t>(stream);
  for (int64_t b = 0; b < n; b += kMaxGridYZ) {
    const int64_t nb = std::min(kMaxGridYZ, n - b), off = b * h * w;
    const dim3 grid(blocks_for(w, kThreads), h, nb);
    blur_vertical<<<grid, kThreads, 0, s>>>(x + off, h, w, args, workspace + off);
    blur_horizontal<<<grid, kThreads, 0, s>>>(workspace + off, h, w, args, out + off);
  }
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void abs_diff_cuda(const float* a, const float* b, int64_t count, float* out, void* stream) {
  if (count <= 0) return;
  abs_diff_kernel<<<flat_blocks(count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a, b, count, out);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void minmax_normalize_cuda(const float* x, int64_t n, int64_t plane, float* out, float* workspace,
                           void* stream) {
  if (n < 1 || plane < 1)
    throw ArgumentError("x: expected a non-empty batch, got " + std::to_string(n) + " planes of " +
                        std::to_string(plane) + " values");
  auto s = static_cast<cudaStream_t>(stream);
  minmax_reduce<<<n, kThreads, 0, s>>>(x, plane, workspace);
  for (int64_t b = 0; b < n; b += kMaxGridYZ) {
    const int64_t nb = std::min(kMaxGridYZ, n - b);
    minmax_apply<<<dim3(flat_blocks(plane), nb), kThreads, 0, s>>>(x + b * plane, plane,
                                                                   workspace + 2 * b, out + b * plane);
  }
  EDGE_CUDA_CHECK(cudaGetLastError());
}

void calibrated_normalize_cuda(const float* x, int64_t count, const Calibration& c, float* out,
                               void* stream) {
  validate_calibration(c);
  if (count <= 0) return;
  calibrated_kernel<<<flat_blocks(count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, count, c.threshold, c.max - c.min, out);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

// ---- host-pointer conveniences ------------------------------------------------------------------

void resize_bilinear_cuda_host(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                               int64_t out_w, float* out, int device_index) {
  CudaDeviceGuard guard(device_index);
  const size_t in_count = static_cast<size_t>(n * h * w), out_count = static_cast<size_t>(n * out_h * out_w);
  DeviceBuffer<float> dx(in_count), dout(out_count);
  dx.upload(x, in_count);
  resize_bilinear_cuda(dx.get(), n, h, w, out_h, out_w, dout.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dout.download(out, out_count);
}

void gaussian_blur_cuda_host(const float* x, int64_t n, int64_t h, int64_t w, double sigma,
                             float* out, int device_index) {
  CudaDeviceGuard guard(device_index);
  const size_t count = static_cast<size_t>(n * h * w);
  DeviceBuffer<float> dx(count), dout(count),
      ws(static_cast<size_t>(gaussian_blur_cuda_workspace_floats(n, h, w)));
  dx.upload(x, count);
  gaussian_blur_cuda(dx.get(), n, h, w, sigma, dout.get(), ws.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dout.download(out, count);
}

void abs_diff_cuda_host(const float* a, const float* b, int64_t count, float* out, int device_index) {
  if (count <= 0) return;
  CudaDeviceGuard guard(device_index);
  const size_t c = static_cast<size_t>(count);
  DeviceBuffer<float> da(c), db(c), dout(c);
  da.upload(a, c);
  db.upload(b, c);
  abs_diff_cuda(da.get(), db.get(), count, dout.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dout.download(out, c);
}

void minmax_normalize_cuda_host(const float* x, int64_t n, int64_t plane, float* out,
                                int device_index) {
  CudaDeviceGuard guard(device_index);
  const size_t count = static_cast<size_t>(n * plane);
  DeviceBuffer<float> dx(count), dout(count), ws(static_cast<size_t>(2 * n));
  dx.upload(x, count);
  minmax_normalize_cuda(dx.get(), n, plane, dout.get(), ws.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  // Same errors as the CPU path, raised before any output is returned.
  std::vector<float> lohi(static_cast<size_t>(2 * n));
  ws.download(lohi.data(), lohi.size());
  for (int64_t i = 0; i < n; ++i) {
    const float lo = lohi[static_cast<size_t>(2 * i)], hi = lohi[static_cast<size_t>(2 * i + 1)];
    if (!std::isfinite(lo) || !std::isfinite(hi))
      throw ArgumentError("x: image " + std::to_string(i) + " contains NaN or infinity");
    if (!std::isfinite(hi - lo))
      throw ArgumentError("x: image " + std::to_string(i) + " has a value range whose width overflows float32");
  }
  dout.download(out, count);
}

void calibrated_normalize_cuda_host(const float* x, int64_t count, const Calibration& c, float* out,
                                    int device_index) {
  if (count <= 0) return;
  CudaDeviceGuard guard(device_index);
  const size_t n = static_cast<size_t>(count);
  DeviceBuffer<float> dx(n), dout(n);
  dx.upload(x, n);
  calibrated_normalize_cuda(dx.get(), count, c, dout.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dout.download(out, n);
}

}  // namespace edge
