// backend="auto" between backends that can all run a network here (ONNX Runtime and OpenVINO on
// the CPU): each is bound to the runtime's buffers, timed on them, and the fastest is kept; the
// others are released before the first image. Measured, not guessed: which library is faster
// depends on the network, the batch and the CPU (see docs/RESULTS.md).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edge_sdk/runtime/backend.hpp"

namespace edge {

struct BackendCandidate {
  std::string name;  // "onnxruntime", "openvino"
  std::unique_ptr<Backend> backend;
};

// A backend that becomes the fastest of `candidates` (at least one) when bound. `skipped` lists
// backends that could not be created, as "name: reason", for description().
std::unique_ptr<Backend> make_timed_choice(std::vector<BackendCandidate> candidates, std::vector<std::string> skipped);

}  // namespace edge
