// postprocess.kind "mask": GRD-Net. "reconstructor" turns X into X^, "mask_head"(X, X^) predicts
// the anomaly mask P (N, 1, S, S), multiplied by the region-of-interest array when one is set.
//   score = max of gaussian_blur(P, score_blur_sigma) at the model size S x S
//   map   = P resized (bilinear) to the unit's size, blurred with blur_sigma (0 for GRD-Net)
#include <memory>

#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class MaskPost final : public PostProcessor {
 public:
  MaskPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : exec_(exec), masks_(exec), blurred_(exec), blur_scratch_(exec), map_scratch_(exec) {
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
    if (pp.object("arrays").has("roi"))
      roi_ = std::make_unique<ExecArray>(exec, require_array(b, pp, "roi", DType::F32, {h_, w_}));
    pp.one_of("image_score", {"max_blurred"});
    pp.one_of("score_size", {"model"});
    score_sigma_ = blur_sigma_field(pp, "score_blur_sigma");
    pp.one_of("map", {"mask"});
    pp.one_of("map_upsample", {"bilinear"});
    pp.one_of("map_size", {"input"});
    sigma_ = blur_sigma_field(pp, "blur_sigma");
    masks_.get<float>(static_cast<size_t>(max_batch * h_ * w_), "masks");
    if (score_sigma_ > 0) blurred_.get<float>(static_cast<size_t>(max_batch * h_ * w_), "blurred masks");
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return false; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const int64_t plane = h_ * w_;
    const float* p = t.at(mask_).item(first);
    float* masks = masks_.data<float>() + first * plane;
    if (roi_)
      run_multiply_plane(exec_, p, roi_->get<float>(), n, plane, masks);
    else
      exec_copy(exec_, masks, p, static_cast<size_t>(n * plane) * sizeof(float), "mask copy");
    const float* s = masks;
    if (score_sigma_ > 0) {
      run_gaussian_blur(exec_, masks, n, h_, w_, score_sigma_, blurred_.data<float>(), blur_scratch_);
      s = blurred_.data<float>();
    }
    run_row_max(exec_, s, n, plane, scores);
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    run_resize_blur(exec_, masks_.data<float>() + i * h_ * w_, 1, h_, w_, h, w, sigma_, out, map_scratch_);
  }

 private:
  Exec exec_;
  std::vector<std::string> networks_;
  std::string mask_;
  int64_t h_ = 0, w_ = 0;
  std::unique_ptr<ExecArray> roi_;
  double score_sigma_ = 0.0, sigma_ = 0.0;
  ExecBuffer masks_, blurred_, blur_scratch_, map_scratch_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("mask", MaskPost);

}  // namespace edge
