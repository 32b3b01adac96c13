#include "handles.hpp"

#include <string>

#include "status.hpp"

namespace edge::capi {
namespace {

// Tokens are odd multiples of a large constant so that small integers, NULL-adjacent values and
// typical heap addresses are never valid handles.
constexpr uint64_t kTokenBase = 0x5EDC0000000001ull;
constexpr uint64_t kTokenStep = 0x10002ull;

uint64_t token_of(const edge_runtime* h) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(h)); }

[[noreturn]] void invalid(const edge_runtime* h) {
  if (!h) throw StatusError(EDGE_E_INVALID_HANDLE, "runtime: null handle");
  throw StatusError(EDGE_E_INVALID_HANDLE, "runtime: not an open edge_runtime (closed, or never returned by edge_open)");
}

}  // namespace

Registry& Registry::instance() {
  static Registry* r = new Registry();  // intentionally leaked, see the header
  return *r;
}

edge_runtime* Registry::add(std::unique_ptr<Inspector> inspector) {
  auto* e = new Entry{std::move(inspector), 0};
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t token = kTokenBase + kTokenStep * next_++;
  try {
    live_.emplace(token, e);
  } catch (...) {
    delete e;
    throw;
  }
  return reinterpret_cast<edge_runtime*>(static_cast<uintptr_t>(token));
}

void Registry::close(const edge_runtime* handle) {
  Entry* e = nullptr;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = live_.find(token_of(handle));
    if (it == live_.end()) invalid(handle);
    e = it->second;
    live_.erase(it);  // new calls with this handle fail from now on
    idle_.wait(lock, [&] { return e->users == 0; });
  }
  delete e;  // joins the contexts' workers
}

Registry::Use::Use(Registry& r, const edge_runtime* handle) : registry_(r), entry_(nullptr) {
  std::lock_guard<std::mutex> lock(r.mutex_);
  auto it = r.live_.find(token_of(handle));
  if (it == r.live_.end()) invalid(handle);
  entry_ = it->second;
  ++entry_->users;
}

Registry::Use::~Use() {
  bool last;
  {
    std::lock_guard<std::mutex> lock(registry_.mutex_);
    last = --entry_->users == 0;
  }
  if (last) registry_.idle_.notify_all();
}

}  // namespace edge::capi
