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
#include "edge_sdk/runtime/signature.hpp"

namespace edge {

// Subdirectory reserved for machine-specific TensorRT engines built from the bundle; they carry
// their own manifest and are not part of the checksummed bundle.
constexpr const char* kEnginesDir = "engines";

// Bounds on what a bundle may make the loader read (checked before reading; docs/BUNDLE.md).
constexpr uint64_t kMaxManifestBytes = 16 << 20;  // manifest.json (real ones: a few kB)
constexpr size_t kMaxBundleEntries = 1024;        // top-level files of a directory or archive
// (kMaxFileBytes and kMaxBundleBytes, the caps on the files' declared sizes: manifest.hpp.)

struct LoadOptions {
  // Ed25519 public keys (PEM files, or directories of *.pem files) the bundle's signature.json
  // must verify against, in addition to those of the environment variable EDGE_SDK_TRUSTED_KEYS.
  // When neither names a key, signatures are not checked (an unsigned bundle loads).
  std::vector<std::string> trusted_keys;
  bool trusted_keys_from_env = true;  // false: EDGE_SDK_TRUSTED_KEYS is ignored
};

struct Bundle {
  std::string path;  // as given
  Manifest manifest;
  SafeTensors arrays;
  std::map<std::string, OnnxInfo> onnx;                   // by file name
  std::map<std::string, std::vector<uint8_t>> contents;   // ONNX files' bytes (for the backend)
  std::string signed_by;  // key id of the verified signature; "" when no trusted key was configured

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
// With trusted keys (options, EDGE_SDK_TRUSTED_KEYS), signature.json must hold a valid signature
// of manifest.json by one of them, checked before the manifest is parsed. Only regular files are
// read, and no file is read before its size is known to be the one the manifest declares.
// Throws BundleError naming the file or field at fault.
Bundle load_bundle(const std::string& path, const LoadOptions& options = {});

}  // namespace edge
