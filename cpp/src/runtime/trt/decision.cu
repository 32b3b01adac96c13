#include <cuda_runtime.h>

#include <cmath>

#include "decision.cuh"

namespace edge {
namespace trt {
namespace {

__global__ void decide_kernel(const float* scores, const float* normalized, long long n, float threshold,
                              float band, uint8_t* verdicts) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float s = scores[i], v = normalized[i];
  uint8_t out;
  if (!isfinite(s) || !isfinite(v)) out = kVerdictError;
  else if (band > 0.0f && fabsf(v - 0.5f) < band) out = kVerdictReview;
  else out = s >= threshold ? kVerdictAnomalous : kVerdictGood;
  verdicts[i] = out;
}

}  // namespace

void decide_cuda(const float* scores, const float* normalized, int64_t n, float threshold, float review_band,
                 uint8_t* verdicts, void* stream) {
  if (n <= 0) return;
  constexpr int kThreads = 128;
  decide_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0,
                  static_cast<cudaStream_t>(stream)>>>(scores, normalized, n, threshold, review_band, verdicts);
}

}  // namespace trt
}  // namespace edge
