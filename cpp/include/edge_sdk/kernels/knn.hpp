// k nearest neighbours (Euclidean) of query vectors among the rows of a bank: the scoring kernel
// of PatchCore. Results are exact: ascending distances, ties broken by the lower bank index.
#pragma once

#include <cstdint>
#include <string>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// Storage of the bank rows. F16 is IEEE binary16 (passed as uint16_t bits): half the memory;
// values are widened to float32 before any arithmetic.
enum class KnnBankType { F32, F16 };

// Instruction set of the CPU distance micro-kernel; Auto picks the best the CPU supports.
enum class KnnIsa { Auto, Scalar, Avx2, Avx512 };

struct KnnOptions {
  // Candidates kept per query beyond k by the fast scan, for the exact re-rank. Results do not
  // depend on it (queries whose candidates cannot be certified are scanned again with more);
  // only the speed does.
  int extra = 8;
  KnnIsa isa = KnnIsa::Auto;
};

// Throws ArgumentError naming the argument unless q >= 1, m >= 1, d >= 1, 1 <= k <= m and
// m < 2^31.
void validate_knn(int64_t q, int64_t m, int64_t d, int64_t k);

// queries: q x d float32, row-major. bank: m x d float32 or binary16 bits, row-major. Host memory.
// distances: q x k float32, Euclidean (not squared), ascending per row. indices: q x k int64.
// Memory beyond the inputs and outputs is bounded (chunks of queries and of the bank); no q x m
// matrix is formed. Throws ArgumentError for non-finite values or squared norms beyond 1e36.
void knn(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
         int64_t d, int64_t k, float* distances, int64_t* indices,
         const Device& device = Device::cpu());

void knn_cpu(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
             int64_t d, int64_t k, float* distances, int64_t* indices, ThreadPool& pool,
             const KnnOptions& options = {});

bool knn_isa_supported(KnnIsa isa);  // Auto and Scalar are always supported
KnnIsa knn_best_isa();
const char* knn_isa_name(KnnIsa isa);  // "auto", "scalar", "avx2", "avx512"
// Parses a name of knn_isa_name; throws ArgumentError naming `arg` otherwise.
KnnIsa parse_knn_isa(const std::string& name, const char* arg = "isa");

#ifdef EDGE_SDK_WITH_CUDA
// Device pointers; runs on `stream` (a cudaStream_t) without synchronizing. `workspace` holds
// knn_cuda_workspace_bytes(q, m, k) bytes. The scan sums squared differences in float32 (no
// cancellation), keeps k + extra candidates and re-ranks them in double (exact_sq_dist).
size_t knn_cuda_workspace_bytes(int64_t q, int64_t m, int64_t k);
void knn_cuda(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
              int64_t d, int64_t k, float* distances, int64_t* indices, void* workspace,
              void* stream);
// Host pointers; copies to the device, runs, copies back.
void knn_cuda_host(const float* queries, int64_t q, const void* bank, KnnBankType bank_type,
                   int64_t m, int64_t d, int64_t k, float* distances, int64_t* indices,
                   int device_index);
#endif

}  // namespace edge
