#include "edge_sdk/runtime/signature.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "edge_sdk/runtime/file_io.hpp"
#include "edge_sdk/runtime/json.hpp"
#include "edge_sdk/runtime/sha256.hpp"

namespace fs = std::filesystem;

namespace edge {

struct TrustedKey::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

TrustedKey::~TrustedKey() = default;
TrustedKey::TrustedKey(TrustedKey&&) noexcept = default;
TrustedKey& TrustedKey::operator=(TrustedKey&&) noexcept = default;

std::string ed25519_key_id(const uint8_t raw[32]) { return sha256_hex(raw, 32).substr(0, 16); }

TrustedKey::TrustedKey(const std::string& pem, const std::string& source) : key_(new Key), source_(source) {
  if (pem.size() > kMaxKeyFileBytes) throw BundleError(source + ": larger than a public key file can be");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) throw BundleError(source + ": out of memory reading the key");
  key_->pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key_->pkey)
    throw BundleError(source + ": not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\", as written by "
                               "`edge-sdk sign --generate-key`)");
  if (EVP_PKEY_get_base_id(key_->pkey) != EVP_PKEY_ED25519)
    throw BundleError(source + ": not an Ed25519 public key (bundle signatures are Ed25519)");
  uint8_t raw[32];
  size_t n = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key_->pkey, raw, &n) != 1 || n != 32)
    throw BundleError(source + ": cannot read the Ed25519 public key");
  id_ = ed25519_key_id(raw);
}

bool TrustedKey::verify(const uint8_t* message, size_t n, const uint8_t signature[64]) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  // Ed25519 is one-shot (no digest is given): EVP_DigestVerify over the whole message.
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key_->pkey) == 1 &&
            EVP_DigestVerify(ctx, signature, 64, message, n) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

namespace {

std::string read_text(const std::string& path, const std::string& shown) {
  const auto bytes = read_regular_file(path, shown, kMaxKeyFileBytes, "size limit of a key file");
  return std::string(bytes.begin(), bytes.end());
}

void add_key(std::vector<TrustedKey>& keys, const std::string& path, const std::string& shown,
             const std::string& origin) {
  if (keys.size() >= kMaxTrustedKeys)
    throw BundleError(origin + ": more than " + std::to_string(kMaxTrustedKeys) + " public keys");
  keys.emplace_back(read_text(path, shown), shown);
}

// Standard base64 (RFC 4648, with padding) of exactly `n` bytes, decoded by libcrypto; the text
// must be the canonical encoding (re-encoding the bytes gives it back).
bool base64_exact(const std::string& text, size_t n, std::vector<uint8_t>& out) {
  const size_t enc = 4 * ((n + 2) / 3);
  if (text.size() != enc) return false;
  std::vector<uint8_t> buf(enc / 4 * 3 + 1);
  const int got = EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(enc));
  if (got < 0 || static_cast<size_t>(got) < n) return false;
  buf.resize(n);
  std::string again(enc + 1, '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(again.data()), buf.data(), static_cast<int>(n));
  again.resize(enc);
  if (again != text) return false;
  out = std::move(buf);
  return true;
}

}  // namespace

std::vector<TrustedKey> load_trusted_keys(const std::string& list, const std::string& origin) {
  std::vector<TrustedKey> keys;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    const std::string entry = list.substr(start, end - start);
    start = end + 1;
    if (entry.empty()) continue;
    const std::string shown = origin + " entry " + entry;
    std::error_code ec;
    const auto st = fs::status(entry, ec);
    if (ec || !fs::exists(st)) throw BundleError(shown + ": no such key file or directory");
    if (fs::is_directory(st)) {
      std::vector<std::string> files;
      for (fs::directory_iterator it(entry, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() == ".pem") files.push_back(it->path().string());
        if (files.size() > kMaxTrustedKeys)
          throw BundleError(shown + ": more than " + std::to_string(kMaxTrustedKeys) + " *.pem files");
      }
      if (ec) throw BundleError(shown + ": cannot list the directory (" + ec.message() + ")");
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add_key(keys, f, origin + " key " + f, origin);
    } else {
      add_key(keys, entry, origin + " key " + entry, origin);
    }
  }
  if (keys.empty())
    throw BundleError(origin + ": names no public key (\"" + list + "\"); unset it to load unsigned bundles, or list "
                               "PEM files / directories of *.pem files separated by ':'");
  return keys;
}

std::string verify_bundle_signature(const std::string& manifest, const std::string& signature,
                             const std::string& source, const std::vector<TrustedKey>& keys) {
  json::Value doc;
  try {
    doc = json::parse(signature, source);
  } catch (const json::ParseError& e) {
    throw BundleError(e.what());
  }
  Fields f(doc, source, "");
  const std::string format = f.str("format");
  if (format != kSignatureFormat) f.fail("format", std::string("expected \"") + kSignatureFormat + "\", got \"" + format + "\"");
  f.integer("version", 1, 1);
  f.one_of("algorithm", {"ed25519"});
  const std::string key_id = f.str("key_id");
  std::vector<uint8_t> sig;
  if (!base64_exact(f.str("signature"), 64, sig))
    f.fail("signature", "expected the base64 text of a 64-byte Ed25519 signature");
  std::string ids;
  for (const auto& k : keys) {
    if (k.id() != key_id) continue;
    if (!k.verify(reinterpret_cast<const uint8_t*>(manifest.data()), manifest.size(), sig.data()))
      throw BundleError(source + ": the signature by key " + key_id + " (" + k.source() +
                        ") does not verify against manifest.json: the manifest was changed after signing, or the "
                        "signature belongs to another bundle");
    return key_id;
  }
  for (const auto& k : keys) ids += (ids.empty() ? "" : ", ") + k.id();
  throw BundleError(source + ": signed by key " + key_id + ", which is not a trusted key (trusted: " + ids + ")");
}

}  // namespace edge
