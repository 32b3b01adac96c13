#include "edge_sdk/runtime/bundle.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/file_io.hpp"
#include "edge_sdk/runtime/sha256.hpp"
#include "array_checks.hpp"

namespace fs = std::filesystem;

namespace edge {

const Tensor& Bundle::array(const std::string& name, const std::string& field) const {
  auto it = arrays.tensors.find(name);
  if (it == arrays.tensors.end())
    throw BundleError(path + "/" + manifest.arrays_file + ": no array \"" + name + "\" (needed by " + field + ")");
  return it->second;
}

namespace {

uint64_t tar_octal(const uint8_t* p, size_t n, const std::string& source) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) throw BundleError(source + ": corrupt tar header (octal field overflows)");
    v = v * 8 + (p[i] - '0');
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != 0) throw BundleError(source + ": corrupt tar header (bad octal field)");
  return v;
}

// The top-level files of a bundle directory or archive: names and sizes first, contents only on
// request, so unlisted or oversized entries are refused before a byte of them is read.
class Listing {
 public:
  explicit Listing(const std::string& path) : path_(path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw BundleError(path + ": no such bundle (directory or archive)");
    if (S_ISDIR(st.st_mode)) {
      list_directory();
    } else {
      archive_ = std::make_unique<RegularFile>(path, path);
      list_archive();
    }
  }

