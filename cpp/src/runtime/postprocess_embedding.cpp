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
#include <string>
#include <vector>

#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class EmbeddingPost : public PostProcessor {
 public:
  EmbeddingPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : exec_(exec), pp_(b.manifest.postprocess, b.path + "/manifest.json", "postprocess"), grid_(exec),
        map_scratch_(exec) {
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
    grid_.get<float>(static_cast<size_t>(max_batch * l_), "score grids");
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return from_map_; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const float* f = t.at(features_).item(first);
    location_scores(f, n, grid(first), first);
    if (from_map_) return;  // the runtime takes the max of each map
    image_scores(f, n, first, scores);
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    run_resize_blur(exec_, grid(i), 1, gh_, gw_, h, w, sigma_, out, map_scratch_);
  }

 protected:
  float* grid(int64_t unit) const { return grid_.data<float>() + unit * l_; }
  // (n, L, C) features of units first.. -> (n, L) location scores
  virtual void location_scores(const float* features, int64_t n, float* grid, int64_t first) = 0;
  // "max_raw" image scores of units first.. (the first maximum of each grid, as NumPy's max/argmax)
  virtual void image_scores(const float* features, int64_t n, int64_t first, float* scores) {
    (void)features;
    run_row_first_max(exec_, grid(first), n, l_, scores, nullptr);
  }

  Exec exec_;
  Fields pp_;
  std::vector<std::string> networks_;
  std::string features_;
  int64_t gh_ = 0, gw_ = 0, l_ = 0, c_ = 0;
  double sigma_ = 0.0;
  bool from_map_ = false;
  ExecBuffer grid_, map_scratch_;
};

// The per-location Gaussians (mean, Cholesky factor) of PaDiM and MhBC. On the CPU the factors
// are also packed across locations at load (once per bundle, shared by its runtimes and
// contexts) for the small-batch solve of run_mahalanobis_whiten. For the bf16 variant both solves
// use the factor rounded to bfloat16 (derived once per bundle too): the packed one stores it in
// 16 bits, half of what each call streams from memory, and the results still do not depend on
// the batch size (the accuracy gate measures the variant with it).
class LocationGaussians {
 public:
  LocationGaussians(const Bundle& b, Fields& pp, const Exec& exec, int64_t l, int64_t c)
      : l_(l),
        c_(c),
        mean_(exec, require_array(b, pp, "mean", DType::F32, {l, c})),
        chol_(exec, require_array(b, pp, "chol", DType::F32, {l, c, c})),
        ws_(exec) {
    solve_chol_ = chol_.get<float>();
    if (exec.cuda()) return;
    const float* chol = solve_chol_;
    const std::string at = "@" + std::to_string(reinterpret_cast<uintptr_t>(chol));
    if (!exec.bf16_tables) {
      packed_ = b.derived<PackedCholesky>("packed_cholesky" + at,
                                          [chol, l, c] { return std::make_shared<const PackedCholesky>(chol, l, c); });
      return;
    }
    try {
      rounded_ = b.derived<std::vector<float>>("bf16_cholesky" + at, [chol, l, c] {
        return std::make_shared<const std::vector<float>>(round_factors_to_bf16(chol, l, c));
      });
    } catch (const ArgumentError& e) {
      pp.fail("arrays.chol", std::string("the bf16 variant: ") + e.what());
    }
    const float* rounded = solve_chol_ = rounded_->data();
    packed_ = b.derived<PackedCholesky>("packed_bf16_cholesky" + at, [rounded, l, c] {
      return std::make_shared<const PackedCholesky>(rounded, l, c, FactorStorage::BF16);
    });
  }
  void solve(const Exec& exec, const float* f, int64_t n, float* dist, float* z) {
    run_mahalanobis_whiten(exec, f, mean_.get<float>(), solve_chol_, packed_.get(), n, l_, c_, dist, z, ws_);
  }

 private:
  int64_t l_, c_;
  ExecArray mean_, chol_;
  ExecBuffer ws_;
  const float* solve_chol_ = nullptr;  // chol_, or the rounded factor of the bf16 variant
  std::shared_ptr<const std::vector<float>> rounded_;
  std::shared_ptr<const PackedCholesky> packed_;
};

class MahalanobisPost final : public EmbeddingPost {
 public:
  MahalanobisPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : EmbeddingPost(b, max_batch, exec), gauss_(b, pp_, exec, l_, c_) {}

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t) override {
    gauss_.solve(exec_, f, n, grid, nullptr);
  }

 private:
  LocationGaussians gauss_;
};

class MhbcPost final : public EmbeddingPost {
 public:
  MhbcPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : EmbeddingPost(b, max_batch, exec), gauss_(b, pp_, exec, l_, c_), z_(exec) {
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("centroids");
    auto it = b.arrays.tensors.find(name);
    if (it == b.arrays.tensors.end() || it->second.shape.size() != 3 || it->second.shape[0] != l_ ||
        it->second.shape[2] != c_ || it->second.shape[1] < 1 || it->second.dtype != DType::F32)
      pp_.fail("arrays.centroids", "expected a float32 array (" + std::to_string(l_) + ", K, " + std::to_string(c_) + ")");
    centroids_ = std::make_unique<ExecArray>(exec, it->second);
    k_ = it->second.shape[1];
    if (pp_.integer("k", 1, 1, 1) != 1) pp_.fail("k", "only the nearest centroid (k = 1) is implemented");
    z_.get<float>(static_cast<size_t>(max_batch * l_ * c_), "whitened features");
  }

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t) override {
    gauss_.solve(exec_, f, n, nullptr, z_.data<float>());
    run_local_nearest(exec_, z_.data<float>(), centroids_->get<float>(), n, l_, k_, c_, grid);
  }

 private:
  LocationGaussians gauss_;
  std::unique_ptr<ExecArray> centroids_;
  int64_t k_ = 1;
  ExecBuffer z_;
};

