// CPU k-NN: a GEMM-shaped scan with the candidate selection fused in, then an exact re-rank.
// KnnIndex does step 1 for the bank and prepares its packed panels once; search() does the rest
// on every call; knn_cpu is build + search.
//
// 1. Centre: queries and bank are shifted by the bank mean (distances do not change, norms
//    shrink, so the expansion below loses less to cancellation).
// 2. Scan: ranking value v = ||b||^2 - 2 q.b (= ||q - b||^2 - ||q||^2) for every pair, computed
//    by register-blocked micro-kernels (knn_tiles.cpp) on packed, cache-blocked panels; each
//    query keeps the k + extra smallest in a heap. Never a q x m matrix.
// 3. Re-rank: exact double distances of the candidates (exact_sq_dist), top k by (distance,
//    index).
// 4. Certify: a float32 error bound on v proves that no vector left out of the candidates can be
//    closer than the k-th neighbour found. Queries that fail (near-duplicates, neighbours close
//    relative to the norms) are scanned again with 4x the candidates, up to the whole bank, so
//    the result is exact whatever the data.
#include "edge_sdk/kernels/knn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/knn_math.hpp"
#include "cpu_isa.hpp"
#include "knn_tiles.hpp"

namespace edge {


namespace {

using knn_detail::TileKernel;

constexpr double kUnit = 5.9604644775390625e-08;  // 2^-24, float32 unit roundoff
constexpr double kMaxSquaredNorm = 1e36;           // keeps every float32 partial sum finite
constexpr int64_t kQueryPackBytes = 2 << 20;       // packed queries of one task
constexpr int64_t kBankChunkBytes = 256 << 10;     // bank panels scanned together, kept in L2
constexpr int64_t kQueryBlockBytes = 32 << 10;     // queries reused across the panels of a chunk
constexpr int64_t kCandidateBytes = 64 << 20;      // candidate heaps of one batch of queries
constexpr int64_t kRowsPerStatsTask = 1024;
constexpr int64_t kPanelsPerPackTask = 64;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 64-byte aligned float buffer (the micro-kernels use aligned loads) that only grows.
class AlignedFloats {
 public:
  void reserve(int64_t n) {
    if (ptr_ && n <= size_) return;
    const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
    ptr_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!ptr_) throw std::bad_alloc();
    size_ = n;
  }
  float* get() const { return ptr_.get(); }
  size_t bytes() const { return ptr_ ? static_cast<size_t>(size_) * sizeof(float) : 0; }

