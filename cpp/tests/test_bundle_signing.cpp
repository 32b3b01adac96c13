// The loader's trusted-key option (edge::LoadOptions, what a Runtime/C ABI option will pass) and
// the helpers under the bundle hardening: UTF-8 sanitizing, regular-file reads. The Python tests
// (tests/test_signing.py, tests/test_bundle_hardening.py) cover the environment variable path and
// the many refusal cases end to end; these cover what only C++ can reach today.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "check.hpp"
#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/file_io.hpp"
#include "edge_sdk/runtime/text.hpp"
#include "tiny_onnx.hpp"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("edge_sdk_sign_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A fresh Ed25519 key: its public PEM written to `pub`; signs bundles (signature.json).
struct Key {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free};
  std::string id;

  explicit Key(const fs::path& pub) {
    CHECK(pkey != nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    tiny::write(pub, std::string(data, size_t(n)));
    BIO_free(bio);
    uint8_t raw[32];
    size_t len = 32;
    EVP_PKEY_get_raw_public_key(pkey.get(), raw, &len);
    id = edge::ed25519_key_id(raw);
  }

  void sign(const fs::path& bundle) const {
    const std::string m = read(bundle / "manifest.json");
    uint8_t sig[64];
    size_t len = sizeof sig;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey.get()) == 1);
    CHECK(EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const uint8_t*>(m.data()), m.size()) == 1);
    EVP_MD_CTX_free(ctx);
    char b64[89];
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64), sig, 64);
    tiny::write(bundle / "signature.json", "{\"format\": \"edge-sdk-signature\", \"version\": 1, \"algorithm\": \"ed25519\", "
                                           "\"key_id\": \"" + id + "\", \"signature\": \"" + std::string(b64) + "\"}");
  }
};

}  // namespace

EDGE_TEST(load_options_trusted_keys) {
  ::unsetenv(edge::kTrustedKeysEnv);
  const fs::path dir = temp_dir("opt");
  const Key a(dir / "a.pem"), b(dir / "b.pem");
  const fs::path bundle = dir / "bundle";
  tiny::write_bundle(bundle, tiny::manifest(3, 8, 6));

  edge::LoadOptions with_a;
  with_a.trusted_keys = {(dir / "a.pem").string()};
  CHECK(edge::load_bundle(bundle.string()).signed_by.empty());  // no keys: unsigned loads
  edge_test::expect_error<edge::BundleError>([&] { edge::load_bundle(bundle.string(), with_a); }, "signature.json: missing (the bundle is not signed");
  a.sign(bundle);
  CHECK(edge::load_bundle(bundle.string(), with_a).signed_by == a.id);
  b.sign(bundle);
  edge_test::expect_error<edge::BundleError>([&] { edge::load_bundle(bundle.string(), with_a); }, "signed by key " + b.id + ", which is not a trusted key");

  // The option and the environment add up; trusted_keys_from_env = false ignores the variable.
  ::setenv(edge::kTrustedKeysEnv, (dir / "b.pem").c_str(), 1);
  CHECK(edge::load_bundle(bundle.string(), with_a).signed_by == b.id);
  a.sign(bundle);
  CHECK(edge::load_bundle(bundle.string(), with_a).signed_by == a.id);
  edge_test::expect_error<edge::BundleError>([&] { edge::load_bundle(bundle.string()); }, "signed by key " + a.id);
  ::setenv(edge::kTrustedKeysEnv, (dir / "missing.pem").c_str(), 1);
  edge_test::expect_error<edge::BundleError>([&] { edge::load_bundle(bundle.string()); }, "EDGE_SDK_TRUSTED_KEYS entry");
  edge::LoadOptions only_option = with_a;
  only_option.trusted_keys_from_env = false;
  CHECK(edge::load_bundle(bundle.string(), only_option).signed_by == a.id);
  ::unsetenv(edge::kTrustedKeysEnv);

  // A directory of keys; a manifest changed after signing.
  edge::LoadOptions with_dir;
  with_dir.trusted_keys = {dir.string()};
  CHECK(edge::load_bundle(bundle.string(), with_dir).signed_by == a.id);
  std::string m = read(bundle / "manifest.json");
  m.insert(m.size() - 1, " ");  // same JSON, other bytes
  tiny::write(bundle / "manifest.json", m);
  CHECK(edge::load_bundle(bundle.string()).signed_by.empty());
  edge_test::expect_error<edge::BundleError>([&] { edge::load_bundle(bundle.string(), with_dir); }, "does not verify against manifest.json");
  fs::remove_all(dir);
}

EDGE_TEST(utf8_sanitize_cases) {
  CHECK(edge::utf8_sanitize("plain ascii") == "plain ascii");
  CHECK(edge::utf8_sanitize("\xE2\x82\xAC \xF0\x9F\x98\x80") == "\xE2\x82\xAC \xF0\x9F\x98\x80");  // valid multibyte kept
  CHECK(edge::utf8_sanitize("a\xFF" "b") == "a\\xFFb");
  CHECK(edge::utf8_sanitize("\xC0\xAF") == "\\xC0\\xAF");                 // overlong
  CHECK(edge::utf8_sanitize("\xED\xA0\x80") == "\\xED\\xA0\\x80");        // surrogate
  CHECK(edge::utf8_sanitize("\xF4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
  CHECK(edge::utf8_sanitize("\xE2\x82") == "\\xE2\\x82");                 // truncated at the end
  CHECK(edge::utf8_sanitize(std::string("\x1B[2J\n\x7F", 6)) == "\\x1B[2J\\x0A\\x7F");
  CHECK(edge::utf8_sanitize(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(edge::utf8_valid(edge::utf8_sanitize("\xC3\x28\xA0\xA1\xE2\x28\xA1")));
  CHECK(std::string(edge::BundleError("x\xFF").what()) == "x\\xFF");
}

EDGE_TEST(regular_files_only) {
  const fs::path dir = temp_dir("fifo");
  const fs::path fifo = dir / "pipe";
  CHECK(::mkfifo(fifo.c_str(), 0600) == 0);
  edge_test::expect_error<edge::BundleError>([&] { edge::RegularFile f(fifo.string(), "pipe"); }, "pipe: is a FIFO, not a regular file");
  edge_test::expect_error<edge::BundleError>([&] { edge::RegularFile f(dir.string(), "dir"); }, "dir: is a directory");
  edge_test::expect_error<edge::BundleError>([&] { edge::RegularFile f("/dev/null", "null"); }, "null: is a device");
  tiny::write(dir / "ten", "0123456789");
  edge_test::expect_error<edge::BundleError>([&] { edge::read_regular_file((dir / "ten").string(), "ten", 9, "test cap"); },
               "ten: 10 bytes, more than the test cap of 9 bytes (not read)");
  const edge::RegularFile f((dir / "ten").string(), "ten");
  CHECK(f.size() == 10 && f.read(2, 3) == std::vector<uint8_t>({'2', '3', '4'}));
  edge_test::expect_error<edge::BundleError>([&] { f.read(8, 3); }, "past its end");
  fs::remove_all(dir);
}

EDGE_TEST_MAIN()
