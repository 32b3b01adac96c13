#include "edge_sdk/kernels/mahalanobis.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/scratch.hpp"
#include "edge_sdk/kernels/mahalanobis_math.hpp"
#include "cpu_isa.hpp"

// Vector values cross only always-inlined calls into the target clones (load_vec, Bf16Row), where
// GCC's note on vector returns without AVX does not apply; templates are instantiated at the end
// of the file, so the note is silenced for the whole file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace edge {

void validate_mahalanobis_sizes(int64_t n, int64_t l, int64_t c) {
  if (n < 1 || l < 1 || c < 1)
    throw ArgumentError("features: empty, (n, l, c) = (" + std::to_string(n) + ", " +
                        std::to_string(l) + ", " + std::to_string(c) +
                        "); expected at least one vector, location and channel");
}

void validate_local_nearest_sizes(int64_t n, int64_t l, int64_t k, int64_t c) {
  if (n < 1 || l < 1 || c < 1)
    throw ArgumentError("z: empty, (n, l, c) = (" + std::to_string(n) + ", " + std::to_string(l) +
                        ", " + std::to_string(c) +
                        "); expected at least one vector, location and channel");
  if (k < 1)
    throw ArgumentError("centroids: no centroids (k = " + std::to_string(k) +
                        "); expected at least one per location");
}

namespace {

std::string num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string at(std::initializer_list<int64_t> idx) {
  std::string s = "[";
  bool first = true;
  for (int64_t i : idx) {
    s += (first ? "" : ", ") + std::to_string(i);
    first = false;
  }
  return s + "]";
}

// ---- which code path --------------------------------------------------------------------------

using Isa = CpuIsa;

// Vectors per tile of the batched solve: one register of floats on each path.
int tile_width(Isa isa) { return isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 4; }

// 64-byte aligned scratch floats of the calling thread, grow-only (no allocation per call once
// warm). One Scratch is alive per thread at a time (a per-task local of solve_units).
class Scratch {
 public:
  explicit Scratch(size_t count) {
    std::vector<float>& raw = thread_scratch<Scratch, float>(count + 16);
    const auto addr = reinterpret_cast<uintptr_t>(raw.data());
    ptr_ = reinterpret_cast<float*>((addr + 63) & ~static_cast<uintptr_t>(63));
  }
  float* get() const { return ptr_; }

