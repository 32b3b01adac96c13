#include "edge_sdk/kernels/heatmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bilinear_rows.hpp"
#include "edge_sdk/scratch.hpp"
#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"
#include "cpu_isa.hpp"

namespace edge {
namespace {

constexpr int64_t kRowsPerTask = 32;
constexpr int64_t kElementsPerTask = 1 << 16;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void require_dims(int64_t n, int64_t h, int64_t w, const char* name) {
  if (n < 1 || h < 1 || w < 1)
    throw ArgumentError(std::string(name) + ": expected a non-empty batch of images, got " +
                        std::to_string(n) + " x " + std::to_string(h) + " x " + std::to_string(w));
  if (h > kMaxImageSide || w > kMaxImageSide)
    throw ArgumentError(std::string(name) + ": height and width must be at most " +
                        std::to_string(kMaxImageSide) + ", got " + std::to_string(h) + " x " +
                        std::to_string(w));
}

}  // namespace

// ---- resize_bilinear --------------------------------------------------------------------------

void validate_resize(int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w) {
  require_dims(n, h, w, "x");
  if (out_h < 1 || out_w < 1 || out_h > kMaxImageSide || out_w > kMaxImageSide)
    throw ArgumentError("size: expected (out_h, out_w) in [1, " + std::to_string(kMaxImageSide) +
                        "], got (" + std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
}

void resize_bilinear_cpu(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h,
                         int64_t out_w, float* out, ThreadPool& pool) {
  validate_resize(n, h, w, out_h, out_w);
  thread_local std::vector<LinearTap> xtaps_buf, ytaps_buf;
  const auto& xtaps = detail::linear_taps(w, out_w, xtaps_buf);
  const auto& ytaps = detail::linear_taps(h, out_h, ytaps_buf);
  const int64_t blocks = (out_h + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(n * blocks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / blocks, blk = t % blocks;
      detail::BilinearRows<float> rows(x + img * h * w, w, 1, 0, 1.0f, xtaps);
      const int64_t r1 = std::min(out_h, (blk + 1) * kRowsPerTask);
      for (int64_t r = blk * kRowsPerTask; r < r1; ++r)
        rows.row(ytaps[static_cast<size_t>(r)], out + (img * out_h + r) * out_w);
    }
  });
}

void resize_bilinear(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                     float* out, const Device& device) {
  validate_resize(n, h, w, out_h, out_w);
  run_on_device(
      device, [&](ThreadPool& pool) { resize_bilinear_cpu(x, n, h, w, out_h, out_w, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(resize_bilinear_cuda_host(x, n, h, w, out_h, out_w, out, index);) });
}

// ---- gaussian_blur ------------------------------------------------------------------------------

int gaussian_radius(double sigma) {
  if (!std::isfinite(sigma) || !(sigma > 0.0))
    throw ArgumentError("sigma: expected a finite value > 0, got " + num(sigma));
  const int64_t r = blur_radius_unchecked(sigma);
  if (r > kMaxBlurRadius)
    throw ArgumentError("sigma: must be below " + num((kMaxBlurRadius + 0.5) / kBlurTruncate) +
                        " (kernel radius int(4 * sigma + 0.5) <= " +
                        std::to_string(kMaxBlurRadius) + "), got " + num(sigma));
  return static_cast<int>(r);
}

void validate_blur(int64_t n, int64_t h, int64_t w, double sigma) {
  require_dims(n, h, w, "x");
  gaussian_radius(sigma);
}

namespace {

// Columns handled together: the partial sums of a block stay in registers across all taps
// instead of being stored and reloaded once per tap. GCC/Clang vector extensions: SSE/NEON on
// baseline builds, wider registers where the compiler targets them.
typedef float Vec4 __attribute__((vector_size(16)));
constexpr int kBlurVecs = 8;
constexpr int64_t kBlurLanes = 4 * kBlurVecs;

inline Vec4 load4(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, Vec4 v) { std::memcpy(p, &v, sizeof v); }

// dst[i] = mid[0] * c[i] + sum_k mid[k] * (lo(k)[i] + hi(k)[i]) for i < count, where lo(k) /
// hi(k) point at the samples k before / after (already reflected). The same additions in the
// same order in the blocked and the tail loop.
template <typename Lo, typename Hi>
inline void symmetric_taps(const float* c, Lo lo, Hi hi, const float* mid, int r, int64_t count,
                           float* dst) {
  int64_t i = 0;
  for (; i + kBlurLanes <= count; i += kBlurLanes) {
    Vec4 acc[kBlurVecs];
#pragma GCC unroll 8
    for (int j = 0; j < kBlurVecs; ++j) acc[j] = mid[0] * load4(c + i + 4 * j);
    for (int k = 1; k <= r; ++k) {
      const float tk = mid[k];
      const float* pa = lo(k) + i;
      const float* pb = hi(k) + i;
#pragma GCC unroll 8
      for (int j = 0; j < kBlurVecs; ++j) acc[j] += tk * (load4(pa + 4 * j) + load4(pb + 4 * j));
    }
#pragma GCC unroll 8
    for (int j = 0; j < kBlurVecs; ++j) store4(dst + i + 4 * j, acc[j]);
  }
  for (; i < count; ++i) {
    float acc = mid[0] * c[i];
    for (int k = 1; k <= r; ++k) acc += mid[k] * (lo(k)[i] + hi(k)[i]);
    dst[i] = acc;
  }
}

}  // namespace

// Separable, by blocks of rows of one plane: each output row is first filtered vertically (a
// weighted sum of whole source rows, vectorized along x, pairing the symmetric taps), then
// horizontally from a copy of that row padded by the reflected border. Every value is summed in
// the same order whatever the thread count or block, so results do not depend on either.
void gaussian_blur_cpu(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                       ThreadPool& pool) {
  validate_blur(n, h, w, sigma);
  const int r = gaussian_radius(sigma);
  struct TapsTag;
  struct RowsTag;
  struct ColsTag;
  struct PaddedTag;
  std::vector<float>& taps = thread_scratch<TapsTag, float>(static_cast<size_t>(2 * r + 1));
  blur_taps(sigma, r, taps.data());
  const float* mid = taps.data() + r;  // mid[k] == mid[-k]
  std::vector<int64_t>& row_src = thread_scratch<RowsTag, int64_t>(static_cast<size_t>(h + 2 * r));
  for (int64_t i = 0; i < h + 2 * r; ++i) row_src[static_cast<size_t>(i)] = reflect_index(i - r, h);
  std::vector<int64_t>& col_src = thread_scratch<ColsTag, int64_t>(static_cast<size_t>(w + 2 * r));
  for (int64_t i = 0; i < w + 2 * r; ++i) col_src[static_cast<size_t>(i)] = reflect_index(i - r, w);
  const int64_t blocks = (h + kRowsPerTask - 1) / kRowsPerTask;

  pool.parallel_for(n * blocks, [&](int64_t t0, int64_t t1) {
    std::vector<float>& padded = thread_scratch<PaddedTag, float>(static_cast<size_t>(w + 2 * r));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / blocks, blk = t % blocks;
      const float* src = x + img * h * w;
      const int64_t y1 = std::min(h, (blk + 1) * kRowsPerTask);
      for (int64_t y = blk * kRowsPerTask; y < y1; ++y) {
        // vertical pass into the middle of the padded row, then its reflected border
        float* p = padded.data();
        float* pc = p + r;
        const int64_t* rows = row_src.data() + y + r;  // rows[d] = source row of y + d
        symmetric_taps(
            src + y * w, [&](int k) { return src + rows[-k] * w; },
            [&](int k) { return src + rows[k] * w; }, mid, r, w, pc);
        for (int64_t i = 0; i < r; ++i) {
          p[i] = pc[col_src[static_cast<size_t>(i)]];
          p[r + w + i] = pc[col_src[static_cast<size_t>(r + w + i)]];
        }
        // horizontal pass
        symmetric_taps(
            pc, [&](int k) { return pc - k; }, [&](int k) { return pc + k; }, mid, r, w,
            out + (img * h + y) * w);
      }
    }
  });
}

void gaussian_blur(const float* x, int64_t n, int64_t h, int64_t w, double sigma, float* out,
                   const Device& device) {
  validate_blur(n, h, w, sigma);
  run_on_device(
      device, [&](ThreadPool& pool) { gaussian_blur_cpu(x, n, h, w, sigma, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(gaussian_blur_cuda_host(x, n, h, w, sigma, out, index);) });
}

// ---- resize_blur -------------------------------------------------------------------------------

void validate_resize_blur(int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w, double sigma) {
  validate_resize(n, h, w, out_h, out_w);
  if (!(sigma >= 0.0) || !std::isfinite(sigma))
    throw ArgumentError("sigma: expected 0 (no blur) or a finite value > 0, got " + num(sigma));
  if (sigma > 0.0) gaussian_radius(sigma);  // names sigma when the kernel would be too wide
}

namespace {

// Band widths above this run as resize + blur: the tables would outgrow the work they save.
constexpr int64_t kMaxBand = 96;

// One axis of resize-then-blur: output o = sum_j weights[o * stride + j] * input[lo[o] + j],
// j < stride (weights past the band are 0). Built for one (in, out, sigma) and reused.
struct BlurResizeAxis {
  int64_t in = -1, out = -1;
  double sigma = -1.0;
  int64_t stride = 0;
  std::vector<int64_t> lo, hi;
  std::vector<float> weights;
  std::vector<double> acc;
  std::vector<float> taps;

  // Returns false when the band is wider than kMaxBand (the caller falls back to two passes).
  bool build(int64_t in_, int64_t out_, double sigma_) {
    if (in_ == in && out_ == out && sigma_ == sigma) return stride > 0;
    in = in_;
    out = out_;
    sigma = sigma_;
    const int r = gaussian_radius(sigma);
    taps.resize(static_cast<size_t>(2 * r + 1));
    blur_taps(sigma, r, taps.data());  // the taps gaussian_blur uses
    lo.resize(static_cast<size_t>(out));
    hi.resize(static_cast<size_t>(out));
    stride = 0;
    for (int64_t o = 0; o < out; ++o) {
      int64_t a = in, b = -1;
      for (int k = -r; k <= r; ++k) {
        const LinearTap t = linear_tap(reflect_index(o + k, out), in, out);
        a = std::min(a, t.i0);
        b = std::max(b, t.i1);
      }
      lo[static_cast<size_t>(o)] = a;
      hi[static_cast<size_t>(o)] = b;
      stride = std::max(stride, b - a + 1);
    }
    if (stride > kMaxBand) {
      stride = 0;
      return false;
    }
    weights.assign(static_cast<size_t>(out * stride), 0.0f);
    acc.resize(static_cast<size_t>(stride));
    for (int64_t o = 0; o < out; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const int64_t base = lo[static_cast<size_t>(o)];
      for (int k = -r; k <= r; ++k) {
        const LinearTap t = linear_tap(reflect_index(o + k, out), in, out);
        const double tk = taps[static_cast<size_t>(k + r)];
        acc[static_cast<size_t>(t.i0 - base)] += tk * t.w0;
        acc[static_cast<size_t>(t.i1 - base)] += tk * t.w1;
      }
      for (int64_t j = 0; j < stride; ++j)
        weights[static_cast<size_t>(o * stride + j)] = static_cast<float>(acc[static_cast<size_t>(j)]);
    }
    return true;
  }
};

// Pass 2 of resize_blur: output row y = sum_j weights[y][j] * row lo[y] + j of t, for the output
// rows of tasks [t0, t1) (image, block of kRowsPerTask rows), W lanes at a time.
struct BandRowsJob {
  const float* t;
  float* out;
  int64_t h, out_h, out_w, blocks, stride;
  const int64_t* lo;
  const float* weights;
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
template <int W>
EDGE_ALWAYS_INLINE void band_rows(const BandRowsJob& j, int64_t t0, int64_t t1) {
  typedef typename VecOf<W>::type V;
  for (int64_t task = t0; task < t1; ++task) {
    const int64_t img = task / j.blocks, blk = task % j.blocks;
    const float* timg = j.t + img * j.h * j.out_w;
    const int64_t y1 = std::min(j.out_h, (blk + 1) * kRowsPerTask);
    for (int64_t y = blk * kRowsPerTask; y < y1; ++y) {
      const float* wt = j.weights + y * j.stride;
      const float* rows = timg + j.lo[y] * j.out_w;
      const int64_t cnt = std::min(j.stride, j.h - j.lo[y]);
      float* dst = j.out + (img * j.out_h + y) * j.out_w;
      int64_t x = 0;
      for (; x + W <= j.out_w; x += W) {
        V acc = V{} + 0.0f;
        for (int64_t k = 0; k < cnt; ++k) acc += wt[k] * load_vec<V>(rows + k * j.out_w + x);
        store_vec(dst + x, acc);
      }
      for (; x < j.out_w; ++x) {
        float acc = 0.0f;
        for (int64_t k = 0; k < cnt; ++k) acc += wt[k] * rows[k * j.out_w + x];
        dst[x] = acc;
      }
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

EDGE_DEFINE_ISA_DISPATCH(band_rows_dispatch, band_rows, BandRowsJob)

}  // namespace

// Pass 1 filters each grid row along x into t (n x h x out_w), pass 2 each output row along y
// from the rows of t its band covers, vectorized along x. Sums run in a fixed order, so results
// do not depend on the thread count.
void resize_blur_cpu(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                     double sigma, float* out, ThreadPool& pool) {
  validate_resize_blur(n, h, w, out_h, out_w, sigma);
  if (sigma == 0.0) return resize_bilinear_cpu(x, n, h, w, out_h, out_w, out, pool);
  // Tables per calling thread (a runtime maps units of one size again and again: built once).
  thread_local BlurResizeAxis ax, ay;
  if (!ax.build(w, out_w, sigma) || !ay.build(h, out_h, sigma)) {
    struct TmpTag;
    std::vector<float>& tmp = thread_scratch<TmpTag, float>(static_cast<size_t>(n * out_h * out_w));
    resize_bilinear_cpu(x, n, h, w, out_h, out_w, tmp.data(), pool);
    return gaussian_blur_cpu(tmp.data(), n, out_h, out_w, sigma, out, pool);
  }
  struct RowsTag;
  std::vector<float>& t = thread_scratch<RowsTag, float>(static_cast<size_t>(n * h * out_w));
  const BlurResizeAxis& X = ax;
  const BlurResizeAxis& Y = ay;
  float* tp = t.data();
  // Chunks of at least kOutputsPerChunk outputs: waking a worker costs about as much as mapping
  // one 256 x 256 heatmap, so a single map runs on the calling thread.
  constexpr int64_t kOutputsPerChunk = 1 << 17;
  pool.parallel_for(n * h, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* src = x + r * w;
      float* dst = tp + r * out_w;
      for (int64_t o = 0; o < out_w; ++o) {
        const float* wt = X.weights.data() + o * X.stride;
        const float* s = src + X.lo[static_cast<size_t>(o)];
        const int64_t cnt = std::min(X.stride, w - X.lo[static_cast<size_t>(o)]);
        float acc = 0.0f;
        for (int64_t j = 0; j < cnt; ++j) acc += wt[j] * s[j];
        dst[o] = acc;
      }
    }
  }, std::max<int64_t>(1, kOutputsPerChunk / (out_w * X.stride)));
  const int64_t blocks = (out_h + kRowsPerTask - 1) / kRowsPerTask;
  const BandRowsJob job{tp, out, h, out_h, out_w, blocks, Y.stride, Y.lo.data(), Y.weights.data()};
  const CpuIsa isa = cpu_isa();
  pool.parallel_for(
      n * blocks, [&](int64_t t0, int64_t t1) { band_rows_dispatch(isa, job, t0, t1); },
      std::max<int64_t>(1, kOutputsPerChunk / (std::min(out_h, kRowsPerTask) * out_w)));
}

void resize_blur(const float* x, int64_t n, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                 double sigma, float* out, const Device& device) {
  validate_resize_blur(n, h, w, out_h, out_w, sigma);
  run_on_device(
      device, [&](ThreadPool& pool) { resize_blur_cpu(x, n, h, w, out_h, out_w, sigma, out, pool); },
      [&]([[maybe_unused]] int index) {
        EDGE_CUDA_ONLY(if (sigma == 0.0) return resize_bilinear_cuda_host(x, n, h, w, out_h, out_w, out, index);
                       std::vector<float> tmp(static_cast<size_t>(n * out_h * out_w));
                       resize_bilinear_cuda_host(x, n, h, w, out_h, out_w, tmp.data(), index);
                       gaussian_blur_cuda_host(tmp.data(), n, out_h, out_w, sigma, out, index);)
      });
}

// ---- element-wise -------------------------------------------------------------------------------

namespace {
void require_count(int64_t count, const char* name) {
  if (count < 0) throw ArgumentError(std::string(name) + ": negative element count");
}
}  // namespace

void abs_diff_cpu(const float* a, const float* b, int64_t count, float* out, ThreadPool& pool) {
  require_count(count, "a");
  pool.parallel_for(count, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = std::fabs(a[i] - b[i]);
  }, kElementsPerTask);
}

void abs_diff(const float* a, const float* b, int64_t count, float* out, const Device& device) {
  require_count(count, "a");
  run_on_device(
      device, [&](ThreadPool& pool) { abs_diff_cpu(a, b, count, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(abs_diff_cuda_host(a, b, count, out, index);) });
}

namespace {
void validate_minmax(int64_t n, int64_t plane) {
  if (n < 1 || plane < 1)
    throw ArgumentError("x: expected a non-empty batch, got " + std::to_string(n) + " planes of " +
                        std::to_string(plane) + " values");
}

// Throws for a plane whose values are not finite or whose range does not fit in float32.
void check_plane_range(int64_t i, float lo, float hi, bool has_nan) {
  if (has_nan || !std::isfinite(lo) || !std::isfinite(hi))
    throw ArgumentError("x: image " + std::to_string(i) + " contains NaN or infinity");
  if (!std::isfinite(hi - lo))
    throw ArgumentError("x: image " + std::to_string(i) + " has a value range (" + num(lo) +
                        " .. " + num(hi) + ") whose width overflows float32");
}
}  // namespace

void minmax_normalize_cpu(const float* x, int64_t n, int64_t plane, float* out, ThreadPool& pool) {
  validate_minmax(n, plane);
  struct LoTag;
  struct HiTag;
  struct NanTag;
  std::vector<float>& lo = thread_scratch<LoTag, float>(static_cast<size_t>(n));
  std::vector<float>& hi = thread_scratch<HiTag, float>(static_cast<size_t>(n));
  std::vector<char>& nan = thread_scratch<NanTag, char>(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* p = x + i * plane;
      float l = p[0], u = p[0];
      int bad = 0;
      for (int64_t j = 0; j < plane; ++j) {
        const float v = p[j];
        l = v < l ? v : l;
        u = v > u ? v : u;
        bad |= v != v;
      }
      lo[static_cast<size_t>(i)] = l;
      hi[static_cast<size_t>(i)] = u;
      nan[static_cast<size_t>(i)] = static_cast<char>(bad);
    }
  });
  for (int64_t i = 0; i < n; ++i)
    check_plane_range(i, lo[static_cast<size_t>(i)], hi[static_cast<size_t>(i)],
                      nan[static_cast<size_t>(i)] != 0);
  const int64_t chunks = (plane + kElementsPerTask - 1) / kElementsPerTask;
  pool.parallel_for(n * chunks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t / chunks, c = t % chunks;
      const float l = lo[static_cast<size_t>(i)];
      const float range = hi[static_cast<size_t>(i)] - l;
      const int64_t j1 = std::min(plane, (c + 1) * kElementsPerTask);
      const float* p = x + i * plane;
      float* o = out + i * plane;
      for (int64_t j = c * kElementsPerTask; j < j1; ++j) o[j] = minmax_value(p[j], l, range);
    }
  });
}

