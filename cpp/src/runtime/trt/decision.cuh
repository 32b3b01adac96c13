// The decision on the device: anomalous when the raw score reaches the calibrated threshold, "review"
// when the normalized score lies within review_band of 0.5 (the threshold's normalized value), and
// an error verdict, never "good", for a non-finite score.
#pragma once

#include <cstdint>

namespace edge {
namespace trt {

// Verdict codes, as the runtime reports them.
constexpr uint8_t kVerdictGood = 0;
constexpr uint8_t kVerdictAnomalous = 1;
constexpr uint8_t kVerdictReview = 2;
constexpr uint8_t kVerdictError = 3;  // score not finite: the runtime could not judge the image

// scores: n raw scores (device); normalized, verdicts: n outputs (device). Asynchronous on stream.
void decide_cuda(const float* scores, const float* normalized, int64_t n, float threshold, float review_band,
                 uint8_t* verdicts, void* stream);

}  // namespace trt
}  // namespace edge
