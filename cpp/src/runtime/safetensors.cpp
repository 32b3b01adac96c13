#include "edge_sdk/runtime/safetensors.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/json.hpp"

namespace edge {

namespace {
struct DTypeInfo {
  DType t;
  const char* code;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", "float32", 4}, {DType::F16, "F16", "float16", 2},
    {DType::BF16, "BF16", "bfloat16", 2}, {DType::F64, "F64", "float64", 8},
    {DType::I64, "I64", "int64", 8},   {DType::I32, "I32", "int32", 4},
    {DType::I16, "I16", "int16", 2},   {DType::I8, "I8", "int8", 1},
    {DType::U8, "U8", "uint8", 1},     {DType::Bool, "BOOL", "bool", 1},
};

std::shared_ptr<uint8_t> aligned_bytes(size_t n) {
  void* p = ::operator new(std::max<size_t>(n, 1), std::align_val_t(64));
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p),
                                  [](uint8_t* q) { ::operator delete(q, std::align_val_t(64)); });
}
}  // namespace

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.name;
  return "?";
}
size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.size;
  return 0;
}
bool dtype_from_safetensors(const std::string& code, DType* out) {
  for (const auto& d : kDTypes)
    if (code == d.code) {
      *out = d.t;
      return true;
    }
  return false;
}
bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& d : kDTypes)
    if (name == d.name) {
      *out = d.t;
      return true;
    }
  return false;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Tensor::shape_str() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

SafeTensors parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  auto fail = [&](const std::string& what) -> void { throw BundleError(source + ": " + what); };
  if (size < 8) fail("truncated safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > 100u * 1024 * 1024 || header_len > size - 8)
    fail("safetensors header length " + std::to_string(header_len) + " exceeds the file size " +
         std::to_string(size));
  const std::string header(reinterpret_cast<const char*>(data + 8), header_len);
  json::Value root;
  try {
    root = json::parse(header, source + " (safetensors header)");
  } catch (const json::ParseError& e) {
    throw BundleError(e.what());
  }
  if (!root.is_object()) fail("safetensors header is not a JSON object");
  const uint8_t* buffer = data + 8 + header_len;
  const uint64_t buffer_len = size - 8 - header_len;

  SafeTensors out;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, v] : root.as_object()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ is not an object");
      for (const auto& [k, mv] : v.as_object()) {
        if (!mv.is_string()) fail("__metadata__." + k + " is not a string");
        out.metadata[k] = mv.as_string();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) fail(where + ": entry is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offs = v.find("data_offsets");
    if (!dt || !dt->is_string()) fail(where + ": missing string 'dtype'");
    if (!shape || !shape->is_array()) fail(where + ": missing array 'shape'");
    if (!offs || !offs->is_array() || offs->as_array().size() != 2) fail(where + ": missing 'data_offsets' [begin, end]");
    Tensor t;
    if (!dtype_from_safetensors(dt->as_string(), &t.dtype)) fail(where + ": unsupported dtype '" + dt->as_string() + "'");
    uint64_t numel = 1;
    for (const auto& d : shape->as_array()) {
      if (!d.is_integer() || d.as_int() < 0) fail(where + ": shape entries must be integers >= 0");
      t.shape.push_back(d.as_int());
      if (d.as_int() > 0 && numel > (uint64_t(1) << 48) / uint64_t(d.as_int())) fail(where + ": shape too large");
      numel *= uint64_t(d.as_int());
    }
    const auto& o = offs->as_array();
    if (!o[0].is_integer() || !o[1].is_integer() || o[0].as_int() < 0 || o[1].as_int() < o[0].as_int())
      fail(where + ": invalid data_offsets");
    const uint64_t b = uint64_t(o[0].as_int()), e = uint64_t(o[1].as_int());
    if (e > buffer_len)
      fail(where + ": data_offsets end " + std::to_string(e) + " beyond the data (" + std::to_string(buffer_len) +
           " bytes; file truncated?)");
    t.nbytes = size_t(e - b);
    if (uint64_t(t.nbytes) != numel * dtype_size(t.dtype))
      fail(where + ": " + std::to_string(t.nbytes) + " bytes of data for shape " + t.shape_str() + " of " +
           dtype_name(t.dtype) + " (expected " + std::to_string(numel * dtype_size(t.dtype)) + ")");
    t.storage = aligned_bytes(t.nbytes);
    if (t.nbytes) std::memcpy(t.storage.get(), buffer + b, t.nbytes);
    spans.push_back({b, e, name});
    out.tensors.emplace(name, std::move(t));
  }
  // The format requires the tensors to tile the data region exactly (no holes, no overlaps).
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  uint64_t at = 0;
  for (const auto& s : spans) {
    if (s.begin != at) fail("tensor '" + s.name + "': data overlaps another tensor or leaves a gap");
    at = s.end;
  }
  if (at != buffer_len)
    fail(std::to_string(buffer_len - at) + " trailing bytes after the last tensor");
  return out;
}

}  // namespace edge
