#include "edge_sdk/runtime/runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/heatmap_math.hpp"
#include "edge_sdk/kernels/preprocess.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "device_cycle.hpp"
#include "postprocess.hpp"

namespace edge {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Accept: return "accept";
    case Verdict::Reject: return "reject";
    case Verdict::Review: return "review";
  }
  return "review";
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// 64-byte aligned float buffer, sized once.
class Floats {
 public:
  void allocate(size_t n) {
    ptr_.reset(static_cast<float*>(::operator new(std::max<size_t>(n, 1) * sizeof(float), std::align_val_t(64))));
    size_ = n;
    std::fill(ptr_.get(), ptr_.get() + n, 0.0f);
  }
  float* data() { return ptr_.get(); }
  const float* data() const { return ptr_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  std::unique_ptr<float, Free> ptr_;
  size_t size_ = 0;
};

// A piece of work for the network: a whole image, or one region of a frame.
struct Unit {
  int64_t image = 0;
  int64_t region = -1;
  int64_t x = 0, y = 0, height = 0, width = 0;  // crop within the image (whole image without regions)
  float score = kNaN;
  std::string error;
};

class RuntimeImpl final : public Runtime {
 public:
  RuntimeImpl(std::shared_ptr<const Bundle> bundle, const RuntimeOptions& options)
      : shared_bundle_(std::move(bundle)), bundle_(*shared_bundle_), opt_(options) {
    if (opt_.max_batch < 1 || opt_.max_batch > 4096)
      throw ArgumentError("max_batch: expected 1..4096, got " + std::to_string(opt_.max_batch));
    if (opt_.threads < 0) throw ArgumentError("threads: expected >= 0 (0 = all cores), got " + std::to_string(opt_.threads));
    if (opt_.warmup < 0) throw ArgumentError("warmup: expected >= 0, got " + std::to_string(opt_.warmup));
    const Device device = parse_device(opt_.device, "device");
    BackendOptions bo;
    bo.backend = opt_.backend;
    bo.provider = opt_.provider.empty() ? (device.is_cuda() ? "cuda" : "cpu") : opt_.provider;
    bo.device_index = device.index;
    bo.cuda_device = device.is_cuda();
    bo.threads = opt_.threads;
    bo.library = opt_.onnxruntime_library;
    bo.precision = opt_.precision;
    bo.trt_cache_dir = opt_.trt_cache_dir;
    bo.engines_dir = opt_.engines_dir;

    const std::string& path = bundle_.path;
    const Manifest& m = bundle_.manifest;
    pool_ = std::make_unique<ThreadPool>(opt_.threads > 0 ? opt_.threads : get_num_threads());
    max_batch_ = opt_.max_batch;
    post_ = make_postprocessor(bundle_, max_batch_, *pool_);

    const InputSpec& in = m.input;
    pre_.out_h = in.height;
    pre_.out_w = in.width;
    pre_.channels = static_cast<int>(in.channels);
    pre_.scale = static_cast<float>(in.scale);
    pre_.antialias = in.antialias;
    for (int c = 0; c < pre_.channels; ++c) {
      pre_.mean[c] = in.mean[static_cast<size_t>(c)];
      pre_.std[c] = in.std[static_cast<size_t>(c)];
    }
    in_plane_ = in.channels * in.height * in.width;
    input_.allocate(static_cast<size_t>(max_batch_ * in_plane_));
    const std::vector<int64_t> image_shape{-1, in.channels, in.height, in.width};

    // The networks the post-processing needs, in order. An input that no earlier network
    // produces is the preprocessed image; the others are bound to the producer's buffer.
    for (const std::string& name : post_->networks()) {
      const NetworkSpec* net = m.network(name, opt_.precision);
      if (!net) {
        std::string have;
        for (const auto& p : m.precisions()) have += (have.empty() ? "" : ", ") + p;
        throw ArgumentError("precision: the bundle has no \"" + opt_.precision + "\" variant of network \"" + name +
                            "\" (it has: " + have + "; a variant that failed the accuracy gate is absent)");
      }
      std::vector<const float*> ins;
      for (const auto& t : net->inputs) {
        auto it = tensors_.find(t.name);
        if (it != tensors_.end() && it->second.data != input_.data()) {
          ins.push_back(it->second.data);
          continue;
        }
        if (t.shape != image_shape)
          throw BundleError(path + "/manifest.json: networks \"" + name + "\" input \"" + t.name +
                            "\" is neither the preprocessed image (shape [-1, " + std::to_string(in.channels) + ", " +
                            std::to_string(in.height) + ", " + std::to_string(in.width) +
                            "]) nor an output of an earlier network");
        tensors_[t.name] = TensorRef{input_.data(), in_plane_};
        ins.push_back(input_.data());
      }
      std::vector<float*> outs;
      for (const auto& o : net->outputs) {
        int64_t per = 1;
        for (size_t k = 1; k < o.shape.size(); ++k) per *= o.shape[k];
        outputs_.emplace_back();
        outputs_.back().allocate(static_cast<size_t>(max_batch_ * per));
        outs.push_back(outputs_.back().data());
        if (tensors_.count(o.name))
          throw BundleError(path + "/manifest.json: tensor name \"" + o.name + "\" is produced twice");
        tensors_[o.name] = TensorRef{outputs_.back().data(), per};
      }
      backends_.push_back(make_backend(bundle_, *net, bo));
      backends_.back()->bind(max_batch_, ins, outs);
    }

    // TensorRT backend: the whole cycle on the GPU for chunks of same-size uint8 images.
    if (m.regions.empty()) device_ = make_device_cycle(bundle_, opt_, backends_, max_batch_);
    device_views_.reserve(static_cast<size_t>(max_batch_));

    regions_ = m.regions;
    frame_w_ = m.frame_width;
    frame_h_ = m.frame_height;
    int64_t crop = 0;
    for (const auto& r : regions_) crop = std::max(crop, r.width * r.height);
    crop_.resize(static_cast<size_t>(crop * 3 * 4));  // largest region, 3 channels, float32
    units_.reserve(static_cast<size_t>(max_batch_));

    for (int i = 0; i < opt_.warmup; ++i) warm_up();
  }

