#include "inspector.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "edge_sdk/runtime/errors.hpp"
#include "status.hpp"

namespace edge::capi {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kAlign = 64;  // each staged image starts on a cache line

size_t element_size(int32_t dtype) { return dtype == EDGE_DTYPE_FLOAT32 ? 4 : 1; }

edge_image_result unjudged(edge_status status, uint32_t review) {
  edge_image_result r{};
  r.score = kNaN;
  r.normalized = kNaN;
  r.verdict = EDGE_VERDICT_REVIEW;
  r.status = status;
  r.review = review;
  return r;
}

// The caller's group buffer: NULL when its edge_batch_outputs predates the field (ABI 1.2).
edge_region_result* groups_buffer(const edge_batch_outputs& out) {
  return out.struct_size >= offsetof(edge_batch_outputs, groups_capacity) + sizeof(size_t) ? out.groups : nullptr;
}

edge_region_result unjudged_region(uint32_t review) {
  edge_region_result r{};
  r.score = kNaN;
  r.normalized = kNaN;
  r.verdict = EDGE_VERDICT_REVIEW;
  r.review = review;
  return r;
}

// edge::Verdict has the C ABI's codes (decision_math.hpp).
int32_t to_c(Verdict v) { return static_cast<int32_t>(v); }

bool finite(float v) { return std::isfinite(v); }

// Why an image could not be used for the copy into the context; "" when it can be staged.
// (What the model accepts - channel count, size, dtype - is the runtime's check.)
const char* staging_problem(const edge_image& im) {
  if (!im.data) return "data is a null pointer";
  if (im.dtype != EDGE_DTYPE_UINT8 && im.dtype != EDGE_DTYPE_FLOAT32) return "dtype: expected EDGE_DTYPE_UINT8 (1) or EDGE_DTYPE_FLOAT32 (2)";
  if (im.height < 1 || im.width < 1 || im.height > 32768 || im.width > 32768) return "height and width: expected 1..32768";
  if (im.channels != 1 && im.channels != 3) return "channels: expected 1 (gray) or 3 (RGB, interleaved HWC)";
  const int64_t packed = int64_t{im.width} * im.channels * static_cast<int64_t>(element_size(im.dtype));
  if (im.row_stride != 0 && im.row_stride < packed) return "row_stride: smaller than one packed row (width * channels * element size)";
  return "";
}

}  // namespace

// ---- Context -------------------------------------------------------------------------------------

Context::Context(std::unique_ptr<Runtime> runtime, size_t chunk_images, Inspector& owner)
    : runtime_(std::move(runtime)), owner_(owner), region_count_(runtime_->region_names().size()),
      class_count_(runtime_->class_names().size()), chunk_images_(std::max<size_t>(1, chunk_images)) {
  chunk_views_.resize(chunk_images_);
  chunk_index_.resize(chunk_images_);
  region_verdicts_.resize(region_count_);
  groups_ = region_groups(runtime_->manifest().regions);
  group_scores_.resize(region_count_);
  group_norms_.resize(region_count_);
  group_verdicts_.resize(region_count_);
  group_scratch_.resize(region_count_);
  worker_ = std::thread([this] { worker_loop(); });
}

