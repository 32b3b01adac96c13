#include "status.hpp"

#include <cstring>

#include "edge_sdk/common.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/run_vote.hpp"

namespace edge::capi {
namespace {

// A fixed buffer, not a std::string: reading the message never allocates, and a thread that never
// fails never touches the heap for it. Long messages are cut at the end with "...".
constexpr size_t kMessageCapacity = 4096;
thread_local char t_message[kMessageCapacity] = {0};

}  // namespace

void set_error(const char* prefix, const char* message) noexcept {
  size_t at = 0;
  for (const char* part : {prefix, message}) {
    if (!part) continue;
    const size_t n = std::strlen(part);
    const size_t room = kMessageCapacity - 4 - at;
    if (n > room) {
      std::memcpy(t_message + at, part, room);
      std::memcpy(t_message + at + room, "...", 4);
      return;
    }
    std::memcpy(t_message + at, part, n);
    at += n;
  }
  t_message[at] = '\0';
}

void set_error(const char* message) noexcept { set_error(nullptr, message ? message : "(no message)"); }

void clear_error() noexcept { t_message[0] = '\0'; }

const char* last_error() noexcept { return t_message; }

edge_status status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const StatusError& e) {
    set_error(e.what());
    return e.status;
  } catch (const RunCapacityError& e) {
    set_error(e.what());
    return EDGE_E_CAPACITY;
  } catch (const ArgumentError& e) {
    set_error(e.what());
    return EDGE_E_INVALID_ARGUMENT;
  } catch (const BundleError& e) {
    set_error(e.what());
    return EDGE_E_BUNDLE;
  } catch (const BackendError& e) {
    set_error(e.what());
    return EDGE_E_BACKEND;
  } catch (const std::bad_alloc&) {
    set_error("out of memory");
    return EDGE_E_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    // Anything else is a bug.
    set_error("internal error: ", e.what());
    return EDGE_E_INTERNAL;
  } catch (...) {
    set_error("internal error: unknown exception");
    return EDGE_E_INTERNAL;
  }
}

}  // namespace edge::capi
