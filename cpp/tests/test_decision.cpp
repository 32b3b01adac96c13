// Every branch of the decision rule (decision_math.hpp), which the runtime's host decision, the
// CUDA decision kernel and the C ABI's check all call. Expected values are written out by hand
// from the documented rule (docs/BUNDLE.md "Decisions"), not computed with the code under test.
#include <cmath>
#include <cstring>
#include <limits>

#include "check.hpp"
#include "edge_sdk/c_api.h"
#include "edge_sdk/runtime/decision_math.hpp"
#include "edge_sdk/runtime/runtime.hpp"

using edge::DecisionRule;
using edge::Verdict;

namespace {
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
}  // namespace

EDGE_TEST(codes_are_the_c_abi_codes_and_zero_is_review) {
  CHECK(static_cast<int>(Verdict::Review) == EDGE_VERDICT_REVIEW && EDGE_VERDICT_REVIEW == 0);
  CHECK(static_cast<int>(Verdict::Accept) == EDGE_VERDICT_ACCEPT && EDGE_VERDICT_ACCEPT == 1);
  CHECK(static_cast<int>(Verdict::Reject) == EDGE_VERDICT_REJECT && EDGE_VERDICT_REJECT == 2);
  Verdict zeroed;
  std::memset(&zeroed, 0, sizeof zeroed);
  CHECK(zeroed == Verdict::Review);
  CHECK(std::strcmp(edge::verdict_name(Verdict::Review), "review") == 0);
  CHECK(std::strcmp(edge::verdict_name(Verdict::Accept), "accept") == 0);
  CHECK(std::strcmp(edge::verdict_name(Verdict::Reject), "reject") == 0);
  CHECK(std::strcmp(edge::verdict_name(static_cast<Verdict>(7)), "review") == 0);
}

EDGE_TEST(score_against_threshold_without_band) {
  const DecisionRule rule{1.0, 2.0f, 0.0};
  float n = -1.0f;
  CHECK(edge::decide_score(1.0f, rule, &n) == Verdict::Reject);  // equality rejects
  CHECK(n == 0.5f);
  CHECK(edge::decide_score(std::nextafter(1.0f, 0.0f), rule, &n) == Verdict::Accept);
  CHECK(edge::decide_score(0.0f, rule, &n) == Verdict::Accept);
  CHECK(n == 0.0f);  // (0 - 1) / 2 + 0.5
  CHECK(edge::decide_score(1.5f, rule, &n) == Verdict::Reject);
  CHECK(n == 0.75f);
  CHECK(edge::decide_score(9.0f, rule, &n) == Verdict::Reject);
  CHECK(n == 1.0f);  // clipped
  CHECK(edge::decide_score(-9.0f, rule, &n) == Verdict::Accept);
  CHECK(n == 0.0f);  // clipped
}

EDGE_TEST(threshold_compared_in_double) {
  // 0.1 lies between two floats: 0.1f (above it) rejects, the float below it accepts.
  const DecisionRule rule{0.1, 1.0f, 0.0};
  float n;
  CHECK(edge::decide_score(0.1f, rule, &n) == Verdict::Reject);
  CHECK(edge::decide_score(std::nextafter(0.1f, 0.0f), rule, &n) == Verdict::Accept);
  // A double threshold just above 0.1f: 0.1f itself is now below it.
  const DecisionRule above{static_cast<double>(0.1f) + 1e-12, 1.0f, 0.0};
  CHECK(edge::decide_score(0.1f, above, &n) == Verdict::Accept);
}

EDGE_TEST(review_band) {
  const DecisionRule rule{1.0, 2.0f, 0.1};  // review when |n - 0.5| < 0.1, i.e. 0.8 < score < 1.2
  float n;
  CHECK(edge::decide_score(1.0f, rule, &n) == Verdict::Review);  // equality inside a band: review
  CHECK(edge::decide_score(1.1f, rule, &n) == Verdict::Review);
  CHECK(edge::decide_score(0.9f, rule, &n) == Verdict::Review);
  CHECK(edge::decide_score(1.5f, rule, &n) == Verdict::Reject);
  CHECK(n == 0.75f);
  CHECK(edge::decide_score(0.5f, rule, &n) == Verdict::Accept);
  CHECK(n == 0.25f);
  // The band edge is outside the band (strict <): n = 0.75 with band 0.25.
  const DecisionRule edge_band{1.0, 2.0f, 0.25};
  CHECK(edge::decide_score(1.5f, edge_band, &n) == Verdict::Reject);
  CHECK(edge::decide_score(0.5f, edge_band, &n) == Verdict::Accept);
  // A negative band is no band.
  const DecisionRule none{1.0, 2.0f, -1.0};
  CHECK(edge::decide_score(1.0f, none, &n) == Verdict::Reject);
}

