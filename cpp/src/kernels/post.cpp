#include "edge_sdk/kernels/post.hpp"

#include <limits>

#include "edge_sdk/kernels/post_math.hpp"

namespace edge {

void row_first_max_cpu(const float* x, int64_t rows, int64_t cols, float* value, int64_t* index) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    int64_t best = 0;
    for (int64_t i = 1; i < cols; ++i)
      if (score_before(row[i], i, row[best], best)) best = i;
    value[r] = row[best];
    if (index) index[r] = best;
  }
}

void row_max_cpu(const float* x, int64_t rows, int64_t cols, float* value) {
  constexpr int kLanes = 16;
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = x + r * cols;
    float lane[kLanes];
    int nan[kLanes] = {};
    for (int j = 0; j < kLanes; ++j) lane[j] = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + kLanes <= cols; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const float v = p[i + j];
        nan[j] |= v != v;
        lane[j] = v > lane[j] ? v : lane[j];
      }
    float mx = -std::numeric_limits<float>::infinity();
    int any_nan = 0;
    for (; i < cols; ++i) {
      any_nan |= p[i] != p[i];
      mx = p[i] > mx ? p[i] : mx;
    }
    for (int j = 0; j < kLanes; ++j) {
      any_nan |= nan[j];
      mx = lane[j] > mx ? lane[j] : mx;
    }
    value[r] = any_nan ? std::numeric_limits<float>::quiet_NaN() : mx;
  }
}

void one_minus_cpu(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = 1.0f - x[i];
}

void channel_mean_cpu(const float* x, int64_t n, int64_t c, int64_t plane, float* out) {
  for (int64_t k = 0; k < n; ++k)
    for (int64_t p = 0; p < plane; ++p) out[k * plane + p] = channel_mean_at(x + k * c * plane, c, plane, p);
}

void multiply_plane_cpu(const float* x, const float* roi, int64_t n, int64_t plane, float* out) {
  for (int64_t k = 0; k < n; ++k)
    for (int64_t p = 0; p < plane; ++p) out[k * plane + p] = x[k * plane + p] * roi[p];
}

void gather_bank_rows_cpu(const int64_t* best, const int64_t* nearest, int64_t l, const void* bank, bool bank_f16,
                          int64_t c, int64_t n, float* queries) {
  for (int64_t k = 0; k < n; ++k) {
    const int64_t row = nearest[k * l + best[k]];
    for (int64_t j = 0; j < c; ++j)
      queries[k * c + j] = bank_f16 ? bank_value(static_cast<const uint16_t*>(bank) + row * c, j)
                                    : bank_value(static_cast<const float*>(bank) + row * c, j);
  }
}

void patchcore_reweight_cpu(const float* features, int64_t l, int64_t c, const int64_t* best, const float* value,
                            const void* bank, bool bank_f16, const int64_t* support, int64_t neighbors, int64_t n,
                            float* scores, double* scratch_d, int64_t* scratch_order) {
  for (int64_t k = 0; k < n; ++k) {
    const float* patch = features + (k * l + best[k]) * c;
    const int64_t* s = support + k * neighbors;
    scores[k] = bank_f16 ? patchcore_reweight(patch, static_cast<const uint16_t*>(bank), s, neighbors, c, value[k],
                                              scratch_d, scratch_order)
                         : patchcore_reweight(patch, static_cast<const float*>(bank), s, neighbors, c, value[k],
                                              scratch_d, scratch_order);
  }
}

}  // namespace edge
