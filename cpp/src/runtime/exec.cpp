#include "exec.hpp"

#include <algorithm>
#include <new>

namespace edge {

ExecBuffer& ExecBuffer::operator=(ExecBuffer&& o) noexcept {
  if (this != &o) {
    release();
    exec_ = o.exec_;
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void* ExecBuffer::reserve(size_t bytes, const char* what) {
  if (ptr_ && bytes <= bytes_) return ptr_;
  const size_t want = std::max<size_t>(bytes, 1);
  if (exec_.cuda()) {
    // Kernels queued on the stream may still read the old allocation.
    exec_sync(exec_, what);
    release();
    EDGE_CUDA_ONLY(ptr_ = cuda::malloc_device(want, what);)
  } else {
    release();
    ptr_ = ::operator new(want, std::align_val_t(64));
    std::memset(ptr_, 0, want);
  }
  bytes_ = want;
  return ptr_;
}

void ExecBuffer::release() noexcept {
  if (!ptr_) return;
  if (exec_.cuda()) {
    EDGE_CUDA_ONLY(cuda::free_device(ptr_);)
  } else {
    ::operator delete(ptr_, std::align_val_t(64));
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

void exec_copy(const Exec& e, void* dst, const void* src, size_t bytes, const char* what) {
  if (!bytes || dst == src) return;
  if (!e.cuda()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  (void)what;
  EDGE_CUDA_ONLY(cuda::copy(dst, src, bytes, e.stream, what);)
}

void exec_sync(const Exec& e, const char* what) {
  (void)what;
  if (e.cuda()) {
    EDGE_CUDA_ONLY(cuda::synchronize(e.stream, what);)
  }
}

}  // namespace edge