 private:
  float* ptr_;
};

// Per-location failure flags, zeroed: the calling thread's, grow-only (the workers of one call
// write them through the pointer; the caller reads them after parallel_for returns).
std::atomic<uint8_t>* failure_flags(int64_t l) {
  thread_local std::unique_ptr<std::atomic<uint8_t>[]> flags;
  thread_local int64_t capacity = 0;
  if (capacity < l) {
    flags.reset(new std::atomic<uint8_t>[static_cast<size_t>(l)]);
    capacity = l;
  }
  for (int64_t i = 0; i < l; ++i) flags[static_cast<size_t>(i)].store(0, std::memory_order_relaxed);
  return flags.get();
}

// ---- Mahalanobis distance and whitening ------------------------------------------------------

struct SolveJob {
  const float* x;
  const float* mu;
  const float* chol;
  int64_t n, l, c;
  float* dist;  // n x l or nullptr
  float* z;     // n x l x c or nullptr
  std::atomic<uint8_t>* flags;
};

// How the n vectors of one location are split: `full` tiles of W vectors, then the rest as one
// zero-padded tile, or alone when it is a single vector (a tile costs about as much as two
// vectors solved one by one). Depends on n and W only; results do not depend on it.
struct Split {
  int64_t full, rest, units;
  bool rest_tiled;
  Split(int64_t n, int w)
      : full(n / w), rest(n % w), units(n / w + (n % w ? 1 : 0)),
        rest_tiled(n % w >= 2) {}
};

EDGE_ALWAYS_INLINE bool diagonal_ok(const float* chol, int64_t c) {
  for (int64_t i = 0; i < c; ++i)
    if (!valid_cholesky_diagonal(chol[i * c + i])) return false;
  return true;
}

// Asks for the lower triangle of rows i and i+1 of a factor ahead of use (into L2): spread over
// the rows of the current location, this overlaps loading the next location's factor with the
// arithmetic on this one (the scan of chol is the main memory traffic).
EDGE_ALWAYS_INLINE void prefetch_rows(const float* chol, int64_t c, int64_t i) {
#if defined(__GNUC__)
  for (int64_t r = i; r < i + 2 && r < c; ++r) {
    const float* row = chol + r * c;
    for (int64_t j = 0; j <= r; j += 16) __builtin_prefetch(row + j, 0, 2);
    __builtin_prefetch(row + r, 0, 2);
  }
#else
  (void)chol, (void)c, (void)i;
#endif
}

template <class V>
EDGE_ALWAYS_INLINE void combine8(const V* p, V& out) {
  out = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

// Rows i and i + 1 of the substitution on a tile of W columns (c rows of W floats, residuals in,
// z out), in the lane grouping of substitution_row (term j into lane j % 8, increasing j), so each
// column rounds exactly as that function does. The rows share the loads of z_j, j < i; the one
// term of row i + 1 that needs z_i is added to its lane afterwards, which keeps the order. R is
// `const float*` (one location's factor rows: coefficients broadcast to every column) or
// `const V*` (packed rows: one location per column). norm and probe accumulate z^2 and z * 0 (NaN
// in a column iff one of its z values is NaN or infinite).
template <int W, class R>
EDGE_ALWAYS_INLINE void solve_row_pair(R r0, R r1, int64_t i, float* tile, typename VecOf<W>::type& norm,
                                       typename VecOf<W>::type& probe) {
  using V = typename VecOf<W>::type;
  static_assert(kMahaLanes == 8, "solve_row_pair unrolls 8 lanes");
  V p[8], q[8], s;
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) p[k] = q[k] = V{};
  int64_t j = 0;
  for (; j + 8 <= i; j += 8) {
    const V* t = reinterpret_cast<const V*>(tile + j * W);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const V tk = t[k];
      p[k] += r0[j + k] * tk;
      q[k] += r1[j + k] * tk;
    }
  }
  const int64_t left = i - j;  // 0..7 terms below i not yet added
  const V* t = reinterpret_cast<const V*>(tile + j * W);
#pragma GCC unroll 8
  for (int k = 0; k < 7; ++k)
    if (k < left) {
      const V tk = t[k];
      p[k] += r0[j + k] * tk;
      q[k] += r1[j + k] * tk;
    }
  V* t0 = reinterpret_cast<V*>(tile + i * W);
  combine8(p, s);
  const V z0 = (*t0 - s) / r0[i];
  *t0 = z0;
  norm += z0 * z0;
  probe += z0 * 0.0f;
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k)
    if (k == left) q[k] += r1[i] * z0;
  V* t1 = reinterpret_cast<V*>(tile + (i + 1) * W);
  combine8(q, s);
  const V z1 = (*t1 - s) / r1[i + 1];
  *t1 = z1;
  norm += z1 * z1;
  probe += z1 * 0.0f;
}

// The last row alone (odd c), as solve_row_pair's first row.
template <int W, class R>
EDGE_ALWAYS_INLINE void solve_last_row(R r0, int64_t i, float* tile, typename VecOf<W>::type& norm,
                                       typename VecOf<W>::type& probe) {
  using V = typename VecOf<W>::type;
  V p[8], s;
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) p[k] = V{};
  int64_t j = 0;
  for (; j + 8 <= i; j += 8) {
    const V* t = reinterpret_cast<const V*>(tile + j * W);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) p[k] += r0[j + k] * t[k];
  }
  const int64_t left = i - j;
  const V* t = reinterpret_cast<const V*>(tile + j * W);
#pragma GCC unroll 8
  for (int k = 0; k < 7; ++k)
    if (k < left) p[k] += r0[j + k] * t[k];
  V* t0 = reinterpret_cast<V*>(tile + i * W);
  combine8(p, s);
  const V z0 = (*t0 - s) / r0[i];
  *t0 = z0;
  norm += z0 * z0;
  probe += z0 * 0.0f;
}

