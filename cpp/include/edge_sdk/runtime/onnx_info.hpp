// Reads what the bundle validator needs from an ONNX file without ONNX Runtime: graph inputs and
// outputs (name, element type, dimensions), opsets and metadata_props. A minimal protobuf wire
// format reader over the ModelProto fields of onnx.proto3; everything else is skipped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edge {

struct OnnxValueInfo {
  std::string name;
  int32_t elem_type = 0;            // onnx.TensorProto.DataType: 1 float, 10 float16, 7 int64, ...
  bool has_shape = false;
  std::vector<int64_t> dims;        // -1 for a symbolic or unknown dimension
  std::vector<std::string> dim_params;  // symbolic names ("" where fixed)
};

struct OnnxInfo {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::string producer_name, producer_version;
  std::vector<OnnxValueInfo> inputs;      // graph inputs that are not initializers
  std::vector<OnnxValueInfo> outputs;
  std::map<std::string, std::string> metadata;  // metadata_props
  int64_t node_count = 0;
};

const char* onnx_elem_type_name(int32_t t);  // "float32", "float16", ... or "type <n>"

// Throws BundleError "<source>: not a valid ONNX model (...)" on malformed protobuf or a model
// without a graph.
OnnxInfo read_onnx_info(const uint8_t* data, size_t size, const std::string& source);

}  // namespace edge
