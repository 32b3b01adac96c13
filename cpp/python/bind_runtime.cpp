#include <algorithm>
// edge_sdk._core.Runtime: the C++ runtime for Python. Thin: images in as NumPy arrays (no copy),
// results out as NumPy arrays; the GIL is released while the runtime works.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "edge_sdk/runtime/openvino_library.hpp"
#include "edge_sdk/runtime/ort_library.hpp"
#include "edge_sdk/runtime/runtime.hpp"
#include "registry.hpp"

namespace edge_py {
namespace {

edge::DType dtype_of(const py::array& a) {
  const auto k = a.dtype().kind();
  const auto size = a.dtype().itemsize();
  if (k == 'u' && size == 1) return edge::DType::U8;
  if (k == 'f' && size == 4) return edge::DType::F32;
  if (k == 'f' && size == 8) return edge::DType::F64;
  if (k == 'f' && size == 2) return edge::DType::F16;
  if (k == 'i' && size == 8) return edge::DType::I64;
  if (k == 'i' && size == 4) return edge::DType::I32;
  if (k == 'i' && size == 2) return edge::DType::I16;
  if (k == 'i' && size == 1) return edge::DType::I8;
  if (k == 'b') return edge::DType::Bool;
  return edge::DType::BF16;  // anything else: refused by the runtime's image check
}

// One image (H, W) or (H, W, C), C-contiguous.
edge::ImageView view_of(const py::array& a, size_t i) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error("images[" + std::to_string(i) + "]: expected a C-contiguous array");
  if (a.ndim() != 2 && a.ndim() != 3)
    throw py::value_error("images[" + std::to_string(i) + "]: expected (H, W) or (H, W, C), got " +
                          std::to_string(a.ndim()) + " dimensions");
  edge::ImageView v;
  v.data = a.data();
  v.dtype = dtype_of(a);
  v.height = a.shape(0);
  v.width = a.shape(1);
  v.channels = a.ndim() == 3 ? a.shape(2) : 1;
  return v;
}

// Holds no per-call state: predict() releases the GIL, so several Python threads may be inside it
// at once; each call owns its views and results (a shared buffer here once let one thread read
// another's scores: a defective image accepted with a good image's score).
struct PyRuntime {
  std::unique_ptr<edge::Runtime> rt;
};

}  // namespace

