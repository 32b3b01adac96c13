// Shared definitions for the kernels: the host/device qualifier that lets one function serve the
// CPU implementation and the CUDA kernel, and the error type every core function throws.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define EDGE_HD __host__ __device__ __forceinline__
#else
#define EDGE_HD inline
#endif

namespace edge {

// Thrown for bad arguments; the message names the argument and what was expected.
struct ArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Where a kernel runs. index is the CUDA device ordinal for kind == Cuda.
struct Device {
  enum Kind { Cpu, Cuda } kind = Cpu;
  int index = 0;
  static Device cpu() { return {Cpu, 0}; }
  static Device cuda(int i) { return {Cuda, i}; }
  bool is_cuda() const { return kind == Cuda; }
};

// Parses "cpu", "cuda" or "cuda:N"; throws ArgumentError naming `arg` otherwise.
Device parse_device(const std::string& text, const char* arg = "device");

}  // namespace edge
