// Per-location Gaussian scoring: Mahalanobis distance (PaDiM), whitening and the nearest of a few
// per-location centroids (MhBC-PatchCore).
//
// Layouts (contiguous float32, row-major):
//   features, z  n x l x c   (n vectors at each of l locations, c channels)
//   mean         l x c
//   chol         l x c x c   lower Cholesky factor of each location's covariance; only the lower
//                            triangle (diagonal included) is read, the upper one is ignored
//   centroids    l x k x c
//   distances    n x l
//
// Checks: sizes must be >= 1; each chol diagonal entry must be finite and > 0; every value read
// must be finite and every result must be finite (a result that overflows float32 is an error,
// not an infinity). Failures throw ArgumentError naming the argument, the location and the entry.
// Non-finite inputs are detected from the results of the location (any NaN or infinity read
// reaches them), so the checks cost no extra pass over the data.
#pragma once

#include <cstdint>
#include <vector>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// Throws ArgumentError if a size is < 1.
void validate_mahalanobis_sizes(int64_t n, int64_t l, int64_t c);
void validate_local_nearest_sizes(int64_t n, int64_t l, int64_t k, int64_t c);

// dist[v, loc] = ||chol_loc^-1 (features[v, loc] - mean[loc])||.
void mahalanobis(const float* features, const float* mean, const float* chol, int64_t n, int64_t l,
                 int64_t c, float* dist, const Device& device = Device::cpu());
// z[v, loc] = chol_loc^-1 (features[v, loc] - mean[loc]).
void whiten(const float* features, const float* mean, const float* chol, int64_t n, int64_t l,
            int64_t c, float* z, const Device& device = Device::cpu());
// dist[v, loc] = min_j ||z[v, loc] - centroids[loc, j]|| (Euclidean, not squared).
void local_nearest(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                   int64_t c, float* dist, const Device& device = Device::cpu());

// CPU implementations. dist and z may each be nullptr in mahalanobis_whiten_cpu (not both).
void mahalanobis_whiten_cpu(const float* features, const float* mean, const float* chol,
                            int64_t n, int64_t l, int64_t c, float* dist, float* z,
                            ThreadPool& pool);
void local_nearest_cpu(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                       int64_t c, float* dist, ThreadPool& pool);

// How PackedCholesky stores the factors. F32: as given. BF16: each entry rounded to bfloat16
// (round_to_bf16), half the memory that every solve streams; the arithmetic stays float32, so the
// results are bit-identical to mahalanobis_whiten_cpu on the factor rounded entry by entry (the
// runtime's bf16 variant solves with that rounded factor at every batch size).
enum class FactorStorage { F32, BF16 };

// float32 -> the nearest bfloat16 (ties to even), returned as the float32 it is exactly; NaN stays
// NaN. Values beyond bfloat16's largest finite one round to infinity.
float round_to_bf16(float v);
// The c x c factors of l locations rounded by round_to_bf16 (only the lower triangle is read; the
// upper one is zeroed). Throws ArgumentError naming the entry where rounding turns a finite value
// infinite or a positive diagonal entry into zero, which would change what the checks report.
std::vector<float> round_factors_to_bf16(const float* chol, int64_t l, int64_t c);

// The lower Cholesky factors laid out once for mahalanobis_whiten_packed_cpu: locations in groups
// of the CPU's vector width, the lower triangle of each row interleaved across the group, so one
// vector instruction advances the solves of a whole group and the lanes are full whatever the
// batch (mahalanobis_whiten_cpu puts the vectors of one location in the lanes: at batch 8 on
// AVX-512 half of them are empty). Holds l * c * (c + 1) / 2 entries (rounded up to a group) of
// float32, or of bfloat16 with FactorStorage::BF16.
class PackedCholesky {
 public:
  PackedCholesky(const float* chol, int64_t l, int64_t c, FactorStorage storage = FactorStorage::F32);
  int64_t locations() const { return l_; }
  int64_t channels() const { return c_; }
  int64_t width() const { return width_; }
  int64_t tri() const { return tri_; }
  FactorStorage storage() const { return storage_kind_; }
  const void* data() const { return data_; }  // float or bfloat16 bits (uint16_t), 64-byte aligned
  size_t bytes() const { return storage_.size() * sizeof(float); }
  bool bad_diagonal(int64_t loc) const { return bad_diagonal_[static_cast<size_t>(loc)] != 0; }

 private:
  int64_t l_ = 0, c_ = 0, width_ = 0, tri_ = 0;
  FactorStorage storage_kind_ = FactorStorage::F32;
  std::vector<float> storage_;
  void* data_ = nullptr;  // 64-byte aligned into storage_
  std::vector<uint8_t> bad_diagonal_;
};

// mahalanobis_whiten_cpu on packed factors, bit-identical results and the same checks (chol is
// the factor array the pack was made from, read only to explain a failure: with BF16 storage, the
// rounded one, round_factors_to_bf16).
void mahalanobis_whiten_packed_cpu(const float* features, const float* mean, const float* chol,
                                   const PackedCholesky& packed, int64_t n, float* dist, float* z,
                                   ThreadPool& pool);

// Which CPU code path runs: "avx512", "avx2" or "generic" (portable vector code), chosen from the
// CPU's features at first use; EDGE_SDK_CPU_ISA=avx2|generic forces a lower one (for tests).
const char* mahalanobis_cpu_isa();

// Given that the results at location `loc` were flagged (a check failed), throws ArgumentError
// describing the first problem found there: a bad chol diagonal, a non-finite chol, mean or
// features entry, or a non-finite result (overflow). Returns if there is none. Host pointers;
// dist and z are the outputs computed (either may be nullptr).
void explain_mahalanobis_failure(const float* features, const float* mean, const float* chol,
                                 int64_t n, int64_t l, int64_t c, int64_t loc, const float* dist,
                                 const float* z);
void explain_local_nearest_failure(const float* z, const float* centroids, int64_t n, int64_t l,
                                   int64_t k, int64_t c, int64_t loc, const float* dist);

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers; run on `stream` (a cudaStream_t) without synchronizing.
// `workspace` holds mahalanobis_cuda_workspace_floats(n, l, c) floats. dist or z may be nullptr.
// `status` (device, one value) is set to the lowest location whose checks failed, or to
// kCudaStatusOk; after synchronizing, a caller with the inputs on the host passes it to
// explain_mahalanobis_failure (for loc = status .. l-1), as the host wrappers below do.
// `status` may be nullptr to skip reporting.
constexpr unsigned long long kCudaStatusOk = ~0ull;
int64_t mahalanobis_cuda_workspace_floats(int64_t n, int64_t l, int64_t c);
void mahalanobis_whiten_cuda(const float* features, const float* mean, const float* chol,
                             int64_t n, int64_t l, int64_t c, float* dist, float* z,
                             float* workspace, unsigned long long* status, void* stream);
void local_nearest_cuda(const float* z, const float* centroids, int64_t n, int64_t l, int64_t k,
                        int64_t c, float* dist, unsigned long long* status, void* stream);
// Host pointers; copy to the device, run, copy back, check (same errors as the CPU).
void mahalanobis_whiten_cuda_host(const float* features, const float* mean, const float* chol,
                                  int64_t n, int64_t l, int64_t c, float* dist, float* z,
                                  int device_index);
void local_nearest_cuda_host(const float* z, const float* centroids, int64_t n, int64_t l,
                             int64_t k, int64_t c, float* dist, int device_index);
#endif

}  // namespace edge
