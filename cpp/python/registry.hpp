// Each binding file registers its function here with a static EDGE_PY_BINDER(name) block, so
// adding a kernel family touches no shared file. module.cpp runs them in name order.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

namespace edge_py {
namespace py = pybind11;
using BindFn = void (*)(py::module_&);

inline std::vector<std::pair<std::string, BindFn>>& binders() {
  static std::vector<std::pair<std::string, BindFn>> list;
  return list;
}

struct RegisterBinder {
  RegisterBinder(const char* name, BindFn fn) { binders().emplace_back(name, fn); }
};

}  // namespace edge_py

#define EDGE_PY_BINDER(name)                                                  \
  static void edge_py_bind_##name(::edge_py::py::module_& m);                 \
  static ::edge_py::RegisterBinder edge_py_reg_##name(#name, &edge_py_bind_##name); \
  static void edge_py_bind_##name(::edge_py::py::module_& m)