  const Manifest& manifest() const override { return bundle_.manifest; }
  const RuntimeOptions& options() const override { return opt_; }
  std::string backend_description() const override {
    return backends_.front()->description() + (device_ ? ", whole cycle on the device" : "");
  }
  void cancel() noexcept override {
    for (auto& b : backends_) b->cancel();
  }
  std::vector<std::string> region_names() const override {
    std::vector<std::string> out;
    for (const auto& r : regions_) out.push_back(r.name);
    return out;
  }

  void predict(const ImageView* images, int64_t n, Results& out) override {
    if (n < 0) throw ArgumentError("n: expected >= 0, got " + std::to_string(n));
    if (n > 0 && !images) throw ArgumentError("images: null pointer for " + std::to_string(n) + " image(s)");
    std::lock_guard<std::mutex> lock(mutex_);
    const auto t_start = Clock::now();
    out.times = StageTimes{};
    out.judged = 0;
    const int64_t nr = static_cast<int64_t>(regions_.size());
    out.images.resize(static_cast<size_t>(n));
    out.regions.resize(static_cast<size_t>(n * nr));
    for (auto& r : out.regions) r = RegionResult{kNaN, kNaN, Verdict::Review};

    // Check every image and lay out the heatmaps (one per valid image, at its own size).
    int64_t heat_total = 0;
    for (int64_t i = 0; i < n; ++i) {
      ImageResult& r = out.images[static_cast<size_t>(i)];
      r.score = kNaN;
      r.normalized = kNaN;
      r.verdict = Verdict::Review;
      r.error.clear();
      check_image(images[i], i, r.error);
      r.invalid_input = !r.error.empty();
      r.failed = false;
      r.heatmap_offset = heat_total;
      r.heatmap_height = r.heatmap_width = 0;
      if (r.error.empty() && opt_.heatmaps) {
        r.heatmap_height = images[i].height;
        r.heatmap_width = images[i].width;
        heat_total += images[i].height * images[i].width;
      }
    }
    out.heatmaps.resize(static_cast<size_t>(heat_total));
    if (nr > 0) std::fill(out.heatmaps.begin(), out.heatmaps.end(), 0.0f);

    // Units in chunks of max_batch.
    int64_t next_image = 0, next_region = 0;
    for (;;) {
      units_.clear();
      while (static_cast<int64_t>(units_.size()) < max_batch_ && next_image < n) {
        const ImageResult& r = out.images[static_cast<size_t>(next_image)];
        if (!r.error.empty()) {
          ++next_image;
          continue;
        }
        Unit u;
        u.image = next_image;
        if (nr == 0) {
          u.height = images[next_image].height;
          u.width = images[next_image].width;
          ++next_image;
        } else {
          const RegionSpec& reg = regions_[static_cast<size_t>(next_region)];
          u.region = next_region;
          u.x = reg.x;
          u.y = reg.y;
          u.height = reg.height;
          u.width = reg.width;
          if (++next_region == nr) {
            next_region = 0;
            ++next_image;
          }
        }
        units_.push_back(std::move(u));
      }
      if (units_.empty()) break;
      run_chunk(images, out);
      record_chunk(out);
    }

    const auto t_decide = Clock::now();
    decide(out);
    out.times.decision += ms_since(t_decide);
    out.times.total = ms_since(t_start);
  }

