// The load-time k-NN bank check (cpp/src/runtime/array_checks.hpp) on banks larger than its
// 4096-row sample, and the numbers it decides on; tests/test_bundle_hardening.py covers small banks
// through whole bundles.
#include <cstring>
#include <random>
#include <string>

#include "../src/runtime/array_checks.hpp"
#include "check.hpp"
#include "edge_sdk/runtime/errors.hpp"

namespace {

edge::Tensor bank(int64_t m, int64_t d, uint32_t seed = 1) {
  edge::Tensor t;
  t.dtype = edge::DType::F32;
  t.shape = {m, d};
  t.nbytes = static_cast<size_t>(m * d) * 4;
  t.storage = std::shared_ptr<uint8_t>(new uint8_t[t.nbytes], std::default_delete<uint8_t[]>());
  std::mt19937 g(seed);
  std::normal_distribution<float> n;
  float* p = reinterpret_cast<float*>(t.storage.get());
  for (int64_t i = 0; i < m * d; ++i) p[i] = n(g);
  return t;
}

float* rows(edge::Tensor& t) { return reinterpret_cast<float*>(t.storage.get()); }

std::string refusal(const edge::Tensor& t) {
  try {
    edge::check_knn_bank(t, "bank", "arrays.safetensors");
  } catch (const edge::BundleError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

EDGE_TEST(large_banks) {
  const int64_t m = 10007, d = 32;
  edge::Tensor t = bank(m, d);
  CHECK(refusal(t).empty());
  rows(t)[5000 * d + 3] = 4.2e12f;  // not a sampled row (every 10007/4096-th is): B covers all rows
  CHECK(refusal(t).find("dwarfs the data's scale") != std::string::npos);
  rows(t)[5000 * d + 3] = 30.0f;  // a 30-sigma value: ordinary
  CHECK(refusal(t).empty());
  for (int64_t i = 1; i < m / 2 + 10; ++i) std::memcpy(rows(t) + i * d, rows(t), size_t(d) * 4);
  CHECK(refusal(t).find("is degenerate") != std::string::npos);
  edge::Tensor z = bank(m, d, 2);
  std::memset(rows(z), 0, z.nbytes);
  CHECK(refusal(z).find("is degenerate") != std::string::npos);
  edge::Tensor dup = bank(m, d, 3);
  for (int64_t i = 9000; i < 9009; ++i) std::memcpy(rows(dup) + i * d, rows(dup) + 8999 * d, size_t(d) * 4);
  CHECK(refusal(dup).find("row 8999 appears 10 times") != std::string::npos);
}

EDGE_TEST(bound_scales_with_dimension) {
  // The same relative outlier is admitted in a narrow bank and refused in a wide one: the kernel's
  // error bound grows with d.
  edge::Tensor narrow = bank(2000, 4), wide = bank(2000, 1024);
  rows(narrow)[7] = 200.0f;
  rows(wide)[7] = 200.0f * 16.0f;  // the same multiple of the typical norm (sqrt(1024 / 4) = 16)
  CHECK(refusal(narrow).empty());
  CHECK(refusal(wide).find("dwarfs") != std::string::npos);
}

EDGE_TEST_MAIN()
