// The loaded OpenVINO C API (load_openvino in openvino_library.hpp) for the backend's own use.
#pragma once

#include <string>

#include "edge_sdk/runtime/openvino_library.hpp"
#include "ov_api.hpp"

namespace edge {

// Both throw BackendError when load_openvino has not succeeded yet.
const ov::Api& ov_api();
ov::Core* ov_core();  // process-wide; OpenVINO's core is thread-safe

// "<call>: <OpenVINO's message>" for a failed call: the thread's last error text where the library
// kept one (released here), else the status name.
std::string ov_error(const char* call, ov::Status status);

}  // namespace edge
