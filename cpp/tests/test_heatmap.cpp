// C++ unit tests of the heatmap and preprocessing kernels: the separable/cached CPU paths against
// direct per-pixel evaluations (double precision where the reference is independent of the
// shared formulas), border handling, and argument errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"
#include "edge_sdk/kernels/preprocess.hpp"
#include "edge_sdk/kernels/preprocess_math.hpp"

namespace {

std::vector<float> random_vec(size_t n, unsigned seed, float lo = 0.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}

// Mirror unfolding by walking: reflects at -0.5 and n - 0.5 until inside.
int64_t reflect_walk(int64_t i, int64_t n) {
  while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - 1 - i;
  return i;
}

}  // namespace

EDGE_TEST(linear_tap_known_weights) {
  // x2 upsampling: output 0 clamps to source 0; output 1 is at source 0.25; output 3 at 1.25.
  auto t = edge::linear_tap(0, 4, 8);
  CHECK(t.i0 == 0 && t.i1 == 1);
  CHECK_NEAR(t.w1, 0.0, 0);
  t = edge::linear_tap(1, 4, 8);
  CHECK(t.i0 == 0 && t.i1 == 1);
  CHECK_NEAR(t.w1, 0.25, 1e-7);
  CHECK_NEAR(t.w0, 0.75, 1e-7);
  t = edge::linear_tap(7, 4, 8);  // source 3.25: last sample, upper neighbour clamped to itself
  CHECK(t.i0 == 3 && t.i1 == 3);
  t = edge::linear_tap(5, 9, 9);  // same size: copy
  CHECK(t.i0 == 5 && t.i1 == 5 && t.w0 == 1.0f && t.w1 == 0.0f);
  t = edge::linear_tap(0, 1, 5);
  CHECK(t.i0 == 0 && t.i1 == 0);
}

EDGE_TEST(fused_mul_add_rounds_once) {
  // 1 + 2^-12 squared = 1 + 2^-11 + 2^-24: the separately rounded product loses 2^-24, the fused
  // result keeps it once 1 is subtracted.
  const float a = 1.0f + std::ldexp(1.0f, -12);
  const float fused = edge::fused_mul_add(a, a, -1.0f);
  CHECK(fused == std::ldexp(1.0f, -11) + std::ldexp(1.0f, -24));
}

EDGE_TEST(reflect_index_matches_mirror_walk) {
  for (int64_t n = 1; n <= 7; ++n)
    for (int64_t i = -40; i <= 40; ++i) CHECK(edge::reflect_index(i, n) == reflect_walk(i, n));
}

EDGE_TEST(resize_cpu_equals_direct_bilinear) {
  edge::ThreadPool pool(3);
  const int64_t sizes[][4] = {{16, 16, 64, 64}, {37, 53, 11, 90}, {1, 1, 5, 7}, {64, 64, 16, 16}, {9, 13, 9, 40}};
  for (const auto& s : sizes) {
    const int64_t n = 2, h = s[0], w = s[1], oh = s[2], ow = s[3];
    const auto x = random_vec(static_cast<size_t>(n * h * w), 3);
    std::vector<float> out(static_cast<size_t>(n * oh * ow));
    edge::resize_bilinear_cpu(x.data(), n, h, w, oh, ow, out.data(), pool);
    int mismatches = 0;
    double max_err = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx) {
          const auto ty = edge::linear_tap(y, h, oh), tx = edge::linear_tap(xx, w, ow);
          const float v = out[static_cast<size_t>((i * oh + y) * ow + xx)];
          mismatches += v != edge::bilinear_sample(x.data() + i * h * w, w, 1, 0, 1.0f, ty, tx);
          // independent double evaluation of the same weights
          const float* p = x.data() + i * h * w;
          const double ref = ty.w0 * (tx.w0 * double(p[ty.i0 * w + tx.i0]) + tx.w1 * double(p[ty.i0 * w + tx.i1])) +
                             ty.w1 * (tx.w0 * double(p[ty.i1 * w + tx.i0]) + tx.w1 * double(p[ty.i1 * w + tx.i1]));
          max_err = std::max(max_err, std::fabs(v - ref));
        }
    CHECK(mismatches == 0);
    CHECK(max_err < 1e-6);
  }
}

