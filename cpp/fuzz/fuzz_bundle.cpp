// Fuzz target of the bundle loader: every reader that sees bundle bytes before anything is
// trusted. The first input byte picks the reader, the rest is its input:
//   0 JSON (manifest syntax)          1 manifest schema (JSON + parse_manifest)
//   2 safetensors                     3 ONNX (read_onnx_info)
//   4 tar archive as-is (load_bundle) 5 bundle built from records, manifest checksums resealed
//   6 signature.json against a fixed key
// Mode 5 lets mutations reach the cross-checks behind the sha256 gate: the input is records
// (u8 name length, name, u32 little-endian size, content), written as a ustar archive after the
// "files" section of a manifest record is recomputed from the other records. Expected refusals
// are BundleError / json::ParseError; anything else (another exception, a crash, a sanitizer
// report, an allocation beyond the loader's caps) is a finding.
// Built with libFuzzer (clang, scripts/fuzz.sh) or, with any compiler, with driver.cpp.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/json.hpp"
#include "edge_sdk/runtime/manifest.hpp"
#include "edge_sdk/runtime/onnx_info.hpp"
#include "edge_sdk/runtime/safetensors.hpp"
#include "edge_sdk/runtime/sha256.hpp"
#include "edge_sdk/runtime/signature.hpp"

namespace {

// A fixed Ed25519 public key (RFC 8032 test 1) for mode 6.
const char* kPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";

std::string temp_path() {
  static std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/edge_fuzz_" + std::to_string(getpid()) + ".tar";
    return p;
  }();
  return path;
}

void write_file(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
  std::fclose(f);
}

void octal(char* field, size_t n, uint64_t v) {
  std::snprintf(field, n, "%0*llo", static_cast<int>(n - 1), static_cast<unsigned long long>(v));
}

void tar_entry(std::string& out, const std::string& name, const std::string& data) {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  octal(h + 100, 8, 0644);
  octal(h + 108, 8, 0);
  octal(h + 116, 8, 0);
  octal(h + 124, 12, data.size());
  octal(h + 136, 12, 0);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  out.append(h, 512);
  out += data;
  out.append((512 - data.size() % 512) % 512, '\0');
}

// Records -> archive, with manifest.json's "files" recomputed from the other records.
std::string records_to_tar(const uint8_t* p, size_t n) {
  std::vector<std::pair<std::string, std::string>> recs;
  size_t i = 0;
  while (i < n && recs.size() < 16) {
    const size_t len = p[i++];
    if (n - i < len) break;
    std::string name(reinterpret_cast<const char*>(p + i), len);
    i += len;
    if (n - i < 4) break;
    uint32_t size;
    std::memcpy(&size, p + i, 4);
    i += 4;
    size = static_cast<uint32_t>(std::min<size_t>(size, n - i));
    recs.emplace_back(name, std::string(reinterpret_cast<const char*>(p + i), size));
    i += size;
  }
  for (auto& [name, data] : recs) {
    if (name != edge::kManifestFile) continue;
    try {
      edge::json::Value m = edge::json::parse(data, "fuzz");
      if (!m.is_object()) break;
      edge::json::Value::Object files;
      for (const auto& [other, content] : recs) {
        if (other == edge::kManifestFile || other == edge::kSignatureFile) continue;
        files.emplace_back(other, edge::json::Value::object({{"sha256", edge::json::Value::string(edge::sha256_hex(content.data(), content.size()))},
                                                              {"bytes", edge::json::Value::integer(int64_t(content.size()))}}));
      }
      m.set("files", edge::json::Value::object(std::move(files)));
      data = m.dump();
    } catch (const std::exception&) {
    }
    break;
  }
  std::string tar;
  for (const auto& [name, data] : recs) tar_entry(tar, name, data);
  tar.append(1024, '\0');
  return tar;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 7;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  const std::string text(reinterpret_cast<const char*>(p), n);
  try {
    switch (mode) {
      case 0: edge::json::parse(text, "fuzz.json"); break;
      case 1: edge::parse_manifest(edge::json::parse(text, "manifest.json"), "manifest.json"); break;
      case 2: edge::parse_safetensors(p, n, "arrays.safetensors"); break;
      case 3: edge::read_onnx_info(p, n, "model.onnx"); break;
      case 4:
      case 5: {
        const std::string path = temp_path();
        write_file(path, mode == 4 ? text : records_to_tar(p, n));
        edge::LoadOptions o;
        o.trusted_keys_from_env = false;
        edge::load_bundle(path, o);
        break;
      }
      case 6: {
        static const std::vector<edge::TrustedKey> keys = [] {
          std::vector<edge::TrustedKey> k;
          k.emplace_back(kPem, "fuzz key");
          return k;
        }();
        // input: signature.json, then a 0 byte, then the manifest bytes it would sign
        const size_t cut = text.find('\0');
        edge::verify_bundle_signature(cut == std::string::npos ? "" : text.substr(cut + 1), text.substr(0, cut),
                                      "signature.json", keys);
        break;
      }
    }
  } catch (const edge::BundleError&) {
  } catch (const edge::json::ParseError&) {
  }
  return 0;
}
