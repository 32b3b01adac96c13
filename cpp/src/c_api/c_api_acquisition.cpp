// Acquisitions through the C ABI: edge_frame_extremes (the rank-filter images of K frames, so that
// a host turns K frames into K + 2 images: the frames, the lowest and the highest value per pixel)
// and edge_run_acquisition (the bundle's input policy input.acquisition: those K + 2 images judged
// in one cycle), with the kernel the runtime and Python use (kernels/rank.hpp).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "edge_sdk/c_api.h"
#include "edge_sdk/kernels/rank.hpp"
#include "edge_sdk/scratch.hpp"
#include "edge_sdk/thread_pool.hpp"
#include "handles.hpp"
#include "inspector.hpp"
#include "run_cycle.hpp"
#include "status.hpp"

namespace {

using edge::capi::StatusError;

size_t element_bytes(int32_t dtype) { return dtype == EDGE_DTYPE_FLOAT32 ? 4 : 1; }

template <typename T>
void extremes(const edge_image* frames, size_t k, void* lo, void* hi) {
  const edge_image& f0 = frames[0];
  const size_t row = static_cast<size_t>(f0.width) * static_cast<size_t>(f0.channels);
  const size_t pixels = row * static_cast<size_t>(f0.height);
  // The frames packed one after the other (views of larger frames have a row stride); a grow-only
  // per-thread buffer, so a steady stream of acquisitions allocates nothing after the first.
  struct PackTag;
  std::vector<T>& packed = edge::thread_scratch<PackTag, T>(k * pixels);
  for (size_t f = 0; f < k; ++f) {
    const size_t stride = frames[f].row_stride ? static_cast<size_t>(frames[f].row_stride) : row * sizeof(T);
    const auto* src = static_cast<const unsigned char*>(frames[f].data);
    for (int32_t y = 0; y < f0.height; ++y)
      std::memcpy(packed.data() + f * pixels + static_cast<size_t>(y) * row, src + static_cast<size_t>(y) * stride,
                  row * sizeof(T));
  }
  edge::frame_extremes_cpu(packed.data(), 1, static_cast<int64_t>(k), static_cast<int64_t>(pixels),
                           static_cast<T*>(lo), static_cast<T*>(hi), *edge::default_pool());
}

// Throws naming the argument: frames / k out of range, or frames that are not alike.
void check_frames(const edge_image* frames, size_t k) {
  if (!frames) throw StatusError(EDGE_E_INVALID_ARGUMENT, "frames: null pointer");
  if (k < 2 || k > static_cast<size_t>(edge::kMaxAcquisitionFrames))
    throw StatusError(EDGE_E_INVALID_ARGUMENT, "k: expected 2 to " + std::to_string(edge::kMaxAcquisitionFrames) +
                                                   " frames, got " + std::to_string(k));
  const edge_image& f0 = frames[0];
  for (size_t f = 0; f < k; ++f) {
    const edge_image& im = frames[f];
    const std::string at = "frames[" + std::to_string(f) + "]";
    if (!im.data) throw StatusError(EDGE_E_IMAGE, at + ".data: null pointer");
    if (im.dtype != EDGE_DTYPE_UINT8 && im.dtype != EDGE_DTYPE_FLOAT32)
      throw StatusError(EDGE_E_IMAGE, at + ".dtype: expected EDGE_DTYPE_UINT8 (1) or EDGE_DTYPE_FLOAT32 (2)");
    if (im.height < 1 || im.width < 1 || im.height > 32768 || im.width > 32768)
      throw StatusError(EDGE_E_IMAGE, at + ": height and width: expected 1..32768");
    if (im.channels != 1 && im.channels != 3) throw StatusError(EDGE_E_IMAGE, at + ".channels: expected 1 or 3");
    if (im.height != f0.height || im.width != f0.width || im.channels != f0.channels || im.dtype != f0.dtype)
      throw StatusError(EDGE_E_IMAGE, at + ": size, channels or dtype differ from frames[0] (an acquisition's frames "
                                           "are alike)");
    const int64_t packed = int64_t{im.width} * im.channels * static_cast<int64_t>(element_bytes(im.dtype));
    if (im.row_stride != 0 && im.row_stride < packed)
      throw StatusError(EDGE_E_IMAGE, at + ".row_stride: smaller than one packed row");
  }
}

void extremes_of(const edge_image* frames, size_t k, void* lo, void* hi) {
  if (frames[0].dtype == EDGE_DTYPE_UINT8) extremes<uint8_t>(frames, k, lo, hi);
  else extremes<float>(frames, k, lo, hi);
}

}  // namespace

extern "C" {

EDGE_API edge_status edge_frame_extremes(const edge_image* frames, size_t k, void* lo, void* hi) {
  return edge::capi::guarded([&] {
    check_frames(frames, k);
    if (!lo || !hi) throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(!lo ? "lo" : "hi") + ": null pointer");
    extremes_of(frames, k, lo, hi);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_run_acquisition(edge_runtime* rt, const edge_image* frames, size_t k,
                                          const edge_run_options* options, edge_batch_outputs* outputs) {
  // The rank images and the k + 2 image views live in grow-only per-thread buffers: a steady
  // stream of acquisitions allocates nothing after the first.
  struct RankTag;
  struct ViewsTag;
  std::vector<edge_image>* images = nullptr;
  const edge_status s = edge::capi::guarded([&] {
    check_frames(frames, k);
    {
      edge::capi::Registry::Use use(edge::capi::Registry::instance(), rt);
      const int64_t want = use->runtime().manifest().input.acquisition_frames;
      if (want != 0 && static_cast<int64_t>(k) != want)
        throw StatusError(EDGE_E_INVALID_ARGUMENT, "k: the bundle's acquisitions are " + std::to_string(want) +
                                                       " frames (input.acquisition.frames), got " + std::to_string(k));
    }
    const edge_image& f0 = frames[0];
    const size_t bytes = static_cast<size_t>(f0.height) * static_cast<size_t>(f0.width) *
                         static_cast<size_t>(f0.channels) * element_bytes(f0.dtype);
    std::vector<unsigned char>& rank = edge::thread_scratch<RankTag, unsigned char>(2 * bytes);
    extremes_of(frames, k, rank.data(), rank.data() + bytes);
    images = &edge::thread_scratch<ViewsTag, edge_image>(k + 2);
    std::copy(frames, frames + k, images->begin());
    for (size_t i = 0; i < 2; ++i) {
      edge_image& im = (*images)[k + i];
      im = f0;
      im.data = rank.data() + i * bytes;
      im.row_stride = 0;
    }
    return EDGE_OK;
  });
  if (s != EDGE_OK) {
    // refused before judging: the k + 2 results the call would have written say review
    const size_t count = k <= static_cast<size_t>(edge::kMaxAcquisitionFrames) ? k + 2 : 0;
    edge::capi::mark_not_judged(s, count, outputs, nullptr, 0);
    return s;
  }
  return edge::capi::run_cycle(rt, images->data(), images->size(), options, -1.0, outputs, nullptr);
}

}  // extern "C"