Context::~Context() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Context::set_image_failure(size_t i, edge_status status, uint32_t review, const std::string& message) {
  results_[i] = unjudged(status, review);
  results_[i].heatmap_offset = heat_offset_[i];
  if (want_heatmaps_) {
    results_[i].heatmap_height = views_[i].height > 0 ? static_cast<int32_t>(views_[i].height) : 0;
    results_[i].heatmap_width = views_[i].width > 0 ? static_cast<int32_t>(views_[i].width) : 0;
    const size_t area = static_cast<size_t>(results_[i].heatmap_height) * static_cast<size_t>(results_[i].heatmap_width);
    std::fill_n(heat_.begin() + heat_offset_[i], area, kNaN);
  }
  if (want_regions_)
    for (size_t k = 0; k < region_count_; ++k) regions_[i * region_count_ + k] = unjudged_region(review);
  if (want_classes_) {
    std::fill_n(probs_.begin() + static_cast<std::ptrdiff_t>(i * class_count_), class_count_, kNaN);
    top_[i] = -1;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (first_status_ == EDGE_OK || i < first_error_image_) {
    first_status_ = status;
    first_error_image_ = i;
    first_error_ = message;
  }
}

void Context::stage(const edge_image* images, size_t count, ColorOrder order, bool want_regions, bool want_heatmaps,
                    bool want_classes) {
  count_ = count;
  want_regions_ = want_regions && region_count_ > 0;
  want_heatmaps_ = want_heatmaps;
  want_classes_ = want_classes;
  first_status_ = EDGE_OK;
  first_error_.clear();
  first_error_image_ = 0;
  // Grow-only buffers: after the largest cycle has been seen nothing here allocates.
  if (results_.size() < count) {
    results_.resize(count);
    views_.resize(count);
    usable_.resize(count);
    heat_offset_.resize(count);
  }
  if (want_regions_ && regions_.size() < count * region_count_) regions_.resize(count * region_count_);
  if (want_classes_) {
    if (probs_.size() < count * class_count_) probs_.resize(count * class_count_);
    if (top_.size() < count) top_.resize(count);
    std::fill_n(probs_.begin(), count * class_count_, kNaN);
    std::fill_n(top_.begin(), count, -1);
  }

  size_t staged_bytes = 0, heat_floats = 0;
  for (size_t i = 0; i < count; ++i) {
    const edge_image& im = images[i];
    heat_offset_[i] = static_cast<int64_t>(heat_floats);
    if (im.height > 0 && im.width > 0) heat_floats += static_cast<size_t>(im.height) * static_cast<size_t>(im.width);
    usable_[i] = staging_problem(im)[0] == '\0';
    if (usable_[i]) {
      const size_t bytes = static_cast<size_t>(im.height) * static_cast<size_t>(im.width) *
                           static_cast<size_t>(im.channels) * element_size(im.dtype);
      staged_bytes += (bytes + kAlign - 1) / kAlign * kAlign;
    }
  }
  if (staging_.size() < staged_bytes + kAlign) staging_.resize(staged_bytes + kAlign);
  if (want_heatmaps_ && heat_.size() < heat_floats) heat_.resize(heat_floats);

  uint8_t* base = staging_.data();
  base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
  for (size_t i = 0; i < count; ++i) {
    const edge_image& im = images[i];
    ImageView& v = views_[i];
    v.data = nullptr;
    v.dtype = im.dtype == EDGE_DTYPE_FLOAT32 ? DType::F32 : DType::U8;
    v.height = im.height;
    v.width = im.width;
    v.channels = im.channels;
    v.color_order = order;
    results_[i] = unjudged(EDGE_OK, 0);  // until judged
    results_[i].heatmap_offset = heat_offset_[i];
    if (!usable_[i]) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "image %zu: %s", i, staging_problem(im));
      set_image_failure(i, EDGE_E_IMAGE, EDGE_REVIEW_ERROR, msg);
      continue;
    }
    const size_t row = static_cast<size_t>(im.width) * static_cast<size_t>(im.channels) * element_size(im.dtype);
    const size_t stride = im.row_stride ? static_cast<size_t>(im.row_stride) : row;
    const uint8_t* src = static_cast<const uint8_t*>(im.data);
    if (stride == row) {
      std::memcpy(base, src, row * static_cast<size_t>(im.height));
    } else {
      for (int32_t y = 0; y < im.height; ++y) std::memcpy(base + static_cast<size_t>(y) * row, src + static_cast<size_t>(y) * stride, row);
    }
    v.data = base;
    base += (row * static_cast<size_t>(im.height) + kAlign - 1) / kAlign * kAlign;
  }
}

void Context::start() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = 0;
    abandoned_ = false;
    queued_ = true;
  }
  wake_.notify_one();
}

void Context::worker_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || queued_; });
      if (stop_) return;
      queued_ = false;
      running_ = true;
    }
    try {
      process_job();
    } catch (...) {
      // Only an allocation failure while recording an error can get here: the images not yet
      // final stay review (no message: there is no memory to build one).
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = done_; i < count_; ++i)
        if (usable_[i]) results_[i] = unjudged(EDGE_E_OUT_OF_MEMORY, EDGE_REVIEW_ERROR);
      if (first_status_ == EDGE_OK) first_status_ = EDGE_E_OUT_OF_MEMORY;
      done_ = count_;
    }
    bool give_back;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = false;
      give_back = abandoned_;
      abandoned_ = false;
    }
    progress_.notify_all();
    // The caller left on its deadline: this worker owns the context until now.
    if (give_back) owner_.release(this);
  }
}

