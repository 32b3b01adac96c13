#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/knn.hpp"

namespace edge_py {
namespace {

bool is_float16(const py::array& a) { return a.dtype().kind() == 'f' && a.dtype().itemsize() == 2; }

// The bank may be float32 or float16; float16 arrays are checked here (require_array only knows
// the C++ element types) and passed on as their binary16 bits.
py::array require_bank(const py::handle& obj) {
  if (py::isinstance<py::array>(obj) && is_float16(py::reinterpret_borrow<py::array>(obj))) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (arr.ndim() != 2)
      throw py::value_error("bank: expected 2 dimensions, got shape " + shape_str(arr));
    if (!(arr.flags() & py::array::c_style))
      throw py::value_error("bank: expected a C-contiguous array (use np.ascontiguousarray)");
    return arr;
  }
  if (py::isinstance<py::array>(obj)) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().is(py::dtype::of<float>()))
      throw py::type_error("bank: expected dtype float32 or float16, got " +
                           std::string(py::str(arr.dtype())) + " (convert with .astype(np.float32))");
  }
  return require_array<float>(obj, "bank", 2, 2);
}

void require_finite_half(const py::array& a, const char* name) {
  const auto* p = static_cast<const uint16_t*>(a.data());
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if ((p[i] & 0x7c00u) == 0x7c00u)
      throw py::value_error(std::string(name) + ": contains NaN or infinity (first at flat index " +
                            std::to_string(i) + ")");
}

}  // namespace

EDGE_PY_BINDER(knn) {
  m.def(
      "knn",
      [](py::handle queries_obj, py::handle bank_obj, int64_t k, const std::string& device,
         const std::string& isa, int extra) {
        auto queries = require_array<float>(queries_obj, "queries", 2, 2);
        py::array bank = require_bank(bank_obj);
        require_nonempty(queries, "queries");
        require_nonempty(bank, "bank");
        if (queries.shape(1) != bank.shape(1))
          throw py::value_error("queries and bank: feature dimensions differ, " +
                                shape_str(queries) + " vs " + shape_str(bank));
        const int64_t q = queries.shape(0), mrows = bank.shape(0), d = queries.shape(1);
        edge::validate_knn(q, mrows, d, k);
        const bool half = is_float16(bank);
        require_finite(queries, "queries");
        if (half)
          require_finite_half(bank, "bank");
        else
          require_finite(py::reinterpret_borrow<py::array_t<float>>(bank), "bank");
        const edge::Device dev = edge::parse_device(device);
        edge::KnnOptions options;
        options.isa = edge::parse_knn_isa(isa);
        options.extra = extra;
        if (extra < 0) throw py::value_error("extra: expected >= 0, got " + std::to_string(extra));
        if (dev.is_cuda() && (options.isa != edge::KnnIsa::Auto || extra != edge::KnnOptions{}.extra))
          throw py::value_error("isa, extra: CPU options, not applicable to device=\"" + device + "\"");
        py::array_t<float> distances({q, k});
        py::array_t<int64_t> indices({q, k});
        float* dist_ptr = distances.mutable_data();
        int64_t* idx_ptr = indices.mutable_data();
        const float* qptr = queries.data();
        const void* bptr = bank.data();
        const auto type = half ? edge::KnnBankType::F16 : edge::KnnBankType::F32;
        {
          py::gil_scoped_release release;
          if (dev.is_cuda())
            edge::knn(qptr, q, bptr, type, mrows, d, k, dist_ptr, idx_ptr, dev);
          else
            edge::knn_cpu(qptr, q, bptr, type, mrows, d, k, dist_ptr, idx_ptr, edge::default_pool(),
                          options);
        }
        return py::make_tuple(distances, indices);
      },
      py::arg("queries"), py::arg("bank"), py::arg("k"), py::arg("device"),
      py::arg("isa") = "auto", py::arg("extra") = edge::KnnOptions{}.extra);
  m.def("knn_isas", [] {
    std::vector<std::string> out;
    for (auto isa : {edge::KnnIsa::Scalar, edge::KnnIsa::Avx2, edge::KnnIsa::Avx512})
      if (edge::knn_isa_supported(isa)) out.emplace_back(edge::knn_isa_name(isa));
    return out;
  });
}

}  // namespace edge_py