 private:
  std::unique_ptr<float, FreeDeleter> ptr_;
  int64_t size_ = 0;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct Bank {
  const void* data;
  KnnBankType type;
  int64_t m, d;

  // Rows [i, i + n) as float32, row-major: a pointer into the bank, or widened into `scratch`
  // (n * d floats).
  const float* rows(int64_t i, int64_t n, float* scratch, const TileKernel& tk) const {
    if (type == KnnBankType::F32) return static_cast<const float*>(data) + i * d;
    tk.half_to_float(static_cast<const uint16_t*>(data) + i * d, scratch, n * d);
    return scratch;
  }
};

// ||fl(x - mean)||^2 in double (four partial sums: the chain of additions would otherwise set
// the pace). The float32 subtraction is the one the packing does.
double centred_sq_norm(const float* x, const float* mean, int64_t d) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + 4 <= d; j += 4)
    for (int t = 0; t < 4; ++t) {
      const double v = static_cast<float>(x[j + t] - mean[j + t]);
      s[t] += v * v;
    }
  for (; j < d; ++j) {
    const double v = static_cast<float>(x[j] - mean[j]);
    s[0] += v * v;
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Bank mean (float32, as used for centring), squared norm of every centred row (float32, the
// ranking values' offset) and the largest centred norm (for the error bound).
struct BankStats {
  std::vector<float> mean;
  std::vector<float> norm2;
  double max_norm = 0.0;
};

BankStats bank_stats(const Bank& bank, const TileKernel& tk, ThreadPool& pool) {
  const int64_t m = bank.m, d = bank.d;
  const int64_t blocks = ceil_div(m, kRowsPerStatsTask);
  auto block_rows = [&](int64_t b) { return std::min(m, (b + 1) * kRowsPerStatsTask) - b * kRowsPerStatsTask; };
  // Per-block partial sums reduced in block order: the mean does not depend on the thread count.
  std::vector<double> partial(static_cast<size_t>(blocks * d), 0.0);
  pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> scratch(bank.type == KnnBankType::F16 ? static_cast<size_t>(kRowsPerStatsTask * d) : 0);
    for (int64_t b = b0; b < b1; ++b) {
      double* s = partial.data() + b * d;
      const int64_t n = block_rows(b);
      const float* r = bank.rows(b * kRowsPerStatsTask, n, scratch.data(), tk);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < d; ++j) s[j] += r[i * d + j];
    }
  });
  BankStats st;
  st.mean.assign(static_cast<size_t>(d), 0.0f);
  for (int64_t j = 0; j < d; ++j) {
    double s = 0.0;
    for (int64_t b = 0; b < blocks; ++b) s += partial[static_cast<size_t>(b * d + j)];
    st.mean[static_cast<size_t>(j)] = static_cast<float>(s / static_cast<double>(m));
    if (!std::isfinite(st.mean[static_cast<size_t>(j)]))
      throw ArgumentError("bank: contains NaN or infinity, or values too large (column " +
                          std::to_string(j) + ")");
  }
  st.norm2.resize(static_cast<size_t>(m));
  std::vector<double> block_max(static_cast<size_t>(blocks), 0.0);
  pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> scratch(bank.type == KnnBankType::F16 ? static_cast<size_t>(kRowsPerStatsTask * d) : 0);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = block_rows(b), first = b * kRowsPerStatsTask;
      const float* r = bank.rows(first, n, scratch.data(), tk);
      double mx = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double s = centred_sq_norm(r + i * d, st.mean.data(), d);
        st.norm2[static_cast<size_t>(first + i)] = static_cast<float>(s);
        if (!(s <= mx)) mx = s;  // NaN propagates
      }
      block_max[static_cast<size_t>(b)] = mx;
    }
  });
  double mx = 0.0;
  for (double v : block_max) {
    if (!(v <= kMaxSquaredNorm))
      throw ArgumentError("bank: contains NaN or infinity, or values too large (squared norm "
                          "about the mean beyond 1e36)");
    mx = std::max(mx, v);
  }
  st.max_norm = std::sqrt(mx);
  return st;
}

// Depth of the packed layouts: d floats, or ceil(d / 2) slots of bfloat16 pairs (knn_tiles.hpp).
int64_t packed_depth(int64_t d, bool bf16) { return bf16 ? (d + 1) / 2 : d; }

// Packs `count` centred vectors (vector i's dimension x at src[i * d + x] - mean[x]) into `width`
// columns of a [depth][width] block, zero-padded: floats, or bfloat16 pairs.
void pack_columns(const float* src, int64_t count, int64_t d, const float* mean, int64_t width, bool bf16,
                  float* dst) {
  if (!bf16) {
    for (int64_t x = 0; x < d; ++x) {
      float* out = dst + x * width;
      for (int64_t j = 0; j < count; ++j) out[j] = src[j * d + x] - mean[x];
      for (int64_t j = count; j < width; ++j) out[j] = 0.0f;
    }
    return;
  }
  for (int64_t x = 0; x < d; x += 2) {
    float* out = dst + x / 2 * width;
    for (int64_t j = 0; j < width; ++j) {
      uint32_t pair = 0;
      if (j < count) {
        pair = bf16_bits(src[j * d + x] - mean[x]);
        if (x + 1 < d) pair |= static_cast<uint32_t>(bf16_bits(src[j * d + x + 1] - mean[x + 1])) << 16;
      }
      std::memcpy(out + j, &pair, sizeof pair);
    }
  }
}

