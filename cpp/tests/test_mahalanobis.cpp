#include <cmath>
#include <cstdio>
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

EDGE_TEST_MAIN()
