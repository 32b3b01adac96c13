#include <cmath>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/ssim.hpp"
#include "edge_sdk/kernels/ssim_math.hpp"

// Direct (non-separable) double-precision SSIM at one pixel: an independent check of the
// separable CPU path.
static double direct_ssim(const std::vector<float>& a, const std::vector<float>& b, int w, int y,
                          int x, const edge::SsimParams& p) {
  float taps[edge::kSsimMaxWindow];
  edge::gaussian_taps(p.window, p.sigma, taps);
  double m[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < p.window; ++i)
    for (int j = 0; j < p.window; ++j) {
      const double t = double(taps[i]) * taps[j];
      const double va = a[(y + i) * w + x + j], vb = b[(y + i) * w + x + j];
      m[0] += t * va; m[1] += t * vb; m[2] += t * va * va; m[3] += t * vb * vb; m[4] += t * va * vb;
    }
  const double c1 = std::pow(p.k1 * p.data_range, 2), c2 = std::pow(p.k2 * p.data_range, 2);
  const double vx = m[2] - m[0] * m[0], vy = m[3] - m[1] * m[1], cxy = m[4] - m[0] * m[1];
  return ((2 * m[0] * m[1] + c1) / (m[0] * m[0] + m[1] * m[1] + c1)) * ((2 * cxy + c2) / (vx + vy + c2));
}

EDGE_TEST(taps_are_normalized_and_symmetric) {
  float t[11];
  edge::gaussian_taps(11, 1.5f, t);
  double s = 0;
  for (float v : t) s += v;
  CHECK_NEAR(s, 1.0, 1e-6);
  for (int i = 0; i < 5; ++i) CHECK_NEAR(t[i], t[10 - i], 1e-9);
}

EDGE_TEST(cpu_map_matches_direct_double) {
  const int h = 45, w = 37;
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> a(h * w), b(h * w);
  for (int i = 0; i < h * w; ++i) { a[i] = u(gen); b[i] = 0.7f * a[i] + 0.3f * u(gen); }
  edge::SsimParams p;
  const int mh = h - 10, mw = w - 10;
  std::vector<float> map(mh * mw);
  float mean = 0;
  edge::ThreadPool pool(2);
  edge::ssim_cpu(a.data(), b.data(), 1, 1, h, w, p, &mean, map.data(), pool);
  double sum = 0;
  for (int y = 0; y < mh; ++y)
    for (int x = 0; x < mw; ++x) {
      const double ref = direct_ssim(a, b, w, y, x, p);
      CHECK_NEAR(map[y * mw + x], ref, 1e-5);
      sum += ref;
    }
  CHECK_NEAR(mean, sum / (mh * mw), 1e-6);
}

EDGE_TEST(rejects_bad_parameters) {
  edge::SsimParams p;
  p.window = 4;
  CHECK_THROWS(edge::validate_ssim(p, 32, 32));
  p.window = 11;
  CHECK_THROWS(edge::validate_ssim(p, 8, 32));
  p.sigma = -1;
  CHECK_THROWS(edge::validate_ssim(p, 32, 32));
}

EDGE_TEST(thread_pool_propagates_exceptions) {
  edge::ThreadPool pool(3);
  CHECK_THROWS(pool.parallel_for(100, [](int64_t b, int64_t) {
    if (b > 50) throw std::runtime_error("boom");
  }));
  std::vector<int> hit(1000, 0);
  pool.parallel_for(1000, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hit[i]++; });
  int total = 0;
  for (int v : hit) total += v == 1;
  CHECK(total == 1000);
}

EDGE_TEST_MAIN()
