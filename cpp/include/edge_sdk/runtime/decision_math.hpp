// The decision rule, written once for every place that applies it: the runtime's host decision,
// the CUDA decision kernel and the C ABI's check of the runtime's results (EDGE_HD: host and
// device). The verdict codes are the C ABI's (c_api.h), so a verdict crosses every layer (C++,
// C, Python's verdict_codes, device buffers) without translation, and zeroed memory reads as
// review.
#pragma once

#include <cmath>
#include <cstdint>

#include "edge_sdk/c_api.h"
#include "edge_sdk/common.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"

namespace edge {

enum class Verdict : int8_t {
  Review = EDGE_VERDICT_REVIEW,
  Accept = EDGE_VERDICT_ACCEPT,
  Reject = EDGE_VERDICT_REJECT,
};
// A verdict nobody wrote must never pass an image.
static_assert(static_cast<int>(Verdict{}) == EDGE_VERDICT_REVIEW && EDGE_VERDICT_REVIEW == 0,
              "zero must be the review verdict");
static_assert(static_cast<int>(Verdict::Accept) == EDGE_VERDICT_ACCEPT &&
                  static_cast<int>(Verdict::Reject) == EDGE_VERDICT_REJECT,
              "edge::Verdict must use the C ABI's codes");

// The calibration a decision uses: the raw-score threshold (double, as the manifest gives it: the
// comparison score >= threshold is made in double so that a threshold between two floats keeps
// its meaning), the normal-score range (max - min) of the normalization and the half-width of
// the review band in normalized units (<= 0: no band).
struct DecisionRule {
  double threshold = 0.0;
  float range = 1.0f;
  double review_band = 0.0;
};

// False for NaN and +-inf; plain comparisons, so host and device read it the same way.
EDGE_HD bool finite_score(float v) { return v >= -3.402823466e+38f && v <= 3.402823466e+38f; }

// Normalized score of a finite raw score: clip((score - threshold) / range + 0.5, 0, 1).
EDGE_HD float decision_normalized(float score, const DecisionRule& rule) {
  return calibrated_value(score, static_cast<float>(rule.threshold), rule.range);
}

// score -> verdict (and its normalized score): review when the score is not finite (normalized
// NaN) or when the normalized score lies inside the review band around 0.5; otherwise reject
// when score >= threshold (equality rejects), else accept.
EDGE_HD Verdict decide_score(float score, const DecisionRule& rule, float* normalized) {
  if (!finite_score(score)) {
    *normalized = NAN;
    return Verdict::Review;
  }
  const float v = decision_normalized(score, rule);
  *normalized = v;
  const double off = static_cast<double>(v) - 0.5;
  if (rule.review_band > 0 && (off < 0 ? -off : off) < rule.review_band) return Verdict::Review;
  return static_cast<double>(score) >= rule.threshold ? Verdict::Reject : Verdict::Accept;
}

// A frame's verdict from its regions' verdicts: one rejected region rejects the product (it is
// diverted whatever the others say); otherwise one region not judged makes it review; accepted
// only when every region was accepted. No region at all is review (nothing was judged).
EDGE_HD Verdict product_verdict(const Verdict* regions, int64_t n) {
  bool any_review = n <= 0;
  for (int64_t k = 0; k < n; ++k) {
    if (regions[k] == Verdict::Reject) return Verdict::Reject;
    any_review |= regions[k] != Verdict::Accept;
  }
  return any_review ? Verdict::Review : Verdict::Accept;
}

// A group of regions of a frame (a vial of a strip): its normalized score is the largest of its
// regions' (the vial score as the maximum over its patches, in normalized units so that regions
// with their own thresholds compare), its raw score that region's, and its verdict the product rule
// over its regions. `members` are region indices; verdicts[k] the region verdict buffer.
struct GroupResult {
  float score, normalized;
  Verdict verdict;
};
EDGE_HD GroupResult group_result(const float* scores, const float* normalized, const Verdict* verdicts,
                                 const int32_t* members, int64_t count, Verdict* scratch) {
  GroupResult g{NAN, NAN, Verdict::Review};
  float best = -1.0f;
  for (int64_t j = 0; j < count; ++j) {
    const int32_t k = members[j];
    scratch[j] = verdicts[k];
    if (finite_score(normalized[k]) && normalized[k] > best) {
      best = normalized[k];
      g.score = scores[k];
      g.normalized = normalized[k];
    }
  }
  g.verdict = product_verdict(scratch, count);
  return g;
}

// A run's verdict from the verdicts of the n acquisitions of one product (the vial line's 7 of
// 10): reject when at least k acquisitions were rejected (k >= 1; rejecting is always safe, even
// with acquisitions missing); otherwise accepted only when all n were judged (accepted or
// rejected); a missing or review acquisition makes it review.
EDGE_HD Verdict run_verdict(int64_t rejects, int64_t accepts, int64_t n, int64_t k) {
  if (rejects >= k) return Verdict::Reject;
  return rejects + accepts >= n ? Verdict::Accept : Verdict::Review;
}

// The three-way rule of a supervised classifier (postprocess kind "classifier"; its NumPy twin is
// edge_sdk/class_decision.py): class `good` is the good class, every other one a defect class.
// Reject when the most probable defect class reaches `reject` (checked first: rejecting is always
// safe); accept when P(good) reaches `accept`; otherwise review (the image is ejected for a second
// look). Probabilities are compared in double with the thresholds, as the manifest gives them.
struct ClassRule {
  int64_t good = 0;
  double accept = 1.0;
  double reject = 1.0;
};

// Verdict of one image's k >= 2 class probabilities; *top receives the first most probable class,
// or -1 (and review) when a probability is not finite.
EDGE_HD Verdict classify_verdict(const float* p, int64_t k, const ClassRule& rule, int64_t* top) {
  int64_t best = -1;
  float defect = 0.0f;
  bool any_defect = false;
  for (int64_t c = 0; c < k; ++c) {
    if (!finite_score(p[c])) {
      *top = -1;
      return Verdict::Review;
    }
    if (best < 0 || p[c] > p[best]) best = c;
    if (c != rule.good && (!any_defect || p[c] > defect)) {
      defect = p[c];
      any_defect = true;
    }
  }
  *top = best;
  if (any_defect && static_cast<double>(defect) >= rule.reject) return Verdict::Reject;
  if (best >= 0 && static_cast<double>(p[rule.good]) >= rule.accept) return Verdict::Accept;
  return Verdict::Review;
}

// The fail-safe check of a reported verdict: an accept stands only with a finite score and a
// finite normalized score; any other code than accept or reject is review.
EDGE_HD Verdict checked_verdict(Verdict v, float score, float normalized) {
  if (v == Verdict::Reject) return Verdict::Reject;
  if (v == Verdict::Accept && finite_score(score) && finite_score(normalized)) return Verdict::Accept;
  return Verdict::Review;
}

}  // namespace edge
