#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/knn_math.hpp"

namespace {

// Brute force in long double: the k nearest by (distance, index).
void reference(const std::vector<float>& q, const std::vector<float>& b, int64_t nq, int64_t m,
               int64_t d, int64_t k, std::vector<double>& dist, std::vector<int64_t>& idx) {
  dist.assign(nq * k, 0);
  idx.assign(nq * k, 0);
  std::vector<std::pair<long double, int64_t>> all(m);
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      long double s = 0;
      for (int64_t x = 0; x < d; ++x) {
        const long double t = (long double)q[i * d + x] - b[j * d + x];
        s += t * t;
      }
      all[j] = {s, j};
    }
    std::sort(all.begin(), all.end());
    for (int64_t r = 0; r < k; ++r) {
      dist[i * k + r] = std::sqrt((double)all[r].first);
      idx[i * k + r] = all[r].second;
    }
  }
}

std::vector<edge::KnnIsa> isas() {
  std::vector<edge::KnnIsa> out;
  for (auto isa : {edge::KnnIsa::Scalar, edge::KnnIsa::Avx2, edge::KnnIsa::Avx512, edge::KnnIsa::Avx512Bf16})
    if (edge::knn_isa_supported(isa)) out.push_back(isa);
  return out;
}

// Clustered data far from the origin, with near-duplicates: neighbours 1e-4 apart on vectors of
// norm ~1e3, which the float32 expansion alone cannot rank.
void clustered(std::mt19937& gen, int64_t n, int64_t d, std::vector<float>& out,
               const std::vector<float>& centres, int64_t ncent) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_int_distribution<int64_t> pick(0, ncent - 1);
  out.resize(n * d);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = pick(gen);
    for (int64_t x = 0; x < d; ++x) out[i * d + x] = centres[c * d + x] + 1e-4f * g(gen);
  }
}

}  // namespace

EDGE_TEST(half_conversion_matches_definition) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = edge::half_bits_to_float(static_cast<uint16_t>(h));
    const uint32_t e = (h >> 10) & 31, man = h & 1023;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 31) {
      CHECK(man ? std::isnan(v) : (std::isinf(v) && (v < 0) == (sign < 0)));
    } else {
      const double want = e == 0 ? sign * std::ldexp((double)man, -24)
                                 : sign * std::ldexp(1.0 + man / 1024.0, (int)e - 15);
      if (v != want) {
        CHECK(v == want);
        break;
      }
    }
  }
}

EDGE_TEST(heap_keeps_the_smallest) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const int n = 7;
  std::vector<float> val(n, std::numeric_limits<float>::infinity());
  std::vector<int32_t> idx(n, -1);
  std::vector<float> all(500);
  for (int i = 0; i < 500; ++i) {
    all[i] = u(gen);
    if (all[i] < val[0]) edge::heap_replace_top(val.data(), idx.data(), n, all[i], i);
  }
  std::vector<float> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  std::vector<float> kept = val;
  std::sort(kept.begin(), kept.end());
  for (int i = 0; i < n; ++i) {
    CHECK(kept[i] == sorted[i]);
    CHECK(all[idx[i]] == val[i]);
  }
}

EDGE_TEST(every_isa_matches_long_double_reference) {
  std::mt19937 gen(11);
  std::normal_distribution<float> g(0.f, 1.f);
  edge::ThreadPool pool(3);
  struct Shape { int64_t q, m, d, k; };
  for (Shape s : {Shape{1, 1, 1, 1}, Shape{17, 45, 13, 4}, Shape{33, 300, 160, 10},
                  Shape{9, 40, 5, 40}, Shape{70, 5000, 3, 2}}) {
    std::vector<float> q(s.q * s.d), b(s.m * s.d);
    for (auto& v : q) v = g(gen);
    for (auto& v : b) v = g(gen);
    std::vector<double> rd;
    std::vector<int64_t> ri;
    reference(q, b, s.q, s.m, s.d, s.k, rd, ri);
    for (auto isa : isas()) {
      edge::KnnOptions opt;
      opt.isa = isa;
      std::vector<float> dist(s.q * s.k);
      std::vector<int64_t> idx(s.q * s.k);
      edge::knn_cpu(q.data(), s.q, b.data(), edge::KnnBankType::F32, s.m, s.d, s.k, dist.data(),
                    idx.data(), pool, opt);
      int wrong = 0;
      for (int64_t i = 0; i < s.q * s.k; ++i) {
        wrong += idx[i] != ri[i];
        CHECK_NEAR(dist[i], rd[i], 1e-6 * rd[i] + 1e-30);
      }
      CHECK(wrong == 0);
    }
  }
}