 private:
  void check_image(const ImageView& im, int64_t i, std::string& err) const {
    const InputSpec& in = bundle_.manifest.input;
    // Built only on the error path (no allocation for good images).
    auto who = [i] { return "image " + std::to_string(i) + ": "; };
    if (!im.data) {
      err = who() + "no data (null pointer)";
      return;
    }
    if (im.dtype != DType::U8 && im.dtype != DType::F32) {
      err = who() + "dtype " + dtype_name(im.dtype) + " is not supported (uint8 or float32)";
      return;
    }
    if (!in.accepts(dtype_name(im.dtype))) {
      std::string list;
      for (const auto& d : in.dtypes) list += (list.empty() ? "" : ", ") + d;
      err = who() + "dtype " + dtype_name(im.dtype) + " is not accepted by this bundle (input.dtypes: " + list + ")";
      return;
    }
    if (im.height < 1 || im.width < 1 || im.height > (1 << 15) || im.width > (1 << 15)) {
      err = who() + "size " + std::to_string(im.height) + "x" + std::to_string(im.width) + " outside 1..32768";
      return;
    }
    if (im.channels != 1 && im.channels != 3) {
      err = who() + std::to_string(im.channels) + " channels; expected 1 (gray) or 3 (RGB), HWC layout";
      return;
    }
    if (in.channels == 1 && im.channels != 1) {
      err = who() + "3 channels, but the model takes single-channel (GRAY) images (input.channels = 1; convert "
                  "to gray the way the training images were)";
      return;
    }
    if (!regions_.empty()) {
      if (im.height != frame_h_ || im.width != frame_w_)
        err = who() + "frame of " + std::to_string(im.height) + "x" + std::to_string(im.width) +
              " (height x width), the bundle's regions are laid out on " + std::to_string(frame_h_) + "x" +
              std::to_string(frame_w_) + " frames (frame)";
      return;
    }
    if (in.on_size_mismatch == "reject" && (im.height != in.height || im.width != in.width))
      err = who() + "size " + std::to_string(im.height) + "x" + std::to_string(im.width) + " differs from the input size " +
            std::to_string(in.height) + "x" + std::to_string(in.width) + " and input.on_size_mismatch is \"reject\"";
  }

