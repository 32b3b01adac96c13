// The default pool under set_num_threads while kernels run on other threads (shared ownership:
// a kernel keeps the pool it started on alive), and the bound on every thread count. Run under
// AddressSanitizer by scripts/sanitize.sh, where a kernel on a freed pool is a reported error.
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/thread_pool.hpp"

EDGE_TEST(thread_counts_are_bounded_and_named) {
  const int cap = edge::max_threads();
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  CHECK(cap >= 1 && cap <= 256 && cap == static_cast<int>(std::min(256u, 4u * hw)));
  auto message = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const edge::ArgumentError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message([&] { edge::ThreadPool p(cap + 1); }).rfind("threads: expected 1..", 0) == 0);
  CHECK(message([] { edge::ThreadPool p(0); }).rfind("threads: expected 1..", 0) == 0);
  const std::string m = message([] { edge::set_num_threads(100000); });
  CHECK(m.rfind("threads: expected 1..", 0) == 0 && m.find("got 100000") != std::string::npos);
  CHECK(message([] { edge::check_thread_count(0, "options.threads", true); }).empty());
  CHECK(message([] { edge::check_thread_count(-1, "options.threads", true); }).rfind("options.threads: expected 0..", 0) == 0);
  edge::ThreadPool largest(cap);
  CHECK(largest.size() == cap);
}

EDGE_TEST(set_num_threads_while_kernels_run) {
  // Blur on the default pool (Device::cpu()) from two threads while a third keeps resizing the
  // pool; every result must equal the single-threaded reference.
  const int64_t n = 2, h = 48, w = 40;
  std::vector<float> x(static_cast<size_t>(n * h * w));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& v : x) v = u(gen);
  std::vector<float> ref(x.size());
  {
    edge::ThreadPool one(1);
    edge::gaussian_blur_cpu(x.data(), n, h, w, 1.5, ref.data(), one);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0}, runs{0};
  auto worker = [&] {
    std::vector<float> out(x.size());
    while (!stop.load()) {
      edge::gaussian_blur(x.data(), n, h, w, 1.5, out.data());
      if (std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)) != 0) ++mismatches;
      ++runs;
    }
  };
  std::thread a(worker), b(worker);
  for (int i = 0; i < 200; ++i) edge::set_num_threads(1 + i % 4);
  // Keep going until the kernels have run a fair number of times across the changes.
  while (runs.load() < 50) edge::set_num_threads(1 + runs.load() % 3);
  stop = true;
  a.join();
  b.join();
  CHECK(mismatches.load() == 0);
  CHECK(runs.load() >= 50);
  edge::set_num_threads(2);
  CHECK(edge::get_num_threads() == 2);
}

EDGE_TEST_MAIN()