// Packs rows [0, n) of `rows` (row-major float32), centred, into panels [depth][nr] (zero
// padding); their squared norms from `norm2`, +inf for padding lanes so those are never admitted.
void pack_bank(const float* rows, int64_t n, int64_t d, const float* mean, const float* norm2,
               int64_t nr, bool bf16, float* panels, float* norms) {
  const int64_t depth = packed_depth(d, bf16);
  for (int64_t p0 = 0; p0 < n; p0 += nr) {
    const int64_t valid = std::min(nr, n - p0);
    pack_columns(rows + p0 * d, valid, d, mean, nr, bf16, panels + p0 * depth);
    for (int64_t j = 0; j < nr; ++j)
      norms[p0 + j] = j < valid ? norm2[p0 + j] : std::numeric_limits<float>::infinity();
  }
}

// Packs rows [0, n) of `rows`, centred, into groups [depth][mr] (zero padding).
void pack_queries(const float* rows, int64_t n, int64_t d, const float* mean, int64_t mr, bool bf16,
                  float* groups) {
  const int64_t depth = packed_depth(d, bf16);
  for (int64_t g0 = 0; g0 < n; g0 += mr)
    pack_columns(rows + g0 * d, std::min(mr, n - g0), d, mean, mr, bf16, groups + g0 * depth);
}

// How one batch of nq queries is split into tasks: ranges of queries x slices of the bank. Each
// task packs its queries once and streams its bank slice (whole panels) chunk by chunk.
struct ScanPlan {
  int64_t range = 0, nranges = 0;   // queries per task
  int64_t slice = 0, nslices = 0;   // bank rows per task, a multiple of nr
  int64_t kp = 0;                   // heap size per (query, slice)
  int64_t chunk = 0;                // bank rows scanned together, a multiple of nr
  int64_t block_groups = 0;         // query groups (of mr) per cache block
};

ScanPlan plan_scan(int64_t nq, int64_t m, int64_t d, int64_t kp, int threads, const TileKernel& tk) {
  ScanPlan p;
  const int64_t target = threads > 1 ? 4 * int64_t{threads} : 1;
  const int64_t row_bytes = 4 * packed_depth(d, tk.bf16);  // of a packed query or bank vector
  const int64_t max_range = std::max<int64_t>(tk.mr, kQueryPackBytes / row_bytes / tk.mr * tk.mr);
  p.nranges = ceil_div(nq, max_range);
  // More, smaller ranges for parallelism while each still amortizes its query packing...
  if (p.nranges < target) p.nranges = std::max(p.nranges, std::min(target, nq / 256));
  p.range = round_up(ceil_div(nq, std::max<int64_t>(p.nranges, 1)), tk.mr);
  p.nranges = ceil_div(nq, p.range);
  // ...then bank slices when there are too few queries to keep every thread busy.
  p.nslices = 1;
  if (p.nranges < target)
    p.nslices = std::max<int64_t>(1, std::min(ceil_div(target, p.nranges), m / 2048));
  p.slice = round_up(ceil_div(m, p.nslices), tk.nr);  // slices start on panel boundaries
  p.nslices = ceil_div(m, p.slice);
  p.kp = std::min(kp, p.slice);
  p.chunk = std::clamp<int64_t>(kBankChunkBytes / row_bytes / tk.nr * tk.nr, tk.nr, 8192);
  p.block_groups = std::max<int64_t>(1, kQueryBlockBytes / (row_bytes * tk.mr));
  return p;
}

