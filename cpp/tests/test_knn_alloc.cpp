// KnnIndex::search with a kept KnnScratch allocates nothing on the heap once the scratch has
// served a call of the same sizes: every allocation function of the C library (and so operator
// new, which calls malloc) is counted, in every thread.
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "check.hpp"
#include "edge_sdk/kernels/knn.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
}  // namespace

// glibc's own entry points, so the counted functions still use the one allocator.
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  count();
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* aligned_alloc(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
void* memalign(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  count();
  void* p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

EDGE_TEST(search_with_kept_scratch_does_not_allocate) {
  std::mt19937 gen(2);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t m = 9000, d = 40, q = 600, k = 2;
  std::vector<float> b(m * d), queries(q * d), dist(q * k);
  std::vector<int64_t> idx(q * k);
  for (auto& v : b) v = g(gen);
  for (auto& v : queries) v = g(gen);
  std::vector<uint16_t> bh(m * d);
  for (int64_t i = 0; i < m * d; ++i) bh[i] = static_cast<uint16_t>(0x3c00 | (gen() & 0x3ff));  // [1, 2)
  for (int threads : {1, 2, 3}) {
    edge::ThreadPool pool(threads);
    for (auto type : {edge::KnnBankType::F32, edge::KnnBankType::F16}) {
      const void* bank = type == edge::KnnBankType::F32 ? static_cast<const void*>(b.data()) : bh.data();
      const edge::KnnIndex index(bank, type, m, d, pool);
      edge::KnnScratch scratch;
      // warm-up: both shapes of the runtime (a batch of locations; one m* query of k rows)
      index.search(queries.data(), q, 1, dist.data(), idx.data(), pool, &scratch);
      index.search(queries.data(), 1, k, dist.data(), idx.data(), pool, &scratch);
      g_allocations = 0;
      g_counting = true;
      for (int rep = 0; rep < 2; ++rep) {
        index.search(queries.data(), q, 1, dist.data(), idx.data(), pool, &scratch);
        index.search(queries.data(), 1, k, dist.data(), idx.data(), pool, &scratch);
      }
      g_counting = false;
      if (g_allocations.load()) std::printf("  threads %d type %d: %ld allocations\n", threads, static_cast<int>(type), g_allocations.load());
      CHECK(g_allocations.load() == 0);
      // the counter works: a call without a scratch allocates its working memory
      g_allocations = 0;
      g_counting = true;
      index.search(queries.data(), q, k, dist.data(), idx.data(), pool);
      g_counting = false;
      CHECK(g_allocations.load() > 0);
    }
  }
}

EDGE_TEST_MAIN()
