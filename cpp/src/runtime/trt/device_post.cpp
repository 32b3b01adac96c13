#include "device_post.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "../post_common.hpp"
#include "device_kernels.cuh"
#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/knn.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"
#include "edge_sdk/kernels/ssim.hpp"

namespace edge {
namespace trt {
namespace {

void check(cudaError_t err, const std::string& what) {
  if (err != cudaSuccess) throw TrtError("device post-processing: CUDA error in " + what + ": " + cudaGetErrorString(err));
}

// Device allocations of one post-processing object, freed together.
class DeviceBuffers {
 public:
  ~DeviceBuffers() {
    for (void* p : ptrs_) cudaFree(p);
  }
  template <typename T>
  T* alloc(size_t count, const char* what) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)), std::string("cudaMalloc(") + what + ")");
    ptrs_.push_back(p);
    return static_cast<T*>(p);
  }

 private:
  std::vector<void*> ptrs_;
};

const TrtTensor& engine_tensor(const TrtEngine& e, const std::string& name, bool input, int64_t item_count) {
  const TrtTensor& t = e.tensor(name);
  if (t.is_input != input || t.item_count != item_count)
    throw TrtError("device post-processing: engine tensor \"" + name + "\" is not the " + (input ? "input" : "output") +
                   " of " + std::to_string(item_count) + " values per item the manifest describes");
  return t;
}

// Map of each image: the (batch, gh, gw) grid resized (bilinear) to map_h x map_w, blurred when sigma > 0.
class MapStep {
 public:
  MapStep(DeviceBuffers& buf, int64_t max_batch, int64_t map_h, int64_t map_w, double sigma)
      : h_(map_h), w_(map_w), sigma_(sigma) {
    if (map_h < 1 || map_w < 1) throw TrtError("device post-processing: the map size must be given (map_h, map_w >= 1)");
    if (sigma_ > 0) {
      tmp_ = buf.alloc<float>(static_cast<size_t>(max_batch * h_ * w_), "resized maps");
      ws_ = buf.alloc<float>(static_cast<size_t>(gaussian_blur_cuda_workspace_floats(max_batch, h_, w_)), "blur workspace");
    }
  }
  void run(const float* grid, int64_t batch, int64_t gh, int64_t gw, float* maps, cudaStream_t s) const {
    if (sigma_ > 0) {
      resize_bilinear_cuda(grid, batch, gh, gw, h_, w_, tmp_, s);
      gaussian_blur_cuda(tmp_, batch, h_, w_, sigma_, maps, ws_, s);
    } else {
      resize_bilinear_cuda(grid, batch, gh, gw, h_, w_, maps, s);
    }
  }
  int64_t plane() const { return h_ * w_; }

 private:
  int64_t h_, w_;
  double sigma_;
  float* tmp_ = nullptr;
  float* ws_ = nullptr;
};

// ---- embedding models: features (N, L, C) -> grid (N, L) ----------------------------------------
class EmbeddingPost : public DevicePost {
 public:
  EmbeddingPost(const Bundle& b, std::shared_ptr<const DeviceArrays> arrays, int64_t max_batch, int64_t map_h,
                int64_t map_w)
      : arrays_(std::move(arrays)), pp_(b.manifest.postprocess, b.path + "/manifest.json", "postprocess") {
    features_ = pp_.str("features_output");
    const auto grid = pp_.integers("grid");
    if (grid.size() != 2) pp_.fail("grid", "expected [h, w]");
    gh_ = grid[0];
    gw_ = grid[1];
    l_ = gh_ * gw_;
    c_ = pp_.integer("channels", 1);
    from_map_ = pp_.one_of("image_score", {"max_raw", "max_blurred"}) == "max_blurred";
    grid_ = buf_.alloc<float>(static_cast<size_t>(max_batch * l_), "grid");
    map_ = std::make_unique<MapStep>(buf_, max_batch, map_h, map_w, blur_sigma_field(pp_, "blur_sigma"));
    // "max_blurred" scores need the maps even when no heatmap is wanted.
    if (from_map_) own_maps_ = buf_.alloc<float>(static_cast<size_t>(max_batch * map_->plane()), "maps for the score");
  }

