// C entry points that need no runtime: versions, the last-error message, names of enum values.
#include "edge_sdk/c_api.h"
#include "edge_sdk/runtime/runtime.hpp"
#include "status.hpp"

#ifndef EDGE_SDK_VERSION_STRING
#error "EDGE_SDK_VERSION_STRING is defined by cmake/sdk_package.cmake"
#endif

extern "C" {

EDGE_API uint32_t edge_abi_version(void) { return EDGE_ABI_VERSION; }

EDGE_API const char* edge_sdk_version(void) { return EDGE_SDK_VERSION_STRING; }

EDGE_API const char* edge_last_error(void) { return edge::capi::last_error(); }

EDGE_API const char* edge_status_name(int status) {
  switch (status) {
    case EDGE_OK: return "EDGE_OK";
    case EDGE_E_INVALID_ARGUMENT: return "EDGE_E_INVALID_ARGUMENT";
    case EDGE_E_INVALID_HANDLE: return "EDGE_E_INVALID_HANDLE";
    case EDGE_E_BUFFER_TOO_SMALL: return "EDGE_E_BUFFER_TOO_SMALL";
    case EDGE_E_BUNDLE: return "EDGE_E_BUNDLE";
    case EDGE_E_BACKEND: return "EDGE_E_BACKEND";
    case EDGE_E_UNSUPPORTED: return "EDGE_E_UNSUPPORTED";
    case EDGE_E_IMAGE: return "EDGE_E_IMAGE";
    case EDGE_E_NUMERIC: return "EDGE_E_NUMERIC";
    case EDGE_E_DEADLINE: return "EDGE_E_DEADLINE";
    case EDGE_E_OUT_OF_MEMORY: return "EDGE_E_OUT_OF_MEMORY";
    case EDGE_E_INTERNAL: return "EDGE_E_INTERNAL";
    case EDGE_E_CAPACITY: return "EDGE_E_CAPACITY";
    default: return "unknown status";
  }
}

EDGE_API const char* edge_verdict_name(int verdict) {
  switch (verdict) {
    case EDGE_VERDICT_REVIEW:
    case EDGE_VERDICT_ACCEPT:
    case EDGE_VERDICT_REJECT: return edge::verdict_name(static_cast<edge::Verdict>(verdict));
    default: return "invalid";
  }
}

}  // extern "C"