  // Preprocesses unit k into slot k of the input buffer.
  void preprocess_unit(const ImageView& im, const Unit& u, float* dst) {
    const void* src = im.data;
    if (u.region >= 0) {
      // Copy the region to a contiguous patch, as the training code cut it (numpy slicing).
      const size_t px = im.dtype == DType::U8 ? 1 : 4;
      const size_t row = static_cast<size_t>(u.width * im.channels) * px;
      const uint8_t* base = static_cast<const uint8_t*>(im.data);
      for (int64_t y = 0; y < u.height; ++y)
        std::memcpy(crop_.data() + static_cast<size_t>(y) * row,
                    base + (static_cast<size_t>((u.y + y) * im.width + u.x) * im.channels) * px, row);
      src = crop_.data();
    }
    if (im.dtype == DType::U8)
      preprocess_cpu(static_cast<const uint8_t*>(src), 1, u.height, u.width, im.channels, pre_, dst, *pool_);
    else
      preprocess_cpu(static_cast<const float*>(src), 1, u.height, u.width, im.channels, pre_, dst, *pool_);
  }

  // The device cycle (device_cycle.hpp) takes the chunk when it can: scores and maps straight
  // into the units and the heatmaps (whole images of one size are laid out one after the other).
  bool run_on_device(const ImageView* images, Results& out) {
    if (!device_) return false;
    const int64_t nb = static_cast<int64_t>(units_.size());
    device_views_.clear();
    for (const Unit& u : units_) device_views_.push_back(images[u.image]);
    if (unit_scores_.size() < static_cast<size_t>(nb)) unit_scores_.resize(static_cast<size_t>(max_batch_));
    float* maps = opt_.heatmaps ? out.heatmaps.data() + out.images[static_cast<size_t>(units_[0].image)].heatmap_offset : nullptr;
    bool ran = false;
    try {
      ran = device_->run(device_views_.data(), nb, unit_scores_.data(), maps, out.times);
    } catch (const std::exception& e) {
      for (Unit& u : units_) u.error = std::string("device pipeline failed: ") + e.what();
      return true;
    }
    if (ran)
      for (int64_t k = 0; k < nb; ++k) units_[static_cast<size_t>(k)].score = unit_scores_[static_cast<size_t>(k)];
    return ran;
  }

  void run_chunk(const ImageView* images, Results& out) {
    if (run_on_device(images, out)) return;
    const int64_t nb = static_cast<int64_t>(units_.size());
    auto t = Clock::now();
    for (int64_t k = 0; k < nb; ++k) {
      Unit& u = units_[static_cast<size_t>(k)];
      try {
        preprocess_unit(images[u.image], u, input_.data() + k * in_plane_);
      } catch (const std::exception& e) {
        u.error = std::string("preprocessing failed: ") + e.what();
        std::fill(input_.data() + k * in_plane_, input_.data() + (k + 1) * in_plane_, 0.0f);
      }
    }
    out.times.preprocess += ms_since(t);

    t = Clock::now();
    for (auto& backend : backends_) {
      try {
        backend->run(nb);
      } catch (const std::exception& e) {
        out.times.network += ms_since(t);
        for (auto& u : units_)
          if (u.error.empty()) u.error = std::string("network failed: ") + e.what();
        return;
      }
    }
    out.times.network += ms_since(t);

    t = Clock::now();
    if (unit_scores_.size() < static_cast<size_t>(nb)) unit_scores_.resize(static_cast<size_t>(max_batch_));
    bool batch_ok = true;
    try {
      post_->scores(0, nb, tensors_, unit_scores_.data());
    } catch (const std::exception&) {
      batch_ok = false;
    }
    if (batch_ok) {
      for (int64_t k = 0; k < nb; ++k) units_[static_cast<size_t>(k)].score = unit_scores_[static_cast<size_t>(k)];
      const auto t_maps = Clock::now();
      maps(0, nb, out);
      out.times.maps += ms_since(t_maps);
    } else {
      // Find which units the kernels refuse (e.g. non-finite features) and judge the others.
      for (int64_t k = 0; k < nb; ++k) {
        Unit& u = units_[static_cast<size_t>(k)];
        if (!u.error.empty()) continue;
        try {
          post_->scores(k, 1, tensors_, unit_scores_.data() + k);
          u.score = unit_scores_[static_cast<size_t>(k)];
          maps(k, k + 1, out);
        } catch (const std::exception& e) {
          u.error = std::string("post-processing failed: ") + e.what();
        }
      }
    }
    out.times.postprocess += ms_since(t);
  }