// Solves chol z = x - mu for `nv` <= W vectors at once. The tile holds the vectors as columns
// (c rows of W floats): a substitution row is W-wide FMAs with chol_ij broadcast, in the lane
// grouping of substitution_row (solve_row_pair).
template <int W>
EDGE_ALWAYS_INLINE void solve_tile(const SolveJob& a, int64_t loc, int64_t n0, int64_t nv,
                                   float* tile, const float* next_chol) {
  using V = typename VecOf<W>::type;
  const int64_t c = a.c, L = a.l;
  const float* mu = a.mu + loc * c;
  const float* chol = a.chol + loc * c * c;
  for (int64_t w = 0; w < nv; ++w) {
    const float* xv = a.x + ((n0 + w) * L + loc) * c;
    for (int64_t i = 0; i < c; ++i) tile[i * W + w] = xv[i] - mu[i];
  }
  for (int64_t w = nv; w < W; ++w)
    for (int64_t i = 0; i < c; ++i) tile[i * W + w] = 0.0f;

  V norm = {}, probe = {};
  int64_t i = 0;
  for (; i + 1 < c; i += 2) {
    if (next_chol) prefetch_rows(next_chol, c, i);
    solve_row_pair<W>(chol + i * c, chol + (i + 1) * c, i, tile, norm, probe);
  }
  if (i < c) {  // odd c: the last row alone
    if (next_chol) prefetch_rows(next_chol, c, i);
    solve_last_row<W>(chol + i * c, i, tile, norm, probe);
  }

  bool bad = false;
  for (int64_t w = 0; w < nv; ++w) {
    bad |= !(probe[w] == 0.0f);
    if (a.dist) {
      bad |= !is_finite_value(norm[w]);
      a.dist[(n0 + w) * L + loc] = std::sqrt(norm[w]);
    }
  }
  if (a.z)
    for (int64_t w = 0; w < nv; ++w) {
      float* zo = a.z + ((n0 + w) * L + loc) * c;
      for (int64_t i2 = 0; i2 < c; ++i2) zo[i2] = tile[i2 * W + w];
    }
  if (bad) a.flags[loc].store(1, std::memory_order_relaxed);
}

struct BufferAt {
  const float* buf;
  EDGE_ALWAYS_INLINE float operator()(int64_t j) const { return buf[j]; }
};

// One vector: the shared per-row function directly (vectorized along j by the compiler).
EDGE_ALWAYS_INLINE void solve_one(const SolveJob& a, int64_t loc, int64_t v, float* buf,
                                  const float* next_chol) {
  const int64_t c = a.c, L = a.l;
  const float* mu = a.mu + loc * c;
  const float* chol = a.chol + loc * c * c;
  const float* xv = a.x + (v * L + loc) * c;
  for (int64_t i = 0; i < c; ++i) buf[i] = xv[i] - mu[i];
  float norm = 0.0f, probe = 0.0f;
  for (int64_t i = 0; i < c; ++i) {
    if (next_chol && i % 2 == 0) prefetch_rows(next_chol, c, i);
    const float zi = substitution_row(chol + i * c, i, buf[i], BufferAt{buf});
    buf[i] = zi;
    norm += zi * zi;
    probe += zi * 0.0f;
  }
  bool bad = !(probe == 0.0f);
  if (a.dist) {
    bad |= !is_finite_value(norm);
    a.dist[v * L + loc] = std::sqrt(norm);
  }
  if (a.z) std::memcpy(a.z + (v * L + loc) * c, buf, static_cast<size_t>(c) * sizeof(float));
  if (bad) a.flags[loc].store(1, std::memory_order_relaxed);
}