void Context::process_job() {
  size_t i = 0;
  std::vector<ImageView>& batch = chunk_views_;
  std::vector<size_t>& index = chunk_index_;
  while (i < count_) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (abandoned_ || stop_) return;
    }
    size_t k = 0;
    while (i < count_ && k < chunk_images_) {
      if (usable_[i]) {
        batch[k] = views_[i];
        index[k] = i;
        ++k;
      }
      ++i;
    }
    if (k > 0) {
      try {
        runtime_->predict(batch.data(), static_cast<int64_t>(k), chunk_);
        record_chunk(k);
      } catch (const std::exception& e) {
        // The runtime reports per-image problems in the results; an exception means the chunk
        // as a whole failed (e.g. the network): each of its images is review.
        const edge_status s = dynamic_cast<const std::bad_alloc*>(&e) ? EDGE_E_OUT_OF_MEMORY : EDGE_E_BACKEND;
        for (size_t j = 0; j < k; ++j) {
          char head[48];
          std::snprintf(head, sizeof head, "image %zu: ", index[j]);
          set_image_failure(index[j], s, EDGE_REVIEW_ERROR, std::string(head) + e.what());
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = i;
    }
    progress_.notify_all();
  }
}

void Context::record_chunk(size_t k) {
  const size_t nr = region_count_;
  for (size_t j = 0; j < k; ++j) {
    const size_t i = chunk_index_[j];
    const ImageResult& r = chunk_.images[j];
    edge_image_result& o = results_[i];
    if (!r.error.empty()) {
      const edge_status s = r.invalid_input ? EDGE_E_IMAGE : (r.failed ? EDGE_E_BACKEND : EDGE_E_NUMERIC);
      char head[48];
      std::snprintf(head, sizeof head, "image %zu: ", i);
      // A frame with a region that failed can still be rejected by another region: keep that
      // verdict (the unit is diverted either way); anything else is review.
      const int32_t verdict = to_c(r.verdict) == EDGE_VERDICT_REJECT ? EDGE_VERDICT_REJECT : EDGE_VERDICT_REVIEW;
      // The runtime numbers images within the chunk ("image 0: ..."): name the cycle's index.
      size_t skip = 0;
      if (r.error.rfind("image ", 0) == 0) {
        const size_t colon = r.error.find(": ");
        if (colon != std::string::npos && r.error.find_first_not_of("0123456789", 6) == colon) skip = colon + 2;
      }
      const std::string message = head + r.error.substr(skip);
      set_image_failure(i, s, s == EDGE_E_NUMERIC ? EDGE_REVIEW_NONFINITE : EDGE_REVIEW_ERROR, message);
      o.verdict = verdict;
      if (verdict == EDGE_VERDICT_REJECT) o.review = 0;
      o.score = r.score;
      o.normalized = r.normalized;
    } else {
      o = unjudged(EDGE_OK, 0);
      o.score = r.score;
      o.normalized = r.normalized;
      o.verdict = to_c(r.verdict);
    }
    o.heatmap_offset = heat_offset_[i];
    if (want_classes_ && r.error.empty() && chunk_.class_count == static_cast<int64_t>(class_count_)) {
      std::copy_n(chunk_.class_probabilities.begin() + static_cast<std::ptrdiff_t>(j * class_count_), class_count_,
                  probs_.begin() + static_cast<std::ptrdiff_t>(i * class_count_));
      top_[i] = static_cast<int32_t>(r.top_class);
    }

    // Regions, and a second line of defence for the fail-safe rule (decision_math.hpp, the
    // runtime's own rule): never accept an image whose score, or any of whose regions, is not a
    // finite accepted value.
    bool region_nonfinite = false;
    for (size_t q = 0; q < nr; ++q) {
      const RegionResult& rr = chunk_.regions[j * nr + q];
      edge_region_result c = unjudged_region(0);
      c.score = rr.score;
      c.normalized = rr.normalized;
      const Verdict v = checked_verdict(rr.verdict, rr.score, rr.normalized);
      region_verdicts_[q] = v;
      c.verdict = to_c(v);
      if (v == Verdict::Review) {
        c.review = finite(rr.score) ? EDGE_REVIEW_BAND : EDGE_REVIEW_NONFINITE;
        region_nonfinite |= !finite(rr.score);
      }
      if (want_regions_) regions_[i * nr + q] = c;
    }
    if (o.status == EDGE_OK) {
      Verdict v = checked_verdict(static_cast<Verdict>(o.verdict), o.score, o.normalized);
      // An accepted frame stands only if the product rule over its checked regions accepts too.
      if (v == Verdict::Accept && nr > 0) v = product_verdict(region_verdicts_.data(), static_cast<int64_t>(nr));
      o.verdict = to_c(v);
      if (o.verdict == EDGE_VERDICT_REVIEW) {
        const uint32_t band = EDGE_REVIEW_BAND, nonfinite = EDGE_REVIEW_NONFINITE, region = EDGE_REVIEW_REGION;
        if (nr > 0) o.review = region | (region_nonfinite ? nonfinite : 0u);
        else o.review = finite(o.score) ? band : nonfinite;
      }
    }

    if (want_heatmaps_) {
      const int64_t area = views_[i].height * views_[i].width;
      o.heatmap_height = static_cast<int32_t>(views_[i].height);
      o.heatmap_width = static_cast<int32_t>(views_[i].width);
      float* dst = heat_.data() + heat_offset_[i];
      if (r.error.empty() && r.heatmap_height == views_[i].height && r.heatmap_width == views_[i].width &&
          static_cast<size_t>(r.heatmap_offset + area) <= chunk_.heatmaps.size()) {
        std::memcpy(dst, chunk_.heatmaps.data() + r.heatmap_offset, static_cast<size_t>(area) * sizeof(float));
      } else {
        std::fill_n(dst, area, kNaN);
      }
    }
  }
}

