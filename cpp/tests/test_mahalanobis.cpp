#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "edge_sdk/kernels/mahalanobis_math.hpp"

namespace {

struct Problem {
  int64_t n, l, c;
  std::vector<float> x, mean, chol;
};

// Random lower factors with a positive diagonal (a factor of some SPD covariance), means and
// features; the upper triangle holds garbage, which must not be read.
Problem make_problem(int64_t n, int64_t l, int64_t c, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_real_distribution<float> u(0.5f, 2.f);
  Problem p{n, l, c, std::vector<float>(n * l * c), std::vector<float>(l * c),
            std::vector<float>(l * c * c)};
  for (auto& v : p.x) v = g(gen);
  for (auto& v : p.mean) v = 0.5f * g(gen);
  for (int64_t loc = 0; loc < l; ++loc)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j < c; ++j)
        p.chol[(loc * c + i) * c + j] = j < i ? 0.3f * g(gen) : j == i ? u(gen) : 1e3f * g(gen);
  return p;
}

// Double-precision forward substitution: the independent reference.
std::vector<double> reference_z(const Problem& p, int64_t v, int64_t loc) {
  std::vector<double> z(p.c);
  const float* ch = p.chol.data() + loc * p.c * p.c;
  for (int64_t i = 0; i < p.c; ++i) {
    double r = double(p.x[(v * p.l + loc) * p.c + i]) - p.mean[loc * p.c + i];
    for (int64_t j = 0; j < i; ++j) r -= double(ch[i * p.c + j]) * z[j];
    z[i] = r / ch[i * p.c + i];
  }
  return z;
}

bool message_has(const std::exception& e, const std::string& s) {
  return std::string(e.what()).find(s) != std::string::npos;
}

}  // namespace

EDGE_TEST(distance_and_whitening_match_double_reference) {
  edge::ThreadPool pool(2);
  for (auto [n, l, c] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 4, 7}, {16, 5, 100},
                         {21, 3, 33}}) {
    Problem p = make_problem(n, l, c, 11 + unsigned(c));
    std::vector<float> d(n * l), z(n * l * c);
    edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), p.chol.data(), n, l, c, d.data(),
                                 z.data(), pool);
    for (int64_t v = 0; v < n; ++v)
      for (int64_t loc = 0; loc < l; ++loc) {
        const auto ref = reference_z(p, v, loc);
        double norm = 0;
        for (int64_t i = 0; i < c; ++i) {
          norm += ref[i] * ref[i];
          CHECK_NEAR(z[(v * l + loc) * c + i], ref[i], 1e-5 * (1 + std::fabs(ref[i])));
        }
        norm = std::sqrt(norm);
        CHECK_NEAR(d[v * l + loc], norm, 1e-5 * norm);
      }
  }
}

EDGE_TEST(single_vectors_and_tiles_round_identically) {
  edge::ThreadPool pool(1);
  Problem p = make_problem(19, 3, 45, 5);
  std::vector<float> all(19 * 3), one(3);
  edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), p.chol.data(), 19, 3, 45, all.data(),
                               nullptr, pool);
  for (int64_t v = 0; v < 19; ++v) {
    edge::mahalanobis_whiten_cpu(p.x.data() + v * 3 * 45, p.mean.data(), p.chol.data(), 1, 3, 45,
                                 one.data(), nullptr, pool);
    for (int64_t loc = 0; loc < 3; ++loc) CHECK(one[loc] == all[v * 3 + loc]);
  }
}

