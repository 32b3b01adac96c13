// postprocess.kind "ssim": reconstruction models (ResGANAD). The network reconstructs its
// preprocessed input X as X^.
//   score = 1 - SSIM(X, X^)  (kernels ssim: Gaussian window, "valid" map, mean over map then channels)
//   map   = channel mean of |X - X^| -> bilinear resize to the unit's size -> Gaussian blur (sigma > 0)
#include <cmath>

#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/ssim.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "postprocess.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

class SsimPost final : public PostProcessor {
 public:
  SsimPost(const Bundle& b, int64_t max_batch, ThreadPool& pool) : pool_(pool) {
    const Manifest& m = b.manifest;
    const std::string src = b.path + "/manifest.json";
    Fields pp(m.postprocess, src, "postprocess");
    network_ = pp.str("network");
    const NetworkSpec* net = m.network(network_, "fp32");
    if (!net) pp.fail("network", "no network named \"" + network_ + "\" in networks");
    const std::string out_name = pp.str("reconstruction_output");
    const TensorSpec* out = net->find_output(out_name);
    if (!out) pp.fail("reconstruction_output", "network \"" + network_ + "\" has no output \"" + out_name + "\"");
    for (size_t i = 0; i < net->outputs.size(); ++i)
      if (net->outputs[i].name == out_name) out_index_ = i;
    c_ = m.input.channels;
    h_ = m.input.height;
    w_ = m.input.width;
    if (out->shape != std::vector<int64_t>{-1, c_, h_, w_})
      pp.fail("reconstruction_output", "output \"" + out_name + "\" must have the input's shape [-1, " +
                                           std::to_string(c_) + ", " + std::to_string(h_) + ", " + std::to_string(w_) + "]");
    Fields s = pp.object("ssim");
    params_.window = static_cast<int>(s.integer("window", 1, 63));
    params_.sigma = static_cast<float>(s.positive("sigma"));
    params_.k1 = static_cast<float>(s.number("k1"));
    params_.k2 = static_cast<float>(s.number("k2"));
    params_.data_range = static_cast<float>(s.positive("data_range"));
    try {
      validate_ssim(params_, h_, w_);
    } catch (const ArgumentError& e) {
      pp.fail("ssim", e.what());
    }
    pp.one_of("image_score", {"one_minus_mean_ssim"});
    pp.one_of("map", {"abs_diff_channel_mean"});
    pp.one_of("map_upsample", {"bilinear"});
    pp.one_of("map_size", {"input"});
    sigma_ = pp.number("blur_sigma");
    if (!(sigma_ >= 0.0)) pp.fail("blur_sigma", "expected a number >= 0");
    if (sigma_ > 0) {
      try {
        gaussian_radius(sigma_);
      } catch (const ArgumentError& e) {
        pp.fail("blur_sigma", e.what());
      }
    }
    mean_.resize(static_cast<size_t>(max_batch));
    diff_.resize(static_cast<size_t>(max_batch * c_ * h_ * w_));
    grid_.resize(static_cast<size_t>(max_batch * h_ * w_));
  }

  const std::string& network() const override { return network_; }
  bool score_from_map() const override { return false; }

  void scores(int64_t n, const float* input, const std::vector<const float*>& outputs, float* scores) override {
    const float* rec = outputs[out_index_];
    ssim_cpu(input, rec, n, c_, h_, w_, params_, mean_.data(), nullptr, pool_);
    for (int64_t i = 0; i < n; ++i) scores[i] = 1.0f - mean_[static_cast<size_t>(i)];
    // The map's source: channel mean of |X - X^| in float32, channels added in order (as NumPy's
    // mean(axis=1, dtype=float32) over a few channels).
    const int64_t plane = h_ * w_;
    abs_diff_cpu(input, rec, n * c_ * plane, diff_.data(), pool_);
    for (int64_t i = 0; i < n; ++i) {
      float* g = grid_.data() + i * plane;
      const float* d = diff_.data() + i * c_ * plane;
      for (int64_t p = 0; p < plane; ++p) g[p] = d[p];
      for (int64_t ch = 1; ch < c_; ++ch)
        for (int64_t p = 0; p < plane; ++p) g[p] += d[ch * plane + p];
      const float inv = static_cast<float>(c_);
      if (c_ > 1)
        for (int64_t p = 0; p < plane; ++p) g[p] /= inv;
    }
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    const float* g = grid_.data() + i * h_ * w_;
    if (sigma_ > 0) {
      if (tmp_.size() < static_cast<size_t>(h * w)) tmp_.resize(static_cast<size_t>(h * w));
      resize_bilinear_cpu(g, 1, h_, w_, h, w, tmp_.data(), pool_);
      gaussian_blur_cpu(tmp_.data(), 1, h, w, sigma_, out, pool_);
    } else {
      resize_bilinear_cpu(g, 1, h_, w_, h, w, out, pool_);
    }
  }

 private:
  ThreadPool& pool_;
  std::string network_;
  size_t out_index_ = 0;
  int64_t c_ = 0, h_ = 0, w_ = 0;
  SsimParams params_;
  double sigma_ = 0.0;
  std::vector<float> mean_, diff_, grid_, tmp_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("ssim", SsimPost);

}  // namespace edge
