// Embedding models: the network gives features (N, L, C) at L = h x w grid locations; a kernel
// scores each location; the grid is resized (bilinear) to the unit's size and blurred.
//   "mahalanobis" (PaDiM)      location score = ||chol^-1 (f - mean)||
//   "knn"         (PatchCore)  location score = distance to the nearest memory-bank row
//                              (+ PatchCore's reweighting of the image score, when enabled)
//   "mhbc"        (MhBC)       location score = min_j ||whiten(f) - centroid_j||
// Image score: "max_raw" = max of the grid, "max_blurred" = max of the blurred map.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/knn_math.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class EmbeddingPost : public PostProcessor {
 public:
  EmbeddingPost(const Bundle& b, int64_t max_batch, ThreadPool& pool)
      : pool_(pool), pp_(b.manifest.postprocess, b.path + "/manifest.json", "postprocess") {
    const Manifest& m = b.manifest;
    const std::string net_name = pp_.str("network");
    const NetworkSpec& net = require_network(m, pp_, "network", net_name);
    networks_ = {net_name};
    features_ = pp_.str("features_output");
    const TensorSpec& out = require_output(net, pp_, "features_output", features_);
    const auto grid = pp_.integers("grid");
    if (grid.size() != 2 || grid[0] < 1 || grid[1] < 1) pp_.fail("grid", "expected [h, w] with h, w >= 1");
    gh_ = grid[0];
    gw_ = grid[1];
    l_ = gh_ * gw_;
    c_ = pp_.integer("channels", 1);
    if (out.shape != std::vector<int64_t>{-1, l_, c_})
      pp_.fail("features_output", "output \"" + features_ + "\" must have shape " + shape_text({-1, l_, c_}) +
                                      " (grid h*w locations x channels), has " + shape_text(out.shape));
    pp_.one_of("map_upsample", {"bilinear"});
    pp_.one_of("map_size", {"input"});
    sigma_ = blur_sigma_field(pp_, "blur_sigma");
    from_map_ = pp_.one_of("image_score", {"max_raw", "max_blurred"}) == "max_blurred";
    grid_.resize(static_cast<size_t>(max_batch * l_));
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return from_map_; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const float* f = t.at(features_).item(first);
    float* g = grid_.data() + first * l_;
    location_scores(f, n, g, first);
    if (from_map_) return;  // the runtime takes the max of each map
    for (int64_t k = 0; k < n; ++k) scores[k] = image_score(f + k * l_ * c_, g + k * l_, first + k);
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    grid_to_map(grid_.data() + i * l_, gh_, gw_, h, w, sigma_, out, pool_);
  }

 protected:
  // (n, L, C) features of units first.. -> (n, L) location scores
  virtual void location_scores(const float* features, int64_t n, float* grid, int64_t first) = 0;
  // "max_raw" image score of one unit (first maximum of its grid, as NumPy's max/argmax)
  virtual float image_score(const float* features, const float* grid, int64_t unit) {
    (void)features;
    (void)unit;
    return grid[argmax(grid)];
  }
  int64_t argmax(const float* grid) const {
    int64_t best = 0;
    for (int64_t i = 1; i < l_; ++i)
      if (grid[i] > grid[best] || (std::isnan(grid[i]) && !std::isnan(grid[best]))) best = i;
    return best;
  }

  ThreadPool& pool_;
  Fields pp_;
  std::vector<std::string> networks_;
  std::string features_;
  int64_t gh_ = 0, gw_ = 0, l_ = 0, c_ = 0;
  double sigma_ = 0.0;
  bool from_map_ = false;
  std::vector<float> grid_;
};

// The per-location Gaussians (mean, Cholesky factor) of PaDiM and MhBC, with the factors also
// packed across locations at load (once per bundle, shared by its runtimes and contexts): small
// batches (below half the vector width, where the batched solve leaves lanes empty) solve on the
// packed copy, 1.2-2x faster at batch 1-8, bit-identical.
class LocationGaussians {
 public:
  LocationGaussians(const Bundle& b, Fields& pp, int64_t l, int64_t c) : l_(l), c_(c) {
    mean_ = require_array(b, pp, "mean", DType::F32, {l, c}).data<float>();
    chol_ = require_array(b, pp, "chol", DType::F32, {l, c, c}).data<float>();
    const float* chol = chol_;
    packed_ = b.derived<PackedCholesky>("packed_cholesky@" + std::to_string(reinterpret_cast<uintptr_t>(chol)), [chol, l, c] {
      return std::make_shared<const PackedCholesky>(chol, l, c);
    });
  }
  void solve(const float* f, int64_t n, float* dist, float* z, ThreadPool& pool) const {
    if (2 * n <= packed_->width())
      mahalanobis_whiten_packed_cpu(f, mean_, chol_, *packed_, n, dist, z, pool);
    else
      mahalanobis_whiten_cpu(f, mean_, chol_, n, l_, c_, dist, z, pool);
  }