edge_region_result Context::group_of(size_t i, size_t g) const {
  // From the image's final, checked region results (regions_ is kept whenever groups are wanted).
  const size_t nr = region_count_;
  for (size_t q = 0; q < nr; ++q) {
    const edge_region_result& r = regions_[i * nr + q];
    group_scores_[q] = r.score;
    group_norms_[q] = r.normalized;
    group_verdicts_[q] = static_cast<Verdict>(r.verdict);
  }
  const auto& mem = groups_.members[g];
  const GroupResult gr = group_result(group_scores_.data(), group_norms_.data(), group_verdicts_.data(), mem.data(),
                                      static_cast<int64_t>(mem.size()), group_scratch_.data());
  edge_region_result c = unjudged_region(0);
  c.score = gr.score;
  c.normalized = gr.normalized;
  c.verdict = static_cast<int32_t>(gr.verdict);
  if (gr.verdict == Verdict::Review) {
    // the image's own reason when it was not judged at all, else: a region of the group was review
    const uint32_t image_review = results_[i].status == EDGE_OK ? 0u : results_[i].review;
    c.review = image_review ? image_review : static_cast<uint32_t>(EDGE_REVIEW_REGION);
  }
  return c;
}

void Context::copy_out(size_t done, edge_batch_outputs& out, const ClassTargets* classes) const {
  const size_t nr = region_count_;
  for (size_t i = 0; i < count_; ++i) {
    const bool final_result = i < done || !usable_[i];
    if (classes && want_classes_) {
      if (classes->probabilities) {
        float* dst = classes->probabilities + i * class_count_;
        if (final_result) std::copy_n(probs_.begin() + static_cast<std::ptrdiff_t>(i * class_count_), class_count_, dst);
        else std::fill_n(dst, class_count_, kNaN);
      }
      if (classes->top_class) classes->top_class[i] = final_result ? top_[i] : -1;
    }
    if (final_result) {
      out.results[i] = results_[i];
    } else {
      out.results[i] = unjudged(EDGE_E_DEADLINE, EDGE_REVIEW_DEADLINE);
      out.results[i].heatmap_offset = heat_offset_[i];
    }
    if (out.regions && nr > 0) {
      for (size_t q = 0; q < nr; ++q)
        out.regions[i * nr + q] = final_result ? regions_[i * nr + q] : unjudged_region(EDGE_REVIEW_DEADLINE);
    }
    if (edge_region_result* groups = groups_buffer(out)) {
      const size_t ng = groups_.names.size();
      for (size_t g = 0; g < ng; ++g) groups[i * ng + g] = final_result ? group_of(i, g) : unjudged_region(EDGE_REVIEW_DEADLINE);
    }
    if (out.heatmaps) {
      const size_t area = static_cast<size_t>(views_[i].height > 0 ? views_[i].height : 0) *
                          static_cast<size_t>(views_[i].width > 0 ? views_[i].width : 0);
      float* dst = out.heatmaps + heat_offset_[i];
      out.results[i].heatmap_height = static_cast<int32_t>(area ? views_[i].height : 0);
      out.results[i].heatmap_width = static_cast<int32_t>(area ? views_[i].width : 0);
      if (final_result) std::memcpy(dst, heat_.data() + heat_offset_[i], area * sizeof(float));
      else std::fill_n(dst, area, kNaN);
    }
  }
}

