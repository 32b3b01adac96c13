// Where the runtime pipeline runs: the CPU (kernels on a thread pool, buffers in host memory) or a
// CUDA device (kernels on a stream, buffers in device memory). The pipeline's stages (runtime.cpp)
// and the post-processing kinds (postprocess_*.cpp) are written once against this: each kernel
// call below picks the kernel's CPU or CUDA implementation, so the CPU tests run every stage the
// GPU runs; only the kernels' device code and the CUDA calls are GPU-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "edge_sdk/common.hpp"
#include "edge_sdk/cuda_memory.hpp"
#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "edge_sdk/kernels/post.hpp"
#include "edge_sdk/kernels/preprocess.hpp"
#include "edge_sdk/kernels/ssim.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

struct Exec {
  Device device;               // cpu, or cuda:N
  ThreadPool* pool = nullptr;  // the CPU kernels' threads
  void* stream = nullptr;      // the CUDA kernels' stream (cudaStream_t)
  // The bundle's bf16 variant runs (CPU only): post-processing tables that every call streams
  // (PaDiM's and MhBC's Cholesky factors) are rounded to bfloat16, as the network computes.
  bool bf16_tables = false;
  bool cuda() const { return device.is_cuda(); }
};

// One allocation in the exec's memory (host: 64-byte aligned and zeroed), resized on demand: a
// size seen before allocates nothing. Growing on a CUDA exec waits for the stream first.
class ExecBuffer {
 public:
  ExecBuffer() = default;
  explicit ExecBuffer(const Exec& exec) : exec_(exec) {}
  ~ExecBuffer() { release(); }
  ExecBuffer(ExecBuffer&& o) noexcept : exec_(o.exec_), ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  ExecBuffer& operator=(ExecBuffer&& o) noexcept;
  ExecBuffer(const ExecBuffer&) = delete;
  ExecBuffer& operator=(const ExecBuffer&) = delete;