  const std::string& path() const { return path_; }
  std::string shown(const std::string& name) const { return path_ + "/" + name; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : entries_) out.push_back(kv.first);
    return out;
  }

  // The entry's bytes. Refused unread (naming the entry) when its size is not `expected`
  // (expected >= 0) or exceeds max_bytes.
  std::vector<uint8_t> read(const std::string& name, int64_t expected, uint64_t max_bytes,
                            const std::string& limit_name) const {
    const Entry& e = entries_.at(name);
    std::unique_ptr<RegularFile> own;
    uint64_t size = e.size, offset = e.offset;
    const RegularFile* f = archive_.get();
    if (!f) {
      own = std::make_unique<RegularFile>((fs::path(path_) / name).string(), shown(name));
      f = own.get();
      size = f->size();
      offset = 0;
    }
    if (expected >= 0 && size != uint64_t(expected))
      throw BundleError(shown(name) + ": " + std::to_string(size) + " bytes, manifest.json says " +
                        std::to_string(expected) + " (truncated or replaced?)");
    if (size > max_bytes)
      throw BundleError(shown(name) + ": " + std::to_string(size) + " bytes, more than the " + limit_name + " of " +
                        std::to_string(max_bytes) + " bytes (not read)");
    return f->read(offset, size);
  }

 private:
  struct Entry {
    uint64_t offset = 0, size = 0;  // in the archive
  };

  void add(const std::string& name, Entry e) {
    if (entries_.size() >= kMaxBundleEntries)
      throw BundleError(path_ + ": more than " + std::to_string(kMaxBundleEntries) + " files");
    if (!entries_.emplace(name, e).second)
      throw BundleError(path_ + ": entry \"" + name + "\" appears twice");
  }

  void list_directory() {
    const fs::path dir(path_);
    std::error_code ec;
    size_t seen = 0;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (++seen > 4 * kMaxBundleEntries)
        throw BundleError(path_ + ": more than " + std::to_string(4 * kMaxBundleEntries) + " directory entries");
      const std::string name = it->path().filename().string();
      std::error_code sec;
      const auto st = it->status(sec);  // follows symbolic links: a link to a regular file is read
      if (fs::is_directory(st)) {
        if (name == kEnginesDir) continue;
        throw BundleError(path_ + ": unexpected subdirectory \"" + name + "\" in the bundle");
      }
      add(name, Entry{});  // FIFOs, devices and sockets are refused when opened (RegularFile)
    }
    if (ec) throw BundleError(path_ + ": cannot list the directory (" + ec.message() + ")");
  }

  // Uncompressed ustar archive of a bundle directory: regular files at the top level (an
  // optional leading "./" or single directory prefix is stripped), plus engines/ entries, which
  // are ignored. Only the 512-byte headers are read here.
  void list_archive() {
    const RegularFile& tar = *archive_;
    const std::string& source = path_;
    const uint64_t total = tar.size();
    uint64_t pos = 0;
    std::string prefix;
    bool prefix_known = false;
    size_t headers = 0;
    uint8_t h[512];
    while (total >= 512 && pos <= total - 512) {
      if (++headers > 4 * kMaxBundleEntries)
        throw BundleError(source + ": more than " + std::to_string(4 * kMaxBundleEntries) + " tar entries");
      tar.read_into(pos, 512, h);
      bool zero = true;
      for (int i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
      if (zero) return;
      uint64_t sum = 0;
      for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
      if (sum != tar_octal(h + 148, 8, source)) throw BundleError(source + ": corrupt tar header (checksum)");
      std::string name(reinterpret_cast<const char*>(h), strnlen(reinterpret_cast<const char*>(h), 100));
      const std::string ustar_prefix(reinterpret_cast<const char*>(h + 345), strnlen(reinterpret_cast<const char*>(h + 345), 155));
      if (!ustar_prefix.empty()) name = ustar_prefix + "/" + name;
      const uint64_t size = tar_octal(h + 124, 12, source);
      const char type = static_cast<char>(h[156]);
      pos += 512;
      if (size > total - pos)
        throw BundleError(source + ": truncated tar archive (entry \"" + name + "\" declares " + std::to_string(size) +
                          " bytes, " + std::to_string(total - pos) + " remain)");
      if (name.rfind("./", 0) == 0) name = name.substr(2);
      if (type == '5') {  // directory entry: "bundle/" prefix or the engines/ folder
        if (!prefix_known && !name.empty() && name.find('/') == name.size() - 1 &&
            name != std::string(kEnginesDir) + "/") {
          prefix = name;
          prefix_known = true;
        }
      } else if (type == '0' || type == '\0') {
        if (!prefix.empty() && name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
        if (name.rfind(std::string(kEnginesDir) + "/", 0) != 0) {
          if (name.empty() || name.find('/') != std::string::npos)
            throw BundleError(source + ": unexpected entry \"" + name + "\" (bundles hold files at the top level)");
          add(name, Entry{pos, size});
        }
      } else {
        throw BundleError(source + ": unsupported tar entry type '" + std::string(1, type) + "' for \"" + name +
                          "\" (write archives with edge_sdk.bundle.pack)");
      }
      pos += (size + 511) / 512 * 512;
    }
    throw BundleError(source + ": truncated tar archive (no end marker)");
  }

  std::string path_;
  std::unique_ptr<RegularFile> archive_;
  std::map<std::string, Entry> entries_;
};

// manifest.json as text for the JSON reader: a UTF-8 byte order mark (Windows editors write one)
// is skipped; UTF-16/32 text is refused with what to do about it.
std::string manifest_text(const std::vector<uint8_t>& bytes, const std::string& source) {
  const size_t n = bytes.size();
  if (n >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) return std::string(bytes.begin() + 3, bytes.end());
  const bool bom16 = n >= 2 && ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF));
  const bool bom32 = n >= 4 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0xFE && bytes[3] == 0xFF;
  // JSON text starts with an ASCII character, so a zero byte among the first two is UTF-16/32
  // without a byte order mark.
  const bool zeros = n >= 2 && (bytes[0] == 0 || bytes[1] == 0);
  if (bom16 || bom32 || zeros)
    throw BundleError(source + ": UTF-16 or UTF-32 text; JSON manifests must be UTF-8 (save the file as UTF-8)");
  return std::string(bytes.begin(), bytes.end());
}

