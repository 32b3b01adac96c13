#include "run_cycle.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "abi_structs.hpp"
#include "handles.hpp"
#include "inspector.hpp"
#include "status.hpp"

namespace edge::capi {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Statuses after which the Inspector itself wrote every result (judged or review with a reason).
bool results_written(edge_status s) {
  return s == EDGE_OK || s == EDGE_E_DEADLINE || s == EDGE_E_IMAGE || s == EDGE_E_NUMERIC || s == EDGE_E_BACKEND;
}

ColorOrder color_order_of(const edge_run_options& o) {
  if (o.color_order != EDGE_COLOR_RGB && o.color_order != EDGE_COLOR_BGR)
    throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->color_order: expected EDGE_COLOR_RGB (0) or EDGE_COLOR_BGR (1), got " +
                                                   std::to_string(o.color_order));
  return o.color_order == EDGE_COLOR_BGR ? ColorOrder::BGR : ColorOrder::RGB;
}

}  // namespace

void mark_not_judged(edge_status s, size_t count, edge_batch_outputs* outputs, edge_class_outputs* classes,
                     size_t class_count) {
  // Results that can be written say review (never accept). That includes a call refused for too
  // small a capacity (the entries that exist) or for an unset struct_size (0: the caller skipped
  // the _init function but filled the fields), so that a host ignoring the status never reads a
  // verdict it prefilled as accept. Any other struct_size below the ABI's is not this struct:
  // nothing of it is touched. The same holds for `classes`.
  const bool header_ok = outputs && outputs->struct_size >= abi_min_size<edge_batch_outputs>();
  const bool fields_known = outputs && (header_ok || outputs->struct_size == 0);
  const bool classes_known =
      classes && (classes->struct_size >= abi_min_size<edge_class_outputs>() || classes->struct_size == 0);
  if (fields_known && outputs->results) {
    const size_t writable = std::min(count, outputs->results_capacity);
    for (size_t i = 0; i < writable; ++i) {
      edge_image_result& r = outputs->results[i];
      std::memset(&r, 0, sizeof r);
      r.score = r.normalized = kNaN;
      r.verdict = EDGE_VERDICT_REVIEW;
      r.status = s;
      r.review = EDGE_REVIEW_ERROR;
    }
  }
  if (header_ok) {
    outputs->judged = 0;
    outputs->not_judged = static_cast<uint32_t>(count);
  }
  if (classes_known) {
    if (classes->top_class) std::fill_n(classes->top_class, std::min(count, classes->top_class_capacity), -1);
    if (classes->probabilities)
      std::fill_n(classes->probabilities, std::min(count * class_count, classes->probabilities_capacity), kNaN);
  }
}

edge_status run_cycle(edge_runtime* rt, const edge_image* images, size_t count, const edge_run_options* options,
                      double deadline_ms, edge_batch_outputs* outputs, edge_class_outputs* classes) {
  size_t class_count = 0;
  const edge_status s = guarded([&] {
    check_struct(outputs, "outputs");
    if (classes) check_struct(classes, "classes");
    ColorOrder order = ColorOrder::RGB;
    if (options) {
      check_struct(options, "options");
      order = color_order_of(*options);
      deadline_ms = options->deadline_ms;
    }
    Registry::Use use(Registry::instance(), rt);
    if (!classes) return use->run(images, count, deadline_ms, order, *outputs);
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
  // The call itself failed (handle, arguments, buffers, memory): nothing was judged.
  if (!results_written(s)) mark_not_judged(s, count, outputs, classes, class_count);
  return s;
}

}  // namespace edge::capi