// Lower bound on the true distance from a query to any bank row of slice s that the scan left
// out: those rows had a computed ranking value >= the heap root T. The computed value differs
// from the exact one for the centred float32 vectors by at most
//   E = (2d + 4) u (B^2 + 2 |q| B)      (float32 dot product, norm and fused update; B = largest
//                                        centred bank norm; 2d covers non-fused accumulation),
// and centring in float32 moves a distance by at most u (|q| + B). A bf16 scan takes the dot
// product of q' and b', each entry rounded to bfloat16 (relative error <= v = 2^-8, or flushed
// to zero below 2^-126): |q.b - q'.b'| <= |q - q'| B + |q'| |b - b'| <= (2v + v^2)|q| B + F, so
// twice that is added to E (F: the flushed products and partial sums, <= 4d 2^-126 |...| in all,
// and the accumulation's bound above applies to |q'| <= (1 + v)|q|, |b'| <= (1 + v) B).
double excluded_lower_bound(float root, double qnorm2, double max_norm, int64_t d, bool bf16) {
  const double qn = std::sqrt(qnorm2), b = max_norm;
  const double e = 1.02 * knn_scan_error_bound(d, qn, b, bf16);
  const double s2 = qnorm2 + static_cast<double>(root) - e;
  if (!(s2 > 0.0)) return 0.0;
  return std::sqrt(s2) - 1.02 * kUnit * (qn + b);
}

// Buffers of one running chunk of a parallel_for.
struct Worker {
  AlignedFloats qpack;                              // packed queries of a scan task
  std::vector<std::pair<double, int64_t>> found;    // re-ranked candidates of a query
  std::vector<float> row;                           // a widened float16 bank row
};

// pool.parallel_for with a std::function holding one pointer (stored in place): a lambda that
// captures more than two pointers would make std::function allocate on every call.
template <typename Job>
void run_parallel(ThreadPool& pool, int64_t n, const Job& job, int64_t grain = 1) {
  const Job* j = &job;
  pool.parallel_for(n, [j](int64_t b, int64_t e) { (*j)(b, e); }, grain);
}

}  // namespace

struct KnnScratch::Impl {
  std::vector<double> qnorm;
  std::vector<int64_t> pending, next;
  std::vector<char> failed;
  std::vector<float> gathered;
  std::vector<float> cand_val;    // [slice][query][kp] approximate ranking values
  std::vector<int32_t> cand_idx;  // their bank rows, -1 = empty
  std::vector<Worker> workers;
  std::vector<int> free_workers;
  std::mutex mutex;

  // At most pool.size() chunks of one parallel_for run at once: one Worker each.
  void prepare_workers(int n) {
    if (static_cast<int>(workers.size()) < n) workers.resize(static_cast<size_t>(n));
    free_workers.resize(workers.size());
    std::iota(free_workers.begin(), free_workers.end(), 0);
  }
  Worker& claim() {
    std::lock_guard<std::mutex> lock(mutex);
    if (free_workers.empty())  // more concurrent chunks than pool threads: shared scratch?
      throw std::logic_error("KnnScratch: used by concurrent searches (one scratch per thread)");
    const int w = free_workers.back();
    free_workers.pop_back();
    return workers[static_cast<size_t>(w)];
  }
  void release(Worker& w) {
    std::lock_guard<std::mutex> lock(mutex);
    free_workers.push_back(static_cast<int>(&w - workers.data()));
  }
};

namespace {

class WorkerLease {
 public:
  explicit WorkerLease(KnnScratch::Impl& s) : s_(s), w_(s.claim()) {}
  ~WorkerLease() { s_.release(w_); }
  WorkerLease(const WorkerLease&) = delete;
  WorkerLease& operator=(const WorkerLease&) = delete;
  Worker* operator->() const { return &w_; }

 private:
  KnnScratch::Impl& s_;
  Worker& w_;
};

}  // namespace

KnnScratch::KnnScratch() : impl_(std::make_unique<Impl>()) {}
KnnScratch::~KnnScratch() = default;
KnnScratch::KnnScratch(KnnScratch&&) noexcept = default;
KnnScratch& KnnScratch::operator=(KnnScratch&&) noexcept = default;

size_t KnnScratch::bytes() const {
  if (!impl_) return 0;
  const Impl& s = *impl_;
  size_t n = s.qnorm.capacity() * sizeof(double) +
             (s.pending.capacity() + s.next.capacity()) * sizeof(int64_t) + s.failed.capacity() +
             s.gathered.capacity() * sizeof(float) + s.cand_val.capacity() * sizeof(float) +
             s.cand_idx.capacity() * sizeof(int32_t);
  for (const Worker& w : s.workers)
    n += w.qpack.bytes() + w.found.capacity() * sizeof(w.found[0]) + w.row.capacity() * sizeof(float);
  return n;
}