bool Context::wait_and_collect(bool has_deadline, Clock::time_point deadline, edge_batch_outputs& out,
                               std::string& first_error, size_t& first_error_image, edge_status& first_status,
                               const ClassTargets* classes) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto finished = [&] { return !queued_ && !running_; };
  bool complete = true;
  if (has_deadline) {
    complete = progress_.wait_until(lock, deadline, finished);
  } else {
    progress_.wait(lock, finished);
  }
  if (!complete) {
    // Copy what is final while holding the lock (the worker only writes images >= done_, and
    // must not hand the context to another caller before this copy ends), then leave the
    // context to the worker.
    abandoned_ = true;
    copy_out(done_, out, classes);
    // Stop the network call in progress (between graph nodes) so the context is free again soon;
    // without it the worker would finish its chunk first.
    runtime_->cancel();
  } else {
    lock.unlock();
    copy_out(count_, out, classes);
    lock.lock();
  }
  first_status = first_status_;
  first_error_image = first_error_image_;
  if (first_status_ != EDGE_OK) first_error = first_error_;
  return complete;
}

// ---- Inspector -----------------------------------------------------------------------------------

Inspector::Inspector(std::shared_ptr<const Bundle> bundle, const InspectorOptions& options)
    : bundle_(std::move(bundle)),
      options_(options),
      run_vote_(RunVoteOptions{bundle_->manifest.decision.run_k, bundle_->manifest.decision.run_n, kMaxOpenRuns}) {
  if (options_.contexts < 1 || options_.contexts > 256)
    throw ArgumentError("contexts: expected 1..256, got " + std::to_string(options_.contexts));
  if (!(options_.deadline_ms >= 0) || !std::isfinite(options_.deadline_ms))
    throw ArgumentError("deadline_ms: expected a finite number >= 0 (0 = no deadline)");
  free_.reserve(static_cast<size_t>(options_.contexts));
  contexts_.reserve(static_cast<size_t>(options_.contexts));
  for (int c = 0; c < options_.contexts; ++c) {
    contexts_.push_back(std::make_unique<Context>(Runtime::open(bundle_, options_.runtime),
                                                  static_cast<size_t>(options_.chunk_images), *this));
    free_.push_back(contexts_.back().get());
  }
  region_count_ = contexts_.front()->runtime().region_names().size();
  group_count_ = contexts_.front()->runtime().group_names().size();
  class_count_ = contexts_.front()->runtime().class_names().size();
}

Inspector::~Inspector() {
  // Contexts first: their workers may still hand themselves back to the pool.
  contexts_.clear();
}

Context* Inspector::acquire(bool has_deadline, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(pool_mutex_);
  auto available = [&] { return !free_.empty(); };
  if (has_deadline) {
    if (!pool_cv_.wait_until(lock, deadline, available)) return nullptr;
  } else {
    pool_cv_.wait(lock, available);
  }
  Context* c = free_.back();
  free_.pop_back();
  return c;
}

void Inspector::release(Context* c) {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    free_.push_back(c);
  }
  pool_cv_.notify_one();
}

size_t Inspector::heatmap_floats(const edge_image* images, size_t count) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i)
    if (images[i].height > 0 && images[i].width > 0)
      total += static_cast<size_t>(images[i].height) * static_cast<size_t>(images[i].width);
  return total;
}

