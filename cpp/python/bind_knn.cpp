#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/devices.hpp"
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

// A bank (float32 or float16, checked as for knn()) as (pointer, type, rows, columns).
struct CheckedBank {
  py::array array;
  edge::KnnBankType type;
};

CheckedBank checked_bank(const py::handle& obj) {
  py::array bank = require_bank(obj);
  require_nonempty(bank, "bank");
  const bool half = is_float16(bank);
  if (half)
    require_finite_half(bank, "bank");
  else
    require_finite(py::reinterpret_borrow<py::array_t<float>>(bank), "bank");
  return {bank, half ? edge::KnnBankType::F16 : edge::KnnBankType::F32};
}

// edge::KnnIndex (CPU) or edge::KnnCudaIndex over a private, read-only copy of the bank: the CPU
// index re-reads bank rows for the exact re-rank, so the caller changing its array afterwards must
// not change the answers.
class PyKnnIndex {
 public:
  PyKnnIndex(py::handle bank_obj, const std::string& device, const std::string& isa, int extra) {
    CheckedBank b = checked_bank(bank_obj);
    if (extra < 0) throw py::value_error("extra: expected >= 0, got " + std::to_string(extra));
    edge::KnnOptions options;
    options.isa = edge::parse_knn_isa(isa);
    options.extra = extra;
    device_ = edge::parse_device(device);
    if (device_.is_cuda() && (options.isa != edge::KnnIsa::Auto || extra != edge::KnnOptions{}.extra))
      throw py::value_error("isa, extra: CPU options, not applicable to device=\"" + device + "\"");
    edge::require_device(device_);
    m_ = b.array.shape(0);
    d_ = b.array.shape(1);
    edge::validate_knn(1, m_, d_, 1);
    bank_ = py::array(b.array.dtype(), std::vector<py::ssize_t>{m_, d_});
    std::memcpy(bank_.mutable_data(), b.array.data(), static_cast<size_t>(b.array.nbytes()));
    bank_.attr("setflags")(py::arg("write") = false);
    const void* data = bank_.data();
    py::gil_scoped_release release;
    edge::run_on_device(
        device_, [&](edge::ThreadPool& pool) { cpu_ = std::make_unique<edge::KnnIndex>(data, b.type, m_, d_, pool, options); },
        [&]([[maybe_unused]] int index) { EDGE_CUDA_ONLY(cuda_ = std::make_unique<edge::KnnCudaIndex>(data, b.type, m_, d_, index);) });
  }

  py::tuple search(py::handle queries_obj, int64_t k) const {
    auto queries = require_array<float>(queries_obj, "queries", 2, 2);
    require_nonempty(queries, "queries");
    if (queries.shape(1) != d_)
      throw py::value_error("queries: expected " + std::to_string(d_) +
                            " columns (the bank's), got shape " + shape_str(queries));
    const int64_t q = queries.shape(0);
    edge::validate_knn(q, m_, d_, k);
    require_finite(queries, "queries");
    py::array_t<float> distances({q, k});
    py::array_t<int64_t> indices({q, k});
    float* dist_ptr = distances.mutable_data();
    int64_t* idx_ptr = indices.mutable_data();
    const float* qptr = queries.data();
    {
      py::gil_scoped_release release;
      // working memory of this call only: Python callers may search from several threads
      edge::run_on_device(
          device_, [&](edge::ThreadPool& pool) { cpu_->search(qptr, q, k, dist_ptr, idx_ptr, pool); },
          [&](int) { EDGE_CUDA_ONLY(cuda_->search_host(qptr, q, k, dist_ptr, idx_ptr);) });
    }
    return py::make_tuple(distances, indices);
  }

  int64_t rows() const { return m_; }
  int64_t dim() const { return d_; }
  std::string isa() const { return cpu_ ? edge::knn_isa_name(cpu_->isa()) : "cuda"; }
  std::string device() const {
    return device_.is_cuda() ? "cuda:" + std::to_string(device_.index) : "cpu";
  }
  const py::array& bank() const { return bank_; }
  size_t nbytes() const { return (cpu_ ? cpu_->bytes() : 0) + static_cast<size_t>(bank_.nbytes()); }

 private:
  py::array bank_;
  edge::Device device_;
  int64_t m_ = 0, d_ = 0;
  std::unique_ptr<edge::KnnIndex> cpu_;
#ifdef EDGE_SDK_WITH_CUDA
  std::unique_ptr<edge::KnnCudaIndex> cuda_;
#endif
};

}  // namespace

EDGE_PY_BINDER(knn) {
  py::class_<PyKnnIndex>(m, "KnnIndex")
      .def(py::init<py::handle, const std::string&, const std::string&, int>(), py::arg("bank"),
           py::arg("device") = "cpu", py::arg("isa") = "auto",
           py::arg("extra") = edge::KnnOptions{}.extra)
      .def("search", &PyKnnIndex::search, py::arg("queries"), py::arg("k"))
      .def_property_readonly("rows", &PyKnnIndex::rows)
      .def_property_readonly("dim", &PyKnnIndex::dim)
      .def_property_readonly("isa", &PyKnnIndex::isa)
      .def_property_readonly("device", &PyKnnIndex::device)
      .def_property_readonly("bank", &PyKnnIndex::bank)
      .def_property_readonly("nbytes", &PyKnnIndex::nbytes);
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
          edge::run_on_device(
              dev, [&](edge::ThreadPool& pool) { edge::knn_cpu(qptr, q, bptr, type, mrows, d, k, dist_ptr, idx_ptr, pool, options); },
              [&](int) { edge::knn(qptr, q, bptr, type, mrows, d, k, dist_ptr, idx_ptr, dev); });
        }
        return py::make_tuple(distances, indices);
      },
      py::arg("queries"), py::arg("bank"), py::arg("k"), py::arg("device"),
      py::arg("isa") = "auto", py::arg("extra") = edge::KnnOptions{}.extra);
  m.def("knn_isas", [] {
    std::vector<std::string> out;
    for (auto isa : {edge::KnnIsa::Scalar, edge::KnnIsa::Avx2, edge::KnnIsa::Avx512, edge::KnnIsa::Avx512Bf16})
      if (edge::knn_isa_supported(isa)) out.emplace_back(edge::knn_isa_name(isa));
    return out;
  });
}

}  // namespace edge_py
