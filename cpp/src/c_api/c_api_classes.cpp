// The C entry points of supervised classifiers (c_api.h, the block "supervised classifiers", ABI
// 1.2): the classes of a bundle and a cycle that also returns each image's class probabilities and
// top class. The cycle is the Inspector's, as for edge_run_with; this file adds the class outputs
// and keeps edge_run_with's fail-safe promise for them (every entry that exists is written).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>

#include "edge_sdk/c_api.h"
#include "handles.hpp"
#include "inspector.hpp"
#include "status.hpp"

using edge::capi::ClassTargets;
using edge::capi::guarded;
using edge::capi::Registry;
using edge::capi::StatusError;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sizes of the structs as ABI 1.2 defines them (up to their last field), and of the older structs
// this file reads, as their own versions froze them (c_api.cpp holds the same figures).
template <class T>
constexpr size_t abi_min_size();
template <>
constexpr size_t abi_min_size<edge_class_spec>() { return offsetof(edge_class_spec, reject_threshold) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_class_outputs>() { return offsetof(edge_class_outputs, top_class_capacity) + sizeof(size_t); }
template <>
constexpr size_t abi_min_size<edge_run_options>() { return offsetof(edge_run_options, deadline_ms) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_batch_outputs>() { return offsetof(edge_batch_outputs, deadline_exceeded) + sizeof(int32_t); }

template <class T>
void check_struct(const T* p, const char* what) {
  if (!p) throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(what) + ": null pointer");
  if (p->struct_size < abi_min_size<T>())
    throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(what) + "->struct_size: " + std::to_string(p->struct_size) +
                                                   ", expected at least " + std::to_string(abi_min_size<T>()) +
                                                   " (initialize it with its _init function)");
}

// Writes `value` into the caller's struct: no more than its struct_size bytes, struct_size kept.
template <class T>
void write_struct(T* out, const T& value) {
  const uint32_t size = out->struct_size;
  std::memcpy(out, &value, std::min<size_t>(size, sizeof(T)));
  out->struct_size = size;
}

// The call failed as a whole (handle, arguments, buffers, memory): nothing was judged. Every
// result and class output that exists says so.
void mark_not_judged(edge_status s, size_t count, edge_batch_outputs* outputs, bool outputs_known,
                     const edge_class_outputs* classes, bool classes_known, size_t class_count) {
  if (outputs_known && outputs->results) {
    const size_t writable = std::min(count, outputs->results_capacity);
    for (size_t i = 0; i < writable; ++i) {
      edge_image_result& r = outputs->results[i];
      std::memset(&r, 0, sizeof r);
      r.score = r.normalized = kNaN;
      r.verdict = EDGE_VERDICT_REVIEW;
      r.status = s;
      r.review = EDGE_REVIEW_ERROR;
    }
    if (outputs->struct_size >= abi_min_size<edge_batch_outputs>()) {
      outputs->judged = 0;
      outputs->not_judged = static_cast<uint32_t>(count);
    }
  }
  if (!classes_known) return;
  if (classes->top_class) std::fill_n(classes->top_class, std::min(count, classes->top_class_capacity), -1);
  if (classes->probabilities)
    std::fill_n(classes->probabilities, std::min(count * class_count, classes->probabilities_capacity), kNaN);
}

}  // namespace

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
  if (!classes) return edge_run_with(rt, images, count, options, outputs);
  // As edge_run_with: results are known to be ours to write when the header checks out, or when
  // struct_size is 0 (fields filled without edge_batch_outputs_init); the same for `classes`.
  const bool outputs_known = outputs && (outputs->struct_size >= abi_min_size<edge_batch_outputs>() ||
                                         outputs->struct_size == 0);
  const bool classes_known = classes->struct_size >= abi_min_size<edge_class_outputs>() || classes->struct_size == 0;
  size_t class_count = 0;
  const edge_status s = guarded([&] {
    check_struct(outputs, "outputs");
    check_struct(classes, "classes");
    edge::ColorOrder order = edge::ColorOrder::RGB;
    double deadline_ms = -1.0;
    if (options) {
      check_struct(options, "options");
      if (options->color_order != EDGE_COLOR_RGB && options->color_order != EDGE_COLOR_BGR)
        throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->color_order: expected EDGE_COLOR_RGB (0) or EDGE_COLOR_BGR (1), got " +
                                                       std::to_string(options->color_order));
      order = options->color_order == EDGE_COLOR_BGR ? edge::ColorOrder::BGR : edge::ColorOrder::RGB;
      deadline_ms = options->deadline_ms;
    }
    Registry::Use use(Registry::instance(), rt);
    class_count = use->class_count();
    if (classes->probabilities && class_count > 0 && classes->probabilities_capacity < count * class_count)
      throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "classes->probabilities: capacity " +
                                                     std::to_string(classes->probabilities_capacity) + " floats < count * class_count = " +
                                                     std::to_string(count * class_count));
    if (classes->top_class && classes->top_class_capacity < count)
      throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "classes->top_class: capacity " + std::to_string(classes->top_class_capacity) +
                                                     " < count " + std::to_string(count));
    ClassTargets targets;
    targets.probabilities = class_count > 0 ? classes->probabilities : nullptr;
    targets.top_class = classes->top_class;
    return use->run(images, count, deadline_ms, order, *outputs, &targets);
  });
  if (s != EDGE_OK && s != EDGE_E_DEADLINE && s != EDGE_E_IMAGE && s != EDGE_E_NUMERIC && s != EDGE_E_BACKEND)
    mark_not_judged(s, count, outputs, outputs_known, classes, classes_known, class_count);
  return s;
}

}  // extern "C"
