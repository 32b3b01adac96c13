#include "array_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/knn_math.hpp"
#include "edge_sdk/runtime/errors.hpp"

namespace edge {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

template <typename T>
int64_t first_nonfinite(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(bank_value(p, i))) return i;
  return -1;
}


// The largest number of copies of one row (bytewise equal), and that row's index.
std::pair<int64_t, int64_t> most_copies(const uint8_t* rows, int64_t m, size_t row_bytes) {
  std::unordered_map<std::string_view, std::pair<int64_t, int64_t>> seen;  // row -> (first index, copies)
  seen.reserve(static_cast<size_t>(m));
  std::pair<int64_t, int64_t> best{1, 0};
  for (int64_t i = 0; i < m; ++i) {
    const std::string_view row(reinterpret_cast<const char*>(rows) + static_cast<size_t>(i) * row_bytes, row_bytes);
    auto& e = seen.try_emplace(row, i, 0).first->second;
    if (++e.second > best.first) best = {e.second, e.first};
  }
  return best;
}

}  // namespace

void check_arrays_finite(const SafeTensors& arrays, const std::string& source) {
  for (const auto& [name, t] : arrays.tensors) {
    int64_t bad = -1;
    if (t.dtype == DType::F32) bad = first_nonfinite(t.data<float>(), t.numel());
    else if (t.dtype == DType::F16) bad = first_nonfinite(t.data<uint16_t>(), t.numel());
    if (bad >= 0)
      throw BundleError(source + ": array \"" + name + "\" holds a NaN or infinity (flat index " + std::to_string(bad) +
                        "); no post-processing can score with it");
  }
}

void check_knn_bank(const Tensor& bank, const std::string& array_name, const std::string& source) {
  if (bank.shape.size() != 2 || bank.shape[0] < 1 || bank.shape[1] < 1) return;  // the kind's own check names it
  if (bank.dtype != DType::F32 && bank.dtype != DType::F16) return;
  const int64_t m = bank.shape[0], d = bank.shape[1];
  if (m == 1) return;  // one row: every query's neighbour, nothing to certify
  const KnnBankScale st = knn_bank_scale(bank.storage.get(), bank.dtype == DType::F32 ? KnnBankType::F32 : KnnBankType::F16,
                                         m, d);
  const std::string what = source + ": array \"" + array_name + "\" (k-NN memory bank, " + std::to_string(m) + " x " +
                           std::to_string(d) + ")";
  const double s = st.scale, b = st.max_norm, q = st.query_norm;
  if (!(s > 0.0))
    throw BundleError(what + " is degenerate: at least half its rows are the same vector (median distance to the "
                             "bank's median row is 0, over up to 4096 evenly spaced rows), so distances tie and searches cannot be certified; re-export the bank");
  const auto [copies, row] = most_copies(bank.storage.get(), m, static_cast<size_t>(d) * dtype_size(bank.dtype));
  if (copies > kKnnMaxRowCopies)
    throw BundleError(what + ": row " + std::to_string(row) + " appears " + std::to_string(copies) + " times (at most " +
                      std::to_string(kKnnMaxRowCopies) + " copies of a row): ties beyond the search's spare "
                      "candidates cannot be certified; remove the duplicate rows (they never change a nearest distance)");
  const double err = knn_scan_error_bound(d, q, b, /*bf16=*/false);
  if (!(err <= kKnnMaxRelativeError * s * s))
    throw BundleError(what + ": its largest row norm about the mean (" + num(b) + ") dwarfs the data's scale (median " +
                      "distance to the median row " + num(s) + "): the float32 search's error bound would be " +
                      num(err / (s * s)) + " x the squared scale (limit " + num(kKnnMaxRelativeError) +
                            "), so searches could not be certified and would re-scan the bank in double");
}

}  // namespace edge