class KnnPost final : public EmbeddingPost {
 public:
  KnnPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : EmbeddingPost(b, max_batch, exec), nearest_(exec), best_(exec), best_value_(exec), queries_(exec),
        support_(exec), support_dist_(exec), ws_(exec) {
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("bank");
    auto it = b.arrays.tensors.find(name);
    if (it == b.arrays.tensors.end() || it->second.shape.size() != 2 || it->second.shape[1] != c_ ||
        it->second.shape[0] < 1 || (it->second.dtype != DType::F32 && it->second.dtype != DType::F16))
      pp_.fail("arrays.bank", "expected a float32 or float16 array (M, " + std::to_string(c_) + ")");
    const Tensor& bank = it->second;
    type_ = bank.dtype == DType::F16 ? KnnBankType::F16 : KnnBankType::F32;
    m_ = bank.shape[0];
    // The bank prepared once, at load: mean, norms and packed panels on the CPU; resident in
    // device memory on a CUDA device.
    try {
      if (!exec.cuda()) {
        cpu_index_ = std::make_unique<KnnIndex>(bank.storage.get(), type_, m_, c_, *exec.pool);
        bank_ = bank.storage.get();
      }
      EDGE_CUDA_ONLY(else {
        cuda_index_ = std::make_unique<KnnCudaIndex>(bank.storage.get(), type_, m_, c_, exec.device.index);
        bank_ = cuda_index_->device_bank();
      })
    } catch (const ArgumentError& e) {
      pp_.fail("arrays.bank", e.what());
    }
    if (pp_.integer("k", 1, 1, 1) != 1) pp_.fail("k", "only the nearest neighbour (k = 1) is implemented");
    if (pp_.has("reweighting")) {
      Fields rw = pp_.object("reweighting");
      reweight_ = rw.boolean("enabled");
      if (reweight_) neighbors_ = std::min(rw.integer("num_neighbors", 1), m_);
    }
    EDGE_CUDA_ONLY(if (exec.cuda() && reweight_ && neighbors_ > kMaxReweightNeighborsCuda) pp_.fail(
        "reweighting.num_neighbors", "at most " + std::to_string(kMaxReweightNeighborsCuda) + " on a CUDA device");)
    const size_t nb = static_cast<size_t>(max_batch);
    nearest_.get<int64_t>(nb * static_cast<size_t>(l_), "nearest bank rows");
    if (reweight_) {
      best_.get<int64_t>(nb, "most anomalous patches");
      best_value_.get<float>(nb, "unweighted scores");
      queries_.get<float>(nb * static_cast<size_t>(c_), "m* rows");
      support_.get<int64_t>(nb * static_cast<size_t>(neighbors_), "support rows");
      support_dist_.get<float>(nb * static_cast<size_t>(neighbors_), "support distances");
      sort_d_.resize(static_cast<size_t>(neighbors_));
      sort_order_.resize(static_cast<size_t>(neighbors_));
    }
  }

 protected:
  void location_scores(const float* f, int64_t n, float* grid, int64_t first) override {
    search(f, n * l_, 1, grid, nearest_.data<int64_t>() + first * l_);
  }

  // PatchCore's reweighting (as anomalib and edge_sdk.models.patchcore): the support set is the
  // `neighbors` bank rows nearest to m*, the bank row nearest to the most anomalous patch; the
  // weight is 1 - softmax(d)[0] over the patch's distances d to the support set (ascending).
  void image_scores(const float* f, int64_t n, int64_t first, float* scores) override {
    if (!reweight_) return EmbeddingPost::image_scores(f, n, first, scores);
    int64_t* best = best_.data<int64_t>();
    float* value = best_value_.data<float>();
    float* queries = queries_.data<float>();
    int64_t* support = support_.data<int64_t>();
    const bool f16 = type_ == KnnBankType::F16;
    run_row_first_max(exec_, grid(first), n, l_, value, best);
    run_gather_bank_rows(exec_, best, nearest_.data<int64_t>() + first * l_, l_, bank_, f16, c_, n, queries);
    search(queries, n, neighbors_, support_dist_.data<float>(), support);
    run_patchcore_reweight(exec_, f, l_, c_, best, value, bank_, f16, support, neighbors_, n, scores, sort_d_,
                           sort_order_);
  }

 private:
  // k nearest bank rows of q queries (exec memory), ascending.
  void search(const float* queries, int64_t q, int64_t k, float* dist, int64_t* index) {
    if (!exec_.cuda()) return cpu_index_->search(queries, q, k, dist, index, *exec_.pool, &scratch_);
    EDGE_CUDA_ONLY(cuda_index_->search_device(queries, q, k, dist, index,
                                              ws_.reserve(knn_cuda_workspace_bytes(q, m_, k), "k-NN workspace"),
                                              exec_.stream);)
  }

  std::unique_ptr<KnnIndex> cpu_index_;
  KnnScratch scratch_;  // calls on a Runtime are serialized: one scratch serves them all
  EDGE_CUDA_ONLY(std::unique_ptr<KnnCudaIndex> cuda_index_;)
  const void* bank_ = nullptr;  // exec memory
  KnnBankType type_ = KnnBankType::F32;
  int64_t m_ = 0, neighbors_ = 0;
  bool reweight_ = false;
  ExecBuffer nearest_, best_, best_value_, queries_, support_, support_dist_, ws_;
  std::vector<double> sort_d_;
  std::vector<int64_t> sort_order_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("mahalanobis", MahalanobisPost);
EDGE_REGISTER_POSTPROCESS("mhbc", MhbcPost);
EDGE_REGISTER_POSTPROCESS("knn", KnnPost);

}  // namespace edge
