// CPU k-NN: a GEMM-shaped scan with the candidate selection fused in, then an exact re-rank.
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
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/knn_math.hpp"
#include "knn_tiles.hpp"

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

namespace {

using knn_detail::TileKernel;

constexpr double kUnit = 5.9604644775390625e-08;  // 2^-24, float32 unit roundoff
constexpr double kMaxSquaredNorm = 1e36;           // keeps every float32 partial sum finite
constexpr int64_t kQueryPackBytes = 2 << 20;       // packed queries of one task
constexpr int64_t kBankChunkBytes = 256 << 10;     // packed bank chunk, kept in L2
constexpr int64_t kQueryBlockBytes = 32 << 10;     // queries reused across the panels of a chunk
constexpr int64_t kCandidateBytes = 64 << 20;      // candidate heaps of one batch of queries
constexpr int64_t kRowsPerStatsTask = 1024;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 64-byte aligned float buffer (the micro-kernels use aligned loads).
class AlignedFloats {
 public:
  explicit AlignedFloats(int64_t n) {
    const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
    ptr_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!ptr_) throw std::bad_alloc();
  }
  float* get() const { return ptr_.get(); }

 private:
  std::unique_ptr<float, FreeDeleter> ptr_;
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

// ||fl(q - mean)||^2 of every query, in double.
std::vector<double> query_norms(const float* queries, int64_t q, int64_t d, const BankStats& st,
                                ThreadPool& pool) {
  std::vector<double> out(static_cast<size_t>(q));
  pool.parallel_for(q, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      out[static_cast<size_t>(i)] = centred_sq_norm(queries + i * d, st.mean.data(), d);
  }, 256);
  for (int64_t i = 0; i < q; ++i)
    if (!(out[static_cast<size_t>(i)] <= kMaxSquaredNorm))
      throw ArgumentError("queries: row " + std::to_string(i) +
                          " contains NaN or infinity, or values too large (squared norm about "
                          "the bank mean beyond 1e36)");
  return out;
}

// How one batch of nq queries is split into tasks: ranges of queries x slices of the bank. Each
// task packs its queries once and streams its bank slice chunk by chunk.
struct ScanPlan {
  int64_t range = 0, nranges = 0;   // queries per task
  int64_t slice = 0, nslices = 0;   // bank rows per task
  int64_t kp = 0;                   // heap size per (query, slice)
  int64_t chunk = 0;                // bank rows packed at a time
  int64_t block_groups = 0;         // query groups (of mr) per cache block
};

ScanPlan plan_scan(int64_t nq, int64_t m, int64_t d, int64_t kp, int threads, const TileKernel& tk) {
  ScanPlan p;
  const int64_t target = threads > 1 ? 4 * int64_t{threads} : 1;
  const int64_t max_range = std::max<int64_t>(tk.mr, kQueryPackBytes / (4 * d) / tk.mr * tk.mr);
  p.nranges = ceil_div(nq, max_range);
  // More, smaller ranges for parallelism while each still amortizes its bank packing...
  if (p.nranges < target) p.nranges = std::max(p.nranges, std::min(target, nq / 256));
  p.range = round_up(ceil_div(nq, std::max<int64_t>(p.nranges, 1)), tk.mr);
  p.nranges = ceil_div(nq, p.range);
  // ...then bank slices when there are too few queries to keep every thread busy.
  p.nslices = 1;
  if (p.nranges < target)
    p.nslices = std::max<int64_t>(1, std::min(ceil_div(target, p.nranges), m / 2048));
  p.slice = ceil_div(m, p.nslices);
  p.nslices = ceil_div(m, p.slice);
  p.kp = std::min(kp, p.slice);
  p.chunk = std::clamp<int64_t>(kBankChunkBytes / (4 * d) / tk.nr * tk.nr, tk.nr, 8192);
  p.block_groups = std::max<int64_t>(1, kQueryBlockBytes / (4 * d * tk.mr));
  return p;
}

// Candidate heaps of a batch: [slice][query][kp] values (approximate ranking values) and
// indices (-1 = empty).
struct Candidates {
  std::vector<float> val;
  std::vector<int32_t> idx;
};

// Packs rows [0, n) of `rows` (row-major float32), centred, into panels [d][nr] (zero padding);
// their squared norms from `norm2`, +inf for padding lanes so those are never admitted.
void pack_bank(const float* rows, int64_t n, int64_t d, const float* mean, const float* norm2,
               int64_t nr, float* panels, float* norms) {
  for (int64_t p0 = 0; p0 < n; p0 += nr) {
    const int64_t valid = std::min(nr, n - p0);
    float* dst = panels + p0 * d;
    const float* src = rows + p0 * d;
    for (int64_t x = 0; x < d; ++x) {
      float* out = dst + x * nr;
      for (int64_t j = 0; j < valid; ++j) out[j] = src[j * d + x] - mean[x];
      for (int64_t j = valid; j < nr; ++j) out[j] = 0.0f;
    }
    for (int64_t j = 0; j < nr; ++j)
      norms[p0 + j] = j < valid ? norm2[p0 + j] : std::numeric_limits<float>::infinity();
  }
}