// Work units [u0, u1): unit t is split part t % units of location t / units.
template <int W>
EDGE_ALWAYS_INLINE void solve_units(const SolveJob& a, int64_t u0, int64_t u1) {
  const Split s(a.n, W);
  Scratch scratch(static_cast<size_t>(a.c * W));
  float* tile = scratch.get();
  for (int64_t t = u0; t < u1; ++t) {
    const int64_t loc = t / s.units, u = t % s.units;
    if (!diagonal_ok(a.chol + loc * a.c * a.c, a.c)) {
      a.flags[loc].store(1, std::memory_order_relaxed);
      continue;
    }
    // the last unit of a location fetches the next location's factor
    const float* next = u == s.units - 1 && loc + 1 < a.l ? a.chol + (loc + 1) * a.c * a.c : nullptr;
    if (u < s.full)
      solve_tile<W>(a, loc, u * W, W, tile, next);
    else if (s.rest_tiled)
      solve_tile<W>(a, loc, s.full * W, s.rest, tile, next);
    else
      for (int64_t v = s.full * W; v < a.n; ++v) solve_one(a, loc, v, tile, v == a.n - 1 ? next : nullptr);
  }
}

EDGE_DEFINE_ISA_DISPATCH(solve_units_dispatch, solve_units, SolveJob)

// ---- the location-vectorized solve on packed factors -------------------------------------------

struct PackedJob {
  const float* x;
  const float* mu;
  const void* packed;  // PackedCholesky::data()
  bool bf16;           // FactorStorage::BF16
  int64_t n, l, c, tri;
  float* dist;
  float* z;
  std::atomic<uint8_t>* flags;
};

// A packed row of bfloat16 factors as solve_row_pair reads it: entry j is the vector of the W
// locations' coefficients, widened to float32 (exact: a bfloat16 is the top half of a float32).
template <int W>
struct Bf16Row {
  const uint16_t* p;
  EDGE_ALWAYS_INLINE typename VecOf<W>::type operator[](int64_t j) const { return load_bf16_vec<W>(p + j * W); }
};

// Solves the n vectors at the W locations of group g at once, one location per lane: the rows of
// solve_row_pair with chol_ij loaded as a vector across the group instead of broadcast, so every
// result is bit-identical to the batched solve. Rows outer, vectors inner:
// a row pair of the group's factors is read once from memory and reused from L1 for all vectors.
// Entry is float (FactorStorage::F32) or uint16_t (BF16).
template <int W, class Entry>
EDGE_ALWAYS_INLINE void solve_group(const PackedJob& a, int64_t g, float* tiles) {
  using V = typename VecOf<W>::type;
  const int64_t c = a.c, L = a.l, n = a.n;
  const int64_t loc0 = g * W, lanes = std::min<int64_t>(W, L - loc0);
  const Entry* f = static_cast<const Entry*>(a.packed) + g * a.tri * W;
  for (int64_t v = 0; v < n; ++v) {
    float* tile = tiles + v * c * W;
    for (int64_t w = 0; w < W; ++w) {
      if (w < lanes) {
        const float* xv = a.x + (v * L + loc0 + w) * c;
        const float* mu = a.mu + (loc0 + w) * c;
        for (int64_t i = 0; i < c; ++i) tile[i * W + w] = xv[i] - mu[i];
      } else {
        for (int64_t i = 0; i < c; ++i) tile[i * W + w] = 0.0f;
      }
    }
  }
  V* norm = reinterpret_cast<V*>(tiles + n * c * W);
  V* probe = norm + n;
  for (int64_t v = 0; v < n; ++v) norm[v] = probe[v] = V{};
  int64_t i = 0;
  if constexpr (std::is_same_v<Entry, float>) {
    auto row = [&](int64_t r) { return reinterpret_cast<const V*>(f + r * (r + 1) / 2 * W); };
    for (; i + 1 < c; i += 2)
      for (int64_t v = 0; v < n; ++v) solve_row_pair<W>(row(i), row(i + 1), i, tiles + v * c * W, norm[v], probe[v]);
    if (i < c)  // odd c: the last row alone
      for (int64_t v = 0; v < n; ++v) solve_last_row<W>(row(i), i, tiles + v * c * W, norm[v], probe[v]);
  } else if (n == 1) {  // each entry used once: widened as it is loaded
    auto row = [&](int64_t r) { return Bf16Row<W>{f + r * (r + 1) / 2 * W}; };
    for (; i + 1 < c; i += 2) solve_row_pair<W>(row(i), row(i + 1), i, tiles, norm[0], probe[0]);
    if (i < c) solve_last_row<W>(row(i), i, tiles, norm[0], probe[0]);
  } else {  // a row pair widened once into `wide` (L1), then used by every vector
    V* wide = probe + n;
    auto widen = [&](int64_t first, int64_t count) {
      const Entry* src = f + first * (first + 1) / 2 * W;
      for (int64_t e = 0; e < count; ++e) wide[e] = load_bf16_vec<W>(src + e * W);
    };
    for (; i + 1 < c; i += 2) {
      widen(i, 2 * i + 3);  // rows i and i + 1 are adjacent: i + 1 and i + 2 entries
      for (int64_t v = 0; v < n; ++v) solve_row_pair<W>(static_cast<const V*>(wide), static_cast<const V*>(wide + i + 1), i, tiles + v * c * W, norm[v], probe[v]);
    }
    if (i < c) {
      widen(i, i + 1);
      for (int64_t v = 0; v < n; ++v) solve_last_row<W>(static_cast<const V*>(wide), i, tiles + v * c * W, norm[v], probe[v]);
    }
  }
  for (int64_t v = 0; v < n; ++v) {
    const float* tile = tiles + v * c * W;
    for (int64_t w = 0; w < lanes; ++w) {
      const int64_t loc = loc0 + w;
      bool bad = !(probe[v][w] == 0.0f);
      if (a.dist) {
        bad |= !is_finite_value(norm[v][w]);
        a.dist[v * L + loc] = std::sqrt(norm[v][w]);
      }
      if (a.z) {
        float* zo = a.z + (v * L + loc) * c;
        for (int64_t i2 = 0; i2 < c; ++i2) zo[i2] = tile[i2 * W + w];
      }
      if (bad) a.flags[loc].store(1, std::memory_order_relaxed);
    }
  }
}