std::vector<TrustedKey> trusted_keys(const LoadOptions& options) {
  std::string list;
  for (const auto& k : options.trusted_keys) list += (list.empty() ? "" : ":") + k;
  std::vector<TrustedKey> keys;
  // Entries given but naming nothing (an empty path) refuse, never quietly mean "no keys".
  if (!options.trusted_keys.empty()) keys = load_trusted_keys(list, "trusted_keys option");
  const char* env = options.trusted_keys_from_env ? std::getenv(kTrustedKeysEnv) : nullptr;
  if (env && *env) {
    auto more = load_trusted_keys(env, kTrustedKeysEnv);
    if (keys.size() + more.size() > kMaxTrustedKeys)
      throw BundleError(std::string(kTrustedKeysEnv) + ": more than " + std::to_string(kMaxTrustedKeys) + " public keys");
    for (auto& k : more) keys.push_back(std::move(k));
  }
  return keys;
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

Bundle load_bundle(const std::string& path, const LoadOptions& options) {
  Bundle b;
  b.path = path;
  const std::vector<TrustedKey> keys = trusted_keys(options);
  const Listing listing(path);
  auto name_of = [&](const std::string& f) { return listing.shown(f); };

  const std::string manifest_source = name_of(kManifestFile);
  if (!listing.has(kManifestFile)) throw BundleError(manifest_source + ": missing");
  const std::vector<uint8_t> manifest_bytes =
      listing.read(kManifestFile, -1, kMaxManifestBytes, "manifest size limit");
  // With trusted keys the signature is checked before the manifest is parsed: an unsigned
  // manifest's text never reaches the JSON reader.
  if (!keys.empty()) {
    const std::string sig_source = name_of(kSignatureFile);
    if (!listing.has(kSignatureFile))
      throw BundleError(sig_source + ": missing (the bundle is not signed, and trusted keys are configured: " +
                        std::to_string(keys.size()) + " key(s))");
    const auto sig = listing.read(kSignatureFile, -1, kMaxSignatureBytes, "signature size limit");
    b.signed_by = verify_bundle_signature(std::string(manifest_bytes.begin(), manifest_bytes.end()),
                                          std::string(sig.begin(), sig.end()), sig_source, keys);
  }
  json::Value doc;
  try {
    doc = json::parse(manifest_text(manifest_bytes, manifest_source), manifest_source);
  } catch (const json::ParseError& e) {
    throw BundleError(e.what());
  }
  b.manifest = parse_manifest(doc, manifest_source);
  const Manifest& m = b.manifest;

  // Files: exactly those listed (signature.json aside), each with the listed size and checksum.
  // Sizes are compared before reading, so an oversized or unlisted entry is never read.
  for (const auto& [name, entry] : m.files)
    if (!listing.has(name)) throw BundleError(name_of(name) + ": missing (listed in manifest.json files)");
  for (const auto& name : listing.names())
    if (name != kManifestFile && name != kSignatureFile && !m.files.count(name))
      throw BundleError(name_of(name) + ": unexpected file (not listed in manifest.json files)");
  std::map<std::string, std::vector<uint8_t>> files;
  for (const auto& [name, e] : m.files) {
    auto data = listing.read(name, e.bytes, kMaxFileBytes, "file size limit");
    const std::string sum = sha256_hex(data.data(), data.size());
    if (sum != e.sha256)
      throw BundleError(name_of(name) + ": sha256 " + sum + " does not match manifest.json (" + e.sha256 + ")");
    files.emplace(name, std::move(data));
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
    check_arrays_finite(b.arrays, src);
    // The k-NN bank's values decide the search's cost, not only its result (array_checks.hpp).
    if (m.postprocess_kind == "knn") {
      const json::Value* roles = m.postprocess.find("arrays");
      const json::Value* bank = roles ? roles->find("bank") : nullptr;
      if (bank && bank->is_string()) {
        auto it = b.arrays.tensors.find(bank->as_string());
        if (it != b.arrays.tensors.end()) check_knn_bank(it->second, it->first, src);
      }
    }
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
