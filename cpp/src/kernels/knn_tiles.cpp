// CPU micro-kernels of the k-NN scan, one per instruction set, selected at run time (the library
// is built for the baseline x86-64 so it loads anywhere; see knn_tiles.hpp for the layouts).
#include "knn_tiles.hpp"

#include <cmath>

#include "cpu_isa.hpp"
#include "edge_sdk/kernels/knn_math.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EDGE_KNN_X86 1
#endif

namespace edge {
namespace knn_detail {
namespace {

// Offers the lanes of `vals` flagged in `bits` (those below the threshold when tested) to the
// heap; the threshold is re-read because every admission lowers it.
inline void offer_lanes(const float* vals, uint32_t bits, int32_t base, float* hv, int32_t* hi,
                        int kp) {
  while (bits) {
    const int j = __builtin_ctz(bits);
    bits &= bits - 1;
    if (vals[j] < hv[0]) heap_replace_top(hv, hi, kp, vals[j], base + j);
  }
}

// ---- portable fallback: 4 queries x 16 bank vectors ---------------------------------------------
constexpr int kScalarMr = 4, kScalarNr = 16;

void tile_scalar(const float* qp, const float* bp, const float* bn, int64_t d, int nq,
                 int32_t base, float* hv, int32_t* hi, int kp) {
  float acc[kScalarMr][kScalarNr] = {};
  for (int64_t k = 0; k < d; ++k) {
    const float* b = bp + k * kScalarNr;
    const float* q = qp + k * kScalarMr;
    for (int i = 0; i < kScalarMr; ++i)
      for (int j = 0; j < kScalarNr; ++j) acc[i][j] += q[i] * b[j];
  }
  for (int i = 0; i < nq; ++i) {
    float vals[kScalarNr];
    uint32_t bits = 0;
    const float thr = hv[i * kp];
    for (int j = 0; j < kScalarNr; ++j) {
      vals[j] = bn[j] - 2.0f * acc[i][j];
      bits |= static_cast<uint32_t>(vals[j] < thr) << j;
    }
    offer_lanes(vals, bits, base, hv + i * kp, hi + i * kp, kp);
  }
}

void half_to_float_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}

#ifdef EDGE_KNN_X86
// ---- AVX2 + FMA: 6 queries x 16 bank vectors = 12 ymm accumulators -------------------------------
constexpr int kAvx2Mr = 6, kAvx2Nr = 16;

__attribute__((target("avx2,fma"))) void tile_avx2(const float* qp, const float* bp,
                                                   const float* bn, int64_t d, int nq,
                                                   int32_t base, float* hv, int32_t* hi, int kp) {
  __m256 acc[kAvx2Mr][2];
#pragma GCC unroll 8
  for (int i = 0; i < kAvx2Mr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < d; ++k) {
    const __m256 b0 = _mm256_load_ps(bp + k * kAvx2Nr);
    const __m256 b1 = _mm256_load_ps(bp + k * kAvx2Nr + 8);
    const float* q = qp + k * kAvx2Mr;
#pragma GCC unroll 8
    for (int i = 0; i < kAvx2Mr; ++i) {
      const __m256 a = _mm256_broadcast_ss(q + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  const __m256 n0 = _mm256_load_ps(bn), n1 = _mm256_load_ps(bn + 8);
  const __m256 m2 = _mm256_set1_ps(-2.0f);
#pragma GCC unroll 8
  for (int i = 0; i < kAvx2Mr; ++i) {
    if (i >= nq) break;
    const __m256 thr = _mm256_set1_ps(hv[i * kp]);
    const __m256 v0 = _mm256_fmadd_ps(acc[i][0], m2, n0);
    const __m256 v1 = _mm256_fmadd_ps(acc[i][1], m2, n1);
    const uint32_t bits =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v0, thr, _CMP_LT_OQ))) |
        (static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v1, thr, _CMP_LT_OQ))) << 8);
    if (bits) {
      alignas(32) float vals[kAvx2Nr];
      _mm256_store_ps(vals, v0);
      _mm256_store_ps(vals + 8, v1);
      offer_lanes(vals, bits, base, hv + i * kp, hi + i * kp, kp);
    }
  }
}

__attribute__((target("avx2,f16c"))) void half_to_float_f16c(const uint16_t* src, float* dst,
                                                             int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}

// ---- AVX-512: 8 queries x 32 bank vectors = 16 zmm accumulators ---------------------------------
constexpr int kAvx512Mr = 8, kAvx512Nr = 32;