template <int W>
EDGE_ALWAYS_INLINE void solve_groups(const PackedJob& a, int64_t g0, int64_t g1) {
  // n tiles of c x W floats, then n norm and n probe vectors (and a widened row pair: 2c + 1 vectors)
  Scratch scratch(static_cast<size_t>((a.n * a.c + 2 * a.n + (a.bf16 ? 2 * a.c + 1 : 0)) * W));
  for (int64_t g = g0; g < g1; ++g) {
    if (a.bf16)
      solve_group<W, uint16_t>(a, g, scratch.get());
    else
      solve_group<W, float>(a, g, scratch.get());
  }
}

EDGE_DEFINE_ISA_DISPATCH(solve_groups_dispatch, solve_groups, PackedJob)

// ---- nearest local centroid -------------------------------------------------------------------

struct NearestJob {
  const float* z;
  const float* centroids;
  int64_t n, l, k, c;
  float* dist;
  std::atomic<uint8_t>* flags;
};

// Units [t0, t1): unit t is vector t % n at location t / n (the centroids of a location stay hot).
EDGE_ALWAYS_INLINE void nearest_units(const NearestJob& a, int64_t t0, int64_t t1) {
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t loc = t / a.n, v = t % a.n;
    const float* zv = a.z + (v * a.l + loc) * a.c;
    const float* cl = a.centroids + loc * a.k * a.c;
    float best = INFINITY;
    bool bad = false;
    for (int64_t j = 0; j < a.k; ++j) {
      const float s = squared_distance(zv, cl + j * a.c, a.c);
      bad |= !is_finite_value(s);
      best = s < best ? s : best;
    }
    a.dist[v * a.l + loc] = std::sqrt(best);
    if (bad) a.flags[loc].store(1, std::memory_order_relaxed);
  }
}

