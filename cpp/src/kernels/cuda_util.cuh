// Small helpers shared by the CUDA kernels: error checks that throw, and an owning device buffer.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace edge {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}
#define EDGE_CUDA_CHECK(expr) ::edge::cuda_check((expr), #expr)

// Selects a device for the lifetime of the object and restores the previous one.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int index) {
    EDGE_CUDA_CHECK(cudaGetDevice(&previous_));
    EDGE_CUDA_CHECK(cudaSetDevice(index));
  }
  ~CudaDeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count) EDGE_CUDA_CHECK(cudaMalloc(&ptr_, count * sizeof(T)));
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  void upload(const T* host, size_t count) {
    EDGE_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host, size_t count) const {
    EDGE_CUDA_CHECK(cudaMemcpy(host, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

inline unsigned blocks_for(long long n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace edge