void minmax_normalize(const float* x, int64_t n, int64_t plane, float* out, const Device& device) {
  validate_minmax(n, plane);
  run_on_device(
      device, [&](ThreadPool& pool) { minmax_normalize_cpu(x, n, plane, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(minmax_normalize_cuda_host(x, n, plane, out, index);) });
}

void validate_calibration(const Calibration& c) {
  if (!std::isfinite(c.threshold))
    throw ArgumentError("threshold: expected a finite value, got " + num(c.threshold));
  if (!std::isfinite(c.min)) throw ArgumentError("min: expected a finite value, got " + num(c.min));
  if (!std::isfinite(c.max)) throw ArgumentError("max: expected a finite value, got " + num(c.max));
  if (!(c.max > c.min) || !std::isfinite(c.max - c.min))
    throw ArgumentError("max, min: expected max > min with a finite difference, got min=" +
                        num(c.min) + ", max=" + num(c.max));
}

void calibrated_normalize_cpu(const float* x, int64_t count, const Calibration& c, float* out,
                              ThreadPool& pool) {
  require_count(count, "x");
  validate_calibration(c);
  const float t = c.threshold, range = c.max - c.min;
  pool.parallel_for(count, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = calibrated_value(x[i], t, range);
  }, kElementsPerTask);
}

void calibrated_normalize(const float* x, int64_t count, const Calibration& c, float* out,
                          const Device& device) {
  require_count(count, "x");
  validate_calibration(c);
  run_on_device(
      device, [&](ThreadPool& pool) { calibrated_normalize_cpu(x, count, c, out, pool); },
      [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(calibrated_normalize_cuda_host(x, count, c, out, index);) });
}

}  // namespace edge
