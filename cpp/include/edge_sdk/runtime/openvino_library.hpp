// OpenVINO loaded at run time with dlopen: its C API library (libopenvino_c.so.<version>) ships
// inside the openvino Python wheel, so nothing links against it at build time and a build needs
// no OpenVINO headers either (the backend declares the functions it calls).
#pragma once

#include <string>
#include <vector>

namespace edge {

struct OpenVinoLibraryInfo {
  std::string path;                  // the file that was loaded
  std::string version;               // ov_get_openvino_version(): e.g. "2026.4.1-22982-..."
  std::vector<std::string> devices;  // ov_core_get_available_devices(): "CPU", "GPU.0", "NPU", ...
};

// Loads OpenVINO's C API library once per process, checks its version (2024.0 or newer) and that
// it exports every function the backend calls, and creates the process-wide OpenVINO core. The
// library is the first of: `path` if not empty, env EDGE_SDK_OPENVINO_LIB, the openvino wheel next
// to this library (<dir of libedge_sdk>/../openvino/libs/libopenvino_c.so*), libopenvino_c.so on
// the loader's search path. Throws BackendError listing what was tried, naming a missing function,
// saying the version is too old, or that a different library was already loaded in this process.
// Only available when the build has the OpenVINO backend (available_backends() lists "openvino").
const OpenVinoLibraryInfo& load_openvino(const std::string& path = "");

}  // namespace edge
