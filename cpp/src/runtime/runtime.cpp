#include "edge_sdk/runtime/runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>

#include "edge_sdk/cuda_memory.hpp"
#include "edge_sdk/devices.hpp"
#include "edge_sdk/kernels/preprocess.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "edge_sdk/runtime/tiling.hpp"
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
    check_thread_count(opt_.threads, "threads", /*zero_allowed=*/true);
    if (opt_.warmup < 0 || opt_.warmup > 100)  // a few calls reach steady state; more only delays the open
      throw ArgumentError("warmup: expected 0..100, got " + std::to_string(opt_.warmup));
    const Device device = parse_device(opt_.device, "device");
    BackendOptions bo;
    bo.backend = opt_.backend;
    bo.provider = opt_.provider.empty() ? (device.is_cuda() ? "cuda" : "cpu") : opt_.provider;
    bo.device_index = device.index;
    bo.cuda_device = device.is_cuda();
    bo.threads = opt_.threads;
    bo.max_batch = opt_.max_batch;
    bo.library = opt_.onnxruntime_library;
    bo.openvino_library = opt_.openvino_library;
    bo.openvino_device = opt_.openvino_device;
    bo.precision = opt_.precision;
    bo.trt_cache_dir = opt_.trt_cache_dir;
    bo.engines_dir = opt_.engines_dir;
    bo.cuda_graph = opt_.cuda_graph;

    const std::string& path = bundle_.path;
    const Manifest& m = bundle_.manifest;
    pool_ = std::make_unique<ThreadPool>(opt_.threads > 0 ? opt_.threads : get_num_threads());
    max_batch_ = opt_.max_batch;
    exec_.pool = pool_.get();
    exec_.bf16_tables = opt_.precision == "bf16";
    // The networks the post-processing needs, in order, with a backend each. When every backend
    // can work on device memory (TensorRT), the whole pipeline runs on the CUDA device: the
    // post-processing is made again for that device (made first on the CPU for its networks).
    post_ = make_postprocessor(bundle_, max_batch_, exec_);
    std::vector<const NetworkSpec*> nets;
    for (const std::string& name : post_->networks()) {
      const NetworkSpec* net = m.network(name, opt_.precision);
      if (!net) {
        std::string have;
        for (const auto& p : m.precisions()) have += (have.empty() ? "" : ", ") + p;
        throw ArgumentError("precision: the bundle has no \"" + opt_.precision + "\" variant of network \"" + name +
                            "\" (it has: " + have + "; a variant that failed the accuracy gate is absent)");
      }
      nets.push_back(net);
      backends_.push_back(make_backend(bundle_, *net, bo));
    }
    bool on_device = device.is_cuda() && !backends_.empty();
    for (const auto& b : backends_) on_device &= b->can_bind_device();
    if (on_device) {
      EDGE_CUDA_ONLY(cuda::set_device(device.index); stream_ = StreamHolder(cuda::create_stream("the pipeline's stream"));)
      exec_.device = device;
      exec_.stream = stream_.get();
      post_ = make_postprocessor(bundle_, max_batch_, exec_);
    }
    input_ = ExecBuffer(exec_);
    stage_ = ExecBuffer(exec_);
    scores_ = ExecBuffer(exec_);
    map_dev_ = ExecBuffer(exec_);
    map_score_ = ExecBuffer(exec_);
    scores_.get<float>(static_cast<size_t>(max_batch_), "unit scores");
    map_score_.get<float>(1, "map score");

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
    float* input = input_.get<float>(static_cast<size_t>(max_batch_ * in_plane_), "preprocessed images");
    zeros_.assign(static_cast<size_t>(in_plane_), 0.0f);
    const std::vector<int64_t> image_shape{-1, in.channels, in.height, in.width};

    // An input that no earlier network produces is the preprocessed image; the others are bound
    // to the producer's buffer.
    for (size_t b = 0; b < nets.size(); ++b) {
      const NetworkSpec& net = *nets[b];
      std::vector<const float*> ins;
      for (const auto& t : net.inputs) {
        auto it = tensors_.find(t.name);
        if (it != tensors_.end() && it->second.data != input) {
          ins.push_back(it->second.data);
          continue;
        }
        if (t.shape != image_shape)
          throw BundleError(path + "/manifest.json: networks \"" + net.name + "\" input \"" + t.name +
                            "\" is neither the preprocessed image (shape [-1, " + std::to_string(in.channels) + ", " +
                            std::to_string(in.height) + ", " + std::to_string(in.width) +
                            "]) nor an output of an earlier network");
        tensors_[t.name] = TensorRef{input, in_plane_};
        ins.push_back(input);
      }
      std::vector<float*> outs;
      for (const auto& o : net.outputs) {
        int64_t per = 1;
        for (size_t k = 1; k < o.shape.size(); ++k) per *= o.shape[k];
        outputs_.emplace_back(exec_);
        float* out = outputs_.back().get<float>(static_cast<size_t>(max_batch_ * per), "network output");
        outs.push_back(out);
        if (tensors_.count(o.name))
          throw BundleError(path + "/manifest.json: tensor name \"" + o.name + "\" is produced twice");
        tensors_[o.name] = TensorRef{out, per};
      }
      if (exec_.cuda())
        backends_[b]->bind_device(max_batch_, ins, outs);
      else
        backends_[b]->bind(max_batch_, ins, outs);
    }

    regions_ = m.regions;  // with input.tiling: the generated tiles
    frame_w_ = m.frame_width;
    frame_h_ = m.frame_height;
    tiling_ = m.tiling;
    if (tiling_.merge == TileMerge::Mean) {
      count_y_ = tile_cover_counts(frame_h_, tiling_.tile_h, tiling_.stride_y);
      count_x_ = tile_cover_counts(frame_w_, tiling_.tile_w, tiling_.stride_x);
    }
    int64_t crop = 0;
    for (const auto& r : regions_) crop = std::max(crop, r.width * r.height);
    crop_.resize(static_cast<size_t>(crop * 3 * 4));  // largest region, 3 channels, float32
    units_.reserve(static_cast<size_t>(max_batch_));
    unit_scores_.resize(static_cast<size_t>(max_batch_));
    class_count_ = post_->class_count();
    unit_probs_.resize(static_cast<size_t>(max_batch_ * class_count_));
    region_verdicts_.resize(regions_.size());
    groups_ = region_groups(regions_);
    group_scratch_.resize(regions_.size());
    region_scores_.resize(regions_.size());
    region_norms_.resize(regions_.size());

    for (int i = 0; i < opt_.warmup; ++i) warm_up();
  }

  const Manifest& manifest() const override { return bundle_.manifest; }
  const RuntimeOptions& options() const override { return opt_; }
  std::string backend_description() const override {
    return backends_.front()->description() +
           (exec_.cuda() ? ", whole cycle on cuda:" + std::to_string(exec_.device.index) : "");
  }
  void cancel() noexcept override {
    for (auto& b : backends_) b->cancel();
  }
  std::vector<std::string> class_names() const override { return post_->class_names(); }
  ClassRule class_rule() const override { return post_->class_rule(); }
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
    if (exec_.cuda()) {
      // The calling thread may not have selected the device yet (the C ABI's worker threads).
      EDGE_CUDA_ONLY(cuda::set_device(exec_.device.index);)
    }
    out.times = StageTimes{};
    out.judged = 0;
    const int64_t nr = static_cast<int64_t>(regions_.size());
    out.images.resize(static_cast<size_t>(n));
    out.regions.resize(static_cast<size_t>(n * nr));
    for (auto& r : out.regions) r = RegionResult{kNaN, kNaN, Verdict::Review};
    out.groups.resize(static_cast<size_t>(n) * groups_.names.size());
    for (auto& r : out.groups) r = RegionResult{kNaN, kNaN, Verdict::Review};
    out.class_count = class_count_;
    out.class_probabilities.assign(static_cast<size_t>(n * class_count_), kNaN);

    // Check every image and lay out the heatmaps (one per valid image, at its own size).
    int64_t heat_total = 0;
    for (int64_t i = 0; i < n; ++i) {
      ImageResult& r = out.images[static_cast<size_t>(i)];
      r.score = kNaN;
      r.normalized = kNaN;
      r.verdict = Verdict::Review;
      r.top_class = -1;
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
    // Regions: 0 outside them. Tiles: the mean's sums start at 0; the max starts at NaN (fmax keeps
    // the first tile's value, so negative maps stitch right, and a pixel no judged tile covered stays NaN).
    if (nr > 0) std::fill(out.heatmaps.begin(), out.heatmaps.end(), tiling_.merge == TileMerge::Max ? kNaN : 0.0f);

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

    if (tiling_.merge == TileMerge::Mean && opt_.heatmaps) {
      const auto t_maps = Clock::now();
      for (const ImageResult& r : out.images)
        if (r.heatmap_height > 0) finish_mean(out.heatmaps.data() + r.heatmap_offset, count_y_, count_x_);
      out.times.maps += ms_since(t_maps);
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
    if (im.color_order != ColorOrder::RGB && im.color_order != ColorOrder::BGR) {
      err = who() + "color_order " + std::to_string(static_cast<int>(im.color_order)) + ": expected RGB (0) or BGR (1)";
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

  // Preprocesses unit k into slot k of the input buffer (exec memory).
  void preprocess_unit(const ImageView& im, const Unit& u, float* dst) {
    const void* src = im.data;
    const size_t px = im.dtype == DType::U8 ? 1 : 4;
    if (u.region >= 0) {
      // Copy the region to a contiguous patch, as the training code cut it (numpy slicing).
      const size_t row = static_cast<size_t>(u.width * im.channels) * px;
      const uint8_t* base = static_cast<const uint8_t*>(im.data);
      for (int64_t y = 0; y < u.height; ++y)
        std::memcpy(crop_.data() + static_cast<size_t>(y) * row,
                    base + (static_cast<size_t>((u.y + y) * im.width + u.x) * im.channels) * px, row);
      src = crop_.data();
    }
    if (exec_.cuda()) {
      // The pixels go to the device once; the stream orders this copy after the previous unit's
      // preprocessing, which read the same staging buffer.
      const size_t bytes = static_cast<size_t>(u.height * u.width * im.channels) * px;
      void* staged = stage_.reserve(bytes, "image staging");
      exec_copy(exec_, staged, src, bytes, "image upload");
      src = staged;
    }
    PreprocessParams p = pre_;  // the bundle's, in the image's channel order
    p.color_order = im.color_order;
    if (im.dtype == DType::U8)
      run_preprocess(exec_, static_cast<const uint8_t*>(src), 1, u.height, u.width, im.channels, p, dst);
    else
      run_preprocess(exec_, static_cast<const float*>(src), 1, u.height, u.width, im.channels, p, dst);
  }

  // scores_ (exec memory) of units [k0, k0 + n) -> unit_scores_[k0, k0 + n), and their class
  // probabilities (classifier bundles) -> unit_probs_
  void fetch_scores(int64_t k0, int64_t n) {
    exec_copy(exec_, unit_scores_.data() + k0, scores_.data<float>() + k0, static_cast<size_t>(n) * sizeof(float),
              "scores download");
    if (class_count_ > 0) post_->class_probabilities(k0, n, unit_probs_.data() + k0 * class_count_);
    exec_sync(exec_, "post-processing");
  }

  void run_chunk(const ImageView* images, Results& out) {
    const int64_t nb = static_cast<int64_t>(units_.size());
    float* input = input_.data<float>();
    auto t = Clock::now();
    for (int64_t k = 0; k < nb; ++k) {
      Unit& u = units_[static_cast<size_t>(k)];
      try {
        preprocess_unit(images[u.image], u, input + k * in_plane_);
      } catch (const std::exception& e) {
        u.error = std::string("preprocessing failed: ") + e.what();
        exec_copy(exec_, input + k * in_plane_, zeros_.data(), zeros_.size() * sizeof(float), "input reset");
      }
    }
    try {
      exec_sync(exec_, "preprocessing");
    } catch (const std::exception& e) {
      for (auto& u : units_)
        if (u.error.empty()) u.error = std::string("preprocessing failed: ") + e.what();
      return;
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
    bool batch_ok = true;
    try {
      post_->scores(0, nb, tensors_, scores_.data<float>());
      fetch_scores(0, nb);
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
          post_->scores(k, 1, tensors_, scores_.data<float>() + k);
          fetch_scores(k, 1);
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
    // Host destination of the map: straight into the heatmap, or a scratch map for a region.
    const bool direct = opt_.heatmaps && u.region < 0;
    float* host = nullptr;
    if (direct) {
      host = out.heatmaps.data() + r.heatmap_offset;
    } else {
      if (map_.size() < static_cast<size_t>(area)) map_.resize(static_cast<size_t>(area));
      host = map_.data();
    }
    float* dst = exec_.cuda() ? map_dev_.get<float>(static_cast<size_t>(area), "map") : host;
    post_->map(k, u.height, u.width, dst);
    if (post_->score_from_map()) {
      run_row_max(exec_, dst, 1, area, map_score_.data<float>());
      exec_copy(exec_, &u.score, map_score_.data<float>(), sizeof(float), "map score download");
    }
    if (opt_.heatmaps) exec_copy(exec_, host, dst, static_cast<size_t>(area) * sizeof(float), "map download");
    exec_sync(exec_, "maps");
    if (opt_.heatmaps && u.region >= 0 && tiling_.enabled()) {
      // Stitch the tile's map into the frame's heatmap (input.tiling.merge; tiling.hpp).
      stitch_tile(out.heatmaps.data() + r.heatmap_offset, r.heatmap_width, host, u.x, u.y, u.height, u.width,
                  tiling_.merge);
    } else if (opt_.heatmaps && u.region >= 0) {
      // Paste the region's map into the frame's heatmap (overlaps keep the larger value).
      float* frame = out.heatmaps.data() + r.heatmap_offset;
      for (int64_t y = 0; y < u.height; ++y) {
        float* row = frame + (u.y + y) * r.heatmap_width + u.x;
        const float* src = host + y * u.width;
        for (int64_t x = 0; x < u.width; ++x) row[x] = std::max(row[x], src[x]);
      }
    }
  }

  void record_chunk(Results& out) {
    const int64_t nr = static_cast<int64_t>(regions_.size());
    for (const Unit& u : units_) {
      ImageResult& r = out.images[static_cast<size_t>(u.image)];
      if (u.region < 0) {
        r.score = u.error.empty() ? u.score : kNaN;
        if (!u.error.empty()) r.error = u.error, r.failed = true;
        if (class_count_ > 0 && u.error.empty()) {
          const size_t k = static_cast<size_t>(&u - units_.data());
          std::copy_n(unit_probs_.begin() + static_cast<std::ptrdiff_t>(k * class_count_), class_count_,
                      out.class_probabilities.begin() + static_cast<std::ptrdiff_t>(u.image * class_count_));
        }
      } else {
        out.regions[static_cast<size_t>(u.image * nr + u.region)].score = u.error.empty() ? u.score : kNaN;
        if (!u.error.empty()) r.failed = true;
        if (!u.error.empty())
          r.error += (r.error.empty() ? "" : "; ") + std::string("region ") + regions_[static_cast<size_t>(u.region)].name +
                     ": " + u.error;
      }
    }
  }

  // The decision rule (decision_math.hpp) with a region's or the image's raw-score threshold.
  DecisionRule rule(double threshold) const {
    const CalibrationSpec& c = bundle_.manifest.calibration;
    const double band = opt_.review_band >= 0 ? opt_.review_band : bundle_.manifest.decision.review_band;
    return DecisionRule{threshold, static_cast<float>(c.max - c.min), band};
  }

  void decide(Results& out) {
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
        if (class_count_ > 0) {
          decide_classes(out, i);
          continue;
        }
        r.verdict = decide_score(r.score, rule(bundle_.manifest.calibration.threshold), &r.normalized);
        if (!std::isfinite(r.score)) r.error = "non-finite score";
        else ++out.judged;
        continue;
      }
      // A frame: each region judged with its own threshold, then the product rule.
      bool all_finite = true;
      float best_norm = -1.0f, best_score = kNaN;
      for (int64_t k = 0; k < nr; ++k) {
        RegionResult& rr = out.regions[static_cast<size_t>(i * nr + k)];
        rr.verdict = decide_score(rr.score, rule(regions_[static_cast<size_t>(k)].threshold), &rr.normalized);
        region_verdicts_[static_cast<size_t>(k)] = rr.verdict;
        region_scores_[static_cast<size_t>(k)] = rr.score;
        region_norms_[static_cast<size_t>(k)] = rr.normalized;
        if (!std::isfinite(rr.score)) all_finite = false;
        if (std::isfinite(rr.normalized) && rr.normalized > best_norm) {
          best_norm = rr.normalized;
          best_score = rr.score;
        }
      }
      r.score = best_score;
      r.normalized = best_norm >= 0 ? best_norm : kNaN;
      if (tiling_.enabled()) {
        // A tiled frame is one unit: its score is the largest tile score (NaN when any tile's is not
        // finite), judged once with the bundle's rule. Every tile has the calibration threshold, so
        // this verdict equals the product rule over the tiles.
        float top = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < nr; ++k) {
          const float sc = out.regions[static_cast<size_t>(i * nr + k)].score;
          top = std::isfinite(sc) ? std::max(top, sc) : kNaN;
          if (!std::isfinite(top)) break;
        }
        r.score = top;
        r.verdict = decide_score(top, rule(bundle_.manifest.calibration.threshold), &r.normalized);
        if (!all_finite && r.error.empty()) r.error = "non-finite tile score";
        if (all_finite && r.error.empty()) ++out.judged;
        continue;
      }
      const size_t ng = groups_.names.size();
      for (size_t g = 0; g < ng; ++g) {
        const auto& mem = groups_.members[g];
        const GroupResult gr = group_result(region_scores_.data(), region_norms_.data(), region_verdicts_.data(),
                                            mem.data(), static_cast<int64_t>(mem.size()), group_scratch_.data());
        out.groups[static_cast<size_t>(i) * ng + g] = RegionResult{gr.score, gr.normalized, gr.verdict};
      }
      r.verdict = product_verdict(region_verdicts_.data(), nr);
      if (!all_finite && r.error.empty()) r.error = "non-finite region score";
      if (all_finite && r.error.empty()) ++out.judged;
    }
  }

  // A classifier's image: its class probabilities decide (classify_verdict); the score (1 - P(good))
  // is normalized as every score is, for display.
  void decide_classes(Results& out, int64_t i) {
    ImageResult& r = out.images[static_cast<size_t>(i)];
    const float* p = out.class_probabilities.data() + i * class_count_;
    r.verdict = classify_verdict(p, class_count_, post_->class_rule(), &r.top_class);
    r.normalized = finite_score(r.score) ? decision_normalized(r.score, rule(bundle_.manifest.calibration.threshold)) : kNaN;
    if (r.top_class < 0 || !finite_score(r.score)) {
      r.verdict = Verdict::Review;
      r.top_class = -1;
      r.normalized = kNaN;
      r.error = "non-finite class probabilities or score";
      std::fill_n(out.class_probabilities.begin() + static_cast<std::ptrdiff_t>(i * class_count_), class_count_, kNaN);
    } else {
      ++out.judged;
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
  // The CUDA stream of a device exec, destroyed after everything that queues work on it.
  struct StreamFree {
    void operator()(void* s) const noexcept { EDGE_CUDA_ONLY(cuda::destroy_stream(s);) (void)s; }
  };
  using StreamHolder = std::unique_ptr<void, StreamFree>;
  StreamHolder stream_;
  std::unique_ptr<ThreadPool> pool_;
  Exec exec_;  // the CPU (pool_), or the CUDA device of the backends (stream_)
  std::unique_ptr<PostProcessor> post_;
  std::vector<std::unique_ptr<Backend>> backends_;
  TensorMap tensors_;
  PreprocessParams pre_;
  int64_t max_batch_ = 1, in_plane_ = 0;
  // Exec memory: preprocessed images, network outputs, raw pixels of a unit (device exec), unit
  // scores, a map and its score (device exec).
  ExecBuffer input_, stage_, scores_, map_dev_, map_score_;
  std::vector<ExecBuffer> outputs_;
  std::vector<float> unit_scores_, unit_probs_, map_, warm_f32_, zeros_;
  int64_t class_count_ = 0;  // class probabilities per unit (classifier bundles), else 0
  std::vector<uint8_t> crop_;
  std::vector<Unit> units_;
  std::vector<RegionSpec> regions_;
  RegionGroups groups_;
  std::vector<float> region_scores_, region_norms_;  // one frame's, for group_result
  std::vector<Verdict> group_scratch_;
  std::vector<Verdict> region_verdicts_;  // of the frame being decided
  int64_t frame_w_ = 0, frame_h_ = 0;
  TilingSpec tiling_;                       // input.tiling (regions_ are its tiles when enabled)
  std::vector<float> count_y_, count_x_;    // tiles covering each row / column (merge "mean")
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Runtime> Runtime::open(const std::string& bundle_path, const RuntimeOptions& options) {
  LoadOptions load;
  load.trusted_keys = options.trusted_keys;
  return open(std::make_shared<const Bundle>(load_bundle(bundle_path, load)), options);
}

std::unique_ptr<Runtime> Runtime::open(std::shared_ptr<const Bundle> bundle, const RuntimeOptions& options) {
  if (!bundle) throw ArgumentError("bundle: null");
  return std::make_unique<RuntimeImpl>(std::move(bundle), options);
}

}  // namespace edge
