// The k-NN kernel's argument checks, its scan's error bound and a bank's scale (knn.hpp): shared
// by KnnIndex (the certification and its choice of a bfloat16 scan) and the bundle loader's bank
// check, which builds without the SIMD kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/knn_math.hpp"

namespace edge {

void validate_knn(int64_t q, int64_t m, int64_t d, int64_t k) {
  if (q < 1) throw ArgumentError("queries: expected at least one row, got " + std::to_string(q));
  if (m < 1) throw ArgumentError("bank: expected at least one row, got " + std::to_string(m));
  if (d < 1) throw ArgumentError("queries, bank: expected at least one column, got " + std::to_string(d));
  if (m >= (int64_t{1} << 31))
    throw ArgumentError("bank: at most 2^31 - 1 rows supported, got " + std::to_string(m));
  if (k < 1 || k > m)
    throw ArgumentError("k: expected 1 <= k <= " + std::to_string(m) + " (bank rows), got " +
                        std::to_string(k));
}

double knn_scan_error_bound(int64_t d, double query_norm, double max_norm, bool bf16) {
  constexpr double kFloatUnit = 5.9604644775390625e-08;  // 2^-24
  constexpr double kBf16Unit = 0.00390625;           // 2^-8
  constexpr double kFlush = 1.1754943508222875e-38;  // 2^-126
  const double qn = query_norm, b = max_norm;
  const double grow = bf16 ? (1.0 + kBf16Unit) * (1.0 + kBf16Unit) : 1.0;
  double e = (2.0 * static_cast<double>(d) + 4.0) * kFloatUnit * grow * (b * b + 2.0 * qn * b);
  if (bf16)
    e += 2.0 * ((2.0 * kBf16Unit + kBf16Unit * kBf16Unit) * qn * b +
                4.0 * static_cast<double>(d) * kFlush * (1.0 + qn + b + qn * b));
  return e;
}

namespace {

// The mean is what the kernel centres on, so one huge value moves every centred norm with it;
// the coordinate-wise median and the distances to it are the data's own scale, which an outlier
// (or a few) does not move. Mean and B cover every row (B is a maximum: one row decides it);
// the median and S, robust statistics, come from at most kScaleSample evenly spaced rows, so the
// check reads a 100k-row bank about twice, contiguously, instead of column by column.
constexpr int64_t kScaleSample = 4096;

template <typename T>
KnnBankScale bank_scale(const T* rows, int64_t m, int64_t d) {
  const size_t du = static_cast<size_t>(d);
  std::vector<double> mean(du, 0.0), median(du);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += static_cast<double>(bank_value(rows + i * d, j));
  for (auto& v : mean) v /= static_cast<double>(m);

  const int64_t n = std::min(m, kScaleSample);
  auto sample_row = [&](int64_t s) { return s * m / n; };  // evenly spaced, first row included
  std::vector<float> cols(static_cast<size_t>(n) * du);    // the sample, column by column
  for (int64_t s = 0; s < n; ++s)
    for (int64_t j = 0; j < d; ++j)
      cols[static_cast<size_t>(j * n + s)] = bank_value(rows + sample_row(s) * d, j);
  for (int64_t j = 0; j < d; ++j) {
    auto first = cols.begin() + j * n;
    std::nth_element(first, first + n / 2, first + n);
    median[static_cast<size_t>(j)] = static_cast<double>(first[n / 2]);
  }

  KnnBankScale st;
  for (int64_t i = 0; i < m; ++i) {
    double to_mean = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double t = static_cast<double>(bank_value(rows + i * d, j)) - mean[static_cast<size_t>(j)];
      to_mean += t * t;
    }
    st.max_norm = std::max(st.max_norm, std::sqrt(to_mean));
  }
  std::vector<double> dist(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    double to_median = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double t = static_cast<double>(bank_value(rows + sample_row(s) * d, j)) - median[static_cast<size_t>(j)];
      to_median += t * t;
    }
    dist[static_cast<size_t>(s)] = std::sqrt(to_median);
  }
  std::nth_element(dist.begin(), dist.begin() + n / 2, dist.end());
  st.scale = dist[static_cast<size_t>(n / 2)];
  double offset = 0.0;
  for (int64_t j = 0; j < d; ++j)
    offset += (median[static_cast<size_t>(j)] - mean[static_cast<size_t>(j)]) * (median[static_cast<size_t>(j)] - mean[static_cast<size_t>(j)]);
  st.query_norm = std::sqrt(offset) + st.scale;
  return st;
}

}  // namespace

KnnBankScale knn_bank_scale(const void* bank, KnnBankType bank_type, int64_t m, int64_t d) {
  validate_knn(1, m, d, 1);
  return bank_type == KnnBankType::F32 ? bank_scale(static_cast<const float*>(bank), m, d)
                                       : bank_scale(static_cast<const uint16_t*>(bank), m, d);
}

}  // namespace edge
