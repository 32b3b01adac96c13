// edge-sdk C++ API: a header-only layer over the C ABI (edge_sdk/c_api.h), like ONNX Runtime's
// C/C++ split. It adds RAII and exceptions and nothing else: every call goes through the stable C
// symbols, so a host compiled with any C++ compiler or standard library works with the shipped
// libedge_sdk.so.
//
// Exceptions: edge_sdk::Error is thrown when a call itself is unusable (closed runtime, bad option,
// corrupt bundle, null pointers, out of memory). A cycle whose images could not all be judged (bad
// image, non-finite score, deadline overrun, inference failure) does NOT throw: its results carry
// the per-image status and the fail-safe verdict review, so a partial cycle is never lost. Even when
// run() throws, the Cycle it filled holds review for every image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edge_sdk/c_api.h"

namespace edge_sdk {

class Error : public std::runtime_error {
 public:
  Error(edge_status status, const std::string& message)
      : std::runtime_error(std::string(edge_status_name(status)) + ": " + message), status_(status) {}
  edge_status status() const noexcept { return status_; }

 private:
  edge_status status_;
};

namespace detail {
inline void check(edge_status s) {
  if (s != EDGE_OK) throw Error(s, edge_last_error());
}
}  // namespace detail

enum class Verdict : int32_t { Review = EDGE_VERDICT_REVIEW, Accept = EDGE_VERDICT_ACCEPT, Reject = EDGE_VERDICT_REJECT };
inline const char* to_string(Verdict v) { return edge_verdict_name(static_cast<int>(v)); }

// Channel order of a cycle's 3-channel images: BGR is OpenCV's (a cv::Mat is handed over as it is).
enum class ColorOrder : int32_t { RGB = EDGE_COLOR_RGB, BGR = EDGE_COLOR_BGR };

// Throws Error when the library's ABI major version differs from the headers' (a host built
// against another major version must not run).
inline void check_abi() {
  const uint32_t lib = edge_abi_version();
  if ((lib >> 16) != EDGE_ABI_VERSION_MAJOR || (lib & 0xffffu) < EDGE_ABI_VERSION_MINOR)
    throw Error(EDGE_E_UNSUPPORTED, "libedge_sdk has ABI version " + std::to_string(lib >> 16) + "." +
                                        std::to_string(lib & 0xffffu) + ", these headers need " +
                                        std::to_string(EDGE_ABI_VERSION_MAJOR) + "." +
                                        std::to_string(EDGE_ABI_VERSION_MINOR) + " or a later minor version");
}

struct Options {
  std::string device = "cpu";    // "cpu", "cuda", "cuda:N"
  std::string backend;           // "" = default ("onnxruntime")
  std::string precision;         // "" = "fp32"
  std::string onnxruntime_library;  // "" = search
  std::string openvino_library;  // "" = search (backend "openvino")
  std::string openvino_device;   // "" = "CPU" (backend "openvino"); "GPU", "NPU", "AUTO"
  int threads = 0;               // intra-op threads per context; 0 = default
  int contexts = 1;              // calls that run in parallel
  int max_batch = 1;             // images per chunk = network call (deadline granularity)
  bool heatmaps = false;         // compute heatmaps (needed for run(..., heatmaps = true))
  double deadline_ms = 0;        // default cycle budget; 0 = none
  double review_band = -1;       // < 0 = the bundle's
  std::string trusted_keys;      // ':'-separated Ed25519 public keys (PEM files / folders); "" = the
                                 // environment's (EDGE_SDK_TRUSTED_KEYS) only
};

struct Region {
  std::string name;
  int x = 0, y = 0, width = 0, height = 0;  // in frame pixels
  double threshold = 0;
  int group = -1;  // index into Runtime::groups(), -1 for none
};

// The classes of a supervised classifier bundle (empty names for any other bundle).
struct Classes {
  std::vector<std::string> names;
  int good_class = -1;
  double accept_threshold = 0;  // accept when P(good) >= this
  double reject_threshold = 0;  // reject when the most probable defect class's probability >= this
};

// The state of a product's run vote (edge_run_vote): decided once the n-th acquisition arrived or
// the run was closed; review until then.
struct RunStatus {
  bool decided = false;
  Verdict verdict = Verdict::Review;
  int rejects = 0, accepts = 0, reviews = 0, missing = 0;
};

inline const char* version() { return edge_sdk_version(); }

// The rank-filter images of an acquisition (edge_frame_extremes): per pixel the lowest and the
// highest value over its k frames, packed, of the frames' size, channels and dtype. lo and hi each
// hold height * width * channels values of that dtype.
inline void frame_extremes(const edge_image* frames, size_t k, void* lo, void* hi) {
  detail::check(edge_frame_extremes(frames, k, lo, hi));
}
template <class T>
void frame_extremes(const std::vector<edge_image>& frames, std::vector<T>& lo, std::vector<T>& hi) {
  const size_t n = frames.empty() ? 0
                                  : static_cast<size_t>(frames[0].height) * static_cast<size_t>(frames[0].width) *
                                        static_cast<size_t>(frames[0].channels);
  lo.resize(n);
  hi.resize(n);
  frame_extremes(frames.data(), frames.size(), lo.data(), hi.data());
}

// Views (no copy) of HWC images; row_stride 0 = packed rows.
inline edge_image image_u8(const uint8_t* data, int height, int width, int channels, int64_t row_stride = 0) {
  return edge_image{data, height, width, channels, EDGE_DTYPE_UINT8, row_stride};
}
inline edge_image image_f32(const float* data, int height, int width, int channels, int64_t row_stride = 0) {
  return edge_image{data, height, width, channels, EDGE_DTYPE_FLOAT32, row_stride};
}

// The results of one cycle. Its buffers are reused by the next run() into the same Cycle, so a
// control loop that keeps one Cycle allocates nothing after the first cycles.
class Cycle {
 public:
  Cycle() { edge_batch_outputs_init(&out_); }