EDGE_TEST(blur_cpu_matches_direct_double_convolution) {
  edge::ThreadPool pool(2);
  const struct { int64_t h, w; double sigma; } cases[] = {{40, 33, 2.0}, {5, 7, 4.0}, {1, 1, 4.0}, {70, 3, 1.3}, {12, 12, 0.1}};
  for (const auto& c : cases) {
    const auto x = random_vec(static_cast<size_t>(c.h * c.w), 11);
    std::vector<float> out(x.size());
    edge::gaussian_blur_cpu(x.data(), 1, c.h, c.w, c.sigma, out.data(), pool);
    const int r = edge::gaussian_radius(c.sigma);
    std::vector<double> g(static_cast<size_t>(2 * r + 1));
    double sum = 0;
    for (int k = -r; k <= r; ++k) sum += g[static_cast<size_t>(k + r)] = std::exp(-0.5 * k * k / (c.sigma * c.sigma));
    for (auto& v : g) v /= sum;
    double max_err = 0;
    for (int64_t y = 0; y < c.h; ++y)
      for (int64_t xx = 0; xx < c.w; ++xx) {
        double ref = 0;
        for (int i = -r; i <= r; ++i)
          for (int j = -r; j <= r; ++j)
            ref += g[static_cast<size_t>(i + r)] * g[static_cast<size_t>(j + r)] *
                   x[static_cast<size_t>(reflect_walk(y + i, c.h) * c.w + reflect_walk(xx + j, c.w))];
        max_err = std::max(max_err, std::fabs(out[static_cast<size_t>(y * c.w + xx)] - ref));
      }
    CHECK(max_err < 2e-6);
  }
}

EDGE_TEST(blur_radius_and_sigma_errors) {
  CHECK(edge::gaussian_radius(4.0) == 16);
  CHECK(edge::gaussian_radius(1.5) == 6);
  CHECK(edge::gaussian_radius(0.1) == 0);
  CHECK_THROWS(edge::gaussian_radius(0.0));
  CHECK_THROWS(edge::gaussian_radius(-1.0));
  CHECK_THROWS(edge::gaussian_radius(std::numeric_limits<double>::quiet_NaN()));
  CHECK_THROWS(edge::gaussian_radius(40.0));
  CHECK_THROWS(edge::validate_blur(0, 4, 4, 1.0));
}

EDGE_TEST(normalizations) {
  edge::ThreadPool pool(2);
  std::vector<float> x = {1, 3, 2, 5, 7, 7, 7, 7, -1, 0, 1, 3};
  std::vector<float> out(x.size());
  edge::minmax_normalize_cpu(x.data(), 3, 4, out.data(), pool);
  const float expect[] = {0, 0.5f, 0.25f, 1, 0, 0, 0, 0, 0, 0.25f, 0.5f, 1};
  for (size_t i = 0; i < x.size(); ++i) CHECK_NEAR(out[i], expect[i], 1e-7);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS(edge::minmax_normalize_cpu(x.data(), 3, 4, out.data(), pool));
  x[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS(edge::minmax_normalize_cpu(x.data(), 3, 4, out.data(), pool));

  const edge::Calibration cal{2.0f, 0.0f, 4.0f};
  const float in[] = {2.0f, 0.0f, 4.0f, -10.0f, 10.0f, 3.0f};
  const float want[] = {0.5f, 0.0f, 1.0f, 0.0f, 1.0f, 0.75f};
  float got[6];
  edge::calibrated_normalize_cpu(in, 6, cal, got, pool);
  for (int i = 0; i < 6; ++i) CHECK_NEAR(got[i], want[i], 1e-7);
  CHECK_THROWS(edge::validate_calibration({0.5f, 1.0f, 1.0f}));
  CHECK_THROWS(edge::validate_calibration({0.5f, 2.0f, 1.0f}));
  CHECK_THROWS(edge::validate_calibration({std::numeric_limits<float>::infinity(), 0.0f, 1.0f}));

  const float a[] = {1, -2, 3}, b[] = {-1, 2, 3.5f};
  float d[3];
  edge::abs_diff_cpu(a, b, 3, d, pool);
  CHECK(d[0] == 2 && d[1] == 4 && d[2] == 0.5f);
}

EDGE_TEST(preprocess_gray_to_three_channels) {
  edge::ThreadPool pool(2);
  const int64_t n = 2, h = 23, w = 17, oh = 40, ow = 31;
  std::mt19937 gen(5);
  std::vector<uint8_t> img(static_cast<size_t>(n * h * w));
  for (auto& v : img) v = static_cast<uint8_t>(gen() & 255);
  edge::PreprocessParams p;
  p.out_h = oh;
  p.out_w = ow;
  p.channels = 3;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c) { p.mean[c] = mean[c]; p.std[c] = stdv[c]; }
  std::vector<float> out(static_cast<size_t>(n * 3 * oh * ow));
  edge::preprocess_cpu(img.data(), n, h, w, 1, p, out.data(), pool);
  double max_err = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          const auto ty = edge::linear_tap(y, h, oh), tx = edge::linear_tap(x, w, ow);
          const uint8_t* s = img.data() + i * h * w;
          const double v = (ty.w0 * (tx.w0 * s[ty.i0 * w + tx.i0] + tx.w1 * s[ty.i0 * w + tx.i1]) +
                            ty.w1 * (tx.w0 * s[ty.i1 * w + tx.i0] + tx.w1 * s[ty.i1 * w + tx.i1])) / 255.0;
          const double ref = (v - mean[c]) / stdv[c];
          max_err = std::max(max_err, std::fabs(out[static_cast<size_t>(((i * 3 + c) * oh + y) * ow + x)] - ref));
        }
  CHECK(max_err < 1e-5);
}