void nearest_units_generic(const NearestJob& a, int64_t t0, int64_t t1) { nearest_units(a, t0, t1); }
#if EDGE_X86_CLONES
EDGE_TARGET_AVX2 void nearest_units_avx2(const NearestJob& a, int64_t t0, int64_t t1) {
  nearest_units(a, t0, t1);
}
EDGE_TARGET_AVX512 void nearest_units_avx512(const NearestJob& a, int64_t t0, int64_t t1) {
  nearest_units(a, t0, t1);
}
#endif

void nearest_units_dispatch(Isa isa, const NearestJob& a, int64_t t0, int64_t t1) {
#if EDGE_X86_CLONES
  if (isa == Isa::Avx512) return nearest_units_avx512(a, t0, t1);
  if (isa == Isa::Avx2) return nearest_units_avx2(a, t0, t1);
#endif
  (void)isa;
  nearest_units_generic(a, t0, t1);
}

// Units per parallel chunk so that a chunk holds at least ~64k multiply-adds.
int64_t grain_for(int64_t work_per_unit) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work_per_unit));
}

}  // namespace

const char* mahalanobis_cpu_isa() { return cpu_isa_name(cpu_isa()); }

// ---- explaining a flagged location -------------------------------------------------------------

void explain_mahalanobis_failure(const float* features, const float* mean, const float* chol,
                                 int64_t n, int64_t l, int64_t c, int64_t loc, const float* dist,
                                 const float* z) {
  const std::string where = "location " + std::to_string(loc) + ": ";
  const float* ch = chol + loc * c * c;
  for (int64_t i = 0; i < c; ++i) {
    const float d = ch[i * c + i];
    if (!valid_cholesky_diagonal(d))
      throw ArgumentError(
          "chol: " + where + "diagonal entry " + at({loc, i, i}) + " is " + num(d) +
          "; expected a finite value > 0 (chol must hold the lower Cholesky factor of a positive "
          "definite covariance; regularize the covariance, e.g. cov + eps*I, before factorizing)");
  }
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < i; ++j)
      if (!is_finite_value(ch[i * c + j]))
        throw ArgumentError("chol: " + where + "entry " + at({loc, i, j}) + " is " +
                            num(ch[i * c + j]) + "; expected finite values in the lower triangle");
  for (int64_t i = 0; i < c; ++i)
    if (!is_finite_value(mean[loc * c + i]))
      throw ArgumentError("mean: " + where + "entry " + at({loc, i}) + " is " +
                          num(mean[loc * c + i]) + "; expected finite values");
  for (int64_t v = 0; v < n; ++v)
    for (int64_t i = 0; i < c; ++i) {
      const float x = features[(v * l + loc) * c + i];
      if (!is_finite_value(x))
        throw ArgumentError("features: " + where + "entry " + at({v, loc, i}) + " is " + num(x) +
                            "; expected finite values (contains NaN or infinity)");
    }
  for (int64_t v = 0; v < n && dist; ++v)
    if (!is_finite_value(dist[v * l + loc]))
      throw ArgumentError("features: " + where + "the Mahalanobis distance at " + at({v, loc}) +
                          " overflows float32 (the features are too far from mean for the "
                          "covariance given by chol)");
  for (int64_t v = 0; v < n && z; ++v)
    for (int64_t i = 0; i < c; ++i)
      if (!is_finite_value(z[(v * l + loc) * c + i]))
        throw ArgumentError("features: " + where + "the whitened value at " + at({v, loc, i}) +
                            " overflows float32 (the features are too far from mean for the "
                            "covariance given by chol)");
}

void explain_local_nearest_failure(const float* z, const float* centroids, int64_t n, int64_t l,
                                   int64_t k, int64_t c, int64_t loc, const float* dist) {
  const std::string where = "location " + std::to_string(loc) + ": ";
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = 0; i < c; ++i) {
      const float v = centroids[(loc * k + j) * c + i];
      if (!is_finite_value(v))
        throw ArgumentError("centroids: " + where + "entry " + at({loc, j, i}) + " is " + num(v) +
                            "; expected finite values (contains NaN or infinity)");
    }
  for (int64_t v = 0; v < n; ++v)
    for (int64_t i = 0; i < c; ++i) {
      const float x = z[(v * l + loc) * c + i];
      if (!is_finite_value(x))
        throw ArgumentError("z: " + where + "entry " + at({v, loc, i}) + " is " + num(x) +
                            "; expected finite values (contains NaN or infinity)");
    }
  // Finite inputs: a candidate distance may have overflowed; only a non-finite nearest one is
  // an error.
  for (int64_t v = 0; v < n; ++v)
    if (!is_finite_value(dist[v * l + loc]))
      throw ArgumentError("z: " + where + "the distance to the nearest centroid at " + at({v, loc}) +
                          " overflows float32");
}

