#include "edge_sdk/kernels/ssim.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/ssim_math.hpp"
#include "edge_sdk/scratch.hpp"

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
}

// Separable filtering by row blocks: each task filters the input rows it needs horizontally
// into five moment rows (x, y, x^2, y^2, xy), then vertically, then applies the shared formula.
// Loops run along x innermost so the compiler vectorizes them.
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

  pool.parallel_for(planes * blocks, [&](int64_t t0, int64_t t1) {
    const int64_t rows_in = kRowsPerTask + win - 1;
    struct HbufTag;
    struct SrcTag;
    struct AccTag;
    struct OutRowTag;
    std::vector<float>& hbuf = thread_scratch<HbufTag, float>(static_cast<size_t>(5 * rows_in * mw));
    std::vector<float>& src = thread_scratch<SrcTag, float>(static_cast<size_t>(5 * w));
    std::vector<float>& acc = thread_scratch<AccTag, float>(static_cast<size_t>(5 * mw));
    std::vector<float>& out_row = thread_scratch<OutRowTag, float>(static_cast<size_t>(mw));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t plane = t / blocks, blk = t % blocks;
      const int64_t r0 = blk * kRowsPerTask, r1 = std::min(mh, r0 + kRowsPerTask);
      const int64_t nin = r1 - r0 + win - 1;
      const float* pa = a + plane * h * w;
      const float* pb = b + plane * h * w;
      // horizontal pass over input rows r0 .. r0 + nin
      for (int64_t i = 0; i < nin; ++i) {
        const float* ra = pa + (r0 + i) * w;
        const float* rb = pb + (r0 + i) * w;
        float* s = src.data();
        for (int64_t x = 0; x < w; ++x) {
          s[x] = ra[x];
          s[w + x] = rb[x];
          s[2 * w + x] = ra[x] * ra[x];
          s[3 * w + x] = rb[x] * rb[x];
          s[4 * w + x] = ra[x] * rb[x];
        }
        for (int q = 0; q < 5; ++q) {
          float* out = hbuf.data() + (q * rows_in + i) * mw;
          const float* in = s + q * w;
          for (int64_t x = 0; x < mw; ++x) out[x] = 0.0f;
          for (int k = 0; k < win; ++k) {
            const float tk = taps[k];
            const float* ink = in + k;
            for (int64_t x = 0; x < mw; ++x) out[x] += tk * ink[x];
          }
        }
      }
      // vertical pass and SSIM per output row
      double sum = 0.0;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i0 = r - r0;
        for (int q = 0; q < 5; ++q) {
          float* o = acc.data() + q * mw;
          for (int64_t x = 0; x < mw; ++x) o[x] = 0.0f;
          for (int k = 0; k < win; ++k) {
            const float tk = taps[k];
            const float* in = hbuf.data() + (q * rows_in + i0 + k) * mw;
            for (int64_t x = 0; x < mw; ++x) o[x] += tk * in[x];
          }
        }
        float* dst = map ? map + (plane * mh + r) * mw : out_row.data();
        const float *mx = acc.data(), *my = mx + mw, *xx = my + mw, *yy = xx + mw, *xy = yy + mw;
        for (int64_t x = 0; x < mw; ++x)
          dst[x] = ssim_from_moments(mx[x], my[x], xx[x], yy[x], xy[x], c1, c2);
        double row_sum = 0.0;
        for (int64_t x = 0; x < mw; ++x) row_sum += dst[x];
        sum += row_sum;
      }
      partial[static_cast<size_t>(t)] = sum;
    }
  });

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
  if (device.is_cuda()) {
    require_device(device);
#ifdef EDGE_SDK_WITH_CUDA
    ssim_cuda_host(a, b, n, c, h, w, p, mean, map, device.index);
    return;
#endif
  }
  ssim_cpu(a, b, n, c, h, w, p, mean, map, default_pool());
}

}  // namespace edge
