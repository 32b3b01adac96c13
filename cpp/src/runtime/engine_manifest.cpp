#include "edge_sdk/runtime/engine_manifest.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace edge {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw EngineManifestError(source + ": " + what);
}

const json::Value& member(const json::Value& doc, const std::string& key, const std::string& source) {
  const json::Value* v = doc.find(key);
  if (!v) fail(source, "missing field '" + key + "'");
  return *v;
}

void wrong_type(const std::string& source, const std::string& key, const json::Value& v) {
  fail(source, "field '" + key + "' has the wrong type (" + v.type_name() + ")");
}

std::string str_field(const json::Value& doc, const std::string& key, const std::string& source) {
  const json::Value& v = member(doc, key, source);
  if (!v.is_string()) wrong_type(source, key, v);
  return v.as_string();
}

std::optional<std::string> opt_str_field(const json::Value& doc, const std::string& key, const std::string& source) {
  const json::Value& v = member(doc, key, source);
  if (v.is_null()) return std::nullopt;
  if (!v.is_string()) wrong_type(source, key, v);
  return v.as_string();
}

std::vector<int64_t> int_list(const json::Value& v, bool& ok) {
  std::vector<int64_t> out;
  ok = v.is_array();
  if (!ok) return out;
  for (const auto& e : v.as_array()) {
    if (!e.is_integer()) {
      ok = false;
      return out;
    }
    out.push_back(e.as_int());
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// "12.9" -> {12, 9}; false when not "<int>.<int>[...]".
bool major_minor(const std::string& text, int& major, int& minor) {
  std::istringstream in(text);
  char dot = 0;
  if (!(in >> major)) return false;
  minor = 0;
  if (in >> dot) {
    if (dot != '.' || !(in >> minor)) return false;
  }
  return true;
}

}  // namespace

std::string EngineCheck::message(const std::string& engine) const {
  std::string out = engine + ": the engine does not match this machine or bundle:";
  for (const auto& d : differences) out += "\n  " + d.field + ": " + d.message;
  return out;
}

EngineManifest parse_engine_manifest(const json::Value& doc, const std::string& source) {
  if (!doc.is_object()) fail(source, "expected a JSON object");
  // Presence and type of every field first, in the order of converters/engine_manifest.py.
  static const char* kStrings[] = {"schema", "engine_file", "engine_sha256", "network", "precision",
                                   "source_onnx", "source_onnx_sha256", "tensorrt_version"};
  EngineManifest m;
  const std::string schema = str_field(doc, "schema", source);
  const json::Value& version = member(doc, "schema_version", source);
  if (!version.is_integer()) wrong_type(source, "schema_version", version);
  for (const char* k : kStrings) str_field(doc, k, source);
  m.cuda_runtime_version = opt_str_field(doc, "cuda_runtime_version", source);
  m.cuda_driver_version = opt_str_field(doc, "cuda_driver_version", source);
  m.driver_version = opt_str_field(doc, "driver_version", source);
  const json::Value& gpu = member(doc, "gpu", source);
  if (!gpu.is_object()) wrong_type(source, "gpu", gpu);
  for (const char* k : {"inputs", "outputs", "profiles"}) {
    const json::Value& v = member(doc, k, source);
    if (!v.is_array()) wrong_type(source, k, v);
  }
  const json::Value& builder = member(doc, "builder", source);
  if (!builder.is_object()) wrong_type(source, "builder", builder);

  if (schema != kEngineManifestSchema)
    fail(source, "field 'schema' is '" + schema + "', expected '" + kEngineManifestSchema + "'");
  if (version.as_int() != kEngineManifestSchemaVersion)
    fail(source, "unsupported schema_version " + std::to_string(version.as_int()) + " (this SDK reads " +
                     std::to_string(kEngineManifestSchemaVersion) + ")");
  m.engine_file = str_field(doc, "engine_file", source);
  m.engine_sha256 = str_field(doc, "engine_sha256", source);
  m.network = str_field(doc, "network", source);
  m.precision = str_field(doc, "precision", source);
  m.source_onnx = str_field(doc, "source_onnx", source);
  m.source_onnx_sha256 = str_field(doc, "source_onnx_sha256", source);
  m.tensorrt_version = str_field(doc, "tensorrt_version", source);

  const json::Value* name = gpu.find("name");
  const json::Value* cc = gpu.find("compute_capability");
  bool cc_ok = false;
  std::vector<int64_t> ccv;
  if (cc) ccv = int_list(*cc, cc_ok);
  if (!name || !name->is_string() || !cc_ok || ccv.size() != 2)
    fail(source, "field 'gpu' needs 'name' (string) and 'compute_capability' [major, minor]");
  m.gpu_name = name->as_string();
  m.compute_capability_major = static_cast<int>(ccv[0]);
  m.compute_capability_minor = static_cast<int>(ccv[1]);

  const auto& profiles = doc.find("profiles")->as_array();
  for (size_t i = 0; i < profiles.size(); ++i) {
    const std::string where = "profiles[" + std::to_string(i) + "]";
    if (!profiles[i].is_object()) fail(source, where + " is not an object");
    std::vector<std::pair<std::string, EngineProfileShapes>> p;
    for (const auto& [input, s] : profiles[i].as_object()) {
      EngineProfileShapes shapes;
      bool ok = s.is_object() && s.find("min") && s.find("opt") && s.find("max");
      if (ok) {
        bool a = false, b = false, c = false;
        shapes.min = int_list(*s.find("min"), a);
        shapes.opt = int_list(*s.find("opt"), b);
        shapes.max = int_list(*s.find("max"), c);
        ok = a && b && c && !shapes.min.empty() && !shapes.max.empty();
      }
      if (!ok) fail(source, where + "." + input + " needs 'min', 'opt' and 'max' shapes");
      p.emplace_back(input, std::move(shapes));
    }
    m.profiles.push_back(std::move(p));
  }
  m.raw = doc;
  return m;
}

std::string engine_manifest_path(const std::string& engine_path) { return engine_path + ".json"; }

EngineManifest read_engine_manifest(const std::string& engine_path) {
  const std::string path = engine_manifest_path(engine_path);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw EngineManifestError(path + ": engine manifest not found (every engine is written with one)");
  std::ostringstream text;
  text << f.rdbuf();
  json::Value doc;
  try {
    doc = json::parse(text.str(), path);
  } catch (const json::ParseError& e) {
    throw EngineManifestError(path + ": not readable JSON (" + e.what() + ")");
  }
  return parse_engine_manifest(doc, path);
}

EngineCheck engine_differences(const EngineManifest& m, const EngineMachine& machine, const EngineExpectation& expected) {
  EngineCheck r;
  auto differ = [&](const char* field, std::string message) { r.differences.push_back({field, std::move(message)}); };
  if (machine.tensorrt_version && m.tensorrt_version != *machine.tensorrt_version)
    differ("tensorrt_version", "engine built with TensorRT " + m.tensorrt_version + ", this process has TensorRT " +
                                   *machine.tensorrt_version);
  if (machine.compute_capability &&
      (m.compute_capability_major != machine.compute_capability->first ||
       m.compute_capability_minor != machine.compute_capability->second))
    differ("gpu.compute_capability",
           "engine built for sm " + std::to_string(m.compute_capability_major) + "." +
               std::to_string(m.compute_capability_minor) + ", this GPU is sm " +
               std::to_string(machine.compute_capability->first) + "." + std::to_string(machine.compute_capability->second));
  if (machine.gpu_name && m.gpu_name != *machine.gpu_name)
    differ("gpu.name", "engine built on '" + m.gpu_name + "', this GPU is '" + *machine.gpu_name + "'");
  if (m.cuda_runtime_version && machine.cuda_driver_version) {
    int need_major = 0, need_minor = 0, have_major = 0, have_minor = 0;
    if (!major_minor(*m.cuda_runtime_version, need_major, need_minor) ||
        !major_minor(*machine.cuda_driver_version, have_major, have_minor))
      differ("cuda_runtime_version", "cannot compare CUDA versions '" + *m.cuda_runtime_version + "' and '" +
                                         *machine.cuda_driver_version + "'");
    else if (std::make_pair(have_major, have_minor) < std::make_pair(need_major, need_minor))
      differ("cuda_runtime_version", "engine needs CUDA " + *m.cuda_runtime_version + ", this driver supports CUDA " +
                                         *machine.cuda_driver_version);
  }
  if (machine.driver_version && m.driver_version && *m.driver_version != *machine.driver_version)
    r.notes.push_back("driver_version: built with driver " + *m.driver_version + ", this machine has " +
                      *machine.driver_version + " (not a reason to rebuild)");
  if (expected.source_onnx_sha256 && m.source_onnx_sha256 != *expected.source_onnx_sha256)
    differ("source_onnx_sha256", "engine built from " + m.source_onnx + " with sha256 " + m.source_onnx_sha256.substr(0, 12) +
                                     "..., the bundle's file has " + expected.source_onnx_sha256->substr(0, 12) + "...");
  if (expected.precision && m.precision != *expected.precision)
    differ("precision", "engine is " + m.precision + ", " + *expected.precision + " was asked for");
  static const std::vector<std::pair<std::string, EngineProfileShapes>> kNone;
  const auto& profile = m.profiles.empty() ? kNone : m.profiles.front();
  if (expected.max_batch) {
    for (const auto& [name, s] : profile)
      if (*expected.max_batch > s.max[0] || *expected.max_batch < s.min[0])
        differ("profiles", "input '" + name + "' accepts batches " + std::to_string(s.min[0]) + ".." +
                               std::to_string(s.max[0]) + ", the runtime needs " + std::to_string(*expected.max_batch));
  }
  if (expected.input_shapes) {
    for (const auto& [name, shape] : *expected.input_shapes) {
      auto it = std::find_if(profile.begin(), profile.end(), [&](const auto& p) { return p.first == name; });
      if (it == profile.end()) {
        differ("profiles", "engine has no optimization profile for input '" + name + "'");
        continue;
      }
      const std::vector<int64_t> per_image(it->second.max.begin() + 1, it->second.max.end());
      if (per_image != shape)
        differ("profiles", "input '" + name + "' is " + shape_text(per_image) + " per image in the engine, " +
                               shape_text(shape) + " in the bundle");
    }
  }
  return r;
}

std::vector<std::string> engine_candidates(const std::string& dir, const std::string& network,
                                           const std::string& precision) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  const std::string prefix = network + "." + precision + ".";
  const std::string suffix = ".engine";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > prefix.size() + suffix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 && e.is_regular_file(ec))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace edge