EDGE_TEST(float16_bank_and_near_duplicates_are_exact) {
  std::mt19937 gen(5);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t d = 24, ncent = 8, m = 600, nq = 40, k = 3;
  std::vector<float> centres(ncent * d);
  for (auto& v : centres) v = 100.f + 10.f * g(gen);
  std::vector<float> b, q;
  clustered(gen, m, d, b, centres, ncent);
  clustered(gen, nq, d, q, centres, ncent);
  std::copy_n(b.begin() + 7 * d, d, b.begin() + 300 * d);  // an exact duplicate
  std::copy_n(b.begin() + 7 * d, d, q.begin());
  edge::ThreadPool pool(2);
  for (int extra : {8, 0}) {
    for (auto isa : isas()) {
      edge::KnnOptions opt;
      opt.isa = isa;
      opt.extra = extra;
      std::vector<double> rd;
      std::vector<int64_t> ri;
      reference(q, b, nq, m, d, k, rd, ri);
      std::vector<float> dist(nq * k);
      std::vector<int64_t> idx(nq * k);
      edge::knn_cpu(q.data(), nq, b.data(), edge::KnnBankType::F32, m, d, k, dist.data(),
                    idx.data(), pool, opt);
      int wrong = 0;
      for (int64_t i = 0; i < nq * k; ++i) {
        wrong += idx[i] != ri[i];
        CHECK_NEAR(dist[i], rd[i], 1e-6 * rd[i]);
      }
      CHECK(wrong == 0);
      CHECK(idx[0] == 7 && idx[1] == 300 && dist[0] == 0.f);
    }
  }
  // float16 bank: the reference runs on the widened values
  std::vector<uint16_t> bh(m * d);
  std::vector<float> bw(m * d);
  // random binary16 values of magnitude 2^-6 .. 2^4, plus some subnormals
  std::uniform_int_distribution<uint32_t> bits(0, 0xffff);
  for (int64_t i = 0; i < m * d; ++i) {
    const uint32_t r = bits(gen);
    const uint32_t exponent = i % 97 == 0 ? 0 : 9 + (r >> 11) % 10;
    bh[i] = static_cast<uint16_t>((r & 0x8000) | (exponent << 10) | (r & 0x3ff));
    bw[i] = edge::half_bits_to_float(bh[i]);
  }
  for (auto& v : q) v = g(gen);
  std::vector<double> rd;
  std::vector<int64_t> ri;
  reference(q, bw, nq, m, d, k, rd, ri);
  for (auto isa : isas()) {
    edge::KnnOptions opt;
    opt.isa = isa;
    std::vector<float> dist(nq * k);
    std::vector<int64_t> idx(nq * k);
    edge::knn_cpu(q.data(), nq, bh.data(), edge::KnnBankType::F16, m, d, k, dist.data(), idx.data(),
                  pool, opt);
    int wrong = 0;
    for (int64_t i = 0; i < nq * k; ++i) {
      wrong += idx[i] != ri[i];
      CHECK_NEAR(dist[i], rd[i], 1e-6 * rd[i]);
    }
    CHECK(wrong == 0);
  }
}

