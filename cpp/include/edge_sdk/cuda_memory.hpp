// The few CUDA runtime calls the pipeline makes itself (device memory, copies, a stream), behind
// plain functions so that code compiled by the host compiler needs no CUDA header. Each throws
// std::runtime_error naming `what` and CUDA's message on failure.
#pragma once

#include <cstddef>

#ifdef EDGE_SDK_WITH_CUDA
namespace edge {
namespace cuda {

void set_device(int device_index);
void* malloc_device(size_t bytes, const char* what);
void free_device(void* p) noexcept;
void* malloc_pinned(size_t bytes, const char* what);
void free_pinned(void* p) noexcept;
void* create_stream(const char* what);
void destroy_stream(void* stream) noexcept;
// Asynchronous on `stream` (direction from the pointers: unified addressing).
void copy(void* dst, const void* src, size_t bytes, void* stream, const char* what);
void synchronize(void* stream, const char* what);

}  // namespace cuda
}  // namespace edge
#endif
