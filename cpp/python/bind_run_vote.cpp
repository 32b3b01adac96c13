#include <pybind11/pybind11.h>

#include "registry.hpp"
#include "edge_sdk/runtime/manifest.hpp"
#include "edge_sdk/runtime/run_vote.hpp"

namespace edge_py {
namespace {

py::dict status_dict(const edge::RunStatus& s) {
  py::dict d;
  d["decided"] = s.decided;
  d["verdict"] = static_cast<int>(s.verdict);  // the C ABI's code
  d["judged"] = s.judged;
  d["rejects"] = s.rejects;
  d["accepts"] = s.accepts;
  d["reviews"] = s.reviews;
  d["missing"] = s.missing;
  return d;
}

}  // namespace

EDGE_PY_BINDER(run_vote) {
  py::register_exception<edge::RunCapacityError>(m, "RunCapacityError", PyExc_RuntimeError);
  // (k, n) of a bundle without decision.run
  m.attr("RUN_VOTE_DEFAULT") = py::make_tuple(edge::DecisionSpec{}.run_k, edge::DecisionSpec{}.run_n);
  py::class_<edge::RunVote>(m, "RunVote")
      .def(py::init([](int k, int n, size_t max_open) { return new edge::RunVote({k, n, max_open}); }),
           py::arg("k"), py::arg("n"), py::arg("max_open"))
      .def(
          "add",
          [](edge::RunVote& v, const std::string& product, int index, int verdict) {
            return status_dict(v.add(product, index, static_cast<edge::Verdict>(verdict)));
          },
          py::arg("product"), py::arg("index"), py::arg("verdict"))
      .def(
          "close", [](edge::RunVote& v, const std::string& product) { return status_dict(v.close(product)); },
          py::arg("product"))
      .def("open", &edge::RunVote::open);
}

}  // namespace edge_py
