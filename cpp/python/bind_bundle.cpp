// Bundle validation and ONNX inspection for Python: edge_sdk.bundle calls THE validator of the
// C++ runtime, so Python and C++ loaders accept and refuse exactly the same bundles.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/onnx_info.hpp"
#include "registry.hpp"

namespace edge_py {

EDGE_PY_BINDER(bundle) {
  // ValueError / RuntimeError subclasses so callers can catch them generically too.
  py::register_exception<edge::BundleError>(m, "BundleError", PyExc_ValueError);
  py::register_exception<edge::BackendError>(m, "BackendError", PyExc_RuntimeError);

  m.def(
      "bundle_validate",
      [](const std::string& path, const std::vector<std::string>& trusted_keys, bool trusted_keys_from_env) {
        edge::LoadOptions options;
        options.trusted_keys = trusted_keys;
        options.trusted_keys_from_env = trusted_keys_from_env;
        std::string manifest;
        {
          py::gil_scoped_release release;
          manifest = edge::load_bundle(path, options).manifest.raw.dump();
        }
        return manifest;
      },
      py::arg("path"), py::arg("trusted_keys") = std::vector<std::string>{}, py::arg("trusted_keys_from_env") = true,
      "Validates a bundle (directory or tar archive); returns its manifest as JSON text. trusted_keys: "
      "Ed25519 public keys its signature must verify against (besides EDGE_SDK_TRUSTED_KEYS unless "
      "trusted_keys_from_env is false).");

  m.def(
      "onnx_info",
      [](py::bytes data, const std::string& source) {
        const std::string s = data;
        const edge::OnnxInfo info =
            edge::read_onnx_info(reinterpret_cast<const uint8_t*>(s.data()), s.size(), source);
        auto values = [](const std::vector<edge::OnnxValueInfo>& vs) {
          py::list out;
          for (const auto& v : vs) {
            py::dict d;
            d["name"] = v.name;
            d["elem_type"] = v.elem_type;
            d["dtype"] = edge::onnx_elem_type_name(v.elem_type);
            d["dims"] = v.dims;
            d["dim_params"] = v.dim_params;
            out.append(d);
          }
          return out;
        };
        py::dict d;
        d["ir_version"] = info.ir_version;
        d["opsets"] = info.opsets;
        d["producer_name"] = info.producer_name;
        d["producer_version"] = info.producer_version;
        d["inputs"] = values(info.inputs);
        d["outputs"] = values(info.outputs);
        d["metadata"] = info.metadata;
        d["node_count"] = info.node_count;
        return d;
      },
      py::arg("data"), py::arg("source") = "model.onnx",
      "Graph inputs/outputs, opsets and metadata_props of a serialized ONNX model.");
}

}  // namespace edge_py