EDGE_PY_BINDER(runtime) {
  m.def("available_backends", &edge::available_backends);
  m.def(
      "verdict_name", [](int code) { return std::string(edge::verdict_name(static_cast<edge::Verdict>(code))); },
      py::arg("code"), "Name of a verdict code (the C ABI's: 0 review, 1 accept, 2 reject); \"review\" for any other.");
  m.def(
      "onnxruntime_info",
      [](const std::string& path) {
        const edge::OrtLibraryInfo& info = edge::load_onnxruntime(path);
        py::dict d;
        d["path"] = info.path;
        d["version"] = info.version;
        d["api_version"] = info.api_version;
        d["providers"] = info.providers;
        return d;
      },
      py::arg("path") = "", "Loads ONNX Runtime (once per process) and describes it.");
  m.def(
      "openvino_info",
      [](const std::string& path) {
        const edge::OpenVinoLibraryInfo& info = edge::load_openvino(path);
        py::dict d;
        d["path"] = info.path;
        d["version"] = info.version;
        d["devices"] = info.devices;
        return d;
      },
      py::arg("path") = "", "Loads OpenVINO's C API library (once per process) and describes it.");

  py::class_<PyRuntime>(m, "Runtime")
      .def(py::init([](const std::string& bundle, const std::string& device, int threads, const std::string& precision,
                       const std::string& backend, const std::string& provider, const std::string& library,
                       int64_t max_batch, bool heatmaps, int warmup, const std::string& engines_dir,
                       bool cuda_graph, const std::string& trt_cache_dir,
                       const std::vector<std::string>& trusted_keys, const std::string& openvino_library,
                       const std::string& openvino_device) {
             edge::RuntimeOptions o;
             o.device = device;
             o.threads = threads;
             o.precision = precision;
             o.backend = backend;
             o.provider = provider;
             o.onnxruntime_library = library;
             o.max_batch = max_batch;
             o.heatmaps = heatmaps;
             o.warmup = warmup;
             o.engines_dir = engines_dir;
             o.cuda_graph = cuda_graph;
             o.trt_cache_dir = trt_cache_dir;
             o.trusted_keys = trusted_keys;
             o.openvino_library = openvino_library;
             o.openvino_device = openvino_device;
             auto p = std::make_unique<PyRuntime>();
             {
               py::gil_scoped_release release;
               p->rt = edge::Runtime::open(bundle, o);
             }
             return p;
           }),
           py::arg("bundle"), py::arg("device"), py::arg("threads"), py::arg("precision"), py::arg("backend"),
           py::arg("provider"), py::arg("onnxruntime_library"), py::arg("max_batch"), py::arg("heatmaps"),
           py::arg("warmup"), py::arg("engines_dir") = "", py::arg("cuda_graph") = false,
           py::arg("trt_cache_dir") = "", py::arg("trusted_keys") = std::vector<std::string>{},
           py::arg("openvino_library") = "", py::arg("openvino_device") = "")
      .def_property_readonly("manifest", [](const PyRuntime& p) { return p.rt->manifest().raw.dump(); })
      .def_property_readonly("backend", [](const PyRuntime& p) { return p.rt->backend_description(); })
      .def_property_readonly("region_names", [](const PyRuntime& p) { return p.rt->region_names(); })
      .def_property_readonly("group_names", [](const PyRuntime& p) { return p.rt->group_names(); })
      .def(
          "predict",
          [](PyRuntime& p, const py::list& images, const std::string& color_order) {
            const edge::ColorOrder order = edge::parse_color_order(color_order);
            std::vector<py::array> arrays;
            arrays.reserve(images.size());
            std::vector<edge::ImageView> views;
            views.reserve(images.size());
            edge::Results results;
            for (size_t i = 0; i < images.size(); ++i) {
              if (!py::isinstance<py::array>(images[i]))
                throw py::type_error("images[" + std::to_string(i) + "]: expected a numpy array");
              arrays.push_back(py::reinterpret_borrow<py::array>(images[i]));
              views.push_back(view_of(arrays.back(), i));
              views.back().color_order = order;
            }
            const int64_t n = static_cast<int64_t>(views.size());
            {
              py::gil_scoped_release release;
              p.rt->predict(views.data(), n, results);
            }
            const edge::Results& r = results;
            py::array_t<float> scores(n), normalized(n);
            py::array_t<int8_t> verdicts(n);
            py::list errors, invalid;
            for (int64_t i = 0; i < n; ++i) {
              const auto& im = r.images[static_cast<size_t>(i)];
              scores.mutable_data()[i] = im.score;
              normalized.mutable_data()[i] = im.normalized;
              verdicts.mutable_data()[i] = static_cast<int8_t>(im.verdict);  // the C ABI's code
              errors.append(im.error.empty() ? py::none() : py::cast(im.error));
              invalid.append(im.invalid_input);
            }
            py::list heatmaps;
            for (int64_t i = 0; i < n; ++i) {
              const auto& im = r.images[static_cast<size_t>(i)];
              if (im.heatmap_height == 0) {
                heatmaps.append(py::none());
                continue;
              }
              py::array_t<float> h({im.heatmap_height, im.heatmap_width});
              std::memcpy(h.mutable_data(), r.heatmaps.data() + im.heatmap_offset,
                          sizeof(float) * static_cast<size_t>(im.heatmap_height * im.heatmap_width));
              heatmaps.append(h);
            }
            const int64_t nr = static_cast<int64_t>(p.rt->region_names().size());
            py::array_t<float> rs({n, nr}), rn({n, nr});
            py::array_t<int8_t> rv({n, nr});
            for (int64_t k = 0; k < n * nr; ++k) {
              rs.mutable_data()[k] = r.regions[static_cast<size_t>(k)].score;
              rn.mutable_data()[k] = r.regions[static_cast<size_t>(k)].normalized;
              rv.mutable_data()[k] = static_cast<int8_t>(r.regions[static_cast<size_t>(k)].verdict);
            }
            const int64_t ng = static_cast<int64_t>(r.groups.size()) / std::max<int64_t>(n, 1);
            py::array_t<float> gs({n, ng}), gn({n, ng});
            py::array_t<int8_t> gv({n, ng});
            for (int64_t k = 0; k < n * ng; ++k) {
              gs.mutable_data()[k] = r.groups[static_cast<size_t>(k)].score;
              gn.mutable_data()[k] = r.groups[static_cast<size_t>(k)].normalized;
              gv.mutable_data()[k] = static_cast<int8_t>(r.groups[static_cast<size_t>(k)].verdict);
            }
            // Classifier bundles: (n, K) probabilities and the top class (-1 where not judged).
            const int64_t nk = r.class_count;
            py::array_t<float> probs({n, nk});
            py::array_t<int64_t> top(n);
            if (nk > 0) std::memcpy(probs.mutable_data(), r.class_probabilities.data(), sizeof(float) * static_cast<size_t>(n * nk));
            for (int64_t i = 0; i < n; ++i) top.mutable_data()[i] = r.images[static_cast<size_t>(i)].top_class;
            py::dict times;
            times["preprocess"] = r.times.preprocess;
            times["host_to_device"] = r.times.host_to_device;
            times["network"] = r.times.network;
            times["postprocess"] = r.times.postprocess;
            times["device_to_host"] = r.times.device_to_host;
            times["decision"] = r.times.decision;
            times["total"] = r.times.total;
            times["maps"] = r.times.maps;
            py::dict out;
            out["scores"] = scores;
            out["normalized"] = normalized;
            out["verdicts"] = verdicts;
            out["errors"] = errors;
            out["invalid_input"] = invalid;
            out["heatmaps"] = heatmaps;
            out["region_scores"] = rs;
            out["region_normalized"] = rn;
            out["region_verdicts"] = rv;
            out["group_scores"] = gs;
            out["group_normalized"] = gn;
            out["group_verdicts"] = gv;
            out["times"] = times;
            out["class_probabilities"] = probs;
            out["top_class"] = top;
            return out;
          },
          py::arg("images"), py::arg("color_order") = "rgb");
}

}  // namespace edge_py
