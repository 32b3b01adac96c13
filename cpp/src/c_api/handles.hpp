// Handles of the C ABI are tokens, not addresses: a number that is never reused, looked up in a
// registry on every call. A closed or invented handle is reported (EDGE_E_INVALID_HANDLE) instead
// of being dereferenced, and a stale handle can never reach a runtime opened later at the same
// address. close() waits for the calls in progress with the handle before destroying it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "edge_sdk/c_api.h"
#include "inspector.hpp"

namespace edge::capi {

struct Entry {
  std::unique_ptr<Inspector> inspector;
  int users = 0;  // calls in progress (guarded by the registry's mutex)
};

class Registry {
 public:
  // The process-wide registry. Never destroyed: runtimes a host did not close are left to the
  // operating system at exit instead of being torn down after ONNX Runtime's own globals.
  static Registry& instance();

  edge_runtime* add(std::unique_ptr<Inspector> inspector);
  // Marks the handle closed (new lookups fail), waits until no call uses it, and destroys it.
  // Throws StatusError(EDGE_E_INVALID_HANDLE) for an unknown handle.
  void close(const edge_runtime* handle);

  // A use of a live handle for the duration of one call.
  class Use {
   public:
    Use(Registry& r, const edge_runtime* handle);  // throws StatusError(EDGE_E_INVALID_HANDLE)
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Inspector& operator*() const { return *entry_->inspector; }
    Inspector* operator->() const { return entry_->inspector.get(); }

   private:
    Registry& registry_;
    Entry* entry_;
  };

 private:
  friend class Use;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::unordered_map<uint64_t, Entry*> live_;
  uint64_t next_ = 0;
};

}  // namespace edge::capi
