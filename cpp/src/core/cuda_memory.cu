#include "edge_sdk/cuda_memory.hpp"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace edge {
namespace cuda {
namespace {
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}
}  // namespace

void set_device(int device_index) { check(cudaSetDevice(device_index), "cudaSetDevice"); }

void* malloc_device(size_t bytes, const char* what) {
  void* p = nullptr;
  if (bytes) check(cudaMalloc(&p, bytes), what);
  return p;
}
void free_device(void* p) noexcept {
  if (p) cudaFree(p);
}
void* malloc_pinned(size_t bytes, const char* what) {
  void* p = nullptr;
  if (bytes) check(cudaHostAlloc(&p, bytes, cudaHostAllocDefault), what);
  return p;
}
void free_pinned(void* p) noexcept {
  if (p) cudaFreeHost(p);
}
void* create_stream(const char* what) {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), what);
  return s;
}
void destroy_stream(void* stream) noexcept {
  if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}
void copy(void* dst, const void* src, size_t bytes, void* stream, const char* what) {
  if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)), what);
}
void synchronize(void* stream, const char* what) { check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), what); }

}  // namespace cuda
}  // namespace edge
