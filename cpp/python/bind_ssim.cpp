#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/ssim.hpp"

namespace edge_py {

EDGE_PY_BINDER(ssim) {
  m.def(
      "ssim",
      [](py::handle a_obj, py::handle b_obj, int window, float sigma, float k1, float k2,
         float data_range, bool return_map, const std::string& device) -> py::object {
        auto a = require_array<float>(a_obj, "a", 3, 4);
        auto b = require_array<float>(b_obj, "b", 3, 4);
        require_same_shape(a, "a", b, "b");
        require_nonempty(a, "a");
        require_finite(a, "a");
        require_finite(b, "b");
        const bool has_c = a.ndim() == 4;
        const int64_t n = a.shape(0), c = has_c ? a.shape(1) : 1;
        const int64_t h = a.shape(has_c ? 2 : 1), w = a.shape(has_c ? 3 : 2);
        edge::SsimParams p{window, sigma, k1, k2, data_range};
        edge::validate_ssim(p, h, w);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> mean(n);
        py::array_t<float> map;
        const int64_t mh = edge::ssim_map_height(p, h), mw = edge::ssim_map_width(p, w);
        if (return_map) {
          std::vector<py::ssize_t> shape = {n};
          if (has_c) shape.push_back(c);
          shape.push_back(mh);
          shape.push_back(mw);
          map = py::array_t<float>(shape);
        }
        float* map_ptr = return_map ? map.mutable_data() : nullptr;
        float* mean_ptr = mean.mutable_data();
        {
          py::gil_scoped_release release;
          edge::ssim(a.data(), b.data(), n, c, h, w, p, mean_ptr, map_ptr, dev);
        }
        if (return_map) return py::make_tuple(mean, map);
        return std::move(mean);
      },
      py::arg("a"), py::arg("b"), py::arg("window"), py::arg("sigma"), py::arg("k1"),
      py::arg("k2"), py::arg("data_range"), py::arg("return_map"), py::arg("device"));
}

}  // namespace edge_py