struct KnnIndex::Impl {
  Bank bank;
  TileKernel tk;
  int extra = 0;
  std::vector<float> mean;
  double max_norm = 0.0;
  AlignedFloats panels;  // ceil(m / nr) panels [d][nr], centred, zero-padded
  AlignedFloats norms;   // ceil(m / nr) * nr squared centred norms, +inf for padding lanes

  // ||fl(q - mean)||^2 of every query, in double, into s.qnorm.
  void query_norms(const float* queries, int64_t q, ThreadPool& pool, KnnScratch::Impl& s) const;
  // Candidate heaps of nq contiguous query rows into s.cand_val / s.cand_idx.
  void scan(const float* queries, int64_t nq, const ScanPlan& p, ThreadPool& pool,
            KnnScratch::Impl& s) const;
};

void KnnIndex::Impl::query_norms(const float* queries, int64_t q, ThreadPool& pool,
                                 KnnScratch::Impl& s) const {
  const int64_t d = bank.d;
  s.qnorm.resize(static_cast<size_t>(q));
  double* out = s.qnorm.data();
  const float* mu = mean.data();
  auto job = [queries, d, out, mu](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = centred_sq_norm(queries + i * d, mu, d);
  };
  run_parallel(pool, q, job, 256);
  for (int64_t i = 0; i < q; ++i)
    if (!(out[i] <= kMaxSquaredNorm))
      throw ArgumentError("queries: row " + std::to_string(i) +
                          " contains NaN or infinity, or values too large (squared norm about "
                          "the bank mean beyond 1e36)");
}

void KnnIndex::Impl::scan(const float* queries, int64_t nq, const ScanPlan& p, ThreadPool& pool,
                          KnnScratch::Impl& s) const {
  const int64_t d = bank.d, m = bank.m, mr = tk.mr, nr = tk.nr, depth = packed_depth(d, tk.bf16);
  const size_t total = static_cast<size_t>(p.nslices * nq * p.kp);
  s.cand_val.assign(total, std::numeric_limits<float>::infinity());
  s.cand_idx.assign(total, -1);
  // every worker sized here, not when claimed: which one a chunk gets varies from call to call
  for (Worker& w : s.workers) w.qpack.reserve(p.range * depth);
  auto job = [&](int64_t t0, int64_t t1) {
    WorkerLease w(s);
    float* qp = w->qpack.get();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / p.nslices, sl = t % p.nslices;
      const int64_t q0 = r * p.range, nqr = std::min(nq, q0 + p.range) - q0;
      const int64_t groups = ceil_div(nqr, mr);
      pack_queries(queries + q0 * d, nqr, d, mean.data(), mr, tk.bf16, qp);
      float* hv = s.cand_val.data() + (sl * nq + q0) * p.kp;
      int32_t* hi = s.cand_idx.data() + (sl * nq + q0) * p.kp;
      const int64_t b_end = std::min(m, (sl + 1) * p.slice);
      for (int64_t c0 = sl * p.slice; c0 < b_end; c0 += p.chunk) {
        // c0 is a multiple of nr: the chunk is whole panels of the prepared bank
        const int64_t chunk_panels = ceil_div(std::min(b_end, c0 + p.chunk) - c0, nr);
        const float* bp = panels.get() + c0 * depth;
        const float* bn = norms.get() + c0;
        // blocks of queries stay in L1/L2 while the panels of the chunk pass over them
        for (int64_t g0 = 0; g0 < groups; g0 += p.block_groups) {
          const int64_t g1 = std::min(groups, g0 + p.block_groups);
          for (int64_t pi = 0; pi < chunk_panels; ++pi) {
            const float* panel = bp + pi * depth * nr;
            const int32_t base = static_cast<int32_t>(c0 + pi * nr);
            for (int64_t g = g0; g < g1; ++g) {
              const int valid = static_cast<int>(std::min<int64_t>(mr, nqr - g * mr));
              tk.tile(qp + g * depth * mr, panel, bn + pi * nr, depth, valid, base, hv + g * mr * p.kp,
                      hi + g * mr * p.kp, static_cast<int>(p.kp));
            }
          }
        }
      }
    }
  };
  run_parallel(pool, p.nranges * p.nslices, job);
}

