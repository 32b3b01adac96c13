#include "edge_sdk/kernels/ssim.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/ssim_math.hpp"
#include "edge_sdk/scratch.hpp"
#include "cpu_isa.hpp"

namespace edge {

void validate_ssim(const SsimParams& p, int64_t h, int64_t w) {
  if (p.window < 1 || p.window > kSsimMaxWindow || p.window % 2 == 0)
    throw ArgumentError("window: expected an odd size in [1, " + std::to_string(kSsimMaxWindow) +
                        "], got " + std::to_string(p.window));
  if (!(p.sigma > 0.0f) || !std::isfinite(p.sigma))
    throw ArgumentError("sigma: expected a finite value > 0, got " + std::to_string(p.sigma));
  if (!(p.data_range > 0.0f) || !std::isfinite(p.data_range))
    throw ArgumentError("data_range: expected a finite value > 0, got " +
                        std::to_string(p.data_range));
  if (!(p.k1 >= 0.0f) || !(p.k2 > 0.0f) || !std::isfinite(p.k1) || !std::isfinite(p.k2))
    throw ArgumentError("k1, k2: expected k1 >= 0 and k2 > 0");
  if (h < p.window || w < p.window)
    throw ArgumentError("images: height and width must be at least window=" +
                        std::to_string(p.window) + ", got " + std::to_string(h) + "x" +
                        std::to_string(w));
}

namespace {

constexpr int64_t kRowsPerTask = 32;
// Output pixels a parallel chunk holds at least: small batches (8 patches of 64 x 64) run on
// fewer threads rather than paying more wake-ups than the work they split.
constexpr int64_t kPixelsPerChunk = 16384;
// Vectors filtered side by side, their partial sums held in registers across all taps.
constexpr int kLaneVecs = 4;

struct SsimJob {
  const float* a;
  const float* b;
  int64_t h, w, mh, mw, blocks;
  int radius;
  const float* mid;  // mid[k] == taps[radius + k] == taps[radius - k]
  float c1, c2;
  float* map;        // planes x mh x mw or nullptr
  double* partial;   // per task: sum of its SSIM values
};

// The vector helpers below are always inlined into the AVX2 / AVX-512 clones: no vector value
// crosses a call, so GCC's ABI note on vector returns (-Wpsabi) does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// dst[x] = mid[0] * c[x] + sum_k mid[k] * (lo(k)[x] + hi(k)[x]), k = 1 .. r, for x < count:
// a symmetric filter, each pair of equal taps taking one multiply, NV vectors of W lanes at a
// time with their partial sums in registers across all taps.
template <int W, int NV, class Lo, class Hi>
EDGE_ALWAYS_INLINE void symmetric_block(const float* c, Lo lo, Hi hi, const float* mid, int r,
                                        int64_t x, float* dst) {
  using V = typename VecOf<W>::type;
  V acc[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) acc[j] = mid[0] * load_vec<V>(c + x + W * j);
  for (int k = 1; k <= r; ++k) {
    const float tk = mid[k];
    const float* pa = lo(k) + x;
    const float* pb = hi(k) + x;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[j] += tk * (load_vec<V>(pa + W * j) + load_vec<V>(pb + W * j));
  }
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) store_vec(dst + x + W * j, acc[j]);
}

// The whole row: blocks of kLaneVecs vectors, one shorter block, then a last vector overlapping
// the previous one. Every x is summed in the same order whichever block covers it, so the
// overlap recomputes identical values.
template <int W, class Lo, class Hi>
EDGE_ALWAYS_INLINE void symmetric_taps(const float* c, Lo lo, Hi hi, const float* mid, int r,
                                       int64_t count, float* dst) {
  static_assert(kLaneVecs == 4, "the shorter blocks below cover up to 3 vectors");
  int64_t x = 0;
  for (; x + W * kLaneVecs <= count; x += W * kLaneVecs)
    symmetric_block<W, kLaneVecs>(c, lo, hi, mid, r, x, dst);
  const int64_t vecs = (count - x) / W;
  if (vecs == 3) symmetric_block<W, 3>(c, lo, hi, mid, r, x, dst);
  if (vecs == 2) symmetric_block<W, 2>(c, lo, hi, mid, r, x, dst);
  if (vecs == 1) symmetric_block<W, 1>(c, lo, hi, mid, r, x, dst);
  x += vecs * W;
  if (x == count) return;
  if (count >= W) return symmetric_block<W, 1>(c, lo, hi, mid, r, count - W, dst);
  for (; x < count; ++x) {
    float acc = mid[0] * c[x];
    for (int k = 1; k <= r; ++k) acc += mid[k] * (lo(k)[x] + hi(k)[x]);
    dst[x] = acc;
  }
}

// Tasks t0 .. t1 of (plane, block of output rows). Input rows are filtered horizontally once
// each, into a ring of `window` rows of the five moments (x, y, x^2, y^2, xy); each output row
// is then the vertical filter over the ring, and the shared per-pixel formula.
template <int W>
EDGE_ALWAYS_INLINE void ssim_tasks(const SsimJob& j, int64_t t0, int64_t t1) {
  const int r = j.radius, win = 2 * r + 1;
  const int64_t w = j.w, mw = j.mw;
  struct RingTag;
  struct ProdTag;
  struct AccTag;
  struct OutRowTag;
  std::vector<float>& ring = thread_scratch<RingTag, float>(static_cast<size_t>(5 * win * mw));
  std::vector<float>& prod = thread_scratch<ProdTag, float>(static_cast<size_t>(3 * w));
  std::vector<float>& acc = thread_scratch<AccTag, float>(static_cast<size_t>(5 * mw));
  std::vector<float>& out_row = thread_scratch<OutRowTag, float>(static_cast<size_t>(mw));
  const auto slot = [&](int64_t i) { return ring.data() + (i % win) * 5 * mw; };
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t plane = t / j.blocks, blk = t % j.blocks;
    const int64_t r0 = blk * kRowsPerTask, r1 = std::min(j.mh, r0 + kRowsPerTask);
    const int64_t nin = r1 - r0 + win - 1;
    const float* pa = j.a + (plane * j.h + r0) * w;
    const float* pb = j.b + (plane * j.h + r0) * w;
    double sum = 0.0;
    for (int64_t i = 0; i < nin; ++i) {
      // horizontal pass of input row r0 + i into its ring slot
      const float* ra = pa + i * w;
      const float* rb = pb + i * w;
      float *xx = prod.data(), *yy = xx + w, *xy = yy + w;
      for (int64_t x = 0; x < w; ++x) {
        xx[x] = ra[x] * ra[x];
        yy[x] = rb[x] * rb[x];
        xy[x] = ra[x] * rb[x];
      }
      const float* rows[5] = {ra, rb, xx, yy, xy};
      float* hs = slot(i);
      for (int q = 0; q < 5; ++q) {
        const float* c = rows[q] + r;
        symmetric_taps<W>(
            c, [c](int k) { return c - k; }, [c](int k) { return c + k; }, j.mid, r, mw,
            hs + q * mw);
      }
      if (i < win - 1) continue;
      // vertical pass and SSIM for output row r0 + i - (win - 1), centred on ring row i - r
      const int64_t row = r0 + i - (win - 1);
      const float* vrows[kSsimMaxWindow];  // ring rows i - 2r .. i, top to bottom
      for (int k = 0; k < win; ++k) vrows[k] = slot(i - (win - 1) + k);
      for (int q = 0; q < 5; ++q) {
        const float* const* vm = vrows + r;  // vm[-k], vm[k]: rows k above and below the centre
        const int64_t off = q * mw;
        symmetric_taps<W>(
            vm[0] + off, [vm, off](int k) { return vm[-k] + off; },
            [vm, off](int k) { return vm[k] + off; }, j.mid, r, mw, acc.data() + off);
      }
      float* dst = j.map ? j.map + (plane * j.mh + row) * mw : out_row.data();
      const float *mx = acc.data(), *my = mx + mw, *exx = my + mw, *eyy = exx + mw, *exy = eyy + mw;
      for (int64_t x = 0; x < mw; ++x)
        dst[x] = ssim_from_moments(mx[x], my[x], exx[x], eyy[x], exy[x], j.c1, j.c2);
      // four interleaved double sums: a single one is a chain of dependent adds
      double s4[4] = {0.0, 0.0, 0.0, 0.0};
      int64_t x = 0;
      for (; x + 4 <= mw; x += 4)
        for (int l = 0; l < 4; ++l) s4[l] += dst[x + l];
      for (; x < mw; ++x) s4[0] += dst[x];
      sum += (s4[0] + s4[1]) + (s4[2] + s4[3]);
    }
    j.partial[static_cast<size_t>(t)] = sum;
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

EDGE_DEFINE_ISA_DISPATCH(ssim_tasks_dispatch, ssim_tasks, SsimJob)

}  // namespace

// Separable filtering by blocks of output rows of one plane (see ssim_tasks), on the widest
// vector unit the CPU has (cpu_isa.hpp). Per-block sums are reduced in a fixed order, so results
// depend neither on the thread count nor on how tasks are split among threads.
void ssim_cpu(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
              const SsimParams& p, float* mean, float* map, ThreadPool& pool) {
  validate_ssim(p, h, w);
  const int win = p.window;
  float taps[kSsimMaxWindow];
  gaussian_taps(win, p.sigma, taps);
  const float c1 = (p.k1 * p.data_range) * (p.k1 * p.data_range);
  const float c2 = (p.k2 * p.data_range) * (p.k2 * p.data_range);
  const int64_t mh = ssim_map_height(p, h), mw = ssim_map_width(p, w);
  const int64_t planes = n * c;
  const int64_t blocks = (mh + kRowsPerTask - 1) / kRowsPerTask;
  struct PartialTag;
  std::vector<double>& partial = thread_scratch<PartialTag, double>(static_cast<size_t>(planes * blocks), 0.0);
  const SsimJob job{a, b, h, w, mh, mw, blocks, win / 2, taps + win / 2, c1, c2, map, partial.data()};
  const CpuIsa isa = cpu_isa();
  const int64_t grain = std::max<int64_t>(1, kPixelsPerChunk / (std::min(mh, kRowsPerTask) * mw));
  pool.parallel_for(
      planes * blocks, [&](int64_t t0, int64_t t1) { ssim_tasks_dispatch(isa, job, t0, t1); }, grain);

  // Reduce in a fixed order so results do not depend on the thread count.
  const double per_plane = static_cast<double>(mh * mw);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) {
      double ps = 0.0;
      for (int64_t blk = 0; blk < blocks; ++blk) ps += partial[static_cast<size_t>((i * c + ch) * blocks + blk)];
      s += ps / per_plane;
    }
    mean[i] = static_cast<float>(s / static_cast<double>(c));
  }
}

void ssim(const float* a, const float* b, int64_t n, int64_t c, int64_t h, int64_t w,
          const SsimParams& p, float* mean, float* map, const Device& device) {
  validate_ssim(p, h, w);
  run_on_device(
      device, [&](ThreadPool& pool) { ssim_cpu(a, b, n, c, h, w, p, mean, map, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(ssim_cuda_host(a, b, n, c, h, w, p, mean, map, index);) });
}

}  // namespace edge