// ---- CPU entry points --------------------------------------------------------------------------

void mahalanobis_whiten_cpu(const float* features, const float* mean, const float* chol,
                            int64_t n, int64_t l, int64_t c, float* dist, float* z,
                            ThreadPool& pool) {
  validate_mahalanobis_sizes(n, l, c);
  if (!dist && !z) throw ArgumentError("dist, z: expected at least one output");
  std::atomic<uint8_t>* flags = failure_flags(l);
  const SolveJob job{features, mean, chol, n, l, c, dist, z, flags};
  const Isa isa = cpu_isa();
  const int w = tile_width(isa);
  const Split split(n, w);
  pool.parallel_for(
      l * split.units, [&](int64_t u0, int64_t u1) { solve_units_dispatch(isa, job, u0, u1); },
      grain_for(c * c / 2 * w + c * w));
  for (int64_t loc = 0; loc < l; ++loc)
    if (flags[static_cast<size_t>(loc)].load(std::memory_order_relaxed))
      explain_mahalanobis_failure(features, mean, chol, n, l, c, loc, dist, z);
}

namespace {

float bf16_value(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace

float round_to_bf16(float v) { return bf16_value(bf16_bits(v)); }

std::vector<float> round_factors_to_bf16(const float* chol, int64_t l, int64_t c) {
  validate_mahalanobis_sizes(1, l, c);
  std::vector<float> out(static_cast<size_t>(l * c * c), 0.0f);
  for (int64_t loc = 0; loc < l; ++loc)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        const int64_t e = (loc * c + i) * c + j;
        const float v = chol[e], r = round_to_bf16(v);
        if ((is_finite_value(v) && !is_finite_value(r)) || (i == j && valid_cholesky_diagonal(v) && !(r > 0.0f)))
          throw ArgumentError("chol: entry " + at({loc, i, j}) + " is " + num(v) + ", which bfloat16 rounds to " +
                              num(r) + "; this factor cannot be stored in bfloat16 (use the float32 variant)");
        out[static_cast<size_t>(e)] = r;
      }
  return out;
}

PackedCholesky::PackedCholesky(const float* chol, int64_t l, int64_t c, FactorStorage storage)
    : l_(l), c_(c), storage_kind_(storage) {
  validate_mahalanobis_sizes(1, l, c);
  width_ = tile_width(cpu_isa());
  tri_ = c * (c + 1) / 2;
  const int64_t groups = (l + width_ - 1) / width_;
  const bool bf16 = storage == FactorStorage::BF16;
  const int64_t entries = groups * tri_ * width_;
  storage_.assign(static_cast<size_t>((bf16 ? (entries + 1) / 2 : entries) + 16), 0.0f);
  const auto addr = reinterpret_cast<uintptr_t>(storage_.data());
  data_ = reinterpret_cast<void*>((addr + 63) & ~static_cast<uintptr_t>(63));
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j <= i; ++j)
        for (int64_t w = 0; w < width_; ++w) {
          const int64_t loc = g * width_ + w;
          // padding lanes: the identity factor (their residuals are zero, so are their results)
          const float v = loc < l ? chol[(loc * c + i) * c + j] : (i == j ? 1.0f : 0.0f);
          const int64_t e = (g * tri_ + i * (i + 1) / 2 + j) * width_ + w;
          if (bf16)
            static_cast<uint16_t*>(data_)[e] = bf16_bits(v);
          else
            static_cast<float*>(data_)[e] = v;
        }
  bad_diagonal_.assign(static_cast<size_t>(l), 0);
  for (int64_t loc = 0; loc < l; ++loc) {
    bool bad = !diagonal_ok(chol + loc * c * c, c);
    for (int64_t i = 0; bf16 && !bad && i < c; ++i) bad = !valid_cholesky_diagonal(round_to_bf16(chol[(loc * c + i) * c + i]));
    bad_diagonal_[static_cast<size_t>(loc)] = bad;
  }
}

