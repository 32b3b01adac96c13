#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/rank.hpp"

namespace edge_py {
namespace {

template <typename T>
py::tuple extremes(py::handle obj, const std::string& device) {
  auto f = require_array<T>(obj, "frames", 4, 5);
  require_nonempty(f, "frames");
  if constexpr (std::is_floating_point_v<T>) require_finite(f, "frames");
  const int64_t n = f.shape(0), k = f.shape(1);
  int64_t pixels = 1;
  std::vector<py::ssize_t> shape{f.shape(0)};
  for (py::ssize_t d = 2; d < f.ndim(); ++d) {
    pixels *= f.shape(d);
    shape.push_back(f.shape(d));
  }
  edge::validate_frame_extremes(n, k, pixels);
  const edge::Device dev = edge::parse_device(device);
  py::array_t<T> lo(shape), hi(shape);
  T* l = lo.mutable_data();
  T* h = hi.mutable_data();
  {
    py::gil_scoped_release release;
    edge::frame_extremes(f.data(), n, k, pixels, l, h, dev);
  }
  return py::make_tuple(lo, hi);
}

}  // namespace

EDGE_PY_BINDER(rank) {
  m.def(
      "frame_extremes",
      [](py::handle frames, const std::string& device) {
        if (py::isinstance<py::array>(frames)) {
          const auto dtype = py::reinterpret_borrow<py::array>(frames).dtype();
          if (dtype.is(py::dtype::of<uint8_t>())) return extremes<uint8_t>(frames, device);
          if (!dtype.is(py::dtype::of<float>()))
            throw py::type_error("frames: expected dtype uint8 or float32, got " + std::string(py::str(dtype)));
        }
        return extremes<float>(frames, device);
      },
      py::arg("frames"), py::arg("device"));
}

}  // namespace edge_py
