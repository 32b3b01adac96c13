// frame_extremes on the CPU against a direct loop, for uint8 and float, across task-block edges.
#include <algorithm>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/rank.hpp"

template <typename T>
static void check_against_loop(int64_t n, int64_t k, int64_t pixels, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> u(0, 255);
  std::vector<T> frames(static_cast<size_t>(n * k * pixels));
  for (auto& v : frames) v = static_cast<T>(u(gen));
  std::vector<T> lo(static_cast<size_t>(n * pixels)), hi(lo.size());
  edge::ThreadPool pool(3);
  edge::frame_extremes_cpu(frames.data(), n, k, pixels, lo.data(), hi.data(), pool);
  bool same = true;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t i = 0; i < pixels; ++i) {
      T l = frames[static_cast<size_t>(a * k * pixels + i)], h = l;
      for (int64_t f = 1; f < k; ++f) {
        l = std::min(l, frames[static_cast<size_t>((a * k + f) * pixels + i)]);
        h = std::max(h, frames[static_cast<size_t>((a * k + f) * pixels + i)]);
      }
      same &= lo[static_cast<size_t>(a * pixels + i)] == l && hi[static_cast<size_t>(a * pixels + i)] == h;
    }
  CHECK(same);
}

EDGE_TEST(extremes_match_a_direct_loop) {
  for (int64_t pixels : {1, 7, 16384, 16385, 40000})
    for (int64_t k : {2, 3, 16}) {
      check_against_loop<uint8_t>(3, k, pixels, unsigned(pixels + k));
      check_against_loop<float>(2, k, pixels, unsigned(pixels * 3 + k));
    }
}

EDGE_TEST(bad_sizes_name_the_argument) {
  uint8_t x[4] = {0, 1, 2, 3}, l[2], h[2];
  edge::ThreadPool pool(1);
  using edge::ArgumentError;
  edge_test::expect_error<ArgumentError>([&] { edge::frame_extremes_cpu(x, 1, 1, 2, l, h, pool); },
                                         "frames: expected 2 to 1024 frames");
  edge_test::expect_error<ArgumentError>([&] { edge::frame_extremes_cpu(x, 0, 2, 2, l, h, pool); },
                                         "frames: expected at least one");
  edge_test::expect_error<ArgumentError>([&] { edge::frame_extremes_cpu(x, 1, 2, 0, l, h, pool); }, "values a frame");
}

EDGE_TEST_MAIN()