// Packs rows [0, n) of `rows`, centred, into groups [d][mr] (zero padding).
void pack_queries(const float* rows, int64_t n, int64_t d, const float* mean, int64_t mr,
                  float* groups) {
  for (int64_t g0 = 0; g0 < n; g0 += mr) {
    const int64_t valid = std::min(mr, n - g0);
    float* dst = groups + g0 * d;
    const float* src = rows + g0 * d;
    for (int64_t x = 0; x < d; ++x) {
      float* out = dst + x * mr;
      for (int64_t i = 0; i < valid; ++i) out[i] = src[i * d + x] - mean[x];
      for (int64_t i = valid; i < mr; ++i) out[i] = 0.0f;
    }
  }
}

void scan(const float* queries, int64_t nq, const Bank& bank, const BankStats& st,
          const ScanPlan& p, const TileKernel& tk, ThreadPool& pool, Candidates& out) {
  const int64_t d = bank.d, mr = tk.mr, nr = tk.nr;
  const size_t total = static_cast<size_t>(p.nslices * nq * p.kp);
  out.val.assign(total, std::numeric_limits<float>::infinity());
  out.idx.assign(total, -1);
  const float* mean = st.mean.data();
  pool.parallel_for(p.nranges * p.nslices, [&](int64_t t0, int64_t t1) {
    AlignedFloats qpack(p.range * d), bpack(p.chunk * d), bnorm(p.chunk);
    std::vector<float> scratch(bank.type == KnnBankType::F16 ? static_cast<size_t>(p.chunk * d) : 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / p.nslices, s = t % p.nslices;
      const int64_t q0 = r * p.range, nqr = std::min(nq, q0 + p.range) - q0;
      const int64_t groups = ceil_div(nqr, mr);
      float* qp = qpack.get();
      pack_queries(queries + q0 * d, nqr, d, mean, mr, qp);
      float* hv = out.val.data() + (s * nq + q0) * p.kp;
      int32_t* hi = out.idx.data() + (s * nq + q0) * p.kp;
      const int64_t b_end = std::min(bank.m, (s + 1) * p.slice);
      for (int64_t c0 = s * p.slice; c0 < b_end; c0 += p.chunk) {
        const int64_t nb = std::min(b_end, c0 + p.chunk) - c0;
        const int64_t panels = ceil_div(nb, nr);
        float* bp = bpack.get();
        float* bn = bnorm.get();
        pack_bank(bank.rows(c0, nb, scratch.data(), tk), nb, d, mean, st.norm2.data() + c0, nr, bp, bn);
        // blocks of queries stay in L1/L2 while the panels of the chunk pass over them
        for (int64_t g0 = 0; g0 < groups; g0 += p.block_groups) {
          const int64_t g1 = std::min(groups, g0 + p.block_groups);
          for (int64_t pi = 0; pi < panels; ++pi) {
            const float* panel = bp + pi * d * nr;
            const int32_t base = static_cast<int32_t>(c0 + pi * nr);
            for (int64_t g = g0; g < g1; ++g) {
              const int valid = static_cast<int>(std::min<int64_t>(mr, nqr - g * mr));
              tk.tile(qp + g * d * mr, panel, bn + pi * nr, d, valid, base, hv + g * mr * p.kp,
                      hi + g * mr * p.kp, static_cast<int>(p.kp));
            }
          }
        }
      }
    }
  });
}

// Lower bound on the true distance from a query to any bank row of slice s that the scan left
// out: those rows had a computed ranking value >= the heap root T. The computed value differs
// from the exact one for the centred float32 vectors by at most
//   E = (2d + 4) u (B^2 + 2 |q| B)      (float32 dot product, norm and fused update; B = largest
//                                        centred bank norm; 2d covers non-fused accumulation),
// and centring in float32 moves a distance by at most u (|q| + B).
double excluded_lower_bound(float root, double qnorm2, double max_norm, int64_t d) {
  const double qn = std::sqrt(qnorm2), b = max_norm;
  const double e = (2.0 * static_cast<double>(d) + 4.0) * kUnit * 1.02 * (b * b + 2.0 * qn * b);
  const double s2 = qnorm2 + static_cast<double>(root) - e;
  if (!(s2 > 0.0)) return 0.0;
  return std::sqrt(s2) - 1.02 * kUnit * (qn + b);
}

}  // namespace

bool knn_isa_supported(KnnIsa isa) { return knn_detail::cpu_has(isa); }

KnnIsa knn_best_isa() {
  if (knn_detail::cpu_has(KnnIsa::Avx512)) return KnnIsa::Avx512;
  if (knn_detail::cpu_has(KnnIsa::Avx2)) return KnnIsa::Avx2;
  return KnnIsa::Scalar;
}

const char* knn_isa_name(KnnIsa isa) {
  switch (isa) {
    case KnnIsa::Scalar: return "scalar";
    case KnnIsa::Avx2: return "avx2";
    case KnnIsa::Avx512: return "avx512";
    default: return "auto";
  }
}

