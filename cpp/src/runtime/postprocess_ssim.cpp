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
  SsimPost(const Bundle& b, int64_t max_batch, ThreadPool& pool) : pool_(pool) {
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
    mean_.resize(static_cast<size_t>(max_batch));
    diff_.resize(static_cast<size_t>(c_ * h_ * w_));
    grid_.resize(static_cast<size_t>(max_batch * h_ * w_));
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return false; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    const TensorRef& x = t.at(input_);
    const TensorRef& rec = t.at(recon_);
    ssim_cpu(x.item(first), rec.item(first), n, c_, h_, w_, params_, mean_.data(), nullptr, pool_);
    const int64_t plane = h_ * w_;
    for (int64_t k = 0; k < n; ++k) {
      scores[k] = 1.0f - mean_[static_cast<size_t>(k)];
      // The map's source: channel mean of |X - X^| in float32, channels added in order (as
      // NumPy's mean(axis=1, dtype=float32) over a few channels).
      abs_diff_cpu(x.item(first + k), rec.item(first + k), c_ * plane, diff_.data(), pool_);
      float* g = grid_.data() + (first + k) * plane;
      const float* d = diff_.data();
      for (int64_t p = 0; p < plane; ++p) g[p] = d[p];
      for (int64_t ch = 1; ch < c_; ++ch)
        for (int64_t p = 0; p < plane; ++p) g[p] += d[ch * plane + p];
      if (c_ > 1) {
        const float inv = static_cast<float>(c_);
        for (int64_t p = 0; p < plane; ++p) g[p] /= inv;
      }
    }
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    grid_to_map(grid_.data() + i * h_ * w_, h_, w_, h, w, sigma_, out, pool_);
  }

 private:
  ThreadPool& pool_;
  std::vector<std::string> networks_;
  std::string input_, recon_;
  int64_t c_ = 0, h_ = 0, w_ = 0;
  SsimParams params_;
  double sigma_ = 0.0;
  std::vector<float> mean_, diff_, grid_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("ssim", SsimPost);

}  // namespace edge
