// The post-processing steps of kernels/post.hpp (the CPU side of what the CUDA kernels compute
// with the same post_math.hpp arithmetic), each against a direct reference written here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/post.hpp"

namespace {
const float kNaN = std::numeric_limits<float>::quiet_NaN();
}

EDGE_TEST(row_first_max_takes_the_first_maximum_and_nan_first) {
  const std::vector<float> x = {1.0f, 3.0f, 2.0f, 3.0f,    // first maximum at 1
                                kNaN, 5.0f, kNaN, 1.0f,    // first NaN at 0
                                -2.0f, -1.0f, 7.0f, kNaN,  // a NaN wins over any value
                                -1.0f, -1.0f, -1.0f, -1.0f};
  float v[4];
  int64_t i[4];
  edge::row_first_max_cpu(x.data(), 4, 4, v, i);
  CHECK(v[0] == 3.0f && i[0] == 1);
  CHECK(std::isnan(v[1]) && i[1] == 0);
  CHECK(std::isnan(v[2]) && i[2] == 3);
  CHECK(v[3] == -1.0f && i[3] == 0);
  float w[4];
  edge::row_max_cpu(x.data(), 4, 4, w);
  CHECK(w[0] == 3.0f && std::isnan(w[1]) && std::isnan(w[2]) && w[3] == -1.0f);
}

EDGE_TEST(row_max_over_long_rows_equals_std_max_element) {
  std::mt19937 gen(11);
  std::normal_distribution<float> g(0.0f, 3.0f);
  for (int64_t cols : {1, 15, 16, 17, 255, 4099}) {
    std::vector<float> x(static_cast<size_t>(3 * cols));
    for (float& v : x) v = g(gen);
    float v[3];
    edge::row_max_cpu(x.data(), 3, cols, v);
    for (int r = 0; r < 3; ++r)
      CHECK(v[r] == *std::max_element(x.begin() + r * cols, x.begin() + (r + 1) * cols));
    x[static_cast<size_t>(2 * cols + cols / 2)] = kNaN;
    edge::row_max_cpu(x.data(), 3, cols, v);
    CHECK(!std::isnan(v[1]) && std::isnan(v[2]));
  }
}

EDGE_TEST(channel_mean_one_minus_and_roi_product) {
  // 2 items, 3 channels, 4 pixels: mean of the channels, added in order, divided by 3.
  std::vector<float> x(2 * 3 * 4);
  std::iota(x.begin(), x.end(), 0.5f);
  std::vector<float> m(2 * 4);
  edge::channel_mean_cpu(x.data(), 2, 3, 4, m.data());
  for (int k = 0; k < 2; ++k)
    for (int p = 0; p < 4; ++p) {
      const float* s = x.data() + k * 12 + p;
      CHECK(m[static_cast<size_t>(k * 4 + p)] == ((s[0] + s[4]) + s[8]) / 3.0f);
    }
  edge::channel_mean_cpu(x.data(), 1, 1, 8, m.data());  // one channel: the plane itself
  CHECK(m[5] == x[5]);
  float o[2];
  const float mean[2] = {0.25f, 1.0f};
  edge::one_minus_cpu(mean, 2, o);
  CHECK(o[0] == 0.75f && o[1] == 0.0f);
  const float roi[3] = {0.0f, 1.0f, 0.5f};
  const float planes[6] = {2.0f, 2.0f, 2.0f, -4.0f, 3.0f, 8.0f};
  float prod[6];
  edge::multiply_plane_cpu(planes, roi, 2, 3, prod);
  CHECK(prod[0] == 0.0f && prod[1] == 2.0f && prod[2] == 1.0f && prod[3] == 0.0f && prod[4] == 3.0f && prod[5] == 4.0f);
}

EDGE_TEST(patchcore_reweight_equals_a_direct_softmax) {
  // Bank of 6 rows, 3 channels; 2 images of 4 patches; support sets of 4 rows each.
  const int64_t c = 3, l = 4, n = 2, nb = 4;
  std::mt19937 gen(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> bank(6 * c), features(n * l * c);
  for (float& v : bank) v = g(gen);
  for (float& v : features) v = g(gen);
  const int64_t best[2] = {2, 0};
  const int64_t nearest[n * l] = {5, 4, 3, 2, 1, 0, 5, 4};
  std::vector<float> queries(n * c);
  edge::gather_bank_rows_cpu(best, nearest, l, bank.data(), false, c, n, queries.data());
  for (int64_t j = 0; j < c; ++j) {
    CHECK(queries[static_cast<size_t>(j)] == bank[static_cast<size_t>(3 * c + j)]);      // image 0: row 3
    CHECK(queries[static_cast<size_t>(c + j)] == bank[static_cast<size_t>(1 * c + j)]);  // image 1: row 1
  }
  const int64_t support[n * nb] = {3, 0, 5, 1, 1, 2, 2, 4};  // a repeated row: a tie, kept in order
  const float value[2] = {2.5f, kNaN};
  float scores[2];
  std::vector<double> d(nb);
  std::vector<int64_t> order(nb);
  edge::patchcore_reweight_cpu(features.data(), l, c, best, value, bank.data(), false, support, nb, n, scores, d.data(),
                               order.data());
  // Reference: distances in double, sorted, reported in float32, softmax in double.
  std::vector<double> dist;
  const float* patch = features.data() + best[0] * c;
  for (int64_t j = 0; j < nb; ++j) {
    double s = 0;
    for (int64_t q = 0; q < c; ++q) {
      const double diff = double(patch[q]) - double(bank[static_cast<size_t>(support[j] * c + q)]);
      s += diff * diff;
    }
    dist.push_back(double(float(std::sqrt(s))));
  }
  std::sort(dist.begin(), dist.end());
  double sum = 0;
  for (double v : dist) sum += std::exp(v - dist[0]);
  CHECK_NEAR(scores[0], (1.0 - 1.0 / sum) * 2.5, 1e-6);
  CHECK(std::isnan(scores[1]));  // a score that is not finite stays as it is
}

EDGE_TEST_MAIN()