EDGE_TEST(substitution_row_is_exact_on_small_integers) {
  // chol = [[2,0,0],[1,3,0],[4,5,6]], r = (2, 7, 23) -> z = (1, 2, 1.5)
  const float chol[9] = {2, 0, 0, 1, 3, 0, 4, 5, 6};
  // Sized 8: with a 3-element array GCC warns (falsely) about the guarded lane tail.
  float z[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const float r[3] = {2, 7, 23};
  for (int i = 0; i < 3; ++i)
    z[i] = edge::substitution_row(chol + 3 * i, i, r[i], [&](int64_t j) { return z[j]; });
  CHECK(z[0] == 1.0f && z[1] == 2.0f && z[2] == 1.5f);
  const float a[3] = {1, 2, 3}, b[3] = {4, 6, 3};
  CHECK(edge::squared_distance(a, b, 3) == 25.0f);
}

EDGE_TEST(local_nearest_matches_double_reference) {
  edge::ThreadPool pool(2);
  const int64_t n = 5, l = 7, k = 4, c = 19;
  std::mt19937 gen(3);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> z(n * l * c), cent(l * k * c), d(n * l);
  for (auto& v : z) v = g(gen);
  for (auto& v : cent) v = g(gen);
  edge::local_nearest_cpu(z.data(), cent.data(), n, l, k, c, d.data(), pool);
  for (int64_t v = 0; v < n; ++v)
    for (int64_t loc = 0; loc < l; ++loc) {
      double best = 1e300;
      for (int64_t j = 0; j < k; ++j) {
        double s = 0;
        for (int64_t i = 0; i < c; ++i) {
          const double diff = double(z[(v * l + loc) * c + i]) - cent[(loc * k + j) * c + i];
          s += diff * diff;
        }
        best = std::min(best, s);
      }
      CHECK_NEAR(d[v * l + loc], std::sqrt(best), 1e-5 * std::sqrt(best));
    }
}

EDGE_TEST(bad_inputs_throw_argument_errors_naming_argument_and_location) {
  edge::ThreadPool pool(2);
  Problem p = make_problem(3, 6, 5, 9);
  std::vector<float> d(3 * 6);
  // the batched solve and the one on packed factors report alike
  for (bool packed : {false, true}) {
    auto run = [&](const Problem& q) {
      if (packed) {
        edge::PackedCholesky f(q.chol.data(), q.l, q.c);
        edge::mahalanobis_whiten_packed_cpu(q.x.data(), q.mean.data(), q.chol.data(), f, q.n, d.data(), nullptr, pool);
      } else {
        edge::mahalanobis_whiten_cpu(q.x.data(), q.mean.data(), q.chol.data(), q.n, q.l, q.c, d.data(), nullptr, pool);
      }
    };
    // one entry of a copy of p changed -> the error must name it
    auto expect = [&](auto change, const std::string& message) {
      Problem bad = p;
      change(bad);
      try {
        run(bad);
        CHECK(false);
      } catch (const edge::ArgumentError& e) {
        CHECK(message_has(e, message));
      }
    };
    expect([](Problem& q) { q.chol[(4 * 5 + 2) * 5 + 2] = -1.f; }, "chol: location 4: diagonal entry [4, 2, 2] is -1");
    expect([](Problem& q) { q.x[(1 * 6 + 3) * 5 + 4] = NAN; }, "features: location 3: entry [1, 3, 4] is nan");
    expect([](Problem& q) { q.mean[2 * 5 + 1] = INFINITY; }, "mean: location 2: entry [2, 1] is inf");
    expect([](Problem& q) { q.chol[(5 * 5 + 3) * 5 + 1] = INFINITY; }, "chol: location 5: entry [5, 3, 1] is inf");
  }
  edge::PackedCholesky packed(p.chol.data(), p.l, p.c);
  CHECK_THROWS(edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), p.chol.data(), packed, 0, d.data(),
                                                   nullptr, pool));
  CHECK_THROWS(edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), p.chol.data(), packed, 3, nullptr,
                                                   nullptr, pool));
  CHECK_THROWS(edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), p.chol.data(), 0, 6, 5,
                                            d.data(), nullptr, pool));
  CHECK_THROWS(edge::validate_local_nearest_sizes(1, 1, 0, 1));
  std::vector<float> z(4, 1.f), cent(4, 2.f), out(1);
  cent[3] = NAN;
  try {
    edge::local_nearest_cpu(z.data(), cent.data(), 1, 1, 1, 4, out.data(), pool);
    CHECK(false);
  } catch (const edge::ArgumentError& e) {
    CHECK(message_has(e, "centroids: location 0: entry [0, 0, 3] is nan"));
  }
}