  void run(const TrtEngine& first, int64_t batch, float* scores, float* maps, cudaStream_t s) override {
    const float* f = engine_tensor(first, features_, false, l_ * c_).device;
    location_scores(f, batch, s);
    if (from_map_ && !maps) maps = own_maps_;
    if (maps) map_->run(grid_, batch, gh_, gw_, maps, s);
    if (from_map_)
      row_argmax_cuda(maps, batch, map_->plane(), scores, nullptr, s);
    else
      image_scores(f, batch, scores, s);
  }

 protected:
  virtual void location_scores(const float* features, int64_t batch, cudaStream_t s) = 0;
  virtual void image_scores(const float*, int64_t batch, float* scores, cudaStream_t s) {
    row_argmax_cuda(grid_, batch, l_, scores, nullptr, s);
  }
  const void* array(const std::string& role) const {
    return arrays_->get(Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str(role));
  }

  std::shared_ptr<const DeviceArrays> arrays_;
  Fields pp_;
  DeviceBuffers buf_;
  std::string features_;
  int64_t gh_ = 0, gw_ = 0, l_ = 0, c_ = 0;
  bool from_map_ = false;
  float* grid_ = nullptr;
  float* own_maps_ = nullptr;
  std::unique_ptr<MapStep> map_;
};

class MahalanobisPost final : public EmbeddingPost {
 public:
  MahalanobisPost(const Bundle& b, std::shared_ptr<const DeviceArrays> a, int64_t max_batch, int64_t mh, int64_t mw)
      : EmbeddingPost(b, std::move(a), max_batch, mh, mw) {
    mean_ = static_cast<const float*>(array("mean"));
    chol_ = static_cast<const float*>(array("chol"));
    ws_ = buf_.alloc<float>(static_cast<size_t>(mahalanobis_cuda_workspace_floats(max_batch, l_, c_)), "mahalanobis workspace");
  }

 protected:
  // Non-finite features give non-finite distances, hence a NaN score and a "review" verdict.
  void location_scores(const float* f, int64_t batch, cudaStream_t s) override {
    mahalanobis_whiten_cuda(f, mean_, chol_, batch, l_, c_, grid_, nullptr, ws_, nullptr, s);
  }

 private:
  const float *mean_ = nullptr, *chol_ = nullptr;
  float* ws_ = nullptr;
};

class MhbcPost final : public EmbeddingPost {
 public:
  MhbcPost(const Bundle& b, std::shared_ptr<const DeviceArrays> a, int64_t max_batch, int64_t mh, int64_t mw)
      : EmbeddingPost(b, std::move(a), max_batch, mh, mw) {
    mean_ = static_cast<const float*>(array("mean"));
    chol_ = static_cast<const float*>(array("chol"));
    centroids_ = static_cast<const float*>(array("centroids"));
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("centroids");
    k_ = b.arrays.tensors.at(name).shape.at(1);
    z_ = buf_.alloc<float>(static_cast<size_t>(max_batch * l_ * c_), "whitened features");
    ws_ = buf_.alloc<float>(static_cast<size_t>(mahalanobis_cuda_workspace_floats(max_batch, l_, c_)), "whiten workspace");
  }

 protected:
  void location_scores(const float* f, int64_t batch, cudaStream_t s) override {
    mahalanobis_whiten_cuda(f, mean_, chol_, batch, l_, c_, nullptr, z_, ws_, nullptr, s);
    local_nearest_cuda(z_, centroids_, batch, l_, k_, c_, grid_, nullptr, s);
  }

 private:
  const float *mean_ = nullptr, *chol_ = nullptr, *centroids_ = nullptr;
  int64_t k_ = 1;
  float *z_ = nullptr, *ws_ = nullptr;
};