// The ranking values ||b||^2 - 2 q.b of a tile's accumulators (q.b) offered to the queries' heaps.
__attribute__((target("avx512f"), always_inline)) inline void offer_tile_avx512(const __m512 (&acc)[kAvx512Mr][2],
                                                                              const float* bn, int nq, int32_t base,
                                                                              float* hv, int32_t* hi, int kp) {
  const __m512 n0 = _mm512_load_ps(bn), n1 = _mm512_load_ps(bn + 16);
  const __m512 m2 = _mm512_set1_ps(-2.0f);
#pragma GCC unroll 8
  for (int i = 0; i < kAvx512Mr; ++i) {
    if (i >= nq) break;
    const __m512 thr = _mm512_set1_ps(hv[i * kp]);
    const __m512 v0 = _mm512_fmadd_ps(acc[i][0], m2, n0);
    const __m512 v1 = _mm512_fmadd_ps(acc[i][1], m2, n1);
    const uint32_t bits =
        static_cast<uint32_t>(_mm512_cmp_ps_mask(v0, thr, _CMP_LT_OQ)) |
        (static_cast<uint32_t>(_mm512_cmp_ps_mask(v1, thr, _CMP_LT_OQ)) << 16);
    if (bits) {
      alignas(64) float vals[kAvx512Nr];
      _mm512_store_ps(vals, v0);
      _mm512_store_ps(vals + 16, v1);
      offer_lanes(vals, bits, base, hv + i * kp, hi + i * kp, kp);
    }
  }
}

__attribute__((target("avx512f"))) void tile_avx512(const float* qp, const float* bp,
                                                    const float* bn, int64_t d, int nq,
                                                    int32_t base, float* hv, int32_t* hi,
                                                    int kp) {
  __m512 acc[kAvx512Mr][2];
#pragma GCC unroll 8
  for (int i = 0; i < kAvx512Mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < d; ++k) {
    const __m512 b0 = _mm512_load_ps(bp + k * kAvx512Nr);
    const __m512 b1 = _mm512_load_ps(bp + k * kAvx512Nr + 16);
    const float* q = qp + k * kAvx512Mr;
#pragma GCC unroll 8
    for (int i = 0; i < kAvx512Mr; ++i) {
      const __m512 a = _mm512_set1_ps(q[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  offer_tile_avx512(acc, bn, nq, base, hv, hi, kp);
}

// ---- AVX512-BF16: the AVX-512 tile on bfloat16 pairs (two dimensions per 32-bit slot) ----------
// vdpbf16ps adds both products of a pair to each float32 accumulator: twice the multiply-adds of
// an FMA per instruction, over half the bytes.
__attribute__((target("avx512f,avx512bf16"))) void tile_avx512_bf16(const float* qp, const float* bp,
                                                                   const float* bn, int64_t pairs, int nq,
                                                                   int32_t base, float* hv, int32_t* hi,
                                                                   int kp) {
  __m512 acc[kAvx512Mr][2];
#pragma GCC unroll 8
  for (int i = 0; i < kAvx512Mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < pairs; ++k) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp + k * kAvx512Nr);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(bp + k * kAvx512Nr + 16);
    const float* q = qp + k * kAvx512Mr;
#pragma GCC unroll 8
    for (int i = 0; i < kAvx512Mr; ++i) {
      const __m512bh a = (__m512bh)_mm512_castps_si512(_mm512_set1_ps(q[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
  }
  offer_tile_avx512(acc, bn, nq, base, hv, hi, kp);
}

__attribute__((target("avx512f"))) void half_to_float_avx512(const uint16_t* src, float* dst,
                                                             int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(
        dst + i, _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  for (; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}
#endif  // EDGE_KNN_X86

}  // namespace

bool cpu_has(KnnIsa isa) {
  switch (isa) {
    case KnnIsa::Auto:
    case KnnIsa::Scalar:
      return true;
#ifdef EDGE_KNN_X86
    // The kernels' one probe (cpu_isa.hpp); the AVX2 tiles convert float16 banks with F16C too.
    case KnnIsa::Avx2:
      return cpu_supports(CpuIsa::Avx2) && __builtin_cpu_supports("f16c");
    case KnnIsa::Avx512:
      return cpu_supports(CpuIsa::Avx512);
    case KnnIsa::Avx512Bf16:
      return cpu_supports(CpuIsa::Avx512) && __builtin_cpu_supports("avx512bf16");
#endif
    default:
      return false;
  }
}

TileKernel tile_kernel(KnnIsa isa) {
  switch (isa) {
#ifdef EDGE_KNN_X86
    case KnnIsa::Avx512:
      return {KnnIsa::Avx512, kAvx512Mr, kAvx512Nr, tile_avx512, half_to_float_avx512};
    case KnnIsa::Avx512Bf16:
      return {KnnIsa::Avx512Bf16, kAvx512Mr, kAvx512Nr, tile_avx512_bf16, half_to_float_avx512, true};
    case KnnIsa::Avx2:
      return {KnnIsa::Avx2, kAvx2Mr, kAvx2Nr, tile_avx2, half_to_float_f16c};
#endif
    default:
      return {KnnIsa::Scalar, kScalarMr, kScalarNr, tile_scalar, half_to_float_scalar};
  }
}

}  // namespace knn_detail
}  // namespace edge
