// Argument checks for NumPy arrays crossing into the kernels. Every message names the argument
// and says what was expected, so a user can fix the call without reading the source.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

namespace edge_py {
namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Returns `obj` as a C-contiguous array of T without copying; raises TypeError for another dtype
// or a non-array and ValueError for a non-contiguous array or a rank outside [min_ndim, max_ndim].
template <typename T>
py::array_t<T> require_array(const py::handle& obj, const char* name, int min_ndim, int max_ndim) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy array, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const auto want = py::dtype::of<T>();
  if (!arr.dtype().is(want))
    throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(want)) +
                         ", got " + std::string(py::str(arr.dtype())) + " (convert with .astype(np." +
                         std::string(py::str(want)) + "))");
  if (arr.ndim() < min_ndim || arr.ndim() > max_ndim) {
    std::string want_nd = min_ndim == max_ndim ? std::to_string(min_ndim)
                                               : std::to_string(min_ndim) + " or " + std::to_string(max_ndim);
    throw py::value_error(std::string(name) + ": expected " + want_nd + " dimensions, got shape " +
                          shape_str(arr));
  }
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error(std::string(name) +
                          ": expected a C-contiguous array (use np.ascontiguousarray)");
  return py::reinterpret_borrow<py::array_t<T>>(arr);
}

template <typename T>
void require_finite(const py::array_t<T>& a, const char* name) {
  const T* p = a.data();
  const py::ssize_t n = a.size();
  for (py::ssize_t i = 0; i < n; ++i)
    if (!std::isfinite(static_cast<float>(p[i])))
      throw py::value_error(std::string(name) + ": contains NaN or infinity (first at flat index " +
                            std::to_string(i) + ")");
}

inline void require_nonempty(const py::array& a, const char* name) {
  if (a.size() == 0)
    throw py::value_error(std::string(name) + ": empty array of shape " + shape_str(a));
}

inline void require_same_shape(const py::array& a, const char* na, const py::array& b, const char* nb) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same)
    throw py::value_error(std::string(na) + " and " + nb + ": shapes differ, " + shape_str(a) +
                          " vs " + shape_str(b));
}

template <typename T>
py::array_t<T> empty_array(const std::vector<py::ssize_t>& shape) {
  return py::array_t<T>(shape);
}

}  // namespace edge_py
