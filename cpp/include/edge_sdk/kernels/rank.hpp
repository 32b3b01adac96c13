// Rank-filter images of an acquisition: per pixel, the lowest and the highest value over the K
// frames of one acquisition of a part. On a vial line each strip is imaged in K frames while it is
// handled; what moved between frames (bubbles, drops) shows in the lowest (darker) image only,
// while a defect fixed to the part shows in every frame, so in both images.
//
// frames: n acquisitions of k frames of `pixels` values each (any interleaving of channels, the
// same in every frame), contiguous: frames[(a * k + f) * pixels + i]. lo, hi: n x pixels.
// uint8 or float32; float frames must not hold NaN (the callers that take user data refuse it).
// Host-pointer functions pick the CPU or a CUDA device; *_cuda take device pointers and a
// cudaStream_t and do not synchronize.
#pragma once

#include <cstdint>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

constexpr int64_t kMaxAcquisitionFrames = 1024;
// Throws ArgumentError naming the argument: n, k (2..kMaxAcquisitionFrames) or pixels out of range.
void validate_frame_extremes(int64_t n, int64_t k, int64_t pixels);

template <typename T>
void frame_extremes(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi,
                    const Device& device = Device::cpu());
template <typename T>
void frame_extremes_cpu(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, ThreadPool& pool);

#ifdef EDGE_SDK_WITH_CUDA
template <typename T>
void frame_extremes_cuda(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi, void* stream);
template <typename T>
void frame_extremes_cuda_host(const T* frames, int64_t n, int64_t k, int64_t pixels, T* lo, T* hi,
                              int device_index);
#endif

}  // namespace edge
