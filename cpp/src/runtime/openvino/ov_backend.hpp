#pragma once

#include "edge_sdk/runtime/backend.hpp"

namespace edge {
std::unique_ptr<Backend> make_openvino_backend(const Bundle& bundle, const NetworkSpec& network,
                                               const BackendOptions& options);
}