 private:
  int64_t l_, c_;
  const float* mean_ = nullptr;
  const float* chol_ = nullptr;
  std::shared_ptr<const PackedCholesky> packed_;
};

class MahalanobisPost final : public EmbeddingPost {
 public:
  MahalanobisPost(const Bundle& b, int64_t max_batch, ThreadPool& pool)
      : EmbeddingPost(b, max_batch, pool), gauss_(b, pp_, l_, c_) {}

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t) override {
    gauss_.solve(f, n, grid, nullptr, pool_);
  }

 private:
  LocationGaussians gauss_;
};

class MhbcPost final : public EmbeddingPost {
 public:
  MhbcPost(const Bundle& b, int64_t max_batch, ThreadPool& pool)
      : EmbeddingPost(b, max_batch, pool), gauss_(b, pp_, l_, c_) {
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("centroids");
    auto it = b.arrays.tensors.find(name);
    if (it == b.arrays.tensors.end() || it->second.shape.size() != 3 || it->second.shape[0] != l_ ||
        it->second.shape[2] != c_ || it->second.shape[1] < 1 || it->second.dtype != DType::F32)
      pp_.fail("arrays.centroids", "expected a float32 array (" + std::to_string(l_) + ", K, " + std::to_string(c_) + ")");
    centroids_ = it->second.data<float>();
    k_ = it->second.shape[1];
    if (pp_.integer("k", 1, 1, 1) != 1) pp_.fail("k", "only the nearest centroid (k = 1) is implemented");
    z_.resize(static_cast<size_t>(max_batch * l_ * c_));
  }

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t) override {
    gauss_.solve(f, n, nullptr, z_.data(), pool_);
    local_nearest_cpu(z_.data(), centroids_, n, l_, k_, c_, grid, pool_);
  }

 private:
  LocationGaussians gauss_;
  const float* centroids_ = nullptr;
  int64_t k_ = 1;
  std::vector<float> z_;
};