namespace {

// Whether the bfloat16 scan suits this bank: its error bound grows with the bank's norms
// (excluded_lower_bound), and where it is not small against the data's squared scale, queries
// fail to certify and re-scan. Measured (benchmarks/bench_knn_worst_case.py, 8192 x 256): at 0.13
// S^2 the bfloat16 scan is still 1.4x faster than the float32 one, at 0.29 S^2 2.4x slower.
constexpr double kBf16MaxRelativeError = 0.1;
bool bf16_scan_suits(const void* bank, KnnBankType bank_type, int64_t m, int64_t d) {
  const KnnBankScale st = knn_bank_scale(bank, bank_type, m, d);
  const double s2 = st.scale * st.scale;
  return s2 > 0.0 && knn_scan_error_bound(d, st.query_norm, st.max_norm, /*bf16=*/true) <= kBf16MaxRelativeError * s2;
}

// The bank's statistics (which check its values) and packed panels for the micro-kernel of `isa`;
// with `only_if_suits`, a bfloat16 isa falls back to float32 for a bank it does not suit.
std::unique_ptr<KnnIndex::Impl> build_index(const void* bank_data, KnnBankType bank_type, int64_t m, int64_t d,
                                            ThreadPool& pool, KnnIsa isa, bool only_if_suits, int extra) {
  auto ix = std::make_unique<KnnIndex::Impl>();
  ix->bank = Bank{bank_data, bank_type, m, d};
  ix->tk = knn_detail::tile_kernel(isa);
  ix->extra = extra;
  BankStats stats = bank_stats(ix->bank, ix->tk, pool);
  // the float32 and bfloat16 kernels read the bank alike, so the statistics serve either
  if (only_if_suits && ix->tk.bf16 && !bf16_scan_suits(bank_data, bank_type, m, d))
    ix->tk = knn_detail::tile_kernel(KnnIsa::Avx512);
  ix->mean = std::move(stats.mean);
  ix->max_norm = stats.max_norm;
  const int64_t nr = ix->tk.nr, npanels = ceil_div(m, nr), depth = packed_depth(d, ix->tk.bf16);
  ix->panels.reserve(npanels * nr * depth);
  ix->norms.reserve(npanels * nr);
  const KnnIndex::Impl& c = *ix;
  pool.parallel_for(ceil_div(npanels, kPanelsPerPackTask), [&](int64_t t0, int64_t t1) {
    const int64_t rows_per_task = kPanelsPerPackTask * nr;
    std::vector<float> scratch(bank_type == KnnBankType::F16 ? static_cast<size_t>(rows_per_task * d) : 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * rows_per_task, n = std::min(m, r0 + rows_per_task) - r0;
      pack_bank(c.bank.rows(r0, n, scratch.data(), c.tk), n, d, c.mean.data(),
                stats.norm2.data() + r0, nr, c.tk.bf16, c.panels.get() + r0 * depth, c.norms.get() + r0);
    }
  });
  return ix;
}

}  // namespace

KnnIndex::KnnIndex(const void* bank_data, KnnBankType bank_type, int64_t m, int64_t d,
                   ThreadPool& pool, const KnnOptions& options) {
  validate_knn(1, m, d, 1);
  if (bank_data == nullptr) throw ArgumentError("bank: null pointer");
  if (options.extra < 0)
    throw ArgumentError("extra: expected >= 0, got " + std::to_string(options.extra));
  const KnnIsa isa = options.isa == KnnIsa::Auto ? knn_best_isa() : options.isa;
  if (!knn_detail::cpu_has(isa))
    throw ArgumentError(std::string("isa: ") + knn_isa_name(isa) + " is not supported by this CPU");
  // Auto keeps the bfloat16 scan only where it suits the bank: the results are the same either way.
  impl_ = build_index(bank_data, bank_type, m, d, pool, isa, /*only_if_suits=*/options.isa == KnnIsa::Auto,
                      options.extra);
}