class KnnPost final : public EmbeddingPost {
 public:
  KnnPost(const Bundle& b, std::shared_ptr<const DeviceArrays> a, int64_t max_batch, int64_t mh, int64_t mw)
      : EmbeddingPost(b, std::move(a), max_batch, mh, mw) {
    const std::string name = Fields(pp_.get("arrays"), pp_.source(), "postprocess.arrays").str("bank");
    const Tensor& t = b.arrays.tensors.at(name);
    bank_ = array("bank");
    f16_ = t.dtype == DType::F16;
    m_ = t.shape.at(0);
    if (pp_.has("reweighting")) {
      Fields rw = pp_.object("reweighting");
      reweight_ = rw.boolean("enabled");
      if (reweight_) neighbors_ = std::min(rw.integer("num_neighbors", 1), m_);
    }
    if (reweight_ && neighbors_ > kMaxReweightNeighbors)
      throw DevicePathUnsupported("device post-processing: PatchCore reweighting with more than " +
                     std::to_string(kMaxReweightNeighbors) + " neighbours has no device implementation");
    // The k-NN plan depends on the query count: room for the largest workspace over batch sizes.
    size_t ws = 0, ws2 = 0;
    for (int64_t n = 1; n <= max_batch; ++n) {
      ws = std::max(ws, knn_cuda_workspace_bytes(n * l_, m_, 1));
      if (reweight_) ws2 = std::max(ws2, knn_cuda_workspace_bytes(n, m_, neighbors_));
    }
    ws_ = buf_.alloc<char>(ws, "k-NN workspace");
    nearest_ = buf_.alloc<int64_t>(static_cast<size_t>(max_batch * l_), "nearest bank rows");
    if (reweight_) {
      ws2_ = buf_.alloc<char>(ws2, "support k-NN workspace");
      best_ = buf_.alloc<int64_t>(static_cast<size_t>(max_batch), "most anomalous patch");
      best_value_ = buf_.alloc<float>(static_cast<size_t>(max_batch), "unweighted scores");
      queries_ = buf_.alloc<float>(static_cast<size_t>(max_batch * c_), "m* rows");
      support_ = buf_.alloc<int64_t>(static_cast<size_t>(max_batch * neighbors_), "support rows");
      support_dist_ = buf_.alloc<float>(static_cast<size_t>(max_batch * neighbors_), "support distances");
    }
  }

 protected:
  void location_scores(const float* f, int64_t batch, cudaStream_t s) override {
    knn_cuda(f, batch * l_, bank_, f16_ ? KnnBankType::F16 : KnnBankType::F32, m_, c_, 1, grid_, nearest_, ws_, s);
  }

  void image_scores(const float* f, int64_t batch, float* scores, cudaStream_t s) override {
    if (!reweight_) return EmbeddingPost::image_scores(f, batch, scores, s);
    row_argmax_cuda(grid_, batch, l_, best_value_, best_, s);
    gather_bank_rows_cuda(best_, nearest_, l_, bank_, f16_, c_, batch, queries_, s);
    knn_cuda(queries_, batch, bank_, f16_ ? KnnBankType::F16 : KnnBankType::F32, m_, c_, neighbors_, support_dist_,
             support_, ws2_, s);
    reweight_cuda(f, l_, c_, best_, best_value_, bank_, f16_, support_, neighbors_, batch, scores, s);
  }

 private:
  const void* bank_ = nullptr;
  bool f16_ = false, reweight_ = false;
  int64_t m_ = 0, neighbors_ = 0;
  char *ws_ = nullptr, *ws2_ = nullptr;
  int64_t *nearest_ = nullptr, *best_ = nullptr, *support_ = nullptr;
  float *best_value_ = nullptr, *queries_ = nullptr, *support_dist_ = nullptr;
};

// ---- reconstruction (ResGANAD): score 1 - SSIM(X, X^), map from |X - X^| ------------------------
class SsimPost final : public DevicePost {
 public:
  SsimPost(const Bundle& b, int64_t max_batch, int64_t map_h, int64_t map_w) {
    const Manifest& m = b.manifest;
    Fields pp(m.postprocess, b.path + "/manifest.json", "postprocess");
    input_ = pp.str("input");
    recon_ = pp.str("reconstruction_output");
    c_ = m.input.channels;
    h_ = m.input.height;
    w_ = m.input.width;
    params_ = ssim_params_field(pp, h_, w_);
    const size_t plane = static_cast<size_t>(h_ * w_), n = static_cast<size_t>(max_batch);
    mean_ = buf_.alloc<float>(n, "ssim means");
    ws_ = buf_.alloc<float>(static_cast<size_t>(ssim_cuda_workspace_floats(max_batch, c_, h_, w_, params_)), "ssim workspace");
    diff_ = buf_.alloc<float>(n * static_cast<size_t>(c_) * plane, "|X - X^|");
    grid_ = buf_.alloc<float>(n * plane, "difference maps");
    map_ = std::make_unique<MapStep>(buf_, max_batch, map_h, map_w, blur_sigma_field(pp, "blur_sigma"));
  }