KnnIsa parse_knn_isa(const std::string& name, const char* arg) {
  for (KnnIsa isa : {KnnIsa::Auto, KnnIsa::Scalar, KnnIsa::Avx2, KnnIsa::Avx512})
    if (name == knn_isa_name(isa)) return isa;
  throw ArgumentError(std::string(arg) + ": expected \"auto\", \"scalar\", \"avx2\" or \"avx512\", got \"" +
                      name + "\"");
}

void knn_cpu(const float* queries, int64_t q, const void* bank_data, KnnBankType bank_type,
             int64_t m, int64_t d, int64_t k, float* distances, int64_t* indices, ThreadPool& pool,
             const KnnOptions& options) {
  validate_knn(q, m, d, k);
  if (options.extra < 0)
    throw ArgumentError("extra: expected >= 0, got " + std::to_string(options.extra));
  KnnIsa isa = options.isa == KnnIsa::Auto ? knn_best_isa() : options.isa;
  if (!knn_detail::cpu_has(isa))
    throw ArgumentError(std::string("isa: ") + knn_isa_name(isa) + " is not supported by this CPU");
  const TileKernel tk = knn_detail::tile_kernel(isa);
  const Bank bank{bank_data, bank_type, m, d};
  const BankStats stats = bank_stats(bank, tk, pool);
  const std::vector<double> qnorm = query_norms(queries, q, d, stats, pool);

  std::vector<int64_t> pending(static_cast<size_t>(q));
  std::iota(pending.begin(), pending.end(), 0);
  int64_t kp = std::min<int64_t>(m, k + options.extra);
  std::vector<float> gathered;
  Candidates cand;
  while (!pending.empty()) {
    std::vector<char> failed(pending.size(), 0);
    const ScanPlan full = plan_scan(static_cast<int64_t>(pending.size()), m, d, kp, pool.size(), tk);
    const int64_t batch = std::max<int64_t>(
        1, std::min<int64_t>(static_cast<int64_t>(pending.size()),
                             kCandidateBytes / (8 * full.nslices * full.kp)));
    for (int64_t b0 = 0; b0 < static_cast<int64_t>(pending.size()); b0 += batch) {
      const int64_t nb = std::min<int64_t>(static_cast<int64_t>(pending.size()), b0 + batch) - b0;
      // the batch's query rows, contiguous: in place when they already are
      const float* qrows;
      if (pending[static_cast<size_t>(b0 + nb - 1)] - pending[static_cast<size_t>(b0)] == nb - 1) {
        qrows = queries + pending[static_cast<size_t>(b0)] * d;
      } else {
        gathered.resize(static_cast<size_t>(nb * d));
        for (int64_t i = 0; i < nb; ++i)
          std::copy_n(queries + pending[static_cast<size_t>(b0 + i)] * d, d, gathered.data() + i * d);
        qrows = gathered.data();
      }
      const ScanPlan plan = plan_scan(nb, m, d, kp, pool.size(), tk);
      scan(qrows, nb, bank, stats, plan, tk, pool, cand);

      pool.parallel_for(nb, [&](int64_t i0, int64_t i1) {
        std::vector<std::pair<double, int64_t>> found;
        std::vector<float> row(static_cast<size_t>(d));
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t qi = pending[static_cast<size_t>(b0 + i)];
          const float* qv = queries + qi * d;
          found.clear();
          for (int64_t s = 0; s < plan.nslices; ++s) {
            const int32_t* ids = cand.idx.data() + (s * nb + i) * plan.kp;
            for (int64_t j = 0; j < plan.kp; ++j)
              if (ids[j] >= 0)
                found.emplace_back(exact_sq_dist(qv, bank.rows(ids[j], 1, row.data(), tk), d), ids[j]);
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
          for (int64_t s = 0; s < plan.nslices; ++s) {
            const int64_t rows = std::min(m, (s + 1) * plan.slice) - s * plan.slice;
            if (rows <= plan.kp) continue;
            const float root = cand.val[static_cast<size_t>((s * nb + i) * plan.kp)];
            if (!(excluded_lower_bound(root, qnorm[static_cast<size_t>(qi)], stats.max_norm, d) > dk)) {
              failed[static_cast<size_t>(b0 + i)] = 1;
              break;
            }
          }
        }
      }, 64);
    }
    std::vector<int64_t> next;
    for (size_t i = 0; i < pending.size(); ++i)
      if (failed[i]) next.push_back(pending[i]);
    pending.swap(next);
    kp = std::min<int64_t>(m, kp * 4);
  }
}

void knn(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
         int64_t d, int64_t k, float* distances, int64_t* indices, const Device& device) {
  validate_knn(q, m, d, k);
  if (device.is_cuda()) {
    require_device(device);
#ifdef EDGE_SDK_WITH_CUDA
    knn_cuda_host(queries, q, bank, bank_type, m, d, k, distances, indices, device.index);
    return;
#endif
  }
  knn_cpu(queries, q, bank, bank_type, m, d, k, distances, indices, default_pool());
}

}  // namespace edge