class KnnPost final : public EmbeddingPost {
 public:
  KnnPost(const Bundle& b, int64_t max_batch, ThreadPool& pool) : EmbeddingPost(b, max_batch, pool) {
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("bank");
    auto it = b.arrays.tensors.find(name);
    if (it == b.arrays.tensors.end() || it->second.shape.size() != 2 || it->second.shape[1] != c_ ||
        it->second.shape[0] < 1 || (it->second.dtype != DType::F32 && it->second.dtype != DType::F16))
      pp_.fail("arrays.bank", "expected a float32 or float16 array (M, " + std::to_string(c_) + ")");
    bank_ = &it->second;
    type_ = bank_->dtype == DType::F16 ? KnnBankType::F16 : KnnBankType::F32;
    m_ = bank_->shape[0];
    // Bank mean, norms and packed panels once, at load, instead of on every batch.
    try {
      prepared_ = std::make_unique<KnnIndex>(bank_->storage.get(), type_, m_, c_, pool);
    } catch (const ArgumentError& e) {
      pp_.fail("arrays.bank", e.what());
    }
    if (pp_.integer("k", 1, 1, 1) != 1) pp_.fail("k", "only the nearest neighbour (k = 1) is implemented");
    if (pp_.has("reweighting")) {
      Fields rw = pp_.object("reweighting");
      reweight_ = rw.boolean("enabled");
      if (reweight_) neighbors_ = std::min(rw.integer("num_neighbors", 1), m_);
    }
    index_.resize(static_cast<size_t>(max_batch * l_));
    if (reweight_) {
      const size_t row = static_cast<size_t>(c_) * dtype_size(bank_->dtype);
      query_.resize(static_cast<size_t>(c_));
      support_rows_.resize(static_cast<size_t>(neighbors_) * row);
      support_dist_.resize(static_cast<size_t>(neighbors_));
      support_index_.resize(static_cast<size_t>(neighbors_));
      support_pairs_.resize(static_cast<size_t>(neighbors_));
    }
  }

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t first) override {
    prepared_->search(f, n * l_, 1, grid, index_.data() + first * l_, pool_, &scratch_);
  }

  // PatchCore's reweighting (as anomalib and edge_sdk.models.patchcore): the support set is the
  // `neighbors` bank rows nearest to m*, the bank row nearest to the most anomalous patch; the
  // weight is 1 - softmax(d)[0] over the patch's distances d to the support set (ascending).
  float image_score(const float* features, const float* grid, int64_t unit) override {
    const int64_t best = argmax(grid);
    const float score = grid[best];
    if (!reweight_ || !std::isfinite(score)) return score;
    const int64_t nn = index_[static_cast<size_t>(unit * l_ + best)];
    const size_t row = static_cast<size_t>(c_) * dtype_size(bank_->dtype);
    const uint8_t* bank = bank_->storage.get();
    // m* as a float32 query (exact for a float16 bank: every half value is a float).
    if (type_ == KnnBankType::F32) {
      std::memcpy(query_.data(), bank + static_cast<size_t>(nn) * row, row);
    } else {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(bank + static_cast<size_t>(nn) * row);
      for (int64_t i = 0; i < c_; ++i) query_[static_cast<size_t>(i)] = half_to_float(h[i]);
    }
    prepared_->search(query_.data(), 1, neighbors_, support_dist_.data(), support_index_.data(), pool_, &scratch_);
    for (int64_t j = 0; j < neighbors_; ++j)
      std::memcpy(support_rows_.data() + static_cast<size_t>(j) * row,
                  bank + static_cast<size_t>(support_index_[static_cast<size_t>(j)]) * row, row);
    // The patch's distances to the few support rows: the k-NN kernel's exact re-rank arithmetic
    // (double sums, ascending, ties to the lower index) on preallocated buffers, so this per-image
    // step allocates nothing and equals knn() over the support set, which the PyTorch model calls.
    const float* patch = features + best * c_;
    for (int64_t j = 0; j < neighbors_; ++j) {
      const uint8_t* r = support_rows_.data() + static_cast<size_t>(j) * row;
      const double d2 = type_ == KnnBankType::F32 ? exact_sq_dist(patch, reinterpret_cast<const float*>(r), c_)
                                                  : exact_sq_dist(patch, reinterpret_cast<const uint16_t*>(r), c_);
      support_pairs_[static_cast<size_t>(j)] = {d2, j};
    }
    std::sort(support_pairs_.begin(), support_pairs_.end(),
              [](const std::pair<double, int64_t>& a, const std::pair<double, int64_t>& b) {
                return neighbour_before(a.first, a.second, b.first, b.second);
              });
    for (int64_t j = 0; j < neighbors_; ++j)
      support_dist_[static_cast<size_t>(j)] = static_cast<float>(std::sqrt(support_pairs_[static_cast<size_t>(j)].first));
    double sum = 0.0;
    const double d0 = support_dist_[0];
    for (int64_t j = 0; j < neighbors_; ++j) sum += std::exp(static_cast<double>(support_dist_[static_cast<size_t>(j)]) - d0);
    const double weight = 1.0 - 1.0 / sum;
    return static_cast<float>(weight * static_cast<double>(score));
  }

 private:
  static float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
      if (man == 0) {
        bits = sign;
      } else {  // subnormal: renormalize
        int e = -1;
        uint32_t mm = man;
        do {
          ++e;
          mm <<= 1;
        } while (!(mm & 0x400));
        bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mm & 0x3FF) << 13);
      }
    } else if (exp == 31) {
      bits = sign | 0x7F800000u | (man << 13);
    } else {
      bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

  const Tensor* bank_ = nullptr;
  std::unique_ptr<KnnIndex> prepared_;
  KnnScratch scratch_;  // calls on a Runtime are serialized: one scratch serves them all
  KnnBankType type_ = KnnBankType::F32;
  int64_t m_ = 0, neighbors_ = 0;
  bool reweight_ = false;
  std::vector<float> query_, support_dist_;
  std::vector<int64_t> index_, support_index_;
  std::vector<uint8_t> support_rows_;
  std::vector<std::pair<double, int64_t>> support_pairs_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("mahalanobis", MahalanobisPost);
EDGE_REGISTER_POSTPROCESS("mhbc", MhbcPost);
EDGE_REGISTER_POSTPROCESS("knn", KnnPost);

}  // namespace edge
