// What compute devices the runtime can use.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/common.hpp"
#include "edge_sdk/thread_pool.hpp"

// Code that exists only in CUDA builds, written inline (e.g. the CUDA branch of run_on_device).
#ifdef EDGE_SDK_WITH_CUDA
#define EDGE_CUDA_ONLY(...) __VA_ARGS__
#else
#define EDGE_CUDA_ONLY(...)
#endif

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

// The kernels' device dispatch: cuda(device_index) on a usable CUDA device (require_device's
// errors otherwise, also in builds without CUDA), else cpu(pool) on the default pool, which this
// call holds until cpu returns (set_num_threads may replace it meanwhile).
template <class Cpu, class Cuda>
void run_on_device(const Device& device, Cpu&& cpu, Cuda&& cuda, const char* arg = "device") {
  if (device.is_cuda()) {
    require_device(device, arg);
    cuda(device.index);
    return;
  }
  const std::shared_ptr<ThreadPool> pool = default_pool();
  cpu(*pool);
}

}  // namespace edge
