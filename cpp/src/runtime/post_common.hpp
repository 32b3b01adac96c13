// Helpers shared by the post-processing kinds: manifest field checks and the map path
// (bilinear resize of a grid to the unit's size, then Gaussian blur).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/ssim.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "postprocess.hpp"

namespace edge {

// The fp32 entry of network `name` (the manifest field `field` names it), or a BundleError.
inline const NetworkSpec& require_network(const Manifest& m, const Fields& pp, const std::string& field,
                                          const std::string& name) {
  const NetworkSpec* n = m.network(name, "fp32");
  if (!n) pp.fail(field, "no network named \"" + name + "\" in networks");
  return *n;
}

inline const TensorSpec& require_output(const NetworkSpec& net, const Fields& pp, const std::string& field,
                                        const std::string& name) {
  const TensorSpec* t = net.find_output(name);
  if (!t) pp.fail(field, "network \"" + net.name + "\" has no output \"" + name + "\"");
  return *t;
}

inline std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The array a postprocess.arrays role names, with the expected dtype and shape.
inline const Tensor& require_array(const Bundle& b, const Fields& pp, const std::string& role, DType dtype,
                                   const std::vector<int64_t>& shape) {
  Fields arrays = pp.object("arrays");
  const std::string name = arrays.str(role);
  auto it = b.arrays.tensors.find(name);
  if (it == b.arrays.tensors.end())
    arrays.fail(role, "names array \"" + name + "\", which arrays.safetensors does not hold");
  const Tensor& t = it->second;
  if (t.dtype != dtype || t.shape != shape)
    arrays.fail(role, "array \"" + name + "\" is " + dtype_name(t.dtype) + " " + shape_text(t.shape) + ", expected " +
                          dtype_name(dtype) + " " + shape_text(shape));
  return t;
}

inline double blur_sigma_field(const Fields& pp, const std::string& key) {
  const double s = pp.number(key);
  if (!(s >= 0.0)) pp.fail(key, "expected a number >= 0");
  if (s > 0) {
    try {
      gaussian_radius(s);
    } catch (const ArgumentError& e) {
      pp.fail(key, e.what());
    }
  }
  return s;
}

// postprocess.ssim {window, sigma, k1, k2, data_range} for h x w images, checked as the SSIM
// kernel checks them (a BundleError naming "ssim" otherwise).
inline SsimParams ssim_params_field(const Fields& pp, int64_t h, int64_t w) {
  Fields s = pp.object("ssim");
  SsimParams p;
  p.window = static_cast<int>(s.integer("window", 1, 63));
  p.sigma = static_cast<float>(s.positive("sigma"));
  p.k1 = static_cast<float>(s.number("k1"));
  p.k2 = static_cast<float>(s.number("k2"));
  p.data_range = static_cast<float>(s.positive("data_range"));
  try {
    validate_ssim(p, h, w);
  } catch (const ArgumentError& e) {
    pp.fail("ssim", e.what());
  }
  return p;
}

// A bundle array where the exec's kernels read it: the bundle's own memory on the CPU, a copy
// uploaded once at load on a CUDA device.
class ExecArray {
 public:
  ExecArray(const Exec& e, const Tensor& t) : buf_(e) {
    if (!e.cuda()) {
      ptr_ = t.storage.get();
      return;
    }
    void* copy = buf_.reserve(t.nbytes, "bundle array");
    exec_copy(e, copy, t.storage.get(), t.nbytes, "bundle array upload");
    ptr_ = copy;
    exec_sync(e, "bundle array upload");
  }
  template <class T>
  const T* get() const {
    return static_cast<const T*>(ptr_);
  }

 private:
  ExecBuffer buf_;
  const void* ptr_ = nullptr;
};

}  // namespace edge
