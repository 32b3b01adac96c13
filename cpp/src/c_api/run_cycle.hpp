// The one judging cycle behind edge_run, edge_run_with and edge_run_classes: argument checks, the
// Inspector's run, and the fail-safe promise (when the call fails as a whole, every result that can
// be written says review, every class output says "no class").
#pragma once

#include <cstddef>

#include "edge_sdk/c_api.h"

namespace edge::capi {

// `options` (may be NULL) overrides deadline_ms when given; `classes` (may be NULL) receives class
// probabilities and top classes of a classifier bundle.
edge_status run_cycle(edge_runtime* rt, const edge_image* images, size_t count, const edge_run_options* options,
                      double deadline_ms, edge_batch_outputs* outputs, edge_class_outputs* classes);

// The fail-safe outputs of a call that failed as a whole with status `s` before or while judging
// `count` images: every result and class output that can be written says review / not judged.
void mark_not_judged(edge_status s, size_t count, edge_batch_outputs* outputs, edge_class_outputs* classes,
                     size_t class_count);

}  // namespace edge::capi