void mahalanobis_whiten_packed_cpu(const float* features, const float* mean, const float* chol,
                                   const PackedCholesky& packed, int64_t n, float* dist, float* z,
                                   ThreadPool& pool) {
  const int64_t l = packed.locations(), c = packed.channels();
  validate_mahalanobis_sizes(n, l, c);
  if (!dist && !z) throw ArgumentError("dist, z: expected at least one output");
  const Isa isa = cpu_isa();
  if (packed.width() != tile_width(isa))
    throw std::logic_error("mahalanobis: factors packed for another vector width");
  std::atomic<uint8_t>* flags = failure_flags(l);
  for (int64_t loc = 0; loc < l; ++loc)
    if (packed.bad_diagonal(loc)) flags[static_cast<size_t>(loc)].store(1, std::memory_order_relaxed);
  const PackedJob job{features, mean, packed.data(), packed.storage() == FactorStorage::BF16, n, l, c, packed.tri(),
                      dist, z, flags};
  const int64_t groups = (l + packed.width() - 1) / packed.width();
  pool.parallel_for(
      groups, [&](int64_t g0, int64_t g1) { solve_groups_dispatch(isa, job, g0, g1); },
      grain_for(n * c * c / 2 * packed.width()));
  for (int64_t loc = 0; loc < l; ++loc)
    if (flags[static_cast<size_t>(loc)].load(std::memory_order_relaxed))
      explain_mahalanobis_failure(features, mean, chol, n, l, c, loc, dist, z);
}

void local_nearest_cpu(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                       int64_t c, float* dist, ThreadPool& pool) {
  validate_local_nearest_sizes(n, l, k, c);
  std::atomic<uint8_t>* flags = failure_flags(l);
  const NearestJob job{z, centroids, n, l, k, c, dist, flags};
  const Isa isa = cpu_isa();
  pool.parallel_for(
      n * l, [&](int64_t t0, int64_t t1) { nearest_units_dispatch(isa, job, t0, t1); },
      grain_for(k * c));
  for (int64_t loc = 0; loc < l; ++loc)
    if (flags[static_cast<size_t>(loc)].load(std::memory_order_relaxed))
      explain_local_nearest_failure(z, centroids, n, l, k, c, loc, dist);
}

void mahalanobis(const float* features, const float* mean, const float* chol, int64_t n, int64_t l,
                 int64_t c, float* dist, const Device& device) {
  validate_mahalanobis_sizes(n, l, c);
  run_on_device(
      device, [&](ThreadPool& pool) { mahalanobis_whiten_cpu(features, mean, chol, n, l, c, dist, nullptr, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(mahalanobis_whiten_cuda_host(features, mean, chol, n, l, c, dist, nullptr, index);) });
}

void whiten(const float* features, const float* mean, const float* chol, int64_t n, int64_t l,
            int64_t c, float* z, const Device& device) {
  validate_mahalanobis_sizes(n, l, c);
  run_on_device(
      device, [&](ThreadPool& pool) { mahalanobis_whiten_cpu(features, mean, chol, n, l, c, nullptr, z, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(mahalanobis_whiten_cuda_host(features, mean, chol, n, l, c, nullptr, z, index);) });
}

void local_nearest(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                   int64_t c, float* dist, const Device& device) {
  validate_local_nearest_sizes(n, l, k, c);
  run_on_device(
      device, [&](ThreadPool& pool) { local_nearest_cpu(z, centroids, n, l, k, c, dist, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(local_nearest_cuda_host(z, centroids, n, l, k, c, dist, index);) });
}

}  // namespace edge