  // Heatmaps (and map-based scores) of units [k0, k1) of the current batch.
  void maps(int64_t k0, int64_t k1, Results& out) {
    if (!opt_.heatmaps && !post_->score_from_map()) return;
    for (int64_t k = k0; k < k1; ++k) map_unit(k, out);
  }

  void map_unit(int64_t k, Results& out) {
    Unit& u = units_[static_cast<size_t>(k)];
    if (!u.error.empty()) return;
    const ImageResult& r = out.images[static_cast<size_t>(u.image)];
    const int64_t area = u.height * u.width;
    float* dst;
    const bool direct = opt_.heatmaps && u.region < 0;
    if (direct) {
      dst = out.heatmaps.data() + r.heatmap_offset;
    } else {
      if (map_.size() < static_cast<size_t>(area)) map_.resize(static_cast<size_t>(area));
      dst = map_.data();
    }
    post_->map(k, u.height, u.width, dst);
    if (post_->score_from_map()) u.score = map_max(dst, area);
    if (opt_.heatmaps && u.region >= 0) {
      // Paste the region's map into the frame's heatmap (overlaps keep the larger value).
      float* frame = out.heatmaps.data() + r.heatmap_offset;
      for (int64_t y = 0; y < u.height; ++y) {
        float* row = frame + (u.y + y) * r.heatmap_width + u.x;
        const float* src = dst + y * u.width;
        for (int64_t x = 0; x < u.width; ++x) row[x] = std::max(row[x], src[x]);
      }
    }
  }

  // Max of a map, NaN when it holds one. Sixteen independent running maxima: the compiler
  // vectorizes them (one serial max over 65536 pixels costs as much as the map itself).
  static float map_max(const float* p, int64_t n) {
    constexpr int kLanes = 16;
    float lane[kLanes];
    int nan[kLanes] = {};
    for (int j = 0; j < kLanes; ++j) lane[j] = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const float v = p[i + j];
        nan[j] |= v != v;
        lane[j] = v > lane[j] ? v : lane[j];
      }
    float mx = -std::numeric_limits<float>::infinity();
    int any_nan = 0;
    for (; i < n; ++i) {
      any_nan |= p[i] != p[i];
      mx = p[i] > mx ? p[i] : mx;
    }
    for (int j = 0; j < kLanes; ++j) {
      any_nan |= nan[j];
      mx = lane[j] > mx ? lane[j] : mx;
    }
    return any_nan ? kNaN : mx;
  }

  void record_chunk(Results& out) {
    const int64_t nr = static_cast<int64_t>(regions_.size());
    for (const Unit& u : units_) {
      ImageResult& r = out.images[static_cast<size_t>(u.image)];
      if (u.region < 0) {
        r.score = u.error.empty() ? u.score : kNaN;
        if (!u.error.empty()) r.error = u.error, r.failed = true;
      } else {
        out.regions[static_cast<size_t>(u.image * nr + u.region)].score = u.error.empty() ? u.score : kNaN;
        if (!u.error.empty()) r.failed = true;
        if (!u.error.empty())
          r.error += (r.error.empty() ? "" : "; ") + std::string("region ") + regions_[static_cast<size_t>(u.region)].name +
                     ": " + u.error;
      }
    }
  }

  // score -> (normalized, verdict): reject when score >= threshold; review when the score is not
  // finite or falls inside the review band around the threshold.
  void judge(float score, double threshold, float& normalized, Verdict& verdict) const {
    const CalibrationSpec& c = bundle_.manifest.calibration;
    if (!std::isfinite(score)) {
      normalized = kNaN;
      verdict = Verdict::Review;
      return;
    }
    normalized = calibrated_value(score, static_cast<float>(threshold), static_cast<float>(c.max - c.min));
    const double band = opt_.review_band >= 0 ? opt_.review_band : bundle_.manifest.decision.review_band;
    if (band > 0 && std::fabs(static_cast<double>(normalized) - 0.5) < band)
      verdict = Verdict::Review;
    else
      verdict = static_cast<double>(score) >= threshold ? Verdict::Reject : Verdict::Accept;
  }