// A prepared index answers exactly as knn_cpu, call after call, whatever the order of shapes
// and k through one scratch (stale heaps or buffers from a larger call must not leak into a
// smaller one), for both bank types and every instruction set.
EDGE_TEST(index_search_equals_knn_cpu_across_reused_scratch) {
  std::mt19937 gen(17);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t m = 3000, d = 37;
  std::vector<float> b(m * d), q(700 * d);
  for (auto& v : b) v = 5.f + g(gen);
  for (auto& v : q) v = 5.f + g(gen);
  std::copy_n(b.begin() + 11 * d, d, q.begin() + 3 * d);  // an exact hit
  std::vector<uint16_t> bh(m * d);
  for (int64_t i = 0; i < m * d; ++i) {  // binary16 bits of values in [-8, 8)
    const uint32_t r = static_cast<uint32_t>(gen());
    bh[i] = static_cast<uint16_t>((r & 0x8000) | ((12 + (r >> 10) % 6) << 10) | (r & 0x3ff));
  }
  edge::ThreadPool pool(3);
  struct Call { int64_t q, k; };
  const Call calls[] = {{700, 5}, {1, 1}, {64, 40}, {700, 1}, {9, 3000}, {250, 8}};
  for (auto type : {edge::KnnBankType::F32, edge::KnnBankType::F16}) {
    const void* bank = type == edge::KnnBankType::F32 ? static_cast<const void*>(b.data()) : bh.data();
    for (auto isa : isas()) {
      edge::KnnOptions opt;
      opt.isa = isa;
      const edge::KnnIndex index(bank, type, m, d, pool, opt);
      CHECK(index.rows() == m && index.dim() == d && index.isa() == isa && index.bank_type() == type);
      // panels of floats, or of bfloat16 pairs (half)
      CHECK(index.bytes() >= static_cast<size_t>(m * d) * (isa == edge::KnnIsa::Avx512Bf16 ? 2 : sizeof(float)));
      edge::KnnScratch scratch;
      for (const Call& c : calls) {
        std::vector<float> d1(c.q * c.k), d2(c.q * c.k);
        std::vector<int64_t> i1(c.q * c.k), i2(c.q * c.k);
        edge::knn_cpu(q.data(), c.q, bank, type, m, d, c.k, d1.data(), i1.data(), pool, opt);
        index.search(q.data(), c.q, c.k, d2.data(), i2.data(), pool, &scratch);
        CHECK(std::memcmp(d1.data(), d2.data(), d1.size() * sizeof(float)) == 0);
        CHECK(i1 == i2);
      }
      CHECK(scratch.bytes() > 0);
    }
  }
}

EDGE_TEST(index_rejects_bad_arguments) {
  std::vector<float> b(8, 1.f), q(8, 0.f);
  float dist[4];
  int64_t idx[4];
  edge::ThreadPool pool(1);
  CHECK_THROWS(edge::KnnIndex(b.data(), edge::KnnBankType::F32, 0, 2, pool));
  CHECK_THROWS(edge::KnnIndex(nullptr, edge::KnnBankType::F32, 4, 2, pool));
  edge::KnnOptions neg;
  neg.extra = -1;
  CHECK_THROWS(edge::KnnIndex(b.data(), edge::KnnBankType::F32, 4, 2, pool, neg));
  b[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS(edge::KnnIndex(b.data(), edge::KnnBankType::F32, 4, 2, pool));
  b[5] = 1.f;
  const edge::KnnIndex index(b.data(), edge::KnnBankType::F32, 4, 2, pool);
  CHECK_THROWS(index.search(q.data(), 4, 5, dist, idx, pool));  // k > m
  CHECK_THROWS(index.search(q.data(), 0, 1, dist, idx, pool));
  q[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS(index.search(q.data(), 4, 1, dist, idx, pool));
}

EDGE_TEST(rejects_bad_arguments) {
  std::vector<float> q(8, 0.f), b(8, 0.f);
  float dist[4];
  int64_t idx[4];
  edge::ThreadPool pool(1);
  CHECK_THROWS(edge::validate_knn(0, 4, 2, 1));
  CHECK_THROWS(edge::validate_knn(4, 0, 2, 1));
  CHECK_THROWS(edge::validate_knn(4, 4, 0, 1));
  CHECK_THROWS(edge::validate_knn(4, 4, 2, 0));
  CHECK_THROWS(edge::validate_knn(4, 4, 2, 5));
  CHECK_THROWS(edge::parse_knn_isa("sse9"));
  b[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS(edge::knn_cpu(q.data(), 4, b.data(), edge::KnnBankType::F32, 4, 2, 1, dist, idx, pool));
  b[3] = 0.f;
  q[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS(edge::knn_cpu(q.data(), 4, b.data(), edge::KnnBankType::F32, 4, 2, 1, dist, idx, pool));
  q[5] = 1e30f;
  CHECK_THROWS(edge::knn_cpu(q.data(), 4, b.data(), edge::KnnBankType::F32, 4, 2, 1, dist, idx, pool));
}

EDGE_TEST_MAIN()
