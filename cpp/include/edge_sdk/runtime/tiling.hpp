// Overlapping tiles of a large frame (input.tiling, docs/BUNDLE.md): the one tile grid and the one
// stitching of tile maps, used by the manifest (tiles become generated regions), the runtime
// (stitching each frame's heatmap) and Python (edge_sdk.tiling: training cuts its tiles with the
// same grid; eval stitches with the same arithmetic).
//
// Grid, per axis: tiles start at 0, stride, 2 stride, ... while they end inside the frame; when
// that leaves the frame's last pixels uncovered, one more tile is aligned to the edge (start =
// extent - tile). So tiles cover the frame exactly, never leave it, and overlap by at least
// tile - stride (the last one by more when stride does not divide extent - tile).
//
// Stitching: "mean" averages every pixel over the tiles covering it (sum in tile order, then one
// division by the count); "max" keeps the largest value. Header-only (also linked into the fuzz
// target, which lists its sources).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "edge_sdk/runtime/errors.hpp"

namespace edge {

constexpr int64_t kMaxTileSide = 8192;   // pixels per tile side
constexpr int64_t kMaxTilesPerFrame = 4096;

enum class TileMerge : int32_t { None = 0, Mean = 1, Max = 2 };  // the C ABI's codes (edge_output_spec)

struct TilingSpec {
  int64_t tile_h = 0, tile_w = 0;      // tile size (frame pixels); 0 = no tiling
  int64_t stride_y = 0, stride_x = 0;  // step between tile origins, 1..tile
  TileMerge merge = TileMerge::None;
  bool enabled() const { return tile_h > 0; }
};

inline const char* tile_merge_name(TileMerge m) {
  return m == TileMerge::Mean ? "mean" : m == TileMerge::Max ? "max" : "none";
}

// Origins of the tiles along one axis (see above). Requires 1 <= tile <= extent, 1 <= stride <= tile.
inline std::vector<int64_t> tile_starts(int64_t extent, int64_t tile, int64_t stride) {
  if (tile < 1 || tile > extent || stride < 1 || stride > tile)
    throw ArgumentError("tile_starts: expected 1 <= tile (" + std::to_string(tile) + ") <= extent (" +
                        std::to_string(extent) + ") and 1 <= stride (" + std::to_string(stride) + ") <= tile");
  std::vector<int64_t> s;
  int64_t p = 0;
  for (; p + tile < extent; p += stride) s.push_back(p);
  s.push_back(extent - tile);  // the last tile ends at the edge (p + tile == extent when stride divides)
  return s;
}

// How many tiles of one axis cover each position (the mean's divisor is the product of both axes').
inline std::vector<float> tile_cover_counts(int64_t extent, int64_t tile, int64_t stride) {
  std::vector<float> c(static_cast<size_t>(extent), 0.0f);
  for (int64_t s : tile_starts(extent, tile, stride))
    for (int64_t i = s; i < s + tile; ++i) c[static_cast<size_t>(i)] += 1.0f;
  return c;
}

// Merges one tile's map (h x w, row-major) into the frame map (frame_w wide) at (x, y). Before the
// first tile the frame map holds 0 (mean) or NaN (max: fmax keeps the tile's value).
inline void stitch_tile(float* frame, int64_t frame_w, const float* tile, int64_t x, int64_t y, int64_t h, int64_t w,
                        TileMerge merge) {
  for (int64_t r = 0; r < h; ++r) {
    float* row = frame + (y + r) * frame_w + x;
    const float* src = tile + r * w;
    if (merge == TileMerge::Max)
      for (int64_t c = 0; c < w; ++c) row[c] = std::fmax(row[c], src[c]);
    else
      for (int64_t c = 0; c < w; ++c) row[c] += src[c];
  }
}

// The mean's last step: each pixel's sum divided by the number of tiles covering it.
inline void finish_mean(float* frame, const std::vector<float>& count_y, const std::vector<float>& count_x) {
  const size_t fw = count_x.size();
  for (size_t r = 0; r < count_y.size(); ++r)
    for (size_t c = 0; c < fw; ++c) frame[r * fw + c] /= count_y[r] * count_x[c];
}

}  // namespace edge
