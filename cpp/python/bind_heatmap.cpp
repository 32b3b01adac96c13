#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/heatmap.hpp"

namespace edge_py {

EDGE_PY_BINDER(heatmap) {
  m.def(
      "resize_bilinear",
      [](py::handle x_obj, int64_t out_h, int64_t out_w, const std::string& device) {
        auto x = require_array<float>(x_obj, "x", 3, 3);
        require_nonempty(x, "x");
        require_finite(x, "x");
        const int64_t n = x.shape(0), h = x.shape(1), w = x.shape(2);
        edge::validate_resize(n, h, w, out_h, out_w);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out({n, out_h, out_w});
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::resize_bilinear(x.data(), n, h, w, out_h, out_w, o, dev);
        }
        return out;
      },
      py::arg("x"), py::arg("out_h"), py::arg("out_w"), py::arg("device"));

  m.def(
      "resize_blur",
      [](py::handle x_obj, int64_t out_h, int64_t out_w, double sigma, const std::string& device) {
        auto x = require_array<float>(x_obj, "x", 3, 3);
        require_nonempty(x, "x");
        require_finite(x, "x");
        const int64_t n = x.shape(0), h = x.shape(1), w = x.shape(2);
        edge::validate_resize_blur(n, h, w, out_h, out_w, sigma);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out({n, out_h, out_w});
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::resize_blur(x.data(), n, h, w, out_h, out_w, sigma, o, dev);
        }
        return out;
      },
      py::arg("x"), py::arg("out_h"), py::arg("out_w"), py::arg("sigma"), py::arg("device"));

  m.def(
      "gaussian_blur",
      [](py::handle x_obj, double sigma, const std::string& device) {
        auto x = require_array<float>(x_obj, "x", 3, 3);
        require_nonempty(x, "x");
        require_finite(x, "x");
        const int64_t n = x.shape(0), h = x.shape(1), w = x.shape(2);
        edge::validate_blur(n, h, w, sigma);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out({n, h, w});
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::gaussian_blur(x.data(), n, h, w, sigma, o, dev);
        }
        return out;
      },
      py::arg("x"), py::arg("sigma"), py::arg("device"));

  m.def(
      "abs_diff",
      [](py::handle a_obj, py::handle b_obj, const std::string& device) {
        auto a = require_array<float>(a_obj, "a", 0, 32);
        auto b = require_array<float>(b_obj, "b", 0, 32);
        require_same_shape(a, "a", b, "b");
        require_nonempty(a, "a");
        require_finite(a, "a");
        require_finite(b, "b");
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::abs_diff(a.data(), b.data(), a.size(), o, dev);
        }
        return out;
      },
      py::arg("a"), py::arg("b"), py::arg("device"));

  m.def(
      "minmax_normalize",
      [](py::handle x_obj, const std::string& device) {
        auto x = require_array<float>(x_obj, "x", 3, 3);
        require_nonempty(x, "x");
        // Non-finite values are detected by the kernel's min/max pass (ValueError naming x).
        const int64_t n = x.shape(0), plane = x.shape(1) * x.shape(2);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out({x.shape(0), x.shape(1), x.shape(2)});
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::minmax_normalize(x.data(), n, plane, o, dev);
        }
        return out;
      },
      py::arg("x"), py::arg("device"));

  m.def(
      "calibrated_normalize",
      [](py::handle x_obj, float threshold, float min, float max, const std::string& device) {
        auto x = require_array<float>(x_obj, "x", 0, 32);
        require_nonempty(x, "x");
        require_finite(x, "x");
        const edge::Calibration c{threshold, min, max};
        edge::validate_calibration(c);
        const edge::Device dev = edge::parse_device(device);
        py::array_t<float> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          edge::calibrated_normalize(x.data(), x.size(), c, o, dev);
        }
        return out;
      },
      py::arg("x"), py::arg("threshold"), py::arg("min"), py::arg("max"), py::arg("device"));
}

}  // namespace edge_py
