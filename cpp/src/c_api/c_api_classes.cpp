// The C entry points of supervised classifiers (c_api.h, the block "supervised classifiers", ABI
// 1.2): the classes of a bundle and a cycle that also returns each image's class probabilities and
// top class. The cycle is edge_run_with's (run_cycle.cpp), with its fail-safe promise extended to
// the class outputs.
#include <cstring>
#include <string>
#include <vector>

#include "edge_sdk/c_api.h"
#include "abi_structs.hpp"
#include "handles.hpp"
#include "inspector.hpp"
#include "run_cycle.hpp"
#include "status.hpp"

using edge::capi::check_struct;
using edge::capi::guarded;
using edge::capi::Registry;
using edge::capi::StatusError;
using edge::capi::write_struct;

extern "C" {

EDGE_API edge_status edge_class_spec_get(const edge_runtime* rt, edge_class_spec* out) {
  return guarded([&] {
    check_struct(out, "out");
    Registry::Use use(Registry::instance(), rt);
    const edge::Runtime& r = use->runtime();
    edge_class_spec s;
    edge_class_spec_init(&s);
    s.class_count = static_cast<int32_t>(r.class_names().size());
    s.good_class = -1;
    if (s.class_count > 0) {
      const edge::ClassRule rule = r.class_rule();
      s.good_class = static_cast<int32_t>(rule.good);
      s.accept_threshold = rule.accept;
      s.reject_threshold = rule.reject;
    }
    write_struct(out, s);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_class_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length) {
  return guarded([&] {
    Registry::Use use(Registry::instance(), rt);
    const std::vector<std::string> names = use->runtime().class_names();
    if (index < 0 || static_cast<size_t>(index) >= names.size())
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "index: " + std::to_string(index) + " outside the " +
                                                     std::to_string(names.size()) + " class(es) of the bundle");
    const std::string& s = names[static_cast<size_t>(index)];
    if (length) *length = s.size();
    if (!buffer && capacity > 0)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "buffer: null pointer with capacity " + std::to_string(capacity));
    if (capacity <= s.size()) {
      if (capacity > 0) buffer[0] = '\0';
      throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "buffer: capacity " + std::to_string(capacity) + " bytes, " +
                                                    std::to_string(s.size() + 1) + " needed (length + NUL)");
    }
    std::memcpy(buffer, s.data(), s.size());
    buffer[s.size()] = '\0';
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_run_classes(edge_runtime* rt, const edge_image* images, size_t count,
                                      const edge_run_options* options, edge_batch_outputs* outputs,
                                      edge_class_outputs* classes) {
  return edge::capi::run_cycle(rt, images, count, options, -1.0, outputs, classes);
}

}  // extern "C"