EDGE_TEST(packed_factors_give_bit_identical_results) {
  // Every batch size around the vector widths (4 / 8 / 16), location counts that leave a partial
  // group, odd and even channel counts around the 8 lanes of a dot product.
  edge::ThreadPool pool(2);
  for (int64_t c : {1, 2, 7, 8, 9, 33, 100})
    for (int64_t l : {1, 5, 16, 37})
      for (int64_t n : {1, 2, 3, 7, 8, 9, 16, 17, 33}) {
        if (c == 100 && l == 37 && n > 9) continue;  // enough of the big ones
        Problem p = make_problem(n, l, c, unsigned(1000 + 97 * c + 13 * l + n));
        edge::PackedCholesky packed(p.chol.data(), l, c);
        std::vector<float> d0(n * l), z0(n * l * c), d1(n * l, -1.f), z1(n * l * c, -1.f);
        edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), p.chol.data(), n, l, c, d0.data(), z0.data(), pool);
        edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), p.chol.data(), packed, n, d1.data(), z1.data(),
                                            pool);
        bool same = true;
        for (size_t i = 0; i < d0.size(); ++i) same &= d0[i] == d1[i];
        for (size_t i = 0; i < z0.size(); ++i) same &= z0[i] == z1[i];
        if (!same) std::printf("packed differs at n=%lld l=%lld c=%lld\n", (long long)n, (long long)l, (long long)c);
        CHECK(same);
        // distances alone, and whitening alone
        std::vector<float> d2(n * l), z2(n * l * c);
        edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), p.chol.data(), packed, n, d2.data(), nullptr, pool);
        edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), p.chol.data(), packed, n, nullptr, z2.data(), pool);
        CHECK(d2 == d0 && z2 == z0);
      }
}

// The nearest bfloat16 by comparing the two candidates in double (not by the bit trick of
// round_to_bf16): the truncation toward zero and the next bfloat16 away from it.
float reference_bf16(float v) {
  if (std::isnan(v)) return v;
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t lo_bits = u & 0xffff0000u, hi_bits = lo_bits + 0x10000u;
  float lo, hi;
  std::memcpy(&lo, &lo_bits, sizeof lo);
  std::memcpy(&hi, &hi_bits, sizeof hi);
  if (lo == v) return v;
  const double dlo = std::fabs(double(v) - lo);
  // hi may be infinity (rounding past the largest finite bfloat16): then it is the IEEE result when
  // v is at least halfway to 2^128, i.e. when the truncated value's tie goes up
  const double dhi = std::isinf(hi) ? std::ldexp(1.0, 128) - std::fabs(double(v)) : std::fabs(double(hi) - v);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo_bits >> 16) & 1u ? hi : lo;  // tie: the even one
}

EDGE_TEST(bf16_rounding_is_nearest_even) {
  CHECK(edge::round_to_bf16(1.0f) == 1.0f);
  CHECK(edge::round_to_bf16(1.0f + 0x1p-8f) == 1.0f);                        // tie, down to even
  CHECK(edge::round_to_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);           // tie, up to even
  CHECK(edge::round_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);    // above the tie
  CHECK(edge::round_to_bf16(-3.0f) == -3.0f);
  CHECK(std::signbit(edge::round_to_bf16(-0.0f)));
  CHECK(std::isnan(edge::round_to_bf16(NAN)));
  CHECK(std::isinf(edge::round_to_bf16(std::numeric_limits<float>::max())));
  std::mt19937 gen(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int t = 0; t < 200000; ++t) {
    uint32_t u = bits(gen);
    float v;
    std::memcpy(&v, &u, sizeof v);
    const float r = edge::round_to_bf16(v), ref = reference_bf16(v);
    const bool same = std::isnan(v) ? std::isnan(r) : std::memcmp(&r, &ref, sizeof r) == 0;
    if (!same) std::printf("bf16 of %.9g: %.9g, expected %.9g\n", double(v), double(r), double(ref));
    CHECK(same);
    if (!same) break;
  }
}

