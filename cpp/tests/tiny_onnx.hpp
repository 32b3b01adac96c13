// Builds small ONNX models and bundles byte by byte (protobuf wire format, safetensors, manifest
// with checksums) so the C++ tests of the loader and of the ONNX Runtime backend need no Python.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "edge_sdk/runtime/json.hpp"
#include "edge_sdk/runtime/manifest.hpp"
#include "edge_sdk/runtime/sha256.hpp"

namespace tiny {

class Proto {
 public:
  Proto& varint(uint32_t field, uint64_t v) {
    key(field, 0);
    put_varint(v);
    return *this;
  }
  Proto& bytes(uint32_t field, const std::string& s) {
    key(field, 2);
    put_varint(s.size());
    buf_ += s;
    return *this;
  }
  Proto& msg(uint32_t field, const Proto& p) { return bytes(field, p.buf_); }
  const std::string& str() const { return buf_; }

 private:
  void key(uint32_t field, uint32_t wire) { put_varint((uint64_t(field) << 3) | wire); }
  void put_varint(uint64_t v) {
    while (v >= 0x80) {
      buf_ += char((v & 0x7F) | 0x80);
      v >>= 7;
    }
    buf_ += char(v);
  }
  std::string buf_;
};

// dims: -1 = symbolic "batch"
inline Proto value_info(const std::string& name, const std::vector<int64_t>& dims, int elem = 1) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d < 0) dim.bytes(2, "batch");
    else dim.varint(1, uint64_t(d));
    shape.msg(1, dim);
  }
  Proto tensor;
  tensor.varint(1, uint64_t(elem)).msg(2, shape);
  Proto type;
  type.msg(1, tensor);
  Proto vi;
  vi.bytes(1, name).msg(2, type);
  return vi;
}

// y = x * scale (+ bias), shapes [-1, c, h, w]; metadata as given.
inline std::string mul_model(int64_t c, int64_t h, int64_t w, float scale,
                             const std::map<std::string, std::string>& metadata, int opset = 17,
                             const std::string& in_name = "image", const std::string& out_name = "features") {
  Proto init;
  std::string raw(4, '\0');
  std::memcpy(&raw[0], &scale, 4);
  init.varint(2, 1).bytes(8, "scale").bytes(9, raw);  // scalar: no dims
  Proto node;
  node.bytes(1, in_name).bytes(1, "scale").bytes(2, out_name).bytes(3, "mul").bytes(4, "Mul");
  Proto graph;
  graph.msg(1, node).bytes(2, "tiny").msg(5, init).msg(11, value_info(in_name, {-1, c, h, w}))
      .msg(12, value_info(out_name, {-1, c, h, w}));
  Proto opset_p;
  opset_p.bytes(1, "").varint(2, uint64_t(opset));
  Proto model;
  model.varint(1, 8).bytes(2, "edge_sdk_test").msg(7, graph).msg(8, opset_p);
  for (const auto& [k, v] : metadata) {
    Proto kv;
    kv.bytes(1, k).bytes(2, v);
    model.msg(14, kv);
  }
  return model.str();
}

// safetensors file with float32 tensors
inline std::string safetensors(const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>& t) {
  edge::json::Value header = edge::json::Value::object();
  std::string data;
  for (const auto& [name, sv] : t) {
    edge::json::Value::Array shape;
    for (int64_t d : sv.first) shape.push_back(edge::json::Value::integer(d));
    edge::json::Value e = edge::json::Value::object();
    e.set("dtype", edge::json::Value::string("F32"));
    e.set("shape", edge::json::Value::array(shape));
    const int64_t b = int64_t(data.size());
    data.append(reinterpret_cast<const char*>(sv.second.data()), sv.second.size() * 4);
    e.set("data_offsets", edge::json::Value::array({edge::json::Value::integer(b), edge::json::Value::integer(int64_t(data.size()))}));
    header.set(name, e);
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xFF);
  return out + h + data;
}

inline void write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), std::streamsize(s.size()));
}

