// k nearest neighbours (Euclidean) of query vectors among the rows of a bank: the scoring kernel
// of PatchCore. Results are exact: ascending distances, ties broken by the lower bank index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

namespace edge {

// Storage of the bank rows. F16 is IEEE binary16 (passed as uint16_t bits): half the memory;
// values are widened to float32 before any arithmetic.
enum class KnnBankType { F32, F16 };

// Instruction set of the CPU distance micro-kernel; Auto picks the best the CPU supports.
// Avx512Bf16 scans with bfloat16 dot products (AVX512-BF16: twice the multiply-adds per
// instruction, half the bytes per bank panel); the re-rank and its certification keep the results
// exact, identical to the other paths (the certification's bound includes the rounding).
enum class KnnIsa { Auto, Scalar, Avx2, Avx512, Avx512Bf16 };

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

// One-off search: builds a KnnIndex for `bank` and searches it once (the same code path, so the
// results are those of KnnIndex::search). Callers that query the same bank repeatedly should keep
// a KnnIndex instead: this repeats the bank statistics and packing on every call.
void knn_cpu(const float* queries, int64_t q, const void* bank, KnnBankType bank_type, int64_t m,
             int64_t d, int64_t k, float* distances, int64_t* indices, ThreadPool& pool,
             const KnnOptions& options = {});

// Working memory of KnnIndex::search: query norms, candidate heaps, packed queries and re-rank
// buffers (one set per pool thread). Buffers only grow and are kept: a search through a scratch
// that has already served a search of the same q and k with the same pool allocates nothing on
// the heap (cpp/tests/test_knn_alloc.cpp counts), unless it needs more room than any before
// (queries whose certification fails are re-scanned with 4x the candidates). Not shareable
// between concurrent searches: one per calling thread.
class KnnScratch {
 public:
  KnnScratch();
  ~KnnScratch();
  KnnScratch(KnnScratch&&) noexcept;
  KnnScratch& operator=(KnnScratch&&) noexcept;
  size_t bytes() const;  // memory currently held

  struct Impl;

 private:
  friend class KnnIndex;
  std::unique_ptr<Impl> impl_;
};

// A bank prepared for repeated CPU searches: the centring mean, the squared norm of every centred
// row and the packed, zero-padded panels of the micro-kernel of options.isa are computed once
// (in `pool`); search() then only packs the queries, scans, re-ranks and certifies, exactly as
// knn_cpu (which is build + search). The index keeps a pointer to `bank` for the exact re-rank:
// the bank must outlive the index and must not change. Memory owned: ceil(m / nr) * nr * (d + 1)
// float32 (nr = 16 or 32 bank vectors per panel), i.e. about one float32 copy of the bank (half
// of it with Avx512Bf16, whose panels hold bfloat16 pairs).
// Read-only after construction: concurrent search() calls are safe, each with its own scratch
// (or none). Searches sharing a ThreadPool run their parallel sections one at a time.
class KnnIndex {
 public:
  // Throws ArgumentError for bad sizes, an unsupported isa, negative extra, or a bank with
  // non-finite values or squared norms (about its mean) beyond 1e36.
  KnnIndex(const void* bank, KnnBankType bank_type, int64_t m, int64_t d, ThreadPool& pool,
           const KnnOptions& options = {});
  ~KnnIndex();
  KnnIndex(KnnIndex&&) noexcept;
  KnnIndex& operator=(KnnIndex&&) noexcept;

  // queries: q x d float32 (host). distances: q x k, indices: q x k, as knn(). With scratch ==
  // nullptr the working memory is allocated for this call only.
  void search(const float* queries, int64_t q, int64_t k, float* distances, int64_t* indices,
              ThreadPool& pool, KnnScratch* scratch = nullptr) const;

  int64_t rows() const;
  int64_t dim() const;
  KnnBankType bank_type() const;
  KnnIsa isa() const;  // the resolved instruction set (never Auto)
  size_t bytes() const;  // memory owned by the index (not counting the bank)

  struct Impl;

 private:
  std::unique_ptr<const Impl> impl_;
};

// The scale of a bank against which the scan's error bound is judged (the loader's bank check and
// KnnIndex's choice of a bfloat16 scan): B, the largest row norm about the mean (the scan centres
// on the mean, so one huge value moves every norm); S, the median distance of the rows to the
// coordinate-wise median row, the data's own scale, which an outlier does not move; and a typical
// query's norm about the mean, |median - mean| + S. Mean and B cover every row; the median and S
// come from at most 4096 evenly spaced rows. bank: m x d float32 or binary16 bits, finite.
struct KnnBankScale {
  double max_norm = 0.0;
  double scale = 0.0;
  double query_norm = 0.0;
};
KnnBankScale knn_bank_scale(const void* bank, KnnBankType bank_type, int64_t m, int64_t d);
// The bound on the error of a scanned ranking value ||b||^2 - 2 q.b for a query of norm q about
// the bank mean and bank rows of norm <= b: (2d + 4) u (b^2 + 2 q b) for the float32 scan (u =
// 2^-24), plus 2 (2v + v^2) q b (1 + v)^2 terms for the bfloat16 one (v = 2^-8; see knn.cpp).
double knn_scan_error_bound(int64_t d, double query_norm, double max_norm, bool bf16);

bool knn_isa_supported(KnnIsa isa);  // Auto and Scalar are always supported
KnnIsa knn_best_isa();
const char* knn_isa_name(KnnIsa isa);  // "auto", "scalar", "avx2", "avx512", "avx512bf16"
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
// Host pointers; copies to the device, runs, copies back (KnnCudaIndex build + search_host).
void knn_cuda_host(const float* queries, int64_t q, const void* bank, KnnBankType bank_type,
                   int64_t m, int64_t d, int64_t k, float* distances, int64_t* indices,
                   int device_index);

// A bank made resident on a CUDA device once, for repeated searches (the CUDA scan needs no
// mean, norms or packing: what repeats per call is the bank upload). Read-only after
// construction; concurrent searches are safe.
class KnnCudaIndex {
 public:
  // bank: host memory, m x d float32 or binary16 bits; copied to device `device_index`.
  KnnCudaIndex(const void* bank, KnnBankType bank_type, int64_t m, int64_t d, int device_index);
  ~KnnCudaIndex();
  KnnCudaIndex(KnnCudaIndex&&) noexcept;
  KnnCudaIndex& operator=(KnnCudaIndex&&) noexcept;

  // Device pointers, as knn_cuda with the resident bank: runs on `stream` without
  // synchronizing; `workspace` holds knn_cuda_workspace_bytes(q, rows(), k) bytes.
  void search_device(const float* queries, int64_t q, int64_t k, float* distances,
                     int64_t* indices, void* workspace, void* stream) const;
  // Host pointers: copies the queries in and the results out (device buffers of this call).
  void search_host(const float* queries, int64_t q, int64_t k, float* distances,
                   int64_t* indices) const;

  int64_t rows() const;
  int64_t dim() const;
  KnnBankType bank_type() const;
  int device_index() const;
  const void* device_bank() const;

  struct Impl;

 private:
  std::unique_ptr<const Impl> impl_;
};
#endif

}  // namespace edge
