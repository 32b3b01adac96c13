#include "edge_sdk/devices.hpp"

#include <cstdlib>

#include "edge_sdk/thread_pool.hpp"

#ifdef EDGE_SDK_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace edge {

Device parse_device(const std::string& text, const char* arg) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    char* end = nullptr;
    long idx = std::strtol(text.c_str() + 5, &end, 10);
    if (*end == '\0' && idx >= 0 && idx < 1024) return Device::cuda(static_cast<int>(idx));
  }
  throw ArgumentError(std::string(arg) + ": expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" +
                      text + "\"");
}

bool built_with_cuda() {
#ifdef EDGE_SDK_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef EDGE_SDK_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  DeviceInfo cpu;
  cpu.kind = "cpu";
  cpu.name = "cpu";
  cpu.threads = get_num_threads();
  out.push_back(cpu);
#ifdef EDGE_SDK_WITH_CUDA
  const int n = cuda_device_count();
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.kind = "cuda";
    d.index = i;
    d.name = prop.name;
    d.cc_major = prop.major;
    d.cc_minor = prop.minor;
    d.total_memory = prop.totalGlobalMem;
    out.push_back(d);
  }
#endif
  return out;
}

void require_device(const Device& d, const char* arg) {
  if (!d.is_cuda()) return;
  if (!built_with_cuda())
    throw ArgumentError(std::string(arg) +
                        ": CUDA requested but this build has no CUDA kernels (built with "
                        "EDGE_SDK_CUDA=OFF or without nvcc)");
  const int n = cuda_device_count();
  if (d.index >= n)
    throw ArgumentError(std::string(arg) + ": cuda:" + std::to_string(d.index) +
                        " requested but " + std::to_string(n) +
                        " CUDA device(s) are available on this machine");
}

}  // namespace edge