EDGE_TEST(bf16_factors_solve_as_the_rounded_factor_bit_for_bit) {
  // The packed bf16 solve against the batched float32 solve on the factor rounded entry by entry:
  // the same values and the same arithmetic, so the same bits, at every size around the vector
  // widths; and measurably not the float32 factor's results.
  edge::ThreadPool pool(2);
  double moved = 0.0;
  for (int64_t c : {1, 2, 7, 9, 33, 100})
    for (int64_t l : {1, 5, 37})
      for (int64_t n : {1, 2, 3, 8, 9, 17}) {
        if (c == 100 && n > 9) continue;
        Problem p = make_problem(n, l, c, unsigned(2000 + 97 * c + 13 * l + n));
        const std::vector<float> rounded = edge::round_factors_to_bf16(p.chol.data(), l, c);
        for (int64_t loc = 0; loc < l; ++loc)
          for (int64_t i = 0; i < c; ++i)
            for (int64_t j = 0; j < c; ++j) {
              const float want = j <= i ? reference_bf16(p.chol[(loc * c + i) * c + j]) : 0.0f;
              CHECK(rounded[(loc * c + i) * c + j] == want);
            }
        edge::PackedCholesky packed(p.chol.data(), l, c, edge::FactorStorage::BF16);
        CHECK(packed.storage() == edge::FactorStorage::BF16);
        CHECK(packed.bytes() < edge::PackedCholesky(p.chol.data(), l, c).bytes() / 2 + 128);
        std::vector<float> d0(n * l), z0(n * l * c), d1(n * l, -1.f), z1(n * l * c, -1.f), d2(n * l);
        edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), rounded.data(), n, l, c, d0.data(), z0.data(), pool);
        edge::mahalanobis_whiten_packed_cpu(p.x.data(), p.mean.data(), rounded.data(), packed, n, d1.data(), z1.data(),
                                            pool);
        bool same = d0 == d1 && z0 == z1;
        if (!same) std::printf("bf16 packed differs at n=%lld l=%lld c=%lld\n", (long long)n, (long long)l, (long long)c);
        CHECK(same);
        edge::mahalanobis_whiten_cpu(p.x.data(), p.mean.data(), p.chol.data(), n, l, c, d2.data(), nullptr, pool);
        for (size_t i = 0; i < d2.size(); ++i) moved = std::max(moved, std::fabs(double(d1[i]) - d2[i]) / d2[i]);
      }
  CHECK(moved > 1e-4 && moved < 0.1);  // bfloat16's 8 significant bits, not float32's 24
}

EDGE_TEST(bf16_factors_refuse_what_bfloat16_cannot_hold) {
  edge::ThreadPool pool(1);
  Problem p = make_problem(1, 2, 3, 5);
  p.chol[(1 * 3 + 2) * 3 + 0] = std::numeric_limits<float>::max();  // finite, rounds to infinity
  try {
    edge::round_factors_to_bf16(p.chol.data(), 2, 3);
    CHECK(false);
  } catch (const edge::ArgumentError& e) {
    CHECK(message_has(e, "chol: entry [1, 2, 0] is 3.40282347e+38, which bfloat16 rounds to inf"));
  }
  p = make_problem(1, 2, 3, 5);
  p.chol[(0 * 3 + 1) * 3 + 1] = 1e-44f;  // a positive diagonal entry that rounds to zero
  try {
    edge::round_factors_to_bf16(p.chol.data(), 2, 3);
    CHECK(false);
  } catch (const edge::ArgumentError& e) {
    CHECK(message_has(e, "chol: entry [0, 1, 1] is"));
  }
  // packed directly from such a factor, the location is flagged and explained, never scored
  edge::PackedCholesky packed(p.chol.data(), 2, 3, edge::FactorStorage::BF16);
  CHECK(packed.bad_diagonal(0) && !packed.bad_diagonal(1));
}

EDGE_TEST_MAIN()
