#include "edge_sdk/runtime/bundle.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/sha256.hpp"

namespace fs = std::filesystem;

namespace edge {

const Tensor& Bundle::array(const std::string& name, const std::string& field) const {
  auto it = arrays.tensors.find(name);
  if (it == arrays.tensors.end())
    throw BundleError(path + "/" + manifest.arrays_file + ": no array \"" + name + "\" (needed by " + field + ")");
  return it->second;
}

namespace {

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw BundleError(p.string() + ": cannot be read");
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  f.seekg(0, std::ios::beg);
  std::vector<uint8_t> data(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(data.data()), n)) throw BundleError(p.string() + ": read error");
  return data;
}

using FileMap = std::map<std::string, std::vector<uint8_t>>;

FileMap read_directory(const fs::path& dir) {
  FileMap files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory()) {
      if (name == kEnginesDir) continue;
      throw BundleError(dir.string() + ": unexpected subdirectory \"" + name + "\" in the bundle");
    }
    if (!e.is_regular_file())
      throw BundleError(dir.string() + ": \"" + name + "\" is not a regular file");
    files.emplace(name, read_file(e.path()));
  }
  return files;
}

uint64_t tar_octal(const uint8_t* p, size_t n, const std::string& source) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + (p[i] - '0');
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != 0) throw BundleError(source + ": corrupt tar header (bad octal field)");
  return v;
}

