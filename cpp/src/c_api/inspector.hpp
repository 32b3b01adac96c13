// The engine behind the C ABI: an opened bundle with a pool of execution contexts, each an
// edge::Runtime (THE runtime pipeline: preprocessing -> network -> kernels -> decision) driven by
// its own worker thread, so that a cycle can return on its deadline while the network is still
// running.
//
// Guarantees (docs/C_API.md):
// - A call returns by its deadline plus the time to copy the results out and the OS's wake-up
//   latency: waiting for a free context, staging and waiting for the worker are all bounded by it.
// - Images are judged in order, in chunks; a chunk's verdicts are final once it is done, so on a
//   deadline the finished images keep their verdicts and the rest are review (EDGE_E_DEADLINE).
// - The worker never touches caller memory: the caller's images are copied into the context
//   (packing strided rows) before the worker starts, and results are copied out by the caller.
//   An abandoned worker finishes its chunk, drops the job and returns its context to the pool.
// - Buffers grow to the largest cycle seen and are then reused: no heap allocation per call after
//   warm-up in this layer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edge_sdk/c_api.h"
#include "edge_sdk/runtime/run_vote.hpp"
#include "edge_sdk/runtime/runtime.hpp"

namespace edge::capi {

using Clock = std::chrono::steady_clock;

struct InspectorOptions {
  RuntimeOptions runtime;   // of each context (runtime.max_batch = chunk_images * units per image)
  int contexts = 1;
  int64_t chunk_images = 1; // images per predict() call: the deadline's granularity
  double deadline_ms = 0;   // default budget of run(); 0 = none
};

class Inspector;

// Where edge_run_classes (c_api_classes.cpp) wants each image's class probabilities (count *
// class_count floats, image-major) and top class (count entries); either may be null.
struct ClassTargets {
  float* probabilities = nullptr;
  int32_t* top_class = nullptr;
};

// One execution context: a Runtime, its worker thread and the staging buffers of one cycle.
class Context {
 public:
  Context(std::unique_ptr<Runtime> runtime, size_t chunk_images, Inspector& owner);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Runtime& runtime() const { return *runtime_; }

  // Caller side of a cycle (the context was taken from the pool by the caller). Copies the
  // images in, writes the verdicts of images that cannot even be staged, and starts the worker.
  void stage(const edge_image* images, size_t count, ColorOrder order, bool want_regions, bool want_heatmaps,
             bool want_classes = false);
  void start();
  // Waits until the worker is done or `deadline` passes (no deadline when has_deadline is false),
  // then copies the results out. Returns true when every image was processed; on false the
  // worker keeps the context and returns it to the pool itself when its chunk ends.
  bool wait_and_collect(bool has_deadline, Clock::time_point deadline, edge_batch_outputs& out,
                        std::string& first_error, size_t& first_error_image, edge_status& first_status,
                        const ClassTargets* classes = nullptr);

 private:
  void worker_loop();
  void process_job();
  void record_chunk(size_t k);  // the k images of the chunk just predicted
  void set_image_failure(size_t i, edge_status status, uint32_t review, const std::string& message);
  void copy_out(size_t done, edge_batch_outputs& out, const ClassTargets* classes) const;
  edge_region_result group_of(size_t i, size_t g) const;  // image i's result of group g

  std::unique_ptr<Runtime> runtime_;
  Inspector& owner_;
  const size_t region_count_;
  const size_t class_count_;  // class probabilities per image (classifier bundles), else 0
  size_t chunk_images_ = 1;  // images per predict() call

  std::mutex mutex_;
  std::condition_variable wake_, progress_;
  bool stop_ = false, queued_ = false, running_ = false, abandoned_ = false;
  size_t done_ = 0;  // images [0, done_) have final results (guarded by mutex_)

  // The job (written by the caller before start(), read by the worker).
  size_t count_ = 0;
  bool want_regions_ = false, want_heatmaps_ = false, want_classes_ = false;
  std::vector<uint8_t> staging_;
  std::vector<ImageView> views_;
  std::vector<uint8_t> usable_;          // 0: refused while staging (result already final)
  std::vector<int64_t> heat_offset_;     // per image, into heat_ (caller's layout)

  // Results (written by the worker for images >= done_, read by the caller for images < done_).
  std::vector<edge_image_result> results_;
  std::vector<edge_region_result> regions_;
  std::vector<float> heat_;
  std::vector<float> probs_;     // class probabilities per image (want_classes_), NaN until judged
  std::vector<int32_t> top_;     // top class per image (want_classes_), -1 until judged
  std::string first_error_;
  size_t first_error_image_ = 0;
  edge_status first_status_ = EDGE_OK;
  Results chunk_;
  std::vector<ImageView> chunk_views_;  // the chunk's images (chunk_images_ entries)
  std::vector<size_t> chunk_index_;     // their index in the cycle
  std::vector<Verdict> region_verdicts_;  // of the image being recorded, checked (region_count_ entries)
  RegionGroups groups_;                   // of the bundle's regions
  // one image's region results, for group_result (scratch of the const copy_out, caller's thread)
  mutable std::vector<float> group_scores_, group_norms_;
  mutable std::vector<Verdict> group_verdicts_, group_scratch_;

  std::thread worker_;  // last: started after everything above is constructed
};

class Inspector {
 public:
  Inspector(std::shared_ptr<const Bundle> bundle, const InspectorOptions& options);
  ~Inspector();

  const Runtime& runtime() const { return contexts_.front()->runtime(); }
  const InspectorOptions& options() const { return options_; }
  const std::string& bundle_path() const { return bundle_->path; }
  size_t region_count() const { return region_count_; }
  size_t group_count() const { return group_count_; }

  // `classes` (edge_run_classes): also each image's class probabilities and top class, never
  // left unwritten (NaN / -1 where not judged).
  edge_status run(const edge_image* images, size_t count, double deadline_ms, ColorOrder order, edge_batch_outputs& out,
                  const ClassTargets* classes = nullptr);
  size_t class_count() const { return class_count_; }

  // Floats of the heatmaps of `images` in the output layout (each image's own size, in order).
  static size_t heatmap_floats(const edge_image* images, size_t count);

  // The run vote of the bundle's decision.run (k of n) over the products the host names.
  RunVote& run_vote() { return run_vote_; }

 private:
  friend class Context;
  Context* acquire(bool has_deadline, Clock::time_point deadline);
  void release(Context* c);

  std::shared_ptr<const Bundle> bundle_;
  InspectorOptions options_;
  size_t region_count_ = 0, group_count_ = 0, class_count_ = 0;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<Context*> free_;  // capacity reserved for all contexts: push/pop never allocate
  RunVote run_vote_;
};

}  // namespace edge::capi
