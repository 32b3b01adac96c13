// The manifest written beside each TensorRT engine (<engine>.json, by converters/trt_builder.py)
// and the rules deciding whether an engine may run on this machine for this bundle. The same
// rules as converters/engine_manifest.py; both are tested on tests/data/engine_manifest_cases.json.
//
// An engine is refused when (one difference per field, in this order):
//   tensorrt_version        not exactly this process's TensorRT (no version-compatible engines)
//   gpu.compute_capability  not this GPU's architecture
//   gpu.name                not this GPU model (TensorRT tunes kernels for the exact device)
//   cuda_runtime_version    newer than the CUDA version this driver supports
//   source_onnx_sha256      not the bundle's ONNX file for this network and precision
//   precision               not the requested variant
//   profiles                the runtime's batch outside the profile, or other per-image input shapes
// A different driver release is only a note. Unknown machine facts are not compared.
//
// Pure C++ (no TensorRT, no CUDA): compiled into every build so the rules are tested everywhere.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edge_sdk/runtime/json.hpp"

namespace edge {

constexpr const char* kEngineManifestSchema = "edge_sdk.engine";
constexpr int kEngineManifestSchemaVersion = 1;

// A manifest that cannot be read or lacks a field; the message names the file and the field.
struct EngineManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct EngineProfileShapes {
  std::vector<int64_t> min, opt, max;
};

struct EngineManifest {
  std::string engine_file, engine_sha256, network, precision, source_onnx, source_onnx_sha256;
  std::string tensorrt_version;
  std::optional<std::string> cuda_runtime_version, cuda_driver_version, driver_version;
  std::string gpu_name;
  int compute_capability_major = 0, compute_capability_minor = 0;
  // profiles[i]: input name -> shapes, in the file's order.
  std::vector<std::vector<std::pair<std::string, EngineProfileShapes>>> profiles;
  json::Value raw;
};

// What this machine is; an unknown fact (nullopt) is not compared.
struct EngineMachine {
  std::optional<std::string> tensorrt_version;     // "10.14.1.48"
  std::optional<std::string> cuda_driver_version;  // CUDA version the driver supports, "12.9"
  std::optional<std::string> driver_version;       // driver release, "575.57.08"
  std::optional<std::string> gpu_name;
  std::optional<std::pair<int, int>> compute_capability;
};

// What the bundle and the runtime require of the engine; nullopt = not checked.
struct EngineExpectation {
  std::optional<std::string> source_onnx_sha256;
  std::optional<std::string> precision;
  std::optional<int64_t> max_batch;  // the largest batch the runtime will enqueue
  // input name -> per-image shape (without the batch axis), in the bundle's order
  std::optional<std::vector<std::pair<std::string, std::vector<int64_t>>>> input_shapes;
};

struct EngineDifference {
  std::string field, message;
};

struct EngineCheck {
  std::vector<EngineDifference> differences;
  std::vector<std::string> notes;
  bool ok() const { return differences.empty(); }
  // "<engine>: the engine does not match this machine or bundle:\n  field: message..."
  std::string message(const std::string& engine) const;
};

// Field and type checks; `source` names the file in errors.
EngineManifest parse_engine_manifest(const json::Value& doc, const std::string& source);
// "<engine>.json" beside the engine.
std::string engine_manifest_path(const std::string& engine_path);
// Reads and parses the manifest of an engine file (EngineManifestError when missing or invalid).
EngineManifest read_engine_manifest(const std::string& engine_path);

EngineCheck engine_differences(const EngineManifest& m, const EngineMachine& machine, const EngineExpectation& expected);

// "<dir>/<network>.<precision>.*.engine", sorted by name (empty when dir does not exist).
std::vector<std::string> engine_candidates(const std::string& dir, const std::string& network,
                                           const std::string& precision);

}  // namespace edge
