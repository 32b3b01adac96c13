// CUDA twin of rank.cpp: one thread per (acquisition, pixel) runs extremes_step over the frames
// (rank_math.hpp); consecutive threads read consecutive values of each frame.
#include <algorithm>

#include "cuda_util.cuh"
#include "edge_sdk/kernels/rank.hpp"
#include "edge_sdk/kernels/rank_math.hpp"

namespace edge {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void extremes_kernel(const T* frames, long long n, long long k, long long pixels, T* lo, T* hi) {
  const long long total = n * pixels, step = (long long)gridDim.x * blockDim.x;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total; t += step) {
    const long long a = t / pixels, i = t % pixels;
    const T* p = frames + a * k * pixels + i;
    T l = p[0], h = p[0];
    for (long long f = 1; f < k; ++f) extremes_step(p[f * pixels], l, h);
    lo[t] = l;
    hi[t] = h;
  }
}

}  // namespace

template <typename T>
void frame_extremes_cuda(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, void* stream) {
  validate_frame_extremes(n, k, pixels);
  constexpr unsigned kMaxBlocks = 1u << 20;  // a grid-stride loop covers the rest
  const unsigned blocks = std::min(blocks_for(n * pixels, kThreads), kMaxBlocks);
  extremes_kernel<T><<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      frames, n, k, pixels, lo, hi);
  EDGE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void frame_extremes_cuda_host(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, int device_index) {
  validate_frame_extremes(n, k, pixels);
  CudaDeviceGuard guard(device_index);
  const size_t in = static_cast<size_t>(n * k * pixels), out = static_cast<size_t>(n * pixels);
  DeviceBuffer<T> df(in), dl(out), dh(out);
  df.upload(frames, in);
  frame_extremes_cuda(df.get(), n, k, pixels, dl.get(), dh.get(), nullptr);
  EDGE_CUDA_CHECK(cudaDeviceSynchronize());
  dl.download(lo, out);
  dh.download(hi, out);
}

template void frame_extremes_cuda<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, uint8_t*, uint8_t*, void*);
template void frame_extremes_cuda<float>(const float*, int64_t, int64_t, int64_t, float*, float*, void*);
template void frame_extremes_cuda_host<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, uint8_t*, uint8_t*, int);
template void frame_extremes_cuda_host<float>(const float*, int64_t, int64_t, int64_t, float*, float*, int);

}  // namespace edge