// Uncompressed ustar archive of a bundle directory: regular files at the top level (an optional
// leading "./" or single directory prefix is stripped), plus engines/ entries, which are ignored.
FileMap read_tar(const fs::path& archive) {
  const std::string source = archive.string();
  const std::vector<uint8_t> data = read_file(archive);
  FileMap files;
  size_t pos = 0;
  std::string prefix;
  bool prefix_known = false;
  while (pos + 512 <= data.size()) {
    const uint8_t* h = data.data() + pos;
    bool zero = true;
    for (int i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
    if (zero) return files;
    uint64_t sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum != tar_octal(h + 148, 8, source)) throw BundleError(source + ": corrupt tar header (checksum)");
    std::string name(reinterpret_cast<const char*>(h), strnlen(reinterpret_cast<const char*>(h), 100));
    const std::string ustar_prefix(reinterpret_cast<const char*>(h + 345), strnlen(reinterpret_cast<const char*>(h + 345), 155));
    if (!ustar_prefix.empty()) name = ustar_prefix + "/" + name;
    const uint64_t size = tar_octal(h + 124, 12, source);
    const char type = static_cast<char>(h[156]);
    pos += 512;
    if (size > data.size() - pos) throw BundleError(source + ": truncated tar archive (entry \"" + name + "\")");
    if (name.rfind("./", 0) == 0) name = name.substr(2);
    if (type == '5') {  // directory entry: "bundle/" prefix or the engines/ folder
      if (!prefix_known && name.find('/') == name.size() - 1 && name != std::string(kEnginesDir) + "/") {
        prefix = name;
        prefix_known = true;
      }
    } else if (type == '0' || type == '\0') {
      if (!prefix.empty() && name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
      if (name.rfind(std::string(kEnginesDir) + "/", 0) != 0) {
        if (name.empty() || name.find('/') != std::string::npos)
          throw BundleError(source + ": unexpected entry \"" + name + "\" (bundles hold files at the top level)");
        if (!files.emplace(name, std::vector<uint8_t>(data.begin() + pos, data.begin() + pos + size)).second)
          throw BundleError(source + ": entry \"" + name + "\" appears twice");
      }
    } else {
      throw BundleError(source + ": unsupported tar entry type '" + std::string(1, type) + "' for \"" + name +
                        "\" (write archives with edge_sdk.bundle.pack)");
    }
    pos += (size + 511) / 512 * 512;
  }
  throw BundleError(source + ": truncated tar archive (no end marker)");
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

void check_tensors(const std::string& where, const std::string& what, const std::vector<TensorSpec>& declared,
                   const std::vector<OnnxValueInfo>& actual) {
  std::set<std::string> names;
  for (const auto& a : actual) names.insert(a.name);
  for (const auto& d : declared) {
    const OnnxValueInfo* a = nullptr;
    for (const auto& x : actual)
      if (x.name == d.name) a = &x;
    if (!a) {
      std::string have;
      for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
      throw BundleError(where + ": manifest " + what + " \"" + d.name + "\" is not in the ONNX graph (it has: " + have + ")");
    }
    if (a->elem_type != 1)
      throw BundleError(where + ": " + what + " \"" + d.name + "\" is " + onnx_elem_type_name(a->elem_type) +
                        " in the ONNX graph, manifest says " + d.dtype);
    if (!a->has_shape || a->dims.size() != d.shape.size())
      throw BundleError(where + ": " + what + " \"" + d.name + "\" has rank " + std::to_string(a->dims.size()) +
                        " in the ONNX graph, manifest says shape " + dims_str(d.shape));
    if (a->dim_params[0].empty())
      throw BundleError(where + ": " + what + " \"" + d.name + "\" has a fixed batch dimension " +
                        std::to_string(a->dims[0]) + " in the ONNX graph (export with a dynamic batch axis)");
    for (size_t i = 1; i < d.shape.size(); ++i)
      if (a->dims[i] != d.shape[i])
        throw BundleError(where + ": " + what + " \"" + d.name + "\" has shape " + dims_str(a->dims) +
                          " in the ONNX graph, manifest says " + dims_str(d.shape));
    names.erase(d.name);
  }
  if (!names.empty())
    throw BundleError(where + ": ONNX graph " + what + " \"" + *names.begin() + "\" is not declared in the manifest");
}

}  // namespace

Bundle load_bundle(const std::string& path) {
  Bundle b;
  b.path = path;
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) throw BundleError(path + ": no such bundle (directory or archive)");
  FileMap files = fs::is_directory(p, ec) ? read_directory(p) : read_tar(p);
  auto name_of = [&](const std::string& f) { return path + "/" + f; };

  auto mit = files.find(kManifestFile);
  if (mit == files.end()) throw BundleError(name_of(kManifestFile) + ": missing");
  const std::string manifest_source = name_of(kManifestFile);
  json::Value doc;
  try {
    doc = json::parse(std::string(mit->second.begin(), mit->second.end()), manifest_source);
  } catch (const json::ParseError& e) {
    throw BundleError(e.what());
  }
  b.manifest = parse_manifest(doc, manifest_source);
  const Manifest& m = b.manifest;
  files.erase(mit);

  // Files: exactly those listed, each with the listed size and checksum.
  for (const auto& [name, entry] : m.files)
    if (!files.count(name)) throw BundleError(name_of(name) + ": missing (listed in manifest.json files)");
  for (const auto& [name, data] : files)
    if (!m.files.count(name)) throw BundleError(name_of(name) + ": unexpected file (not listed in manifest.json files)");
  for (const auto& [name, data] : files) {
    const FileEntry& e = m.files.at(name);
    if (int64_t(data.size()) != e.bytes)
      throw BundleError(name_of(name) + ": " + std::to_string(data.size()) + " bytes, manifest.json says " +
                        std::to_string(e.bytes) + " (truncated or replaced?)");
    const std::string sum = sha256_hex(data.data(), data.size());
    if (sum != e.sha256)
      throw BundleError(name_of(name) + ": sha256 " + sum + " does not match manifest.json (" + e.sha256 + ")");
  }

  // Arrays: exactly the declared tensors with their dtypes and shapes.
  {
    const auto& data = files.at(m.arrays_file);
    const std::string src = name_of(m.arrays_file);
    b.arrays = parse_safetensors(data.data(), data.size(), src);
    for (const auto& [name, spec] : m.arrays) {
      auto it = b.arrays.tensors.find(name);
      if (it == b.arrays.tensors.end())
        throw BundleError(src + ": array \"" + name + "\" declared in manifest.json arrays.tensors is missing");
      if (it->second.dtype != spec.dtype || it->second.shape != spec.shape)
        throw BundleError(src + ": array \"" + name + "\" is " + dtype_name(it->second.dtype) + " " +
                          dims_str(it->second.shape) + ", manifest.json arrays.tensors says " + dtype_name(spec.dtype) +
                          " " + dims_str(spec.shape));
    }
    for (const auto& [name, t] : b.arrays.tensors)
      if (!m.arrays.count(name))
        throw BundleError(src + ": array \"" + name + "\" is not declared in manifest.json arrays.tensors");
  }

  // Networks: the ONNX graph must be what the manifest says it is.
  const json::Value embedded_expected = manifest_for_onnx(m.raw);
  for (const auto& net : m.networks) {
    const std::string src = name_of(net.file);
    const auto& data = files.at(net.file);
    OnnxInfo info = read_onnx_info(data.data(), data.size(), src);
    auto op = info.opsets.find("");
    if (op == info.opsets.end() || op->second < 17)
      throw BundleError(src + ": default-domain opset " + (op == info.opsets.end() ? std::string("missing") : std::to_string(op->second)) +
                        ", bundles need opset 17 or newer");
    check_tensors(src, "input", net.inputs, info.inputs);
    check_tensors(src, "output", net.outputs, info.outputs);
    const auto& in = net.inputs.front();
    if (net.inputs.size() == 1 &&
        (in.shape.size() != 4 || in.shape[1] != m.input.channels || in.shape[2] != m.input.height || in.shape[3] != m.input.width))
      throw BundleError(manifest_source + ": networks input \"" + in.name + "\" shape " + dims_str(in.shape) +
                        " does not match input (channels " + std::to_string(m.input.channels) + ", " +
                        std::to_string(m.input.height) + "x" + std::to_string(m.input.width) + ")");
    auto meta = info.metadata.find(kOnnxMetaManifest);
    if (meta == info.metadata.end())
      throw BundleError(src + ": metadata_props has no \"" + std::string(kOnnxMetaManifest) +
                        "\" (not written by the edge-sdk converter)");
    json::Value embedded;
    try {
      embedded = json::parse(meta->second, src + " metadata_props " + kOnnxMetaManifest);
    } catch (const json::ParseError& e) {
      throw BundleError(e.what());
    }
    if (embedded != embedded_expected) {
      std::string field = "(top level)";
      if (embedded.is_object() && embedded_expected.is_object()) {
        for (const auto& [k, v] : embedded_expected.as_object()) {
          const json::Value* o = embedded.find(k);
          if (!o || *o != v) { field = k; break; }
        }
        if (field == "(top level)")
          for (const auto& [k, v] : embedded.as_object())
            if (!embedded_expected.find(k)) { field = k; break; }
      }
      throw BundleError(src + ": metadata_props " + kOnnxMetaManifest + " contradicts manifest.json (field \"" +
                        field + "\" differs)");
    }
    auto net_meta = info.metadata.find(kOnnxMetaNetwork);
    if (net_meta != info.metadata.end() && net_meta->second != net.name + "/" + net.precision)
      throw BundleError(src + ": metadata_props " + kOnnxMetaNetwork + " is \"" + net_meta->second +
                        "\", manifest.json lists the file as network \"" + net.name + "/" + net.precision + "\"");
    b.onnx.emplace(net.file, std::move(info));
  }
  for (const auto& net : m.networks)
    if (!b.contents.count(net.file)) b.contents[net.file] = std::move(files.at(net.file));
  return b;
}

}  // namespace edge
