// The per-pixel arithmetic of frame_extremes, shared by the CPU kernel and its CUDA twin.
#pragma once

#include "edge_sdk/common.hpp"

namespace edge {

// One more frame's value into the running extremes (the first frame's values start them).
template <typename T>
EDGE_HD void extremes_step(T v, T& lo, T& hi) {
  lo = v < lo ? v : lo;
  hi = v > hi ? v : hi;
}

}  // namespace edge
