#include "postprocess.hpp"

#include "edge_sdk/runtime/errors.hpp"
#include "postprocess_registry.hpp"

namespace edge {

std::map<std::string, PostFactory>& postprocess_registry() {
  static std::map<std::string, PostFactory> r;
  return r;
}

std::vector<std::string> postprocess_kinds() {
  std::vector<std::string> out;
  for (const auto& kv : postprocess_registry()) out.push_back(kv.first);
  return out;
}

std::unique_ptr<PostProcessor> make_postprocessor(const Bundle& bundle, int64_t max_batch, const Exec& exec) {
  const std::string& kind = bundle.manifest.postprocess_kind;
  auto& reg = postprocess_registry();
  auto it = reg.find(kind);
  if (it == reg.end()) {
    std::string have;
    for (const auto& kv : reg) have += (have.empty() ? "\"" : ", \"") + kv.first + "\"";
    throw BundleError(bundle.path + "/manifest.json: postprocess.kind: \"" + kind +
                      "\" is not implemented by this runtime (it has " + have + ")");
  }
  return it->second(bundle, max_batch, exec);
}

}  // namespace edge
