// ONNX Runtime loaded at run time with dlopen (the library ships inside the onnxruntime Python
// wheel, without the libonnxruntime.so.1 SONAME file, so nothing links against it at build time).
#pragma once

#include <string>
#include <vector>

namespace edge {

struct OrtLibraryInfo {
  std::string path;     // the file that was loaded
  std::string version;  // OrtGetApiBase()->GetVersionString()
  int api_version = 0;  // ORT_API_VERSION of the headers this build uses
  std::vector<std::string> providers;  // GetAvailableProviders()
};

// Loads ONNX Runtime once per process and initializes the C++ API (ORT_API_MANUAL_INIT). The
// library is the first of: `path` if not empty, env EDGE_SDK_ONNXRUNTIME_LIB, the onnxruntime
// wheel next to this library (<dir of libedge_sdk>/../onnxruntime/capi/libonnxruntime.so*),
// libonnxruntime.so.1 and libonnxruntime.so on the loader's search path. Throws BackendError
// listing what was tried, or saying the library is older than the headers (API version) or that
// a different library was already loaded in this process. Only available when the build found
// the ONNX Runtime headers (available_backends() lists "onnxruntime").
const OrtLibraryInfo& load_onnxruntime(const std::string& path = "");

}  // namespace edge
