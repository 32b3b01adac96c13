// Post-processing of one network batch into raw scores and anomaly maps, one implementation per
// manifest postprocess.kind. Built from the bundle at load: the kind-specific fields and arrays
// are checked there (errors name the manifest field), buffers are sized for max_batch units.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;

  // Network the post-processing reads (name of manifest networks[].name).
  virtual const std::string& network() const = 0;

  // Raw scores of units [0, n) of the batch. input: the preprocessed network input (n x C x H x
  // W); outputs: the network outputs in manifest order. May keep per-batch state (grids) for
  // map(). Throws ArgumentError when a kernel refuses the data (e.g. non-finite features).
  virtual void scores(int64_t n, const float* input, const std::vector<const float*>& outputs, float* scores) = 0;

  // Raw anomaly map of unit i of the last scores() batch at h x w (the unit's own size).
  virtual void map(int64_t i, int64_t h, int64_t w, float* out) = 0;

  // True when the image score is the maximum of the map (then map() is needed for every unit).
  virtual bool score_from_map() const = 0;
};

std::unique_ptr<PostProcessor> make_postprocessor(const Bundle& bundle, int64_t max_batch, ThreadPool& pool);

// Kinds implemented by this runtime (the manifest's postprocess.kind must be one of them).
std::vector<std::string> postprocess_kinds();

}  // namespace edge
