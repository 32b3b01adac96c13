// Concurrency stress: one runtime used from 4 threads x 500 small batches; every output (scores,
// verdicts, statuses, region results, heatmaps) must equal, bit for bit, the serial run of the
// same batch. Run with as many contexts as threads (each call runs at once) and with fewer (calls
// wait for a free context), every post-processing kind with 1, 2 and 4 kernel threads against the
// single-thread run, then a close() racing with running threads: each call either completes or
// reports EDGE_E_INVALID_HANDLE, never crashes.
//
// usage: test_concurrency FIXTURES_DIR [BATCHES_PER_THREAD]
#include <edge_sdk/edge_sdk.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "common.h"
}

namespace {

struct Reference {
  std::vector<edge_image> images;
  std::vector<edge_image_result> results;
  std::vector<edge_region_result> regions;
  std::vector<float> heatmaps;
};

bool same_cycle(const edge_sdk::Cycle& c, const Reference& ref, bool heatmaps) {
  if (c.status() != EDGE_OK || c.size() != ref.results.size()) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!same_result(&c[i], &ref.results[i])) return false;
    for (size_t k = 0; k < c.region_count(); ++k) {
      const edge_region_result& a = c.region(i, k);
      const edge_region_result& b = ref.regions[i * c.region_count() + k];
      if (std::memcmp(&a, &b, sizeof a) != 0) return false;
    }
    if (heatmaps) {
      const size_t n = static_cast<size_t>(c[i].heatmap_height) * static_cast<size_t>(c[i].heatmap_width);
      if (std::memcmp(c.heatmap(i), ref.heatmaps.data() + c[i].heatmap_offset, n * sizeof(float)) != 0) return false;
    }
  }
  return true;
}

// Batches of 1..3 images taken from the fixture in a rotating order.
std::vector<Reference> make_batches(const fixture_images& fx, int count) {
  std::vector<Reference> out(static_cast<size_t>(count));
  for (int b = 0; b < count; ++b)
    for (int k = 0; k <= b % 3; ++k) out[static_cast<size_t>(b)].images.push_back(fixture_image(&fx, (b * 5 + k * 3) % fx.n));
  return out;
}

void serial_reference(const edge_sdk::Runtime& rt, std::vector<Reference>& batches, bool heatmaps) {
  for (Reference& r : batches) {
    edge_sdk::Cycle c;
    rt.run(r.images.data(), r.images.size(), c, 0, heatmaps);
    CHECK(c.ok());
    r.results.assign(&c[0], &c[0] + c.size());
    for (size_t i = 0; i < c.size(); ++i)
      for (size_t k = 0; k < c.region_count(); ++k) r.regions.push_back(c.region(i, k));
    if (heatmaps) {
      const edge_image_result& last = c[c.size() - 1];
      const size_t n = static_cast<size_t>(last.heatmap_offset) + static_cast<size_t>(last.heatmap_height) * last.heatmap_width;
      r.heatmaps.assign(c.heatmap(0), c.heatmap(0) + n);
    }
  }
}

void stress(const char* what, const edge_sdk::Runtime& rt, const std::vector<Reference>& batches, int threads,
            int per_thread, bool heatmaps) {
  std::atomic<int> mismatches{0}, calls{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      edge_sdk::Cycle c;  // one per thread, reused
      for (int i = 0; i < per_thread; ++i) {
        const Reference& ref = batches[static_cast<size_t>(t * 7 + i) % batches.size()];
        rt.run(ref.images.data(), ref.images.size(), c, 0, heatmaps);
        if (!same_cycle(c, ref, heatmaps)) ++mismatches;
        ++calls;
      }
    });
  }
  for (auto& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %d threads x %d batches = %d calls in %.2f s, %d differ from the serial run\n", what, threads, per_thread,
              calls.load(), s, mismatches.load());
  CHECK(calls.load() == threads * per_thread);
  CHECK(mismatches.load() == 0);
}

