// Post-processing of one network batch into raw scores and anomaly maps, one implementation per
// manifest postprocess.kind. Built from the bundle at load: the kind-specific fields and arrays
// are checked there (errors name the manifest field), buffers are sized for max_batch units.
// Each kind is one class whose stages call the kernels on the Exec it is given (exec.hpp): the
// CPU's thread pool, or a CUDA device's stream with every buffer and tensor in device memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/decision_math.hpp"
#include "exec.hpp"

namespace edge {

// A tensor of the current batch (in the exec's memory): unit k's values start at data + k * per_item.
struct TensorRef {
  const float* data = nullptr;
  int64_t per_item = 0;
  const float* item(int64_t k) const { return data + k * per_item; }
};
// The preprocessed image (under the name of every network input that no network produces) and
// every network output, by tensor name.
using TensorMap = std::map<std::string, TensorRef>;

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;

  // Networks to run, in order (manifest networks[].name). Each network's inputs are the
  // preprocessed image or outputs of networks before it.
  virtual const std::vector<std::string>& networks() const = 0;

  // Raw scores of units [first, first + n) of the batch into scores[0, n) (exec memory). Keeps
  // per-unit state (grids) for map(). Throws ArgumentError when a kernel refuses the data
  // (non-finite features).
  virtual void scores(int64_t first, int64_t n, const TensorMap& t, float* scores) = 0;

  // Raw anomaly map of unit i of the batch (after scores() covered it) at h x w, its own size
  // (exec memory).
  virtual void map(int64_t i, int64_t h, int64_t w, float* out) = 0;

  // True when the image score is the maximum of the map at the unit's size (then map() is
  // needed for every unit, heatmaps or not).
  virtual bool score_from_map() const = 0;

  // Supervised classifiers only (kind "classifier"): K class probabilities per unit, judged by
  // their own rule (decision_math.hpp classify_verdict) instead of score >= threshold. The other
  // kinds have no classes (0).
  virtual int64_t class_count() const { return 0; }
  // Probabilities of units [first, first + n) (after scores() covered them) into host memory
  // out[0, n * class_count()), unit-major.
  virtual void class_probabilities(int64_t first, int64_t n, float* out) {
    (void)first, (void)n, (void)out;
  }
  virtual ClassRule class_rule() const { return {}; }
  virtual std::vector<std::string> class_names() const { return {}; }
};

std::unique_ptr<PostProcessor> make_postprocessor(const Bundle& bundle, int64_t max_batch, const Exec& exec);

// Kinds implemented by this runtime (the manifest's postprocess.kind must be one of them).
std::vector<std::string> postprocess_kinds();

}  // namespace edge
