// The bundle manifest (manifest.json, schema version 1; docs/BUNDLE.md is the reference) as typed
// C++ values. parse_manifest checks every field's presence, type and range and names the field
// in its errors ("manifest.json: input.height: expected an integer >= 1, got -3").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "edge_sdk/runtime/json.hpp"
#include "edge_sdk/runtime/safetensors.hpp"
#include "edge_sdk/runtime/tiling.hpp"

namespace edge {

constexpr int kBundleSchemaVersion = 1;
constexpr const char* kBundleFormat = "edge-sdk-bundle";
constexpr const char* kManifestFile = "manifest.json";
// Caps on the files' declared sizes (files.<name>.bytes): one file (ONNX's protobuf limit is
// 2 GiB; a PatchCore bank of 100k x 1536 float32 is 0.6 GiB) and all files together.
constexpr int64_t kMaxFileBytes = int64_t(4) << 30;
constexpr int64_t kMaxBundleBytes = int64_t(8) << 30;
// Keys of the ONNX metadata_props written by the converter.
constexpr const char* kOnnxMetaManifest = "edge_sdk.manifest";
constexpr const char* kOnnxMetaSchema = "edge_sdk.schema_version";
constexpr const char* kOnnxMetaNetwork = "edge_sdk.network";

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // -1 for the dynamic batch axis
  std::string dtype;           // "float32"
  std::string meaning;
};

struct NetworkSpec {
  std::string name;       // role, e.g. "backbone" or "generator"
  // "fp32", "fp16", "int8" (carried by the graph), or "bf16": the fp32 graph, computed in bfloat16 by
  // OpenVINO (its inference precision hint), the one backend that does.
  std::string precision;
  std::string file;
  std::vector<TensorSpec> inputs, outputs;
  const TensorSpec* find_output(const std::string& n) const;
};

struct InputSpec {
  int64_t height = 0, width = 0, channels = 0;
  std::string color_order;  // "RGB" (channels 3) or "GRAY" (channels 1)
  std::vector<float> mean, std;
  double scale = 1.0 / 255.0;  // raw pixel value * scale before normalization
  double value_min = 0.0, value_max = 255.0;  // expected range of raw pixel values
  std::string resize;          // "bilinear"
  bool antialias = false;
  std::string on_size_mismatch;  // "resize" or "reject"
  std::vector<std::string> dtypes;  // accepted image dtypes: "uint8", "float32"
  // input.acquisition.frames: an acquisition is this many frames, judged with their two rank-filter
  // images (per-pixel lowest and highest) as frames + 2 images; 0 = not declared (any count).
  int64_t acquisition_frames = 0;
  bool accepts(const std::string& dtype) const;
};

struct CalibrationSpec {
  double threshold = 0.0;  // raw-score decision threshold
  double min = 0.0, max = 1.0;  // normalization: clip((s - threshold) / (max - min) + 0.5, 0, 1)
};

struct DecisionSpec {
  // Half-width of the band of normalized scores around 0.5 (the threshold) judged "review".
  double review_band = 0.0;
  // The run vote of a product acquired run_n times (decision.run; the vial line's 7 of 10).
  int run_k = 7, run_n = 10;
};

// A rectangle of the frame, cut out, resized to the network input and judged on its own with its
// own raw-score threshold (edge_sdk.regions).
struct RegionSpec {
  std::string name;
  int64_t x = 0, y = 0, width = 0, height = 0;  // in frame pixels
  double threshold = 0.0;                       // raw image-score threshold of this region
  std::string group;                            // the unit it belongs to (e.g. its vial); "" = none
};

// The groups of a region layout, in order of first appearance: names and member region indices.
struct RegionGroups {
  std::vector<std::string> names;
  std::vector<std::vector<int32_t>> members;
  std::vector<int32_t> of_region;  // group index of each region, -1 for none
};
RegionGroups region_groups(const std::vector<RegionSpec>& regions);

struct ArraySpec {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct FileEntry {
  std::string sha256;
  int64_t bytes = 0;
};

struct Manifest {
  int64_t schema_version = 0;
  std::string sdk_version;
  std::string model_type;
  std::string model_name;
  InputSpec input;
  std::vector<NetworkSpec> networks;
  std::string arrays_file;                  // "" when the model has no arrays
  std::map<std::string, ArraySpec> arrays;  // declared tensors of arrays_file
  json::Value postprocess;                  // kind-specific; checked by the pipeline plan
  std::string postprocess_kind;
  CalibrationSpec calibration;
  DecisionSpec decision;
  std::vector<RegionSpec> regions;           // empty: each image is one unit
  int64_t frame_width = 0, frame_height = 0;  // size of the frames the regions are cut from
  // input.tiling: the frame is cut into a grid of overlapping tiles; `regions` then holds the
  // generated tiles ("tile_<row>_<col>", row-major, the calibration threshold each) and the runtime
  // stitches their maps into the frame's heatmap and scores the frame as the maximum tile score.
  TilingSpec tiling;
  std::map<std::string, FileEntry> files;   // every file of the bundle except manifest.json
  json::Value raw;                          // the whole document

  // Network by role and precision, or nullptr.
  const NetworkSpec* network(const std::string& name, const std::string& precision = "fp32") const;
  // Precision variants present for the first network role.
  std::vector<std::string> precisions() const;
};

// `source` names the manifest in errors (normally "<bundle>/manifest.json").
Manifest parse_manifest(const json::Value& doc, const std::string& source);

// The manifest as embedded in each ONNX file's metadata_props: everything but "files" (a file
// cannot hold its own checksum).
json::Value manifest_for_onnx(const json::Value& doc);

}  // namespace edge
