// postprocess.kind "ssim": reconstruction models (ResGANAD). The network reconstructs its
// preprocessed input X as X^.
//   score = 1 - SSIM(X, X^)  (kernels ssim: Gaussian window, "valid" map, mean over map then channels)
//   map   = channel mean of |X - X^| -> bilinear resize to the unit's size -> Gaussian blur (sigma > 0)
#include "edge_sdk/kernels/ssim.hpp"
#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class SsimPost final : public PostProcessor {
 public:
  SsimPost(const Bundle& b, int64_t max_batch, const Exec& exec)
      : exec_(exec), mean_(exec), diff_(exec), grid_(exec), ssim_scratch_(exec), map_scratch_(exec) {
    const Manifest& m = b.manifest;
    Fields pp(m.postprocess, b.path + "/manifest.json", "postprocess");
    const std::string net_name = pp.str("network");
    const NetworkSpec& net = require_network(m, pp, "network", net_name);
    networks_ = {net_name};
    input_ = pp.str("input");
    bool is_input = false;
    for (const auto& t : net.inputs) is_input |= t.name == input_;
    if (!is_input) pp.fail("input", "network \"" + net_name + "\" has no input \"" + input_ + "\"");
    recon_ = pp.str("reconstruction_output");
    const TensorSpec& out = require_output(net, pp, "reconstruction_output", recon_);
    c_ = m.input.channels;
    h_ = m.input.height;
    w_ = m.input.width;
    if (out.shape != std::vector<int64_t>{-1, c_, h_, w_})
      pp.fail("reconstruction_output", "output \"" + recon_ + "\" must have the input's shape " +
                                           shape_text({-1, c_, h_, w_}) + ", has " + shape_text(out.shape));
    params_ = ssim_params_field(pp, h_, w_);
    pp.one_of("image_score", {"one_minus_mean_ssim"});
    pp.one_of("map", {"abs_diff_channel_mean"});
    pp.one_of("map_upsample", {"bilinear"});
    pp.one_of("map_size", {"input"});
    sigma_ = blur_sigma_field(pp, "blur_sigma");
    mean_.get<float>(static_cast<size_t>(max_batch), "ssim means");
    diff_.get<float>(static_cast<size_t>(max_batch * c_ * h_ * w_), "|X - X^|");
    grid_.get<float>(static_cast<size_t>(max_batch * h_ * w_), "difference maps");
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return false; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const float* x = t.at(input_).item(first);
    const float* rec = t.at(recon_).item(first);
    const int64_t plane = h_ * w_;
    run_ssim(exec_, x, rec, n, c_, h_, w_, params_, mean_.data<float>(), ssim_scratch_);
    run_one_minus(exec_, mean_.data<float>(), n, scores);
    // The map's source: channel mean of |X - X^| in float32, channels added in order (as
    // NumPy's mean(axis=1, dtype=float32) over a few channels).
    run_abs_diff(exec_, x, rec, n * c_ * plane, diff_.data<float>());
    run_channel_mean(exec_, diff_.data<float>(), n, c_, plane, grid_.data<float>() + first * plane);
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    run_resize_blur(exec_, grid_.data<float>() + i * h_ * w_, 1, h_, w_, h, w, sigma_, out, map_scratch_);
  }

 private:
  Exec exec_;
  std::vector<std::string> networks_;
  std::string input_, recon_;
  int64_t c_ = 0, h_ = 0, w_ = 0;
  SsimParams params_;
  double sigma_ = 0.0;
  ExecBuffer mean_, diff_, grid_, ssim_scratch_, map_scratch_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("ssim", SsimPost);

}  // namespace edge
