// Errors of the bundle loader and the runtime. Every message names the file, the manifest field
// or the option at fault, so it can be fixed without reading the source.
#pragma once

#include <stdexcept>

#include "edge_sdk/common.hpp"
#include "edge_sdk/runtime/text.hpp"

namespace edge {

// A bundle that cannot be used: missing/extra/corrupt file, wrong checksum, a manifest field with
// a wrong type or value, a manifest contradicting the ONNX file or the arrays. Messages quote
// bundle bytes (entry names, JSON text), so the text is made valid UTF-8 here, for every thrower.
struct BundleError : std::runtime_error {
  explicit BundleError(const std::string& what) : std::runtime_error(utf8_sanitize(what)) {}
};

// A failure of the network backend (library not found, too old, execution provider missing,
// inference error).
struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace edge
