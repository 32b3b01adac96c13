// Reader for the safetensors format (8-byte little-endian header length, JSON header, raw
// little-endian tensor data): the bundle's statistics arrays, loaded without pickle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edge {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

const char* dtype_name(DType t);          // "float32", "float16", ... (NumPy names)
size_t dtype_size(DType t);
bool dtype_from_safetensors(const std::string& code, DType* out);  // "F32" -> F32
bool dtype_from_name(const std::string& name, DType* out);         // "float32" -> F32

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::shared_ptr<uint8_t> storage;  // 64-byte aligned copy of the data
  size_t nbytes = 0;

  int64_t numel() const;
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(storage.get()); }
  std::string shape_str() const;
};

struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__" entries
};

// Parses a complete safetensors file held in memory. Throws BundleError naming `source` and the
// tensor for a truncated file, a malformed header, unknown dtypes, offsets outside the data,
// sizes that disagree with the shape, or overlapping / non-contiguous data.
SafeTensors parse_safetensors(const uint8_t* data, size_t size, const std::string& source);

}  // namespace edge