KnnIndex::~KnnIndex() = default;
KnnIndex::KnnIndex(KnnIndex&&) noexcept = default;
KnnIndex& KnnIndex::operator=(KnnIndex&&) noexcept = default;

int64_t KnnIndex::rows() const { return impl_->bank.m; }
int64_t KnnIndex::dim() const { return impl_->bank.d; }
KnnBankType KnnIndex::bank_type() const { return impl_->bank.type; }
KnnIsa KnnIndex::isa() const { return impl_->tk.isa; }
size_t KnnIndex::bytes() const {
  return impl_->panels.bytes() + impl_->norms.bytes() + impl_->mean.capacity() * sizeof(float);
}

void KnnIndex::search(const float* queries, int64_t q, int64_t k, float* distances,
                      int64_t* indices, ThreadPool& pool, KnnScratch* scratch) const {
  const Impl& ix = *impl_;
  const int64_t m = ix.bank.m, d = ix.bank.d;
  validate_knn(q, m, d, k);
  std::unique_ptr<KnnScratch> call_scratch;
  if (scratch == nullptr || !scratch->impl_) {
    call_scratch = std::make_unique<KnnScratch>();
    scratch = call_scratch.get();
  }
  KnnScratch::Impl& s = *scratch->impl_;
  s.prepare_workers(pool.size());
  ix.query_norms(queries, q, pool, s);

  s.pending.resize(static_cast<size_t>(q));
  std::iota(s.pending.begin(), s.pending.end(), 0);
  int64_t kp = std::min<int64_t>(m, k + ix.extra);
  while (!s.pending.empty()) {
    const int64_t npending = static_cast<int64_t>(s.pending.size());
    s.failed.assign(s.pending.size(), 0);
    const ScanPlan full = plan_scan(npending, m, d, kp, pool.size(), ix.tk);
    const int64_t batch =
        std::max<int64_t>(1, std::min<int64_t>(npending, kCandidateBytes / (8 * full.nslices * full.kp)));
    for (int64_t b0 = 0; b0 < npending; b0 += batch) {
      const int64_t nb = std::min<int64_t>(npending, b0 + batch) - b0;
      const int64_t* pend = s.pending.data() + b0;
      // the batch's query rows, contiguous: in place when they already are
      const float* qrows;
      if (pend[nb - 1] - pend[0] == nb - 1) {
        qrows = queries + pend[0] * d;
      } else {
        s.gathered.resize(static_cast<size_t>(nb * d));
        for (int64_t i = 0; i < nb; ++i) std::copy_n(queries + pend[i] * d, d, s.gathered.data() + i * d);
        qrows = s.gathered.data();
      }
      const ScanPlan plan = plan_scan(nb, m, d, kp, pool.size(), ix.tk);
      ix.scan(qrows, nb, plan, pool, s);

      char* failed = s.failed.data() + b0;
      for (Worker& w : s.workers) {
        w.found.reserve(static_cast<size_t>(plan.nslices * plan.kp));
        if (ix.bank.type == KnnBankType::F16) w.row.resize(static_cast<size_t>(d));
      }
      auto rerank = [&](int64_t i0, int64_t i1) {
        WorkerLease w(s);
        auto& found = w->found;
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t qi = pend[i];
          const float* qv = queries + qi * d;
          found.clear();
          for (int64_t sl = 0; sl < plan.nslices; ++sl) {
            const int32_t* ids = s.cand_idx.data() + (sl * nb + i) * plan.kp;
            for (int64_t j = 0; j < plan.kp; ++j)
              if (ids[j] >= 0)
                found.emplace_back(exact_sq_dist(qv, ix.bank.rows(ids[j], 1, w->row.data(), ix.tk), d), ids[j]);
          }
          auto before = [](const std::pair<double, int64_t>& a, const std::pair<double, int64_t>& b) {
            return neighbour_before(a.first, a.second, b.first, b.second);
          };
          std::partial_sort(found.begin(), found.begin() + k, found.end(), before);
          for (int64_t j = 0; j < k; ++j) {
            distances[qi * k + j] = static_cast<float>(std::sqrt(found[static_cast<size_t>(j)].first));
            indices[qi * k + j] = found[static_cast<size_t>(j)].second;
          }
          // Certified when every slice either kept all its rows or provably left out only rows
          // farther than the k-th neighbour (strictly, so ties at the k-th are all in view).
          const double dk = std::sqrt(found[static_cast<size_t>(k - 1)].first) * (1.0 + 1e-12);
          for (int64_t sl = 0; sl < plan.nslices; ++sl) {
            const int64_t rows = std::min(m, (sl + 1) * plan.slice) - sl * plan.slice;
            if (rows <= plan.kp) continue;
            const float root = s.cand_val[static_cast<size_t>((sl * nb + i) * plan.kp)];
            if (!(excluded_lower_bound(root, s.qnorm[static_cast<size_t>(qi)], ix.max_norm, d, ix.tk.bf16) > dk)) {
              failed[i] = 1;
              break;
            }
          }
        }
      };
      run_parallel(pool, nb, rerank, 64);
    }
    s.next.clear();
    for (size_t i = 0; i < s.pending.size(); ++i)
      if (s.failed[i]) s.next.push_back(s.pending[i]);
    s.pending.swap(s.next);
    kp = std::min<int64_t>(m, kp * 4);
  }
}

