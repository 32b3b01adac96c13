// mahalanobis, whiten, local_nearest. Dtype, rank, contiguity, emptiness and shape agreement are
// checked here; values (finite inputs, a usable chol diagonal, finite results) are checked by the
// core inside its parallel pass, which raises ValueError naming the argument and the location.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/mahalanobis.hpp"

namespace edge_py {
namespace {

void require_shape(const py::array& a, const char* name, const std::vector<py::ssize_t>& want,
                   const std::string& why) {
  bool same = a.ndim() == static_cast<py::ssize_t>(want.size());
  for (size_t i = 0; same && i < want.size(); ++i) same = a.shape(i) == want[i];
  if (!same) {
    std::string w = "(";
    for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
    throw py::value_error(std::string(name) + ": expected shape " + w + ") " + why + ", got " +
                          shape_str(a));
  }
}

struct Gaussians {
  py::array_t<float> features, mean, chol;
  int64_t n, l, c;
};

Gaussians gaussian_args(py::handle f_obj, py::handle m_obj, py::handle c_obj) {
  auto f = require_array<float>(f_obj, "features", 3, 3);
  auto m = require_array<float>(m_obj, "mean", 2, 2);
  auto ch = require_array<float>(c_obj, "chol", 3, 3);
  require_nonempty(f, "features");
  const int64_t n = f.shape(0), l = f.shape(1), c = f.shape(2);
  const std::string why = "(l, c) to match features of shape " + shape_str(f);
  require_shape(m, "mean", {l, c}, why);
  require_shape(ch, "chol", {l, c, c}, "(l, c, c) to match features of shape " + shape_str(f));
  return {f, m, ch, n, l, c};
}

}  // namespace

EDGE_PY_BINDER(mahalanobis) {
  m.def(
      "mahalanobis",
      [](py::handle f_obj, py::handle m_obj, py::handle c_obj, const std::string& device) {
        const Gaussians g = gaussian_args(f_obj, m_obj, c_obj);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> dist({static_cast<py::ssize_t>(g.n), static_cast<py::ssize_t>(g.l)});
        float* out = dist.mutable_data();
        {
          py::gil_scoped_release release;
          edge::mahalanobis(g.features.data(), g.mean.data(), g.chol.data(), g.n, g.l, g.c, out, dev);
        }
        return dist;
      },
      py::arg("features"), py::arg("mean"), py::arg("chol"), py::arg("device"));

  m.def(
      "whiten",
      [](py::handle f_obj, py::handle m_obj, py::handle c_obj, const std::string& device) {
        const Gaussians g = gaussian_args(f_obj, m_obj, c_obj);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> z({static_cast<py::ssize_t>(g.n), static_cast<py::ssize_t>(g.l),
                              static_cast<py::ssize_t>(g.c)});
        float* out = z.mutable_data();
        {
          py::gil_scoped_release release;
          edge::whiten(g.features.data(), g.mean.data(), g.chol.data(), g.n, g.l, g.c, out, dev);
        }
        return z;
      },
      py::arg("features"), py::arg("mean"), py::arg("chol"), py::arg("device"));

  m.def(
      "local_nearest",
      [](py::handle z_obj, py::handle c_obj, const std::string& device) {
        auto z = require_array<float>(z_obj, "z", 3, 3);
        auto cent = require_array<float>(c_obj, "centroids", 3, 3);
        require_nonempty(z, "z");
        const int64_t n = z.shape(0), l = z.shape(1), c = z.shape(2);
        if (cent.shape(0) != l || cent.shape(2) != c)
          throw py::value_error("centroids: expected shape (l, k, c) = (" + std::to_string(l) +
                                ", k, " + std::to_string(c) + ") to match z of shape " +
                                shape_str(z) + ", got " + shape_str(cent));
        require_nonempty(cent, "centroids");
        const int64_t k = cent.shape(1);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> dist({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(l)});
        float* out = dist.mutable_data();
        {
          py::gil_scoped_release release;
          edge::local_nearest(z.data(), cent.data(), n, l, k, c, out, dev);
        }
        return dist;
      },
      py::arg("z"), py::arg("centroids"), py::arg("device"));

  m.def("mahalanobis_cpu_isa", &edge::mahalanobis_cpu_isa,
        "The CPU code path of the Mahalanobis kernels: avx512, avx2 or generic.");
}

}  // namespace edge_py
