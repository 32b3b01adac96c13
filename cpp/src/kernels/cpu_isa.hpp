// Run-time choice of the x86 instruction set for CPU kernels. The SDK is built for baseline
// x86-64 (SSE2) so one binary runs everywhere; hot loops carry AVX2+FMA and AVX-512 clones
// (functions marked EDGE_TARGET_AVX2 / EDGE_TARGET_AVX512) picked by cpu_isa() at run time.
// Elsewhere (aarch64 edge devices) the portable vector code is compiled for the target's own
// SIMD unit and cpu_isa() is always Generic. Internal to the kernels (not an installed header).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__GNUC__)
#define EDGE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define EDGE_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#define EDGE_X86_CLONES 1
#define EDGE_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define EDGE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define EDGE_X86_CLONES 0
#endif

namespace edge {

enum class CpuIsa { Generic, Avx2, Avx512 };

// Whether this CPU can run the clones of `isa` (whatever EDGE_SDK_CPU_ISA says): AVX2 clones need
// avx2 + fma, AVX-512 ones avx512f/vl/dq/bw as well (the features EDGE_TARGET_AVX512 enables,
// so a CPU with avx512f alone never runs an instruction it lacks). The one probe of every kernel.
inline bool cpu_supports(CpuIsa isa) {
#if EDGE_X86_CLONES
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == CpuIsa::Avx2) return avx2;
  if (isa == CpuIsa::Avx512)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  return true;
#else
  return isa == CpuIsa::Generic;
#endif
}

// The best path this CPU runs; EDGE_SDK_CPU_ISA=avx2|generic forces a lower one (tests and
// benchmarks compare the paths). Read once per process.
inline CpuIsa detect_cpu_isa() {
  CpuIsa best = CpuIsa::Generic;
  if (cpu_supports(CpuIsa::Avx2)) best = CpuIsa::Avx2;
  if (cpu_supports(CpuIsa::Avx512)) best = CpuIsa::Avx512;
  if (const char* env = std::getenv("EDGE_SDK_CPU_ISA")) {
    if (std::strcmp(env, "generic") == 0) best = CpuIsa::Generic;
    if (std::strcmp(env, "avx2") == 0 && best == CpuIsa::Avx512) best = CpuIsa::Avx2;
  }
  return best;
}

inline CpuIsa cpu_isa() {
  static const CpuIsa isa = detect_cpu_isa();
  return isa;
}

inline const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Avx2: return "avx2";
    default: return "generic";
  }
}

// Defines `void name(CpuIsa isa, const Job& job, int64_t t0, int64_t t1)`, which runs
// body<W>(job, t0, t1) (an EDGE_ALWAYS_INLINE template over the vector width W) compiled for the
// instruction set `isa`: W = 16 on AVX-512, 8 on AVX2 + FMA, 4 on the baseline (SSE2 / NEON).
#if EDGE_X86_CLONES
#define EDGE_DEFINE_ISA_DISPATCH(name, body, Job)                                                   \
  EDGE_TARGET_AVX2 void name##_avx2(const Job& j, int64_t t0, int64_t t1) { body<8>(j, t0, t1); }   \
  EDGE_TARGET_AVX512 void name##_avx512(const Job& j, int64_t t0, int64_t t1) { body<16>(j, t0, t1); } \
  void name(CpuIsa isa, const Job& j, int64_t t0, int64_t t1) {                                      \
    if (isa == CpuIsa::Avx512) return name##_avx512(j, t0, t1);                                      \
    if (isa == CpuIsa::Avx2) return name##_avx2(j, t0, t1);                                          \
    body<4>(j, t0, t1);                                                                              \
  }
#else
#define EDGE_DEFINE_ISA_DISPATCH(name, body, Job)                 \
  void name(CpuIsa, const Job& j, int64_t t0, int64_t t1) { body<4>(j, t0, t1); }
#endif

// W floats in one GCC vector (4: SSE2 / NEON, 8: AVX2, 16: AVX-512), with unaligned access.
template <int W>
struct VecOf;
template <>
struct VecOf<16> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<4> {
  typedef float type __attribute__((vector_size(16)));
};

// W bfloat16 values (uint16_t bits) and their widening to 32 bits, for load_bf16_vec.
template <int W>
struct Bf16VecOf;
template <>
struct Bf16VecOf<16> {
  typedef uint16_t half __attribute__((vector_size(32)));
  typedef uint32_t word __attribute__((vector_size(64)));
};
template <>
struct Bf16VecOf<8> {
  typedef uint16_t half __attribute__((vector_size(16)));
  typedef uint32_t word __attribute__((vector_size(32)));
};
template <>
struct Bf16VecOf<4> {
  typedef uint16_t half __attribute__((vector_size(8)));
  typedef uint32_t word __attribute__((vector_size(16)));
};

// Always inlined into a target clone, so no vector value crosses a call and GCC's note on vector
// returns without AVX (-Wpsabi) does not apply; callers silence it around their own vector code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
template <class V>
EDGE_ALWAYS_INLINE V load_vec(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
EDGE_ALWAYS_INLINE void store_vec(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// float32 -> bfloat16 bits, round to nearest (ties to even); NaN stays a (quiet) NaN, values
// beyond bfloat16's largest finite one become infinity. Exactly the rounding of the hardware's
// conversions (vcvtneps2bf16) apart from their flushing of subnormals.
inline uint16_t bf16_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);  // a carry into the exponent is the correct rounding
  return static_cast<uint16_t>(u >> 16);
}

// W bfloat16 values widened to float32, exactly (a bfloat16 is the upper half of a float32).
template <int W>
EDGE_ALWAYS_INLINE typename VecOf<W>::type load_bf16_vec(const uint16_t* p) {
  typename Bf16VecOf<W>::half h;
  std::memcpy(&h, p, sizeof h);
  const typename Bf16VecOf<W>::word u = __builtin_convertvector(h, typename Bf16VecOf<W>::word) << 16;
  typename VecOf<W>::type v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace edge