  void* reserve(size_t bytes, const char* what);
  template <class T>
  T* get(size_t count, const char* what) {
    return static_cast<T*>(reserve(count * sizeof(T), what));
  }
  template <class T>
  T* data() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void release() noexcept;
  Exec exec_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Copies between host and exec memory, ordered on the exec's stream (CPU: memcpy).
void exec_copy(const Exec& e, void* dst, const void* src, size_t bytes, const char* what);
// Waits until the exec's queued work is done (CPU: nothing to wait for).
void exec_sync(const Exec& e, const char* what);

// ---- kernels on the exec's device ----------------------------------------------------------------

template <typename Pixel>
void run_preprocess(const Exec& e, const Pixel* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PreprocessParams& p, float* out) {
  if (!e.cuda()) return preprocess_cpu(images, n, h, w, c, p, out, *e.pool);
  EDGE_CUDA_ONLY(preprocess_cuda(images, n, h, w, c, p, out, e.stream);)
}

// grid (n x gh x gw) -> out (n x h x w): bilinear resize, then Gaussian blur when sigma > 0 (the
// models' resize_blur). scratch: the CUDA path's resized planes and blur workspace.
inline void run_resize_blur(const Exec& e, const float* grid, int64_t n, int64_t gh, int64_t gw, int64_t h, int64_t w,
                            double sigma, float* out, ExecBuffer& scratch) {
  if (!e.cuda()) return resize_blur_cpu(grid, n, gh, gw, h, w, sigma, out, *e.pool);
  (void)scratch;
  EDGE_CUDA_ONLY(
      if (sigma <= 0) return resize_bilinear_cuda(grid, n, gh, gw, h, w, out, e.stream);
      const size_t plane = static_cast<size_t>(n * h * w);
      float* tmp = scratch.get<float>(plane + static_cast<size_t>(gaussian_blur_cuda_workspace_floats(n, h, w)), "map");
      resize_bilinear_cuda(grid, n, gh, gw, h, w, tmp, e.stream);
      gaussian_blur_cuda(tmp, n, h, w, sigma, out, tmp + plane, e.stream);)
}

inline void run_gaussian_blur(const Exec& e, const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                              ExecBuffer& scratch) {
  if (!e.cuda()) return gaussian_blur_cpu(x, n, h, w, sigma, out, *e.pool);
  (void)scratch;
  EDGE_CUDA_ONLY(gaussian_blur_cuda(
      x, n, h, w, sigma, out, scratch.get<float>(static_cast<size_t>(gaussian_blur_cuda_workspace_floats(n, h, w)), "blur"),
      e.stream);)
}

inline void run_ssim(const Exec& e, const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
                     const SsimParams& p, float* mean, ExecBuffer& scratch) {
  if (!e.cuda()) return ssim_cpu(a, b, n, c, h, w, p, mean, nullptr, *e.pool);
  (void)scratch;
  EDGE_CUDA_ONLY(ssim_cuda(a, b, n, c, h, w, p, mean, nullptr,
                           scratch.get<float>(static_cast<size_t>(ssim_cuda_workspace_floats(n, c, h, w, p)), "ssim"),
                           e.stream);)
}

inline void run_abs_diff(const Exec& e, const float* a, const float* b, int64_t count, float* out) {
  if (!e.cuda()) return abs_diff_cpu(a, b, count, out, *e.pool);
  EDGE_CUDA_ONLY(abs_diff_cuda(a, b, count, out, e.stream);)
}

inline void run_mahalanobis_whiten(const Exec& e, const float* f, const float* mean, const float* chol,
                                   const PackedCholesky* packed, int64_t n, int64_t l, int64_t c, float* dist, float* z,
                                   ExecBuffer& scratch) {
  if (!e.cuda()) {
    // Small batches (below half the vector width, where the batched solve leaves lanes empty)
    // solve on the factors packed across locations: 1.2-2x faster at batch 1-8, bit-identical.
    if (packed && 2 * n <= packed->width()) return mahalanobis_whiten_packed_cpu(f, mean, chol, *packed, n, dist, z, *e.pool);
    return mahalanobis_whiten_cpu(f, mean, chol, n, l, c, dist, z, *e.pool);
  }
  (void)scratch;
  EDGE_CUDA_ONLY(mahalanobis_whiten_cuda(
      f, mean, chol, n, l, c, dist, z,
      scratch.get<float>(static_cast<size_t>(mahalanobis_cuda_workspace_floats(n, l, c)), "mahalanobis"), nullptr,
      e.stream);)
}

inline void run_local_nearest(const Exec& e, const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                              int64_t c, float* dist) {
  if (!e.cuda()) return local_nearest_cpu(z, centroids, n, l, k, c, dist, *e.pool);
  EDGE_CUDA_ONLY(local_nearest_cuda(z, centroids, n, l, k, c, dist, nullptr, e.stream);)
}

inline void run_row_first_max(const Exec& e, const float* x, int64_t rows, int64_t cols, float* value, int64_t* index) {
  if (!e.cuda()) return row_first_max_cpu(x, rows, cols, value, index);
  EDGE_CUDA_ONLY(row_first_max_cuda(x, rows, cols, value, index, e.stream);)
}

// The maximum of each row (NaN for a row that holds one): on the GPU the first maximum is that too.
inline void run_row_max(const Exec& e, const float* x, int64_t rows, int64_t cols, float* value) {
  if (!e.cuda()) return row_max_cpu(x, rows, cols, value);
  EDGE_CUDA_ONLY(row_first_max_cuda(x, rows, cols, value, nullptr, e.stream);)
}

inline void run_one_minus(const Exec& e, const float* x, int64_t n, float* out) {
  if (!e.cuda()) return one_minus_cpu(x, n, out);
  EDGE_CUDA_ONLY(one_minus_cuda(x, n, out, e.stream);)
}

inline void run_channel_mean(const Exec& e, const float* x, int64_t n, int64_t c, int64_t plane, float* out) {
  if (!e.cuda()) return channel_mean_cpu(x, n, c, plane, out);
  EDGE_CUDA_ONLY(channel_mean_cuda(x, n, c, plane, out, e.stream);)
}

inline void run_multiply_plane(const Exec& e, const float* x, const float* roi, int64_t n, int64_t plane, float* out) {
  if (!e.cuda()) return multiply_plane_cpu(x, roi, n, plane, out);
  EDGE_CUDA_ONLY(multiply_plane_cuda(x, roi, n, plane, out, e.stream);)
}

inline void run_gather_bank_rows(const Exec& e, const int64_t* best, const int64_t* nearest, int64_t l,
                                 const void* bank, bool f16, int64_t c, int64_t n, float* queries) {
  if (!e.cuda()) return gather_bank_rows_cpu(best, nearest, l, bank, f16, c, n, queries);
  EDGE_CUDA_ONLY(gather_bank_rows_cuda(best, nearest, l, bank, f16, c, n, queries, e.stream);)
}

// scratch: the CPU path's sort buffers (neighbors doubles + neighbors int64s).
inline void run_patchcore_reweight(const Exec& e, const float* features, int64_t l, int64_t c, const int64_t* best,
                                   const float* value, const void* bank, bool f16, const int64_t* support,
                                   int64_t neighbors, int64_t n, float* scores, std::vector<double>& d,
                                   std::vector<int64_t>& order) {
  if (!e.cuda())
    return patchcore_reweight_cpu(features, l, c, best, value, bank, f16, support, neighbors, n, scores, d.data(),
                                  order.data());
  EDGE_CUDA_ONLY(patchcore_reweight_cuda(features, l, c, best, value, bank, f16, support, neighbors, n, scores, e.stream);)
}

}  // namespace edge
