// Engine-manifest rules of the C++ TensorRT backend on the cases shared with
// tests/test_engine_manifest.py (tests/data/engine_manifest_cases.json), bad manifests, and the
// engine candidates of a folder. Pure C++: runs in every build.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "check.hpp"
#include "edge_sdk/runtime/engine_manifest.hpp"
#include "edge_sdk/runtime/json.hpp"

namespace fs = std::filesystem;
using edge::json::Value;

static Value load_cases() {
  const fs::path file = fs::path(__FILE__).parent_path().parent_path().parent_path() / "tests" / "data" /
                        "engine_manifest_cases.json";
  std::ifstream f(file);
  if (!f) throw std::runtime_error(file.string() + ": not found");
  std::ostringstream s;
  s << f.rdbuf();
  return edge::json::parse(s.str(), file.string());
}

static edge::EngineMachine machine_of(const Value& d) {
  edge::EngineMachine m;
  auto str = [&](const char* k) -> std::optional<std::string> {
    const Value* v = d.find(k);
    return v && v->is_string() ? std::optional<std::string>(v->as_string()) : std::nullopt;
  };
  m.tensorrt_version = str("tensorrt_version");
  m.cuda_driver_version = str("cuda_driver_version");
  m.driver_version = str("driver_version");
  m.gpu_name = str("gpu_name");
  if (const Value* cc = d.find("compute_capability"))
    m.compute_capability = std::make_pair(static_cast<int>(cc->as_array()[0].as_int()),
                                          static_cast<int>(cc->as_array()[1].as_int()));
  return m;
}

static edge::EngineExpectation expected_of(const Value& d) {
  edge::EngineExpectation e;
  if (const Value* v = d.find("source_onnx_sha256")) e.source_onnx_sha256 = v->as_string();
  if (const Value* v = d.find("precision")) e.precision = v->as_string();
  if (const Value* v = d.find("max_batch")) e.max_batch = v->as_int();
  if (const Value* v = d.find("input_shapes")) {
    e.input_shapes.emplace();
    for (const auto& [name, shape] : v->as_object()) {
      std::vector<int64_t> s;
      for (const auto& x : shape.as_array()) s.push_back(x.as_int());
      e.input_shapes->emplace_back(name, s);
    }
  }
  return e;
}

EDGE_TEST(shared_matching_cases) {
  const Value cases = load_cases();
  const edge::EngineManifest m = edge::parse_engine_manifest(*cases.find("manifest"), "cases.manifest");
  int n = 0;
  for (const Value& c : cases.find("cases")->as_array()) {
    const std::string name = c.find("name")->as_string();
    const edge::EngineCheck r = edge::engine_differences(m, machine_of(*c.find("machine")), expected_of(*c.find("expected")));
    std::vector<std::string> want, got;
    for (const auto& d : c.find("differences")->as_array()) want.push_back(d.as_string());
    for (const auto& d : r.differences) got.push_back(d.field);
    if (got != want || static_cast<int64_t>(r.notes.size()) != c.find("notes")->as_int()) {
      std::printf("  case \"%s\": %s\n", name.c_str(), r.message("x.engine").c_str());
      CHECK(false);
    }
    CHECK(r.ok() == want.empty());
    for (const auto& d : r.differences) CHECK(r.message("x.engine").find(d.field + ": " + d.message) != std::string::npos);
    ++n;
  }
  CHECK(n >= 9);
}

EDGE_TEST(messages_say_what_differs) {
  const Value cases = load_cases();
  const edge::EngineManifest m = edge::parse_engine_manifest(*cases.find("manifest"), "cases.manifest");
  edge::EngineMachine machine;
  machine.tensorrt_version = "10.13.0.35";
  machine.compute_capability = std::make_pair(9, 0);
  const std::string text = edge::engine_differences(m, machine, {}).message("backbone.fp16.sm86.engine");
  for (const char* s : {"10.14.1.48", "10.13.0.35", "sm 8.6", "sm 9.0", "backbone.fp16.sm86.engine"})
    CHECK(text.find(s) != std::string::npos);
}

