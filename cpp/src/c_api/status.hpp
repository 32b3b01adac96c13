// The C ABI's error model inside the library: every C entry point runs its body through
// `guarded`, which turns C++ exceptions into an edge_status and the thread-local last-error
// message. Nothing thrown ever crosses the C boundary.
#pragma once

#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "edge_sdk/c_api.h"

namespace edge::capi {

// Thrown inside the C layer to fail with a specific status and message.
struct StatusError : std::runtime_error {
  edge_status status;
  StatusError(edge_status s, const std::string& message) : std::runtime_error(message), status(s) {}
};

// The thread's last-error message; set_error copies (may allocate: only on failure paths).
void set_error(const char* message) noexcept;
void set_error(const char* prefix, const char* message) noexcept;
const char* last_error() noexcept;
void clear_error() noexcept;

// Status of the exception in flight (call inside a catch block); records its message.
edge_status status_of_current_exception() noexcept;

template <class F>
edge_status guarded(F&& body) noexcept {
  try {
    clear_error();
    return std::forward<F>(body)();
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace edge::capi