  void decide(Results& out) const {
    const int64_t n = static_cast<int64_t>(out.images.size());
    const int64_t nr = static_cast<int64_t>(regions_.size());
    for (int64_t i = 0; i < n; ++i) {
      ImageResult& r = out.images[static_cast<size_t>(i)];
      if (nr == 0) {
        if (!r.error.empty()) {
          r.score = r.normalized = kNaN;
          r.verdict = Verdict::Review;
          continue;
        }
        judge(r.score, bundle_.manifest.calibration.threshold, r.normalized, r.verdict);
        if (!std::isfinite(r.score)) r.error = "non-finite score";
        else ++out.judged;
        continue;
      }
      // A frame: each region judged with its own threshold; one rejected region rejects the
      // product; otherwise one region that could not be judged makes it "review".
      bool any_reject = false, any_review = false, all_finite = true;
      float best_norm = -1.0f, best_score = kNaN;
      for (int64_t k = 0; k < nr; ++k) {
        RegionResult& rr = out.regions[static_cast<size_t>(i * nr + k)];
        judge(rr.score, regions_[static_cast<size_t>(k)].threshold, rr.normalized, rr.verdict);
        if (!std::isfinite(rr.score)) all_finite = false;
        any_reject |= rr.verdict == Verdict::Reject;
        any_review |= rr.verdict == Verdict::Review;
        if (std::isfinite(rr.normalized) && rr.normalized > best_norm) {
          best_norm = rr.normalized;
          best_score = rr.score;
        }
      }
      r.score = best_score;
      r.normalized = best_norm >= 0 ? best_norm : kNaN;
      r.verdict = any_reject ? Verdict::Reject : (any_review ? Verdict::Review : Verdict::Accept);
      if (!all_finite && r.error.empty()) r.error = "non-finite region score";
      if (all_finite && r.error.empty()) ++out.judged;
    }
  }

  void warm_up() {
    const InputSpec& in = bundle_.manifest.input;
    const int64_t h = regions_.empty() ? in.height : frame_h_, w = regions_.empty() ? in.width : frame_w_;
    const int64_t c = in.channels;
    std::vector<uint8_t> img(static_cast<size_t>(h * w * c), 128);
    ImageView v;
    v.data = img.data();
    v.dtype = DType::U8;
    v.height = h;
    v.width = w;
    v.channels = c;
    if (!in.accepts("uint8")) {
      warm_f32_.assign(static_cast<size_t>(h * w * c), 128.0f);
      v.data = warm_f32_.data();
      v.dtype = DType::F32;
    }
    Results r;
    predict(&v, 1, r);
  }

  std::shared_ptr<const Bundle> shared_bundle_;  // read-only, shared by the runtimes opened from it
  const Bundle& bundle_;
  RuntimeOptions opt_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<PostProcessor> post_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<DeviceCycle> device_;  // nullptr: host path only
  std::vector<ImageView> device_views_;
  TensorMap tensors_;
  PreprocessParams pre_;
  int64_t max_batch_ = 1, in_plane_ = 0;
  Floats input_;
  std::vector<Floats> outputs_;
  std::vector<float> unit_scores_, map_, warm_f32_;
  std::vector<uint8_t> crop_;
  std::vector<Unit> units_;
  std::vector<RegionSpec> regions_;
  int64_t frame_w_ = 0, frame_h_ = 0;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Runtime> Runtime::open(const std::string& bundle_path, const RuntimeOptions& options) {
  return open(std::make_shared<const Bundle>(load_bundle(bundle_path)), options);
}

std::unique_ptr<Runtime> Runtime::open(std::shared_ptr<const Bundle> bundle, const RuntimeOptions& options) {
  if (!bundle) throw ArgumentError("bundle: null");
  return std::make_unique<RuntimeImpl>(std::move(bundle), options);
}

}  // namespace edge
