// Read-only bundle data shared between the contexts of a runtime and between runtimes opened
// from the same bundle: every open validates the bundle in full (load_bundle: checksums, schema,
// shapes), then reuses an already loaded copy with identical content (same path and manifest,
// which holds the sha256 of every file) instead of keeping a second one.
#pragma once

#include <memory>
#include <string>

#include "edge_sdk/runtime/bundle.hpp"

namespace edge::capi {

// options: the trusted keys of this open (a signature is checked on every open, never cached).
std::shared_ptr<const Bundle> load_shared_bundle(const std::string& path, const LoadOptions& options);

}  // namespace edge::capi
