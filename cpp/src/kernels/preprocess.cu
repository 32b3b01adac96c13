// CUDA twin of preprocess.cpp: one thread per output pixel computes every output channel with the
// shared resampling (bilinear_sample, or aa_span / aa_raw_weight when antialiasing, in the CPU's
// order: each input column's height-weighted sum, then the width-weighted sum of those) and
// normalization (preprocess_math.hpp).
#include <algorithm>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/preprocess.hpp"
#include "edge_sdk/kernels/preprocess_math.hpp"

namespace edge {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGridYZ = 65535;

struct PreArgs {
  long long h, w, c, oh, ow;
  int channels;
  bool bgr;
  float scale;
  float mean[3], std[3];
};

template <typename T>
__global__ void preprocess_kernel(const T* images, PreArgs a, float* out) {
  const long long ox = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long oy = blockIdx.y, img = blockIdx.z;
  if (ox >= a.ow) return;
  const LinearTap ty = linear_tap(oy, a.h, a.oh);
  const LinearTap tx = linear_tap(ox, a.w, a.ow);
  const T* src = images + img * a.h * a.w * a.c;
  float v[3];
  for (long long ch = 0; ch < a.c && ch < a.channels; ++ch)
    v[ch] = bilinear_sample(src, a.w, a.c, ch, a.scale, ty, tx);
  for (int ch = 0; ch < a.channels; ++ch) {
    const float s = v[preprocess_source_channel(ch, a.c, a.bgr)];
    out[((img * a.channels + ch) * a.oh + oy) * a.ow + ox] = normalize_channel(s, a.mean[ch], a.std[ch]);
  }
}

template <typename T>
__global__ void preprocess_aa_kernel(const T* images, PreArgs a, AaAxis ax, AaAxis ay, float* out) {
  const long long ox = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long oy = blockIdx.y, img = blockIdx.z;
  if (ox >= a.ow) return;
  int64_t fx = 0, nx = 0, fy = 0, ny = 0;
  aa_span(ax, ox, a.w, &fx, &nx);
  aa_span(ay, oy, a.h, &fy, &ny);
  float totx = 0.0f, toty = 0.0f;
  for (int64_t k = 0; k < nx; ++k) totx += aa_raw_weight(ax, ox, fx, k);
  for (int64_t k = 0; k < ny; ++k) toty += aa_raw_weight(ay, oy, fy, k);
  const T* src = images + img * a.h * a.w * a.c;
  float v[3];
  for (long long ch = 0; ch < a.c && ch < a.channels; ++ch) {
    float acc = 0.0f;
    for (int64_t kx = 0; kx < nx; ++kx) {
      float wx = aa_raw_weight(ax, ox, fx, kx);
      if (totx != 0.0f) wx /= totx;
      const T* column = src + (fx + kx) * a.c + ch;
      float cs = 0.0f;
      for (int64_t ky = 0; ky < ny; ++ky) {
        float wy = aa_raw_weight(ay, oy, fy, ky);
        if (toty != 0.0f) wy /= toty;
        cs += wy * scaled_sample(column[(fy + ky) * a.w * a.c], a.scale);
      }
      acc += wx * cs;
    }
    v[ch] = acc;
  }
  for (int ch = 0; ch < a.channels; ++ch) {
    const float s = v[preprocess_source_channel(ch, a.c, a.bgr)];
    out[((img * a.channels + ch) * a.oh + oy) * a.ow + ox] = normalize_channel(s, a.mean[ch], a.std[ch]);
  }
}

template <typename T>
void launch(const T* images, int64_t n, int64_t h, int64_t w, int64_t c, const PreprocessParams& p,
            float* out, void* stream) {
  validate_preprocess(p, n, h, w, c);
  PreArgs a{};
  a.h = h;
  a.w = w;
  a.c = c;
  a.oh = p.out_h;
  a.ow = p.out_w;
  a.channels = p.channels;
  a.bgr = p.color_order == ColorOrder::BGR;
  a.scale = p.scale;
  for (int i = 0; i < 3; ++i) {
    a.mean[i] = p.mean[i];
    a.std[i] = p.std[i];
  }
  auto s = static_cast<cudaStream_t>(stream);
  for (int64_t b = 0; b < n; b += kMaxGridYZ) {
    const int64_t nb = std::min(kMaxGridYZ, n - b);
    const dim3 grid(blocks_for(p.out_w, kThreads), p.out_h, nb);
    if (p.antialias && (p.out_h != h || p.out_w != w))
      preprocess_aa_kernel<T><<<grid, kThreads, 0, s>>>(images + b * h * w * c, a, aa_axis(w, p.out_w),
                                                        aa_axis(h, p.out_h), out + b * p.channels * p.out_h * p.out_w);
    else
      preprocess_kernel<T><<<grid, kThreads, 0, s>>>(images + b * h * w * c, a,
                                                     out + b * p.channels * p.out_h * p.out_w);
  }
  EDGE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_host(const T* images, int64_t n, int64_t h, int64_t w, int64_t c,
                 const PreprocessParams& p, float* out, int device_index) {
  validate_preprocess(p, n, h, w, c);
  CudaDeviceGuard guard(device_index);
  const size_t in_count = static_cast<size_t>(n * h * w * c);
  const size_t out_count = static_cast<size_t>(n * p.channels * p.out_h * p.out_w);
  DeviceBuffer<T> din(in_count);
  DeviceBuffer<float> dout(out_count);
  din.upload(images, in_count);
  launch(din.get(), n, h, w, c, p, dout.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dout.download(out, out_count);
}

}  // namespace

void preprocess_cuda(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                     const PreprocessParams& p, float* out, void* stream) {
  launch(images, n, h, w, c, p, out, stream);
}
void preprocess_cuda(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                     const PreprocessParams& p, float* out, void* stream) {
  launch(images, n, h, w, c, p, out, stream);
}
void preprocess_cuda_host(const uint8_t* images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const PreprocessParams& p, float* out, int device_index) {
  launch_host(images, n, h, w, c, p, out, device_index);
}
void preprocess_cuda_host(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const PreprocessParams& p, float* out, int device_index) {
  launch_host(images, n, h, w, c, p, out, device_index);
}

}  // namespace edge
