// postprocess.kind "mask": GRD-Net. "reconstructor" turns X into X^, "mask_head"(X, X^) predicts
// the anomaly mask P (N, 1, S, S), multiplied by the region-of-interest array when one is set.
//   score = max of gaussian_blur(P, score_blur_sigma) at the model size S x S
//   map   = P resized (bilinear) to the unit's size, blurred with blur_sigma (0 for GRD-Net)
#include <limits>

#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class MaskPost final : public PostProcessor {
 public:
  MaskPost(const Bundle& b, int64_t max_batch, ThreadPool& pool) : pool_(pool) {
    const Manifest& m = b.manifest;
    Fields pp(m.postprocess, b.path + "/manifest.json", "postprocess");
    const std::string rec_name = pp.str("network"), mask_name = pp.str("mask_network");
    const NetworkSpec& rec = require_network(m, pp, "network", rec_name);
    const NetworkSpec& head = require_network(m, pp, "mask_network", mask_name);
    networks_ = {rec_name, mask_name};
    require_output(rec, pp, "reconstruction_output", pp.str("reconstruction_output"));
    const std::vector<std::string> mask_inputs = pp.strings("mask_inputs");
    if (mask_inputs.size() != head.inputs.size())
      pp.fail("mask_inputs", "lists " + std::to_string(mask_inputs.size()) + " tensors, network \"" + mask_name +
                                 "\" has " + std::to_string(head.inputs.size()) + " inputs");
    mask_ = pp.str("mask_output");
    const TensorSpec& out = require_output(head, pp, "mask_output", mask_);
    h_ = m.input.height;
    w_ = m.input.width;
    if (out.shape != std::vector<int64_t>{-1, 1, h_, w_})
      pp.fail("mask_output", "output \"" + mask_ + "\" must have shape " + shape_text({-1, 1, h_, w_}) + ", has " +
                                 shape_text(out.shape));
    if (pp.object("arrays").has("roi")) roi_ = &require_array(b, pp, "roi", DType::F32, {h_, w_});
    pp.one_of("image_score", {"max_blurred"});
    pp.one_of("score_size", {"model"});
    score_sigma_ = blur_sigma_field(pp, "score_blur_sigma");
    pp.one_of("map", {"mask"});
    pp.one_of("map_upsample", {"bilinear"});
    pp.one_of("map_size", {"input"});
    sigma_ = blur_sigma_field(pp, "blur_sigma");
    masks_.resize(static_cast<size_t>(max_batch * h_ * w_));
    blurred_.resize(static_cast<size_t>(h_ * w_));
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return false; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const TensorRef& p = t.at(mask_);
    const int64_t plane = h_ * w_;
    for (int64_t k = 0; k < n; ++k) {
      float* mk = masks_.data() + (first + k) * plane;
      const float* src = p.item(first + k);
      if (roi_) {
        const float* r = roi_->data<float>();
        for (int64_t i = 0; i < plane; ++i) mk[i] = src[i] * r[i];
      } else {
        std::copy(src, src + plane, mk);
      }
      const float* s = mk;
      if (score_sigma_ > 0) {
        gaussian_blur_cpu(mk, 1, h_, w_, score_sigma_, blurred_.data(), pool_);
        s = blurred_.data();
      }
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t i = 0; i < plane; ++i) {
        nan |= s[i] != s[i];
        mx = std::max(mx, s[i]);
      }
      scores[k] = nan ? std::numeric_limits<float>::quiet_NaN() : mx;
    }
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    grid_to_map(masks_.data() + i * h_ * w_, h_, w_, h, w, sigma_, out, pool_);
  }

 private:
  ThreadPool& pool_;
  std::vector<std::string> networks_;
  std::string mask_;
  int64_t h_ = 0, w_ = 0;
  const Tensor* roi_ = nullptr;
  double score_sigma_ = 0.0, sigma_ = 0.0;
  std::vector<float> masks_, blurred_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("mask", MaskPost);

}  // namespace edge
