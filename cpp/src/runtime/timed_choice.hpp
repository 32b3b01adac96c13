// backend="auto" between backends that can all run a network here (ONNX Runtime and OpenVINO on
// the CPU): each is bound to the runtime's buffers, timed on them, and the fastest is kept; the
// others are released before the first image. Measured, not guessed: which library is faster
// depends on the network, the batch and the CPU (see docs/RESULTS.md). The pick is remembered per
// network content, options and timed batch for the life of the process, so every later runtime of
// that network at that batch (the C ABI's contexts, a bundle opened again) runs the same library,
// with the same results; a runtime with another max batch is timed at its own.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/backend.hpp"

namespace edge {

struct BackendFactory {
  std::string name;  // "onnxruntime", "openvino"
  std::function<std::unique_ptr<Backend>()> make;  // throws BackendError when unavailable here
};

// `key` names the network and the options that change its speed (content hash, threads); the
// candidates are timed at `max_batch` (at most 8, to bound the cost of an open), which joins the
// key. Throws the first factory's BackendError when none can be created.
std::unique_ptr<Backend> make_timed_choice(const std::string& key, int64_t max_batch,
                                           const std::vector<BackendFactory>& factories);

}  // namespace edge
