// Detached Ed25519 signatures of bundles. A bundle's manifest.json pins every other file by
// sha256, so a signature over the exact bytes of manifest.json covers the whole bundle.
// signature.json (written by `edge-sdk sign`, edge_sdk/commands/sign.py):
//   {"format": "edge-sdk-signature", "version": 1, "algorithm": "ed25519",
//    "key_id": "<16 hex digits: sha256 of the raw 32-byte public key, first 8 bytes>",
//    "signature": "<base64 of the 64-byte signature>"}
// It is not listed in the manifest's files (it cannot be: it signs the manifest). Verification
// uses OpenSSL's libcrypto (EVP_PKEY_ED25519, EVP_DigestVerify); docs/BUNDLE.md "Signed bundles".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edge {

constexpr const char* kSignatureFile = "signature.json";
constexpr const char* kSignatureFormat = "edge-sdk-signature";
// Environment variable: public keys (PEM files, or directories of *.pem files) separated by ':'.
constexpr const char* kTrustedKeysEnv = "EDGE_SDK_TRUSTED_KEYS";
constexpr uint64_t kMaxSignatureBytes = 64 << 10;  // signature.json is ~200 bytes
constexpr uint64_t kMaxKeyFileBytes = 64 << 10;    // a PEM public key is ~113 bytes
constexpr size_t kMaxTrustedKeys = 1024;

// One Ed25519 public key the host trusts.
class TrustedKey {
 public:
  // PEM text ("-----BEGIN PUBLIC KEY-----", SubjectPublicKeyInfo); `source` names it in errors.
  // Throws BundleError unless it is exactly one Ed25519 public key.
  TrustedKey(const std::string& pem, const std::string& source);
  ~TrustedKey();
  TrustedKey(TrustedKey&&) noexcept;
  TrustedKey& operator=(TrustedKey&&) noexcept;

  const std::string& id() const { return id_; }
  const std::string& source() const { return source_; }
  bool verify(const uint8_t* message, size_t n, const uint8_t signature[64]) const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string id_, source_;
};

// Key id of a raw 32-byte Ed25519 public key (see above).
std::string ed25519_key_id(const uint8_t raw[32]);

// The keys named by a ':'-separated list of PEM files and directories (every regular *.pem file
// in it, sorted). `origin` names the list in errors ("EDGE_SDK_TRUSTED_KEYS"). An entry that
// cannot be read or holds no Ed25519 public key is an error naming it; so is a list that yields no
// key at all (a host that asks for signatures must not get unsigned bundles by a typo).
std::vector<TrustedKey> load_trusted_keys(const std::string& list, const std::string& origin);

// Checks signature.json (its bytes in `signature`, shown as `signature_source`) against
// manifest.json's exact bytes and `keys`. Throws BundleError naming signature.json and the key id
// when the file is malformed, names an untrusted key, or does not verify; returns the key id.
std::string verify_bundle_signature(const std::string& manifest, const std::string& signature,
                             const std::string& signature_source, const std::vector<TrustedKey>& keys);

}  // namespace edge