  edge_status status() const { return status_; }
  bool ok() const { return status_ == EDGE_OK; }
  // The message of a status other than EDGE_OK (copied from edge_last_error()).
  const std::string& message() const { return message_; }
  bool deadline_exceeded() const { return out_.deadline_exceeded != 0; }
  double elapsed_ms() const { return out_.elapsed_ms; }
  size_t judged() const { return out_.judged; }
  size_t not_judged() const { return out_.not_judged; }

  size_t size() const { return count_; }
  const edge_image_result& operator[](size_t i) const { return results_.at(i); }
  Verdict verdict(size_t i) const { return static_cast<Verdict>(results_.at(i).verdict); }
  size_t region_count() const { return region_count_; }
  // Region i of image `image` (requires run(..., regions = true)).
  const edge_region_result& region(size_t image, size_t i) const {
    if (image >= count_ || i >= region_count_ || regions_.empty()) throw std::out_of_range("Cycle::region");
    return regions_[image * region_count_ + i];
  }
  size_t group_count() const { return group_count_; }
  // Region group i of image `image` (a vial of a strip; requires run(..., regions = true)).
  const edge_region_result& group(size_t image, size_t i) const {
    if (image >= count_ || i >= group_count_ || groups_.empty()) throw std::out_of_range("Cycle::group");
    return groups_[image * group_count_ + i];
  }
  size_t class_count() const { return class_count_; }
  // Most probable class of image i (classifier bundles; -1 where not judged or not a classifier).
  int top_class(size_t i) const { return i < count_ && !top_class_.empty() ? top_class_[i] : -1; }
  // Class probabilities of image i (class_count() floats; NaN where not judged), or nullptr.
  const float* probabilities(size_t i) const {
    if (i >= count_ || class_count_ == 0) return nullptr;
    return probabilities_.data() + i * class_count_;
  }
  // The image's heatmap (heatmap_height x heatmap_width floats, row-major), or nullptr when
  // heatmaps were not requested.
  const float* heatmap(size_t i) const {
    const edge_image_result& r = results_.at(i);
    if (heatmaps_.empty() || r.heatmap_height == 0) return nullptr;
    return heatmaps_.data() + r.heatmap_offset;
  }
  const edge_batch_outputs& outputs() const { return out_; }

