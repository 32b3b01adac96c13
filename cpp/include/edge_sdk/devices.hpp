// What compute devices the runtime can use.
#pragma once

#include <string>
#include <vector>

#include "edge_sdk/common.hpp"

namespace edge {

struct DeviceInfo {
  std::string kind;  // "cpu" or "cuda"
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // CUDA compute capability
  size_t total_memory = 0;         // bytes (CUDA) or 0
  int threads = 0;                 // CPU: worker threads of the default pool
};

// CPU first, then every CUDA device the driver reports. Never throws: a machine without a CUDA
// driver, or a build without CUDA, simply lists the CPU.
std::vector<DeviceInfo> list_devices();

bool built_with_cuda();
int cuda_device_count();  // 0 without CUDA, driver or device

// Throws ArgumentError naming `arg` if `d` is a CUDA device this process cannot use.
void require_device(const Device& d, const char* arg = "device");

}  // namespace edge