void close_while_running(const std::string& path, const fixture_images& fx) {
  edge_sdk::Options o;
  o.threads = 1;
  o.contexts = 2;
  edge_sdk::Runtime rt(path, o);
  const edge_image im = fixture_image(&fx, 0);
  edge_runtime* handle = rt.handle();
  std::atomic<int> ok{0}, closed{0}, other{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t) {
    pool.emplace_back([&] {
      edge_image_result r;
      edge_batch_outputs out;
      for (;;) {
        edge_batch_outputs_init(&out);
        out.results = &r;
        out.results_capacity = 1;
        const edge_status s = edge_run(handle, &im, 1, 0, &out);
        if (s == EDGE_OK) {
          ++ok;
        } else {
          if (s == EDGE_E_INVALID_HANDLE && r.verdict == EDGE_VERDICT_REVIEW) ++closed;
          else ++other;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rt.close();  // waits for the calls in progress
  for (auto& th : pool) th.join();
  std::printf("close while running: %d calls completed, %d threads saw the handle closed\n", ok.load(), closed.load());
  CHECK(ok.load() > 0 && closed.load() == 3 && other.load() == 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FIXTURES_DIR [BATCHES_PER_THREAD]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int per_thread = argc > 2 ? std::atoi(argv[2]) : 500;
  fixture_images plain, frames;
  if (!read_fixture(argv[1], "plain_images", &plain) || !read_fixture(argv[1], "frames", &frames)) return 2;
  try {
    {
      edge_sdk::Options o;
      o.threads = 1;
      o.contexts = 4;
      o.heatmaps = true;
      edge_sdk::Runtime rt(dir + "/plain", o);
      std::vector<Reference> batches = make_batches(plain, 11);
      serial_reference(rt, batches, true);
      stress("plain, 4 contexts, heatmaps", rt, batches, 4, per_thread, true);
    }
    {
      edge_sdk::Options o;
      o.threads = 1;
      o.contexts = 2;
      edge_sdk::Runtime rt(dir + "/regions", o);
      std::vector<Reference> batches = make_batches(frames, 7);
      serial_reference(rt, batches, false);
      stress("regions, 2 contexts for 4 threads", rt, batches, 4, per_thread, false);
    }
    // Every post-processing kind with 1, 2 and 4 kernel threads and 2 contexts: the CPU kernels
    // split their work by the thread count, yet every output must equal the single-thread serial
    // run bit for bit, called one at a time or from 2 threads at once.
    for (const char* kind : {"plain", "kind_knn", "kind_knn_plain", "kind_mahalanobis", "kind_mhbc", "kind_mask"}) {
      std::vector<Reference> batches = make_batches(plain, 7);
      {
        edge_sdk::Options o;
        o.threads = 1;
        o.contexts = 1;
        o.heatmaps = true;
        serial_reference(edge_sdk::Runtime(dir + "/" + kind, o), batches, true);
      }
      for (int threads : {1, 2, 4}) {
        edge_sdk::Options o;
        o.threads = threads;
        o.contexts = 2;
        o.heatmaps = true;
        edge_sdk::Runtime rt(dir + "/" + kind, o);
        int differ = 0;
        for (const Reference& r : batches) {
          edge_sdk::Cycle c;
          rt.run(r.images.data(), r.images.size(), c, 0, true);
          differ += !same_cycle(c, r, true);
        }
        if (differ) std::printf("%s, %d threads: %d serial batches differ from 1 thread\n", kind, threads, differ);
        CHECK(differ == 0);
        const std::string what = std::string(kind) + ", " + std::to_string(threads) + " kernel threads, 2 contexts";
        stress(what.c_str(), rt, batches, 2, per_thread / 10 > 10 ? per_thread / 10 : 10, true);
      }
    }
    close_while_running(dir + "/plain", plain);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    ++g_failures;
  }
  std::free(plain.data);
  std::free(frames.data);
  std::printf("%s: %d failure(s)\n", argv[0], g_failures);
  return g_failures ? 1 : 0;
}