EDGE_TEST(non_finite_score_is_review_with_nan_normalized) {
  const DecisionRule rule{1.0, 2.0f, 0.0};
  for (float s : {kNaN, kInf, -kInf}) {
    float n = 0.25f;
    CHECK(edge::decide_score(s, rule, &n) == Verdict::Review);
    CHECK(std::isnan(n));
  }
  CHECK(edge::finite_score(3.402823466e+38f) && !edge::finite_score(kInf) && !edge::finite_score(kNaN));
}

EDGE_TEST(product_rule_over_regions) {
  const Verdict a = Verdict::Accept, r = Verdict::Reject, v = Verdict::Review;
  {
    const Verdict x[] = {a, a, a};
    CHECK(edge::product_verdict(x, 3) == a);
  }
  {
    const Verdict x[] = {a, v, a};
    CHECK(edge::product_verdict(x, 3) == v);
  }
  {
    const Verdict x[] = {v, a, r};  // a reject outranks a review anywhere in the list
    CHECK(edge::product_verdict(x, 3) == r);
  }
  {
    const Verdict x[] = {r, v};
    CHECK(edge::product_verdict(x, 2) == r);
  }
  {
    const Verdict x[] = {a, static_cast<Verdict>(5)};  // an unknown code is not an accept
    CHECK(edge::product_verdict(x, 2) == v);
  }
  CHECK(edge::product_verdict(nullptr, 0) == v);  // nothing judged
}

EDGE_TEST(checked_verdict_never_passes_an_unjudged_image) {
  CHECK(edge::checked_verdict(Verdict::Accept, 0.2f, 0.3f) == Verdict::Accept);
  CHECK(edge::checked_verdict(Verdict::Accept, kNaN, 0.3f) == Verdict::Review);
  CHECK(edge::checked_verdict(Verdict::Accept, 0.2f, kNaN) == Verdict::Review);
  CHECK(edge::checked_verdict(Verdict::Accept, kInf, 1.0f) == Verdict::Review);
  CHECK(edge::checked_verdict(Verdict::Reject, kNaN, kNaN) == Verdict::Reject);  // diverted either way
  CHECK(edge::checked_verdict(Verdict::Review, 0.2f, 0.3f) == Verdict::Review);
  CHECK(edge::checked_verdict(static_cast<Verdict>(3), 0.2f, 0.3f) == Verdict::Review);
}

EDGE_TEST_MAIN()

EDGE_TEST(classifier_rule_rejects_first_then_accepts_else_review) {
  // good = class 1 of 3; accept at P(good) >= 0.7, reject at a defect class >= 0.6
  const edge::ClassRule rule{1, 0.7, 0.6};
  int64_t top = 99;
  const float accept[3] = {0.1f, 0.8f, 0.1f};
  CHECK(edge::classify_verdict(accept, 3, rule, &top) == Verdict::Accept && top == 1);
  const float reject[3] = {0.05f, 0.3f, 0.65f};
  CHECK(edge::classify_verdict(reject, 3, rule, &top) == Verdict::Reject && top == 2);
  const float unsure[3] = {0.35f, 0.4f, 0.25f};  // neither threshold: ejected for a second look
  CHECK(edge::classify_verdict(unsure, 3, rule, &top) == Verdict::Review && top == 1);
  const float at_both[3] = {0.6f, 0.7f, 0.0f};  // not a distribution, but both reached: reject wins
  CHECK(edge::classify_verdict(at_both, 3, rule, &top) == Verdict::Reject && top == 1);
  // thresholds are met with equality, compared in double
  const edge::ClassRule exact{0, static_cast<double>(0.7f), static_cast<double>(0.6f)};
  const float at_accept[2] = {0.7f, 0.3f};
  CHECK(edge::classify_verdict(at_accept, 2, exact, &top) == Verdict::Accept && top == 0);
  const float below[2] = {std::nextafter(0.7f, 0.0f), 0.3f};
  CHECK(edge::classify_verdict(below, 2, exact, &top) == Verdict::Review);
  // first maximum is the top class
  const float tie[3] = {0.4f, 0.2f, 0.4f};
  CHECK(edge::classify_verdict(tie, 3, rule, &top) == Verdict::Review && top == 0);
  // a probability that is not finite: review, no class
  for (float bad : {kNaN, kInf, -kInf}) {
    const float p[3] = {0.1f, 0.8f, bad};
    top = 5;
    CHECK(edge::classify_verdict(p, 3, rule, &top) == Verdict::Review && top == -1);
  }
}