// Manifest (without files) of a bundle with a "backbone" Mul network on c x h x w images.
inline edge::json::Value manifest(int64_t c, int64_t h, int64_t w, const std::string& kind = "identity",
                                   const std::string& out_name = "features", const std::string& net_name = "backbone") {
  using edge::json::Value;
  auto num = [](double d) { return Value::number(d); };
  auto shape = [&](std::vector<int64_t> s) {
    Value::Array a;
    for (auto d : s) a.push_back(Value::integer(d));
    return Value::array(a);
  };
  Value m = Value::object();
  m.set("format", Value::string("edge-sdk-bundle"));
  m.set("schema_version", Value::integer(1));
  m.set("sdk_version", Value::string("test"));
  Value model = Value::object();
  model.set("type", Value::string("test"));
  m.set("model", model);
  Value in = Value::object();
  in.set("height", Value::integer(h));
  in.set("width", Value::integer(w));
  in.set("channels", Value::integer(c));
  in.set("color_order", Value::string(c == 3 ? "RGB" : "GRAY"));
  Value::Array mean, stdv;
  for (int i = 0; i < c; ++i) {
    mean.push_back(num(0.5));
    stdv.push_back(num(0.25));
  }
  in.set("mean", Value::array(mean));
  in.set("std", Value::array(stdv));
  in.set("scale", num(1.0 / 255.0));
  in.set("value_range", Value::array({num(0), num(255)}));
  in.set("resize", Value::string("bilinear"));
  in.set("antialias", Value::boolean(false));
  in.set("on_size_mismatch", Value::string("resize"));
  in.set("dtypes", Value::array({Value::string("uint8"), Value::string("float32")}));
  m.set("input", in);
  Value tin = Value::object();
  tin.set("name", Value::string("image"));
  tin.set("shape", shape({-1, c, h, w}));
  tin.set("dtype", Value::string("float32"));
  Value tout = tin;
  tout.set("name", Value::string(out_name));
  Value net = Value::object();
  net.set("name", Value::string(net_name));
  net.set("precision", Value::string("fp32"));
  net.set("file", Value::string("backbone.onnx"));
  net.set("inputs", Value::array({tin}));
  net.set("outputs", Value::array({tout}));
  m.set("networks", Value::array({net}));
  Value arrays = Value::object();
  arrays.set("file", Value::string("arrays.safetensors"));
  Value tensors = Value::object();
  Value bias = Value::object();
  bias.set("dtype", Value::string("float32"));
  bias.set("shape", shape({c}));
  tensors.set("bias", bias);
  arrays.set("tensors", tensors);
  m.set("arrays", arrays);
  Value pp = Value::object();
  pp.set("kind", Value::string(kind));
  if (kind == "ssim") {  // the recipe ResGANAD exports
    pp.set("network", Value::string(net_name));
    pp.set("input", Value::string("image"));
    pp.set("reconstruction_output", Value::string(out_name));
    Value s = Value::object();
    s.set("window", Value::integer(3));
    s.set("sigma", num(1.0));
    s.set("k1", num(0.01));
    s.set("k2", num(0.03));
    s.set("data_range", num(1.0));
    pp.set("ssim", s);
    pp.set("image_score", Value::string("one_minus_mean_ssim"));
    pp.set("map", Value::string("abs_diff_channel_mean"));
    pp.set("map_upsample", Value::string("bilinear"));
    pp.set("map_size", Value::string("input"));
    pp.set("blur_sigma", num(0.0));
  }
  m.set("postprocess", pp);
  Value cal = Value::object();
  cal.set("threshold", num(1.0));
  cal.set("min", num(0.0));
  cal.set("max", num(2.0));
  m.set("calibration", cal);
  return m;
}

// Writes a complete, valid bundle: manifest with checksums, backbone.onnx (x * scale) carrying the
// manifest in metadata_props, arrays.safetensors with "bias" (c,).
inline void write_bundle(const std::filesystem::path& dir, const edge::json::Value& m, float scale = 2.0f,
                         const std::string& out_name = "features", const std::string& net_name = "backbone") {
  std::filesystem::create_directories(dir);
  const auto& in = *m.find("input");
  const int64_t c = in.find("channels")->as_int(), h = in.find("height")->as_int(), w = in.find("width")->as_int();
  const std::string onnx = mul_model(c, h, w, scale,
                                     {{edge::kOnnxMetaManifest, edge::manifest_for_onnx(m).dump()},
                                      {edge::kOnnxMetaSchema, "1"},
                                      {edge::kOnnxMetaNetwork, net_name + "/fp32"}},
                                     17, "image", out_name);
  std::vector<float> bias(size_t(c), 0.0f);
  const std::string st = safetensors({{"bias", {{c}, bias}}});
  edge::json::Value files = edge::json::Value::object();
  for (const auto& [name, data] : std::map<std::string, std::string>{{"backbone.onnx", onnx}, {"arrays.safetensors", st}}) {
    write(dir / name, data);
    edge::json::Value e = edge::json::Value::object();
    e.set("sha256", edge::json::Value::string(edge::sha256_hex(data.data(), data.size())));
    e.set("bytes", edge::json::Value::integer(int64_t(data.size())));
    files.set(name, e);
  }
  edge::json::Value full = m;
  full.set("files", files);
  write(dir / "manifest.json", full.dump());
}

}  // namespace tiny
