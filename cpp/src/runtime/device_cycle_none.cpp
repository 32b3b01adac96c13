// Builds without the TensorRT backend have no device cycle (device_cycle.hpp); with it,
// trt/device_cycle.cpp defines make_device_cycle.
#ifndef EDGE_SDK_WITH_TENSORRT
#include "device_cycle.hpp"

namespace edge {

std::unique_ptr<DeviceCycle> make_device_cycle(const Bundle&, const RuntimeOptions&,
                                               const std::vector<std::unique_ptr<Backend>>&, int64_t) {
  return nullptr;
}

}  // namespace edge
#endif
