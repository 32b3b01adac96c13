#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/kernels/preprocess.hpp"

namespace edge_py {
namespace {

template <typename T>
py::array_t<float> run_preprocess(const py::array_t<T>& images, const edge::PreprocessParams& p,
                                  const edge::Device& dev) {
  const int64_t n = images.shape(0), h = images.shape(1), w = images.shape(2), c = images.shape(3);
  edge::validate_preprocess(p, n, h, w, c);
  py::array_t<float> out({n, static_cast<int64_t>(p.channels), p.out_h, p.out_w});
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    edge::preprocess(images.data(), n, h, w, c, p, o, dev);
  }
  return out;
}

void fill_channel_values(const std::vector<float>& v, int channels, const char* name, float* dst) {
  if (static_cast<int>(v.size()) != channels)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(channels) +
                          " value(s), one per output channel, got " + std::to_string(v.size()));
  for (int i = 0; i < channels; ++i) dst[i] = v[static_cast<size_t>(i)];
}

}  // namespace

EDGE_PY_BINDER(preprocess) {
  m.def(
      "preprocess",
      [](py::handle images_obj, int64_t out_h, int64_t out_w, const std::vector<float>& mean,
         const std::vector<float>& std, int channels, float scale, const std::string& device, bool antialias,
         const std::string& color_order) {
        if (!py::isinstance<py::array>(images_obj))
          throw py::type_error("images: expected a numpy array, got " +
                               std::string(py::str(py::type::handle_of(images_obj).attr("__name__"))));
        const auto dt = py::reinterpret_borrow<py::array>(images_obj).dtype();
        edge::PreprocessParams p;
        p.out_h = out_h;
        p.out_w = out_w;
        p.channels = channels;
        p.scale = scale;
        p.antialias = antialias;
        p.color_order = edge::parse_color_order(color_order);
        if (channels != 1 && channels != 3)
          throw py::value_error("channels: expected 1 or 3, got " + std::to_string(channels));
        fill_channel_values(mean, channels, "mean", p.mean);
        fill_channel_values(std, channels, "std", p.std);
        const edge::Device dev = edge::parse_device(device);
        if (dt.is(py::dtype::of<uint8_t>())) {
          auto images = require_array<uint8_t>(images_obj, "images", 4, 4);
          require_nonempty(images, "images");
          return run_preprocess(images, p, dev);
        }
        if (dt.is(py::dtype::of<float>())) {
          auto images = require_array<float>(images_obj, "images", 4, 4);
          require_nonempty(images, "images");
          require_finite(images, "images");
          return run_preprocess(images, p, dev);
        }
        throw py::type_error("images: expected dtype uint8 or float32, got " + std::string(py::str(dt)));
      },
      py::arg("images"), py::arg("out_h"), py::arg("out_w"), py::arg("mean"), py::arg("std"),
      py::arg("channels"), py::arg("scale"), py::arg("device"), py::arg("antialias") = false,
      py::arg("color_order") = "rgb");
  m.def(
      "parse_color_order",
      [](const std::string& text) { return std::string(edge::color_order_name(edge::parse_color_order(text))); },
      py::arg("color_order"), "\"rgb\" or \"bgr\" as is; ValueError naming color_order for anything else.");
}

}  // namespace edge_py