// Each mutation must be refused with the field named (as tests/test_engine_manifest.py).
EDGE_TEST(bad_manifest_names_the_field) {
  const Value cases = load_cases();
  struct Mutation {
    const char* field;
    void (*apply)(Value&);
  };
  const Mutation mutations[] = {
      {"tensorrt_version", [](Value& m) { m.erase("tensorrt_version"); }},
      {"schema_version", [](Value& m) { m.set("schema_version", Value::integer(2)); }},
      {"schema", [](Value& m) { m.set("schema", Value::string("other")); }},
      {"precision", [](Value& m) { m.set("precision", Value::integer(16)); }},
      {"gpu", [](Value& m) { m.set("gpu", Value::object({{"name", Value::string("x")}})); }},
      {"profiles", [](Value& m) {
         m.set("profiles", Value::array({Value::object({{"input", Value::object({{"min", Value::array({Value::integer(1)})}})}})}));
       }},
      {"cuda_driver_version", [](Value& m) { m.set("cuda_driver_version", Value::integer(12)); }},
  };
  for (const auto& mu : mutations) {
    Value doc = *cases.find("manifest");
    mu.apply(doc);
    try {
      edge::parse_engine_manifest(doc, "e.engine.json");
      std::printf("  mutation of %s accepted\n", mu.field);
      CHECK(false);
    } catch (const edge::EngineManifestError& e) {
      const std::string msg = e.what();
      if (msg.find(mu.field) == std::string::npos || msg.find("e.engine.json") == std::string::npos) {
        std::printf("  message \"%s\" lacks \"%s\"\n", msg.c_str(), mu.field);
        CHECK(false);
      }
    }
  }
  CHECK_THROWS(edge::parse_engine_manifest(Value::array(), "e.engine.json"));
}

EDGE_TEST(read_manifest_and_candidates) {
  const fs::path dir = fs::temp_directory_path() / ("edge_trt_manifest_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string engine = (dir / "backbone.fp16.sm86.engine").string();
  std::ofstream(engine) << "plan";
  try {
    edge::read_engine_manifest(engine);
    CHECK(false);
  } catch (const edge::EngineManifestError& e) {
    CHECK(std::string(e.what()).find("backbone.fp16.sm86.engine.json") != std::string::npos);
    CHECK(std::string(e.what()).find("not found") != std::string::npos);
  }
  std::ofstream(edge::engine_manifest_path(engine)) << "{ not json";
  try {
    edge::read_engine_manifest(engine);
    CHECK(false);
  } catch (const edge::EngineManifestError& e) {
    CHECK(std::string(e.what()).find("JSON") != std::string::npos);
  }
  std::ofstream(edge::engine_manifest_path(engine)) << load_cases().find("manifest")->dump();
  const edge::EngineManifest m = edge::read_engine_manifest(engine);
  CHECK(m.precision == "fp16" && m.compute_capability_major == 8 && m.profiles.size() == 1);
  CHECK(m.profiles[0][0].first == "input" && m.profiles[0][0].second.max[0] == 64);

  std::ofstream(dir / "backbone.fp16.sm90.engine") << "plan";
  std::ofstream(dir / "backbone.int8.sm86.engine") << "plan";
  std::ofstream(dir / "other.fp16.sm86.engine") << "plan";
  const auto c = edge::engine_candidates(dir.string(), "backbone", "fp16");
  CHECK(c.size() == 2);
  CHECK(c.size() == 2 && fs::path(c[0]).filename() == "backbone.fp16.sm86.engine" &&
        fs::path(c[1]).filename() == "backbone.fp16.sm90.engine");
  CHECK(edge::engine_candidates((dir / "missing").string(), "backbone", "fp16").empty());
  fs::remove_all(dir);
}

EDGE_TEST_MAIN()