 private:
  friend class Runtime;
  std::vector<edge_image_result> results_;
  std::vector<edge_region_result> regions_, groups_;
  std::vector<float> heatmaps_, probabilities_;
  std::vector<int32_t> top_class_;
  edge_batch_outputs out_;
  edge_status status_ = EDGE_OK;
  std::string message_;
  size_t count_ = 0, region_count_ = 0, group_count_ = 0, class_count_ = 0;
};

// An opened bundle. Move-only; closes in the destructor. run() may be called from several
// threads at once (each with its own Cycle).
class Runtime {
 public:
  explicit Runtime(const std::string& bundle, const Options& options = Options()) {
    check_abi();
    edge_open_options o;
    edge_open_options_init(&o);
    o.device = options.device.empty() ? nullptr : options.device.c_str();
    o.backend = options.backend.empty() ? nullptr : options.backend.c_str();
    o.precision = options.precision.empty() ? nullptr : options.precision.c_str();
    o.onnxruntime_library = options.onnxruntime_library.empty() ? nullptr : options.onnxruntime_library.c_str();
    o.threads = options.threads;
    o.contexts = options.contexts;
    o.max_batch = options.max_batch;
    o.heatmaps = options.heatmaps ? 1 : 0;
    o.deadline_ms = options.deadline_ms;
    o.review_band = options.review_band;
    o.trusted_keys = options.trusted_keys.empty() ? nullptr : options.trusted_keys.c_str();
    o.openvino_library = options.openvino_library.empty() ? nullptr : options.openvino_library.c_str();
    o.openvino_device = options.openvino_device.empty() ? nullptr : options.openvino_device.c_str();
    detail::check(edge_open(bundle.c_str(), &o, &handle_));
    edge_output_spec_init(&output_);
    edge_status s = edge_output_spec_get(handle_, &output_);
    edge_class_spec cs;
    edge_class_spec_init(&cs);
    if (s == EDGE_OK) s = edge_class_spec_get(handle_, &cs);
    class_count_ = static_cast<size_t>(cs.class_count);
    if (s != EDGE_OK) {
      Error e(s, edge_last_error());
      edge_close(handle_);
      throw e;
    }
  }
  ~Runtime() {
    if (handle_) edge_close(handle_);
  }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  Runtime(Runtime&& o) noexcept
      : handle_(std::exchange(o.handle_, nullptr)), output_(o.output_), class_count_(o.class_count_) {}
  Runtime& operator=(Runtime&& o) noexcept {
    if (this != &o) {
      if (handle_) edge_close(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
      output_ = o.output_;
      class_count_ = o.class_count_;
    }
    return *this;
  }

  // Closes now (the destructor then does nothing); throws if the close fails.
  void close() {
    if (handle_) detail::check(edge_close(std::exchange(handle_, nullptr)));
  }
  edge_runtime* handle() const { return handle_; }

  edge_input_spec input_spec() const {
    edge_input_spec s;
    edge_input_spec_init(&s);
    detail::check(edge_input_spec_get(handle_, &s));
    return s;
  }
  const edge_output_spec& output_spec() const { return output_; }

  std::vector<Region> regions() const {
    std::vector<Region> out;
    for (int32_t i = 0; i < output_.region_count; ++i) {
      edge_region_spec s;
      edge_region_spec_init(&s);
      detail::check(edge_region_spec_get(handle_, i, &s));
      Region r;
      r.name = fetch_string([&](char* b, size_t c, size_t* n) { return edge_region_name(handle_, i, b, c, n); });
      r.x = s.x, r.y = s.y, r.width = s.width, r.height = s.height, r.threshold = s.threshold, r.group = s.group;
      out.push_back(std::move(r));
    }
    return out;
  }

  // Names of the region groups (Region::group indexes them).
  std::vector<std::string> groups() const {
    std::vector<std::string> out;
    for (int32_t i = 0; i < output_.group_count; ++i)
      out.push_back(fetch_string([&](char* b, size_t c, size_t* n) { return edge_group_name(handle_, i, b, c, n); }));
    return out;
  }

  Classes classes() const {
    edge_class_spec s;
    edge_class_spec_init(&s);
    detail::check(edge_class_spec_get(handle_, &s));
    Classes out;
    out.good_class = s.good_class;
    out.accept_threshold = s.accept_threshold;
    out.reject_threshold = s.reject_threshold;
    for (int32_t i = 0; i < s.class_count; ++i)
      out.names.push_back(fetch_string([&](char* b, size_t c, size_t* n) { return edge_class_name(handle_, i, b, c, n); }));
    return out;
  }

  // The run vote of a product acquired n times (the bundle's k of n; thread-safe): records the
  // verdict of acquisition `acquisition` of `product`.
  RunStatus run_vote(const std::string& product, int acquisition, Verdict verdict) const {
    edge_run_status s;
    edge_run_status_init(&s);
    detail::check(edge_run_vote(handle_, product.c_str(), acquisition, static_cast<int32_t>(verdict), &s));
    return to_run_status(s);
  }
  // Decides `product` now: missing acquisitions count as not judged (never accept).
  RunStatus run_vote_close(const std::string& product) const {
    edge_run_status s;
    edge_run_status_init(&s);
    detail::check(edge_run_vote_close(handle_, product.c_str(), &s));
    return to_run_status(s);
  }
  // The bundle's rule: {k, n}.
  std::pair<int, int> run_vote_rule() const {
    int32_t k = 0, n = 0;
    detail::check(edge_run_vote_rule(handle_, &k, &n));
    return {k, n};
  }

  // JSON description (model, backend, device, versions).
  std::string describe() const {
    return fetch_string([&](char* b, size_t c, size_t* n) { return edge_describe(handle_, b, c, n); });
  }

  // Judges `count` images into `cycle` (see edge_run_with). deadline_ms < 0 = the runtime's default.
  const Cycle& run(const edge_image* images, size_t count, Cycle& cycle, double deadline_ms = -1,
                   bool heatmaps = false, bool regions = true, ColorOrder color_order = ColorOrder::RGB) const {
    return judge(images, count, 0, cycle, deadline_ms, heatmaps, regions, color_order);
  }
  Cycle run(const std::vector<edge_image>& images, double deadline_ms = -1, bool heatmaps = false,
            ColorOrder color_order = ColorOrder::RGB) const {
    Cycle c;
    run(images.data(), images.size(), c, deadline_ms, heatmaps, true, color_order);
    return c;
  }

  // An acquisition of k frames judged with its two rank-filter images (edge_run_acquisition): k + 2
  // results, the frames first, then the per-pixel lowest and highest. k must be the bundle's
  // input_spec().acquisition_frames when it declares one. Class outputs are not filled here.
  const Cycle& run_acquisition(const edge_image* frames, size_t k, Cycle& cycle, double deadline_ms = -1,
                               bool heatmaps = false, bool regions = true,
                               ColorOrder color_order = ColorOrder::RGB) const {
    return judge(frames, k + 2, k, cycle, deadline_ms, heatmaps, regions, color_order);
  }

 private:
  // One cycle into `cycle`: `count` images, or (acquisition_k > 0) the acquisition_k frames at
  // `images` and their two rank images (count = acquisition_k + 2).
  const Cycle& judge(const edge_image* images, size_t count, size_t acquisition_k, Cycle& cycle, double deadline_ms,
                     bool heatmaps, bool regions, ColorOrder color_order) const {
    const size_t n_regions = static_cast<size_t>(output_.region_count);
    edge_batch_outputs& o = cycle.out_;
    edge_batch_outputs_init(&o);
    cycle.status_ = EDGE_E_INVALID_ARGUMENT;
    cycle.count_ = 0;
    if (cycle.results_.size() < count) cycle.results_.resize(count);
    // Review until the library says otherwise, so that even a call that throws leaves no accept.
    for (size_t i = 0; i < count; ++i) cycle.results_[i] = edge_image_result{};
    cycle.count_ = count;
    size_t floats = 0;
    if (heatmaps) {
      if (acquisition_k > 0) {  // the rank images have the frames' size
        detail::check(edge_heatmap_floats(handle_, images, 1, &floats));
        floats *= count;
      } else {
        detail::check(edge_heatmap_floats(handle_, images, count, &floats));
      }
      if (cycle.heatmaps_.size() < floats) cycle.heatmaps_.resize(floats);
    }
    const bool want_regions = regions && n_regions > 0;
    if (want_regions && cycle.regions_.size() < count * n_regions) cycle.regions_.resize(count * n_regions);
    const size_t n_groups = want_regions ? static_cast<size_t>(output_.group_count) : 0;
    if (cycle.groups_.size() < count * n_groups) cycle.groups_.resize(count * n_groups);
    if (class_count_ > 0) {
      if (cycle.probabilities_.size() < count * class_count_) cycle.probabilities_.resize(count * class_count_);
      if (cycle.top_class_.size() < count) cycle.top_class_.resize(count);
    }
    o.results = cycle.results_.data();
    o.results_capacity = cycle.results_.size();
    o.regions = want_regions ? cycle.regions_.data() : nullptr;
    o.regions_capacity = want_regions ? cycle.regions_.size() : 0;
    o.heatmaps = heatmaps ? cycle.heatmaps_.data() : nullptr;
    o.heatmaps_capacity = heatmaps ? cycle.heatmaps_.size() : 0;
    cycle.region_count_ = want_regions ? n_regions : 0;
    o.groups = n_groups > 0 ? cycle.groups_.data() : nullptr;
    o.groups_capacity = count * n_groups;
    cycle.group_count_ = n_groups;
    cycle.class_count_ = acquisition_k > 0 ? 0 : class_count_;
    edge_run_options ro;
    edge_run_options_init(&ro);
    ro.deadline_ms = deadline_ms;
    ro.color_order = static_cast<int32_t>(color_order);
    if (acquisition_k > 0) {
      cycle.status_ = edge_run_acquisition(handle_, images, acquisition_k, &ro, &o);
    } else if (class_count_ > 0) {
      edge_class_outputs co;
      edge_class_outputs_init(&co);
      co.probabilities = cycle.probabilities_.data();
      co.probabilities_capacity = count * class_count_;
      co.top_class = cycle.top_class_.data();
      co.top_class_capacity = count;
      cycle.status_ = edge_run_classes(handle_, images, count, &ro, &o, &co);
    } else {
      cycle.status_ = edge_run_with(handle_, images, count, &ro, &o);
    }
    if (cycle.status_ == EDGE_OK) {
      cycle.message_.clear();
      return cycle;
    }
    cycle.message_ = edge_last_error();
    switch (cycle.status_) {
      case EDGE_E_IMAGE:
      case EDGE_E_NUMERIC:
      case EDGE_E_DEADLINE:
      case EDGE_E_BACKEND:
        return cycle;  // per-image outcomes: reported in the cycle, verdicts are review
      default:
        throw Error(cycle.status_, cycle.message_);
    }
  }

  template <class F>
  static std::string fetch_string(F&& get) {
    size_t n = 0;
    edge_status s = get(nullptr, 0, &n);
    if (s != EDGE_OK && s != EDGE_E_BUFFER_TOO_SMALL) detail::check(s);
    std::string out(n + 1, '\0');
    detail::check(get(&out[0], out.size(), &n));
    out.resize(n);
    return out;
  }

  static RunStatus to_run_status(const edge_run_status& s) {
    RunStatus r;
    r.decided = s.decided != 0;
    r.verdict = static_cast<Verdict>(s.verdict);
    r.rejects = s.rejects, r.accepts = s.accepts, r.reviews = s.reviews, r.missing = s.missing;
    return r;
  }

  edge_runtime* handle_ = nullptr;
  edge_output_spec output_{};
  size_t class_count_ = 0;
};

}  // namespace edge_sdk
