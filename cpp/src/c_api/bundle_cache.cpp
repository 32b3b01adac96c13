#include "bundle_cache.hpp"

#include <filesystem>
#include <map>
#include <mutex>

namespace edge::capi {

std::shared_ptr<const Bundle> load_shared_bundle(const std::string& path, const LoadOptions& options) {
  // Validation happens on every open, outside the lock: a bundle changed on disk since it was
  // first loaded is checked (and loaded) again, never trusted from the cache.
  auto fresh = std::make_shared<const Bundle>(load_bundle(path, options));
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  key += '\n';
  key += fresh->manifest.raw.dump();

  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const Bundle>>* cache = new std::map<std::string, std::weak_ptr<const Bundle>>();
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = cache->begin(); it != cache->end();) {
    if (it->second.expired()) it = cache->erase(it);
    else ++it;
  }
  auto& slot = (*cache)[key];
  if (auto shared = slot.lock()) return shared;
  slot = fresh;
  return fresh;
}

}  // namespace edge::capi
