// edge_sdk._core: the pybind11 layer over the C++ core. Each kernel family binds itself in its own
// file (see registry.hpp); this one holds the module and the device/thread functions.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "edge_sdk/devices.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace py = pybind11;

#include <algorithm>

#include "registry.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "edge_sdk compiled core (kernels and runtime)";
  m.attr("__version__") = EDGE_SDK_VERSION;
  m.def("built_with_cuda", &edge::built_with_cuda);
  m.def("devices", [] {
    py::list out;
    for (const auto& d : edge::list_devices()) {
      py::dict e;
      e["kind"] = d.kind;
      e["index"] = d.index;
      e["name"] = d.name;
      if (d.kind == "cuda") {
        e["compute_capability"] = py::make_tuple(d.cc_major, d.cc_minor);
        e["total_memory"] = d.total_memory;
      } else {
        e["threads"] = d.threads;
      }
      out.append(e);
    }
    return out;
  });
  m.def("set_num_threads", &edge::set_num_threads, py::arg("threads"));
  m.def("get_num_threads", &edge::get_num_threads);
  auto list = edge_py::binders();
  std::sort(list.begin(), list.end());
  for (const auto& [name, bind] : list) bind(m);
}