  void run(const TrtEngine& first, int64_t batch, float* scores, float* maps, cudaStream_t s) override {
    const int64_t item = c_ * h_ * w_;
    const float* x = engine_tensor(first, input_, true, item).device;
    const float* rec = engine_tensor(first, recon_, false, item).device;
    ssim_cuda(x, rec, batch, c_, h_, w_, params_, mean_, nullptr, ws_, s);
    one_minus_cuda(mean_, batch, scores, s);
    if (!maps) return;  // the map is only the heatmap here
    abs_diff_cuda(x, rec, batch * item, diff_, s);
    channel_mean_cuda(diff_, batch, c_, h_ * w_, grid_, s);
    map_->run(grid_, batch, h_, w_, maps, s);
  }

 private:
  DeviceBuffers buf_;
  std::string input_, recon_;
  int64_t c_ = 0, h_ = 0, w_ = 0;
  SsimParams params_;
  float *mean_ = nullptr, *ws_ = nullptr, *diff_ = nullptr, *grid_ = nullptr;
  std::unique_ptr<MapStep> map_;
};

// ---- GRD-Net: mask head on (X, X^), score = max of the blurred mask at model size ---------------
class MaskPost final : public DevicePost {
 public:
  MaskPost(const Bundle& b, std::shared_ptr<const DeviceArrays> arrays, const std::vector<TrtEngine*>& engines,
           int64_t max_batch, int64_t map_h, int64_t map_w)
      : arrays_(std::move(arrays)) {
    const Manifest& m = b.manifest;
    Fields pp(m.postprocess, b.path + "/manifest.json", "postprocess");
    if (engines.size() != 2) throw TrtError("device post-processing (mask): expected the reconstructor and mask head engines");
    first_ = engines[0];
    head_ = engines[1];
    h_ = m.input.height;
    w_ = m.input.width;
    mask_ = pp.str("mask_output");
    engine_tensor(*head_, mask_, false, h_ * w_);
    const Fields arr = pp.object("arrays");
    if (arr.has("roi")) roi_ = static_cast<const float*>(arrays_->get(arr.str("roi")));
    score_sigma_ = blur_sigma_field(pp, "score_blur_sigma");
    const size_t plane = static_cast<size_t>(h_ * w_), n = static_cast<size_t>(max_batch);
    if (roi_) masks_ = buf_.alloc<float>(n * plane, "masks x roi");
    if (score_sigma_ > 0) {
      blurred_ = buf_.alloc<float>(n * plane, "blurred masks");
      blur_ws_ = buf_.alloc<float>(static_cast<size_t>(gaussian_blur_cuda_workspace_floats(max_batch, h_, w_)), "blur workspace");
    }
    map_ = std::make_unique<MapStep>(buf_, max_batch, map_h, map_w, blur_sigma_field(pp, "blur_sigma"));
    // The head's inputs: outputs of the reconstructor by name, else the preprocessed image (the
    // runtime's rule for networks of a bundle).
    const TrtTensor* image = nullptr;
    for (const TrtTensor& t : first_->tensors())
      if (t.is_input) image = &t;
    for (const TrtTensor& t : head_->tensors()) {
      if (!t.is_input) continue;
      const TrtTensor* src = image;
      for (const TrtTensor& o : first_->tensors())
        if (!o.is_input && o.name == t.name) src = &o;
      if (!src || src->item_count != t.item_count)
        throw TrtError("device post-processing (mask): no source of " + std::to_string(t.item_count) +
                       " values per item for mask head input \"" + t.name + "\"");
      copies_.push_back({src->device, t.device, static_cast<size_t>(t.item_count) * sizeof(float)});
    }
    check(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~MaskPost() override {
    if (fork_) cudaEventDestroy(fork_);
    if (join_) cudaEventDestroy(join_);
  }

  void run(const TrtEngine&, int64_t batch, float* scores, float* maps, cudaStream_t s) override {
    for (const Copy& c : copies_)
      check(cudaMemcpyAsync(c.dst, c.src, c.bytes_per_item * static_cast<size_t>(batch), cudaMemcpyDeviceToDevice, s),
            "mask head input copy");
    // The head runs on its own context's stream, ordered after this stream's work and joined back.
    check(cudaEventRecord(fork_, s), "cudaEventRecord");
    check(cudaStreamWaitEvent(head_->stream(), fork_, 0), "cudaStreamWaitEvent");
    head_->enqueue(batch);
    check(cudaEventRecord(join_, head_->stream()), "cudaEventRecord");
    check(cudaStreamWaitEvent(s, join_, 0), "cudaStreamWaitEvent");
    const float* p = head_->tensor(mask_).device;
    const int64_t plane = h_ * w_;
    if (roi_) {
      multiply_plane_cuda(p, roi_, batch, plane, masks_, s);
      p = masks_;
    }
    if (score_sigma_ > 0) {
      gaussian_blur_cuda(p, batch, h_, w_, score_sigma_, blurred_, blur_ws_, s);
      row_argmax_cuda(blurred_, batch, plane, scores, nullptr, s);
    } else {
      row_argmax_cuda(p, batch, plane, scores, nullptr, s);
    }
    if (maps) map_->run(p, batch, h_, w_, maps, s);
  }

 private:
  struct Copy {
    const float* src;
    float* dst;
    size_t bytes_per_item;
  };
  std::shared_ptr<const DeviceArrays> arrays_;
  DeviceBuffers buf_;
  TrtEngine* first_ = nullptr;
  TrtEngine* head_ = nullptr;
  std::string mask_;
  int64_t h_ = 0, w_ = 0;
  const float* roi_ = nullptr;
  double score_sigma_ = 0.0;
  float *masks_ = nullptr, *blurred_ = nullptr, *blur_ws_ = nullptr;
  std::vector<Copy> copies_;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  std::unique_ptr<MapStep> map_;
};

}  // namespace

DeviceArrays::DeviceArrays(const Bundle& bundle, int device_index) {
  check(cudaSetDevice(device_index), "cudaSetDevice");
  try {
    for (const auto& [name, t] : bundle.arrays.tensors) {
      void* p = nullptr;
      check(cudaMalloc(&p, std::max<size_t>(t.nbytes, 1)), "cudaMalloc(array " + name + ")");
      ptrs_[name] = p;
      if (t.nbytes) check(cudaMemcpy(p, t.storage.get(), t.nbytes, cudaMemcpyHostToDevice), "upload of array " + name);
    }
  } catch (...) {
    for (auto& kv : ptrs_) cudaFree(kv.second);
    throw;
  }
}

DeviceArrays::~DeviceArrays() {
  for (auto& kv : ptrs_) cudaFree(kv.second);
}

const void* DeviceArrays::get(const std::string& name) const {
  auto it = ptrs_.find(name);
  if (it == ptrs_.end()) throw TrtError("device post-processing: no array \"" + name + "\" in the bundle");
  return it->second;
}

std::unique_ptr<DevicePost> make_device_post(const Bundle& bundle, std::shared_ptr<const DeviceArrays> arrays,
                                             const std::vector<TrtEngine*>& engines, int64_t max_batch, int64_t map_h,
                                             int64_t map_w) {
  const std::string& kind = bundle.manifest.postprocess_kind;
  if (engines.empty() || !engines.front()) throw TrtError("device post-processing: no engine");
  if (kind == "mahalanobis") return std::make_unique<MahalanobisPost>(bundle, arrays, max_batch, map_h, map_w);
  if (kind == "mhbc") return std::make_unique<MhbcPost>(bundle, arrays, max_batch, map_h, map_w);
  if (kind == "knn") return std::make_unique<KnnPost>(bundle, arrays, max_batch, map_h, map_w);
  if (kind == "ssim") return std::make_unique<SsimPost>(bundle, max_batch, map_h, map_w);
  if (kind == "mask") return std::make_unique<MaskPost>(bundle, arrays, engines, max_batch, map_h, map_w);
  throw DevicePathUnsupported("device post-processing: postprocess.kind \"" + kind + "\" has no device implementation");
}

}  // namespace trt
}  // namespace edge
