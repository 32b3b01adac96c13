// Loading and validating a bundle: a directory (or an uncompressed tar archive of one) holding
// manifest.json, the ONNX network(s) and arrays.safetensors. load_bundle is THE validator: the C++
// runtime and the Python API (edge_sdk.bundle) both go through it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edge_sdk/runtime/manifest.hpp"
#include "edge_sdk/runtime/onnx_info.hpp"
#include "edge_sdk/runtime/safetensors.hpp"

namespace edge {

// Subdirectory reserved for machine-specific TensorRT engines built from the bundle; they carry
// their own manifest and are not part of the checksummed bundle.
constexpr const char* kEnginesDir = "engines";

struct Bundle {
  std::string path;  // as given
  Manifest manifest;
  SafeTensors arrays;
  std::map<std::string, OnnxInfo> onnx;                   // by file name
  std::map<std::string, std::vector<uint8_t>> contents;   // ONNX files' bytes (for the backend)

  const Tensor& array(const std::string& name, const std::string& field) const;

  // Read-only data computed from the arrays once and shared by every runtime and context on this
  // bundle (the post-processing's packed factors: tens of MB, not one copy per context). `make`
  // runs on the first request for `key`; later requests get the same object.
  template <class T>
  std::shared_ptr<const T> derived(const std::string& key, const std::function<std::shared_ptr<const T>()>& make) const {
    std::lock_guard<std::mutex> lock(derived_->mutex);
    std::shared_ptr<const void>& slot = derived_->items[key];
    if (!slot) slot = make();
    return std::static_pointer_cast<const T>(slot);
  }

 private:
  struct Derived {
    std::mutex mutex;
    std::map<std::string, std::shared_ptr<const void>> items;
  };
  std::shared_ptr<Derived> derived_ = std::make_shared<Derived>();
};

// Reads and checks everything: manifest schema and fields, files present and no unlisted ones,
// size and sha256 of every file, the arrays against their declared dtypes and shapes, and each
// ONNX file against its manifest entry (inputs, outputs, shapes, opset, metadata_props).
// Throws BundleError naming the file or field at fault.
Bundle load_bundle(const std::string& path);

}  // namespace edge
