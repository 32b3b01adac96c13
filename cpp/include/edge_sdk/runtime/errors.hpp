// Errors of the bundle loader and the runtime. Every message names the file, the manifest field
// or the option at fault, so it can be fixed without reading the source.
#pragma once

#include <stdexcept>

#include "edge_sdk/common.hpp"

namespace edge {

// A bundle that cannot be used: missing/extra/corrupt file, wrong checksum, a manifest field with
// a wrong type or value, a manifest contradicting the ONNX file or the arrays.
struct BundleError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A failure of the network backend (library not found, too old, execution provider missing,
// inference error).
struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace edge
