// postprocess.kind "classifier": supervised defect classifiers (edge_sdk/models/classifier.py). One
// network maps the preprocessed image X to
//   probabilities (-1, K)   softmax of the class logits
//   score (-1, 1)           1 - probabilities[good_class]   (the image score: AUROC, display)
//   cam (-1, h, w)          class activation map of the most probable defect class, in [0, 1]
// map = cam resized (bilinear) to the unit's size, then Gaussian blur (blur_sigma > 0).
// Verdict: the classifier's own rule on the probabilities (decision_math.hpp classify_verdict) with
// accept_threshold on P(good) and reject_threshold on the top defect class, not score >= threshold.
#include <cmath>
#include <set>

#include "post_common.hpp"
#include "postprocess_registry.hpp"

namespace edge {
namespace {

constexpr int64_t kMaxClasses = 256;

class ClassifierPost final : public PostProcessor {
 public:
  ClassifierPost(const Bundle& b, int64_t max_batch, const Exec& exec) : exec_(exec), map_scratch_(exec) {
    (void)max_batch;
    const Manifest& m = b.manifest;
    Fields pp(m.postprocess, b.path + "/manifest.json", "postprocess");
    // A classifier judges whole images: a frame cut into regions has no rule for K classes a region.
    if (!m.regions.empty()) pp.fail("kind", "a classifier bundle cannot have regions (regions[] is not empty)");
    const std::string net_name = pp.str("network");
    const NetworkSpec& net = require_network(m, pp, "network", net_name);
    networks_ = {net_name};

    const json::Value::Array& classes = pp.array("classes");
    k_ = static_cast<int64_t>(classes.size());
    if (k_ < 2 || k_ > kMaxClasses)
      pp.fail("classes", "expected 2.." + std::to_string(kMaxClasses) + " classes, got " + std::to_string(k_));
    std::set<std::string> names;
    for (int64_t c = 0; c < k_; ++c) {
      Fields entry(classes[static_cast<size_t>(c)], pp.source(), pp.field("classes") + "[" + std::to_string(c) + "]");
      // Ids are the positions: the network's output columns, the C ABI's class indices.
      entry.integer("id", c, c);
      const std::string name = entry.str("name");
      if (name.empty() || name.size() > 256) entry.fail("name", "expected a name of 1 to 256 bytes");
      if (!names.insert(name).second) entry.fail("name", "\"" + name + "\" names two classes");
      names_.push_back(name);
    }
    rule_.good = pp.integer("good_class", 0, k_ - 1);
    rule_.accept = threshold_field(pp, "accept_threshold");
    rule_.reject = threshold_field(pp, "reject_threshold");

    probs_name_ = pp.str("probabilities_output");
    score_name_ = pp.str("score_output");
    cam_name_ = pp.str("cam_output");
    const std::vector<int64_t> grid = pp.integers("grid");
    if (grid.size() != 2 || grid[0] < 1 || grid[1] < 1 || grid[0] > 4096 || grid[1] > 4096)
      pp.fail("grid", "expected [h, w] with 1 <= h, w <= 4096");
    gh_ = grid[0];
    gw_ = grid[1];
    expect_shape(pp, net, "probabilities_output", probs_name_, {-1, k_});
    expect_shape(pp, net, "score_output", score_name_, {-1, 1});
    expect_shape(pp, net, "cam_output", cam_name_, {-1, gh_, gw_});
    pp.one_of("image_score", {"one_minus_p_good"});
    pp.one_of("map", {"cam_top_defect"});
    pp.one_of("map_upsample", {"bilinear"});
    pp.one_of("map_size", {"input"});
    sigma_ = blur_sigma_field(pp, "blur_sigma");
  }

  const std::vector<std::string>& networks() const override { return networks_; }
  bool score_from_map() const override { return false; }
  int64_t class_count() const override { return k_; }
  ClassRule class_rule() const override { return rule_; }
  std::vector<std::string> class_names() const override { return names_; }

  void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) override {
    probs_ = t.at(probs_name_);
    cam_ = t.at(cam_name_);
    exec_copy(exec_, scores, t.at(score_name_).item(first), static_cast<size_t>(n) * sizeof(float), "score copy");
  }

  void class_probabilities(int64_t first, int64_t n, float* out) override {
    exec_copy(exec_, out, probs_.item(first), static_cast<size_t>(n * k_) * sizeof(float), "class probabilities download");
  }

  void map(int64_t i, int64_t h, int64_t w, float* out) override {
    run_resize_blur(exec_, cam_.item(i), 1, gh_, gw_, h, w, sigma_, out, map_scratch_);
  }

 private:
  static double threshold_field(const Fields& pp, const std::string& key) {
    const double t = pp.number(key);
    if (!(t > 0.0 && t <= 1.0)) pp.fail(key, "expected a probability in (0, 1]");
    return t;
  }

  static void expect_shape(const Fields& pp, const NetworkSpec& net, const std::string& field, const std::string& name,
                           const std::vector<int64_t>& shape) {
    const TensorSpec& out = require_output(net, pp, field, name);
    if (out.shape != shape)
      pp.fail(field, "output \"" + name + "\" must have shape " + shape_text(shape) + ", has " + shape_text(out.shape));
  }

  Exec exec_;
  std::vector<std::string> networks_;
  std::string probs_name_, score_name_, cam_name_;
  std::vector<std::string> names_;  // by class id
  int64_t k_ = 0, gh_ = 0, gw_ = 0;
  ClassRule rule_;
  double sigma_ = 0.0;
  // The current batch's network outputs (bound once by the runtime; valid until its next run).
  TensorRef probs_, cam_;
  ExecBuffer map_scratch_;
};

}  // namespace

EDGE_REGISTER_POSTPROCESS("classifier", ClassifierPost);

}  // namespace edge