bool knn_isa_supported(KnnIsa isa) { return knn_detail::cpu_has(isa); }

KnnIsa knn_best_isa() {
  // the bfloat16 scan gives the same (exact) results, 1.1-1.7x faster on PatchCore-shaped banks
  // (benchmarks/bench_knn.py --only isa); KnnIndex keeps float32 for banks it does not suit
  if (knn_detail::cpu_has(KnnIsa::Avx512Bf16)) return KnnIsa::Avx512Bf16;
  if (knn_detail::cpu_has(KnnIsa::Avx512)) return KnnIsa::Avx512;
  if (knn_detail::cpu_has(KnnIsa::Avx2)) return KnnIsa::Avx2;
  return KnnIsa::Scalar;
}

const char* knn_isa_name(KnnIsa isa) {
  switch (isa) {
    case KnnIsa::Scalar: return "scalar";
    case KnnIsa::Avx2: return "avx2";
    case KnnIsa::Avx512: return "avx512";
    case KnnIsa::Avx512Bf16: return "avx512bf16";
    default: return "auto";
  }
}

KnnIsa parse_knn_isa(const std::string& name, const char* arg) {
  for (KnnIsa isa : {KnnIsa::Auto, KnnIsa::Scalar, KnnIsa::Avx2, KnnIsa::Avx512, KnnIsa::Avx512Bf16})
    if (name == knn_isa_name(isa)) return isa;
  throw ArgumentError(std::string(arg) + ": expected \"auto\", \"scalar\", \"avx2\", \"avx512\" or \"avx512bf16\", got \"" +
                      name + "\"");
}

void knn_cpu(const float* queries, int64_t q, const void* bank, KnnBankType bank_type,
             int64_t m, int64_t d, int64_t k, float* distances, int64_t* indices, ThreadPool& pool,
             const KnnOptions& options) {
  validate_knn(q, m, d, k);
  KnnIndex(bank, bank_type, m, d, pool, options).search(queries, q, k, distances, indices, pool);
}

void knn(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
         int64_t d, int64_t k, float* distances, int64_t* indices, const Device& device) {
  validate_knn(q, m, d, k);
  run_on_device(
      device, [&](ThreadPool& pool) { knn_cpu(queries, q, bank, bank_type, m, d, k, distances, indices, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(knn_cuda_host(queries, q, bank, bank_type, m, d, k, distances, indices, index);) });
}

}  // namespace edge