namespace {

void fill_unjudged(edge_batch_outputs& out, size_t count, edge_status status, uint32_t review, size_t groups) {
  for (size_t i = 0; i < count; ++i) out.results[i] = unjudged(status, review);
  edge_region_result* g = groups_buffer(out);
  if (g && groups > 0 && out.groups_capacity >= count * groups)
    for (size_t k = 0; k < count * groups; ++k) g[k] = unjudged_region(review);
}

void fill_classes_unjudged(const ClassTargets* classes, size_t count, size_t class_count) {
  if (!classes) return;
  if (classes->probabilities) std::fill_n(classes->probabilities, count * class_count, kNaN);
  if (classes->top_class) std::fill_n(classes->top_class, count, -1);
}

double elapsed_ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

edge_status Inspector::run(const edge_image* images, size_t count, double deadline_ms, ColorOrder order,
                           edge_batch_outputs& out, const ClassTargets* classes) {
  const Clock::time_point t0 = Clock::now();
  out.elapsed_ms = 0;
  out.judged = 0;
  out.not_judged = static_cast<uint32_t>(count);
  out.deadline_exceeded = 0;
  if (!out.results || out.results_capacity < count)
    throw StatusError(EDGE_E_INVALID_ARGUMENT, "outputs->results: " + std::string(out.results ? "capacity " + std::to_string(out.results_capacity) + " < count " + std::to_string(count) : "null pointer") + " (nothing could be written: treat every image as review)");
  // From here on every result is written: review until judged.
  fill_unjudged(out, count, EDGE_E_INVALID_ARGUMENT, EDGE_REVIEW_ERROR, group_count_);
  fill_classes_unjudged(classes, count, class_count_);
  if (count == 0) {
    out.not_judged = 0;
    return EDGE_OK;
  }
  if (!images) throw StatusError(EDGE_E_INVALID_ARGUMENT, "images: null pointer for " + std::to_string(count) + " image(s)");
  if (std::isnan(deadline_ms)) throw StatusError(EDGE_E_INVALID_ARGUMENT, "deadline_ms: NaN (use < 0 for the runtime's default, 0 for none)");
  const size_t nr = region_count_;
  if (out.regions && nr > 0 && out.regions_capacity < count * nr)
    throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "outputs->regions: capacity " + std::to_string(out.regions_capacity) +
                                                   " < count * region_count = " + std::to_string(count * nr));
  edge_region_result* groups = groups_buffer(out);
  if (groups && group_count_ > 0 && out.groups_capacity < count * group_count_)
    throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "outputs->groups: capacity " + std::to_string(out.groups_capacity) +
                                                   " < count * group_count = " + std::to_string(count * group_count_));
  if (out.heatmaps) {
    if (!runtime().options().heatmaps)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "outputs->heatmaps: the runtime was opened without heatmaps (set edge_open_options.heatmaps = 1)");
    const size_t need = heatmap_floats(images, count);
    if (out.heatmaps_capacity < need)
      throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "outputs->heatmaps: capacity " + std::to_string(out.heatmaps_capacity) +
                                                     " floats < " + std::to_string(need) + " needed (edge_heatmap_floats)");
  }
  const double budget = deadline_ms < 0 ? options_.deadline_ms : deadline_ms;
  const bool has_deadline = budget > 0 && std::isfinite(budget);
  const Clock::time_point deadline =
      has_deadline ? t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(budget)) : t0;

  Context* ctx = acquire(has_deadline, deadline);
  if (!ctx) {
    fill_unjudged(out, count, EDGE_E_DEADLINE, EDGE_REVIEW_DEADLINE, group_count_);
    out.deadline_exceeded = 1;
    out.elapsed_ms = elapsed_ms(t0);
    char msg[200];
    std::snprintf(msg, sizeof msg, "deadline of %.1f ms passed while every context (%d) was busy; %zu image(s) marked review",
                  budget, options_.contexts, count);
    set_error(msg);
    return EDGE_E_DEADLINE;
  }
  bool complete = false;
  std::string first_error;
  size_t first_error_image = 0;
  edge_status first_status = EDGE_OK;
  try {
    ctx->stage(images, count, order, out.regions != nullptr || (groups && group_count_ > 0), out.heatmaps != nullptr,
               classes != nullptr);
    ctx->start();
  } catch (...) {
    release(ctx);
    throw;
  }
  complete = ctx->wait_and_collect(has_deadline, deadline, out, first_error, first_error_image, first_status, classes);
  if (complete) release(ctx);

  uint32_t judged = 0;
  for (size_t i = 0; i < count; ++i) judged += out.results[i].status == EDGE_OK;
  out.judged = judged;
  out.not_judged = static_cast<uint32_t>(count) - judged;
  out.deadline_exceeded = complete ? 0 : 1;
  out.elapsed_ms = elapsed_ms(t0);
  if (!complete) {
    char msg[240];
    std::snprintf(msg, sizeof msg, "deadline of %.1f ms exceeded (returned after %.1f ms): %u of %zu image(s) judged, the rest marked review%s",
                  budget, out.elapsed_ms, judged, count, first_status != EDGE_OK ? "; first error: " : "");
    set_error(msg, first_status != EDGE_OK ? first_error.c_str() : "");
    return EDGE_E_DEADLINE;
  }
  if (first_status != EDGE_OK) {
    char tail[96];
    std::snprintf(tail, sizeof tail, " (%u of %zu image(s) not judged, marked review)", out.not_judged, count);
    set_error(first_error.c_str(), tail);
    return first_status;
  }
  return EDGE_OK;
}

}  // namespace edge::capi
