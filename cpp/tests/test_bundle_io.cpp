// SHA-256, safetensors and ONNX readers, and bundle validation, on data built in the test.
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "check.hpp"
#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/onnx_info.hpp"
#include "edge_sdk/runtime/safetensors.hpp"
#include "edge_sdk/runtime/sha256.hpp"
#include "tiny_onnx.hpp"

namespace fs = std::filesystem;

static fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("edge_sdk_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

EDGE_TEST(derived_data_is_made_once_and_shared) {
  edge::Bundle b;
  int made = 0;
  auto make = [&made] {
    ++made;
    return std::make_shared<const std::string>("packed");
  };
  auto a = b.derived<std::string>("k", make);
  auto again = b.derived<std::string>("k", make);
  edge::Bundle moved = std::move(b);  // a bundle is loaded, then moved into its shared_ptr
  auto after_move = moved.derived<std::string>("k", make);
  CHECK(made == 1 && a.get() == again.get() && a.get() == after_move.get() && *a == "packed");
  auto other = moved.derived<std::string>("other", make);
  CHECK(made == 2 && other.get() != a.get());
}

EDGE_TEST(sha256_known_vectors) {
  CHECK(edge::sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(edge::sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(edge::sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // one million 'a', fed in uneven pieces
  edge::Sha256 s;
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left) {
    const size_t n = std::min(left, chunk.size());
    s.update(chunk.data(), n);
    left -= n;
  }
  CHECK(s.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

EDGE_TEST(safetensors_reads_tensors) {
  const std::string st = tiny::safetensors({{"a", {{2, 3}, {1, 2, 3, 4, 5, 6}}}, {"b", {{1}, {7}}}});
  const auto t = edge::parse_safetensors(reinterpret_cast<const uint8_t*>(st.data()), st.size(), "x.safetensors");
  CHECK(t.tensors.size() == 2);
  const auto& a = t.tensors.at("a");
  CHECK(a.dtype == edge::DType::F32 && a.shape == std::vector<int64_t>({2, 3}) && a.numel() == 6);
  CHECK(a.data<float>()[5] == 6.0f);
  CHECK(reinterpret_cast<uintptr_t>(a.data<float>()) % 64 == 0);
  CHECK(t.tensors.at("b").data<float>()[0] == 7.0f);
}

EDGE_TEST(safetensors_rejects_corruption) {
  const std::string st = tiny::safetensors({{"a", {{2, 3}, {1, 2, 3, 4, 5, 6}}}});
  auto parse = [](const std::string& s) {
    return edge::parse_safetensors(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "x.safetensors");
  };
  edge_test::expect_error<edge::BundleError>([&] { parse(st.substr(0, 5)); }, "x.safetensors: truncated");
  edge_test::expect_error<edge::BundleError>([&] { parse(st.substr(0, st.size() - 4)); }, "beyond the data");
  edge_test::expect_error<edge::BundleError>([&] { parse(st + "abcd"); }, "trailing bytes");
  std::string bad_len = st;
  bad_len[0] = char(0xff);
  bad_len[1] = char(0xff);
  edge_test::expect_error<edge::BundleError>([&] { parse(bad_len); }, "header length");
  std::string bad_dtype = st;
  bad_dtype.replace(bad_dtype.find("F32"), 3, "Q32");
  edge_test::expect_error<edge::BundleError>([&] { parse(bad_dtype); }, "unsupported dtype 'Q32'");
  std::string bad_shape = st;
  bad_shape.replace(bad_shape.find("[2,3]"), 5, "[3,3]");
  edge_test::expect_error<edge::BundleError>([&] { parse(bad_shape); }, "tensor 'a'");
}

EDGE_TEST(onnx_info_reads_graph_io_and_metadata) {
  const std::string m = tiny::mul_model(3, 8, 6, 2.0f, {{"k", "v"}}, 18);
  const auto info = edge::read_onnx_info(reinterpret_cast<const uint8_t*>(m.data()), m.size(), "t.onnx");
  CHECK(info.ir_version == 8);
  CHECK(info.opsets.at("") == 18);
  CHECK(info.inputs.size() == 1 && info.inputs[0].name == "image");  // the initializer is not an input
  CHECK(info.inputs[0].elem_type == 1);
  CHECK(info.inputs[0].dims == std::vector<int64_t>({-1, 3, 8, 6}));
  CHECK(info.inputs[0].dim_params[0] == "batch");
  CHECK(info.outputs.size() == 1 && info.outputs[0].name == "features");
  CHECK(info.metadata.at("k") == "v");
  CHECK(info.node_count == 1);
}

EDGE_TEST(onnx_info_rejects_garbage) {
  const std::string m = tiny::mul_model(3, 8, 6, 2.0f, {});
  auto read = [](const std::string& s) {
    return edge::read_onnx_info(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "bad.onnx");
  };
  edge_test::expect_error<edge::BundleError>([&] { read(m.substr(0, m.size() / 2)); }, "bad.onnx: not a valid ONNX model");
  edge_test::expect_error<edge::BundleError>([&] { read("this is not a protobuf at all"); }, "bad.onnx: not a valid ONNX model");
  edge_test::expect_error<edge::BundleError>([&] { read(""); }, "bad.onnx: not a valid ONNX model");
}

static void rewrite_manifest(const fs::path& dir, const std::function<void(edge::json::Value&)>& edit) {
  std::ifstream f(dir / "manifest.json");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  edge::json::Value m = edge::json::parse(text);
  edit(m);
  tiny::write(dir / "manifest.json", m.dump());
}

EDGE_TEST(valid_bundle_loads) {
  const fs::path dir = temp_dir("valid");
  tiny::write_bundle(dir, tiny::manifest(3, 8, 6));
  const edge::Bundle b = edge::load_bundle(dir.string());
  CHECK(b.manifest.input.channels == 3 && b.manifest.input.height == 8 && b.manifest.input.width == 6);
  CHECK(b.manifest.networks.size() == 1 && b.manifest.networks[0].file == "backbone.onnx");
  CHECK(b.arrays.tensors.count("bias") == 1);
  CHECK(b.contents.count("backbone.onnx") == 1);
  CHECK(b.manifest.postprocess_kind == "identity");
  fs::remove_all(dir);
}

EDGE_TEST(bundle_errors_name_file_or_field) {
  const fs::path dir = temp_dir("bad");
  auto fresh = [&] {
    fs::remove_all(dir);
    tiny::write_bundle(dir, tiny::manifest(3, 8, 6));
  };
  auto load = [&] { edge::load_bundle(dir.string()); };

  fresh();
  fs::remove(dir / "arrays.safetensors");
  edge_test::expect_error<edge::BundleError>(load, "arrays.safetensors: missing");

  fresh();
  tiny::write(dir / "notes.txt", "x");
  edge_test::expect_error<edge::BundleError>(load, "notes.txt: unexpected file");

  fresh();
  fs::create_directories(dir / "engines");  // reserved, ignored
  tiny::write(dir / "engines" / "x.engine", "x");
  load();

  fresh();
  {
    std::fstream f(dir / "backbone.onnx", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  edge_test::expect_error<edge::BundleError>(load, "backbone.onnx: sha256");

  fresh();
  fs::remove(dir / "manifest.json");
  edge_test::expect_error<edge::BundleError>(load, "manifest.json: missing");

  fresh();
  rewrite_manifest(dir, [](edge::json::Value& m) { m.set("schema_version", edge::json::Value::integer(2)); });
  edge_test::expect_error<edge::BundleError>(load, "schema_version: version 2 is not supported");

  fresh();
  rewrite_manifest(dir, [](edge::json::Value& m) {
    edge::json::Value in = *m.find("input");
    in.set("height", edge::json::Value::string("8"));
    m.set("input", in);
  });
  edge_test::expect_error<edge::BundleError>(load, "input.height: expected an integer, got string");

  fresh();
  rewrite_manifest(dir, [](edge::json::Value& m) {
    edge::json::Value in = *m.find("input");
    in.erase("mean");
    m.set("input", in);
  });
  edge_test::expect_error<edge::BundleError>(load, "input.mean: missing");

  // The manifest says 8x6 but the ONNX file was exported for another size: the embedded
  // manifest and the graph both contradict it.
  fresh();
  rewrite_manifest(dir, [](edge::json::Value& m) {
    edge::json::Value in = *m.find("input");
    in.set("height", edge::json::Value::integer(16));
    m.set("input", in);
  });
  edge_test::expect_error<edge::BundleError>(load, "does not match input");

  // A valid ONNX whose metadata says something else than the manifest.
  fresh();
  {
    edge::json::Value other = tiny::manifest(3, 8, 6);
    edge::json::Value cal = *other.find("calibration");
    cal.set("threshold", edge::json::Value::number(7.0));
    other.set("calibration", cal);
    const std::string onnx = tiny::mul_model(3, 8, 6, 2.0f, {{edge::kOnnxMetaManifest, edge::manifest_for_onnx(other).dump()}});
    tiny::write(dir / "backbone.onnx", onnx);
    rewrite_manifest(dir, [&](edge::json::Value& m) {
      edge::json::Value files = *m.find("files");
      edge::json::Value e = edge::json::Value::object();
      e.set("sha256", edge::json::Value::string(edge::sha256_hex(onnx.data(), onnx.size())));
      e.set("bytes", edge::json::Value::integer(int64_t(onnx.size())));
      files.set("backbone.onnx", e);
      m.set("files", files);
    });
  }
  edge_test::expect_error<edge::BundleError>(load, "contradicts manifest.json (field \"calibration\"");

  // Corrupt ONNX with a matching checksum.
  fresh();
  {
    const std::string junk = "\x0a\xff\xff\xff\xff garbage";
    tiny::write(dir / "backbone.onnx", junk);
    rewrite_manifest(dir, [&](edge::json::Value& m) {
      edge::json::Value files = *m.find("files");
      edge::json::Value e = edge::json::Value::object();
      e.set("sha256", edge::json::Value::string(edge::sha256_hex(junk.data(), junk.size())));
      e.set("bytes", edge::json::Value::integer(int64_t(junk.size())));
      files.set("backbone.onnx", e);
      m.set("files", files);
    });
  }
  edge_test::expect_error<edge::BundleError>(load, "backbone.onnx: not a valid ONNX model");

  fresh();
  tiny::write(dir / "manifest.json", "{\"schema_version\": 1,");
  edge_test::expect_error<edge::BundleError>(load, "manifest.json:1:");

  edge_test::expect_error<edge::BundleError>([] { edge::load_bundle("/nonexistent/bundle"); }, "/nonexistent/bundle: no such bundle");
  fs::remove_all(dir);
}

EDGE_TEST_MAIN()