// The antialiased filter from its definition, in double: output i averages the inputs whose
// centres lie within `support` of its centre, weighted by the triangle stretched when shrinking.
std::vector<std::vector<double>> triangle_weights(int64_t in, int64_t out) {
  const double scale = double(in) / double(out), support = scale >= 1 ? scale : 1.0;
  std::vector<std::vector<double>> m(static_cast<size_t>(out), std::vector<double>(static_cast<size_t>(in), 0.0));
  for (int64_t i = 0; i < out; ++i) {
    const double centre = scale * (i + 0.5);
    const int64_t lo = std::max<int64_t>(int64_t(centre - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(int64_t(centre + support + 0.5), in);
    double total = 0;
    for (int64_t j = lo; j < hi; ++j) total += m[i][j] = std::max(0.0, 1.0 - std::fabs(j + 0.5 - centre) / support);
    for (int64_t j = lo; j < hi; ++j) m[i][j] /= total;
  }
  return m;
}

EDGE_TEST(preprocess_antialiased_matches_the_filter_definition) {
  edge::ThreadPool pool(2);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  struct Case { int64_t n, h, w, oh, ow; };
  for (const Case k : {Case{2, 61, 130, 17, 40}, Case{1, 5, 7, 9, 11}, Case{1, 300, 120, 64, 64}}) {
    std::mt19937 gen(7);
    std::vector<uint8_t> img(static_cast<size_t>(k.n * k.h * k.w * 3));
    for (auto& v : img) v = static_cast<uint8_t>(gen() & 255);
    edge::PreprocessParams p;
    p.out_h = k.oh;
    p.out_w = k.ow;
    p.antialias = true;
    for (int c = 0; c < 3; ++c) { p.mean[c] = mean[c]; p.std[c] = stdv[c]; }
    std::vector<float> out(static_cast<size_t>(k.n * 3 * k.oh * k.ow));
    edge::preprocess_cpu(img.data(), k.n, k.h, k.w, 3, p, out.data(), pool);
    const auto wy = triangle_weights(k.h, k.oh), wx = triangle_weights(k.w, k.ow);
    double max_err = 0;
    for (int64_t i = 0; i < k.n; ++i)
      for (int c = 0; c < 3; ++c)
        for (int64_t y = 0; y < k.oh; ++y)
          for (int64_t x = 0; x < k.ow; ++x) {
            double v = 0;
            for (int64_t sy = 0; sy < k.h; ++sy)
              for (int64_t sx = 0; sx < k.w; ++sx)
                v += wy[y][sy] * wx[x][sx] * img[static_cast<size_t>(((i * k.h + sy) * k.w + sx) * 3 + c)];
            const double ref = (v / 255.0 - mean[c]) / stdv[c];
            max_err = std::max(max_err, std::fabs(out[static_cast<size_t>(((i * 3 + c) * k.oh + y) * k.ow + x)] - ref));
          }
    CHECK(max_err < 2e-5);
  }
}

EDGE_TEST(preprocess_argument_errors) {
  edge::PreprocessParams p;
  p.out_h = 8;
  p.out_w = 8;
  CHECK_THROWS(edge::validate_preprocess(p, 1, 4, 4, 2));   // 2 channels
  CHECK_THROWS(edge::validate_preprocess(p, 0, 4, 4, 3));   // empty
  p.channels = 1;
  CHECK_THROWS(edge::validate_preprocess(p, 1, 4, 4, 3));   // RGB -> 1 channel refused
  p.channels = 3;
  p.std[1] = 0.0f;
  CHECK_THROWS(edge::validate_preprocess(p, 1, 4, 4, 3));
  p.std[1] = 1.0f;
  p.out_w = 0;
  CHECK_THROWS(edge::validate_preprocess(p, 1, 4, 4, 3));
  p.out_w = 8;
  p.scale = 0.0f;
  CHECK_THROWS(edge::validate_preprocess(p, 1, 4, 4, 3));
  p.scale = 1.0f;
  edge::validate_preprocess(p, 1, 4, 4, 3);  // valid: no throw
  edge::validate_preprocess(p, 1, 4, 4, 1);
}

EDGE_TEST(cuda_request_without_device_is_argument_error) {
  const float x[4] = {0, 1, 2, 3}, y[4] = {1, 1, 1, 1};
  float out[4] = {-1, -1, -1, -1};
  if (edge::cuda_device_count() == 0) {
    bool argument_error = false;
    try {
      edge::abs_diff(x, y, 4, out, edge::Device::cuda(0));
    } catch (const edge::ArgumentError&) {
      argument_error = true;
    }
    CHECK(argument_error);
  } else {
    edge::abs_diff(x, y, 4, out, edge::Device::cuda(0));
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 1 && out[3] == 2);
  }
}

EDGE_TEST_MAIN()
