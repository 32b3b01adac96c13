// Single include point of the ONNX Runtime C++ API in manual-init mode: no static initializer
// calls OrtGetApiBase, so libedge_sdk has no link-time dependency on ONNX Runtime.
#pragma once

#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

namespace edge {
// The process-wide environment, created by load_onnxruntime.
Ort::Env& ort_env();
}  // namespace edge
