// The tile grid and the stitching of tile maps (edge/runtime/tiling.hpp), for edge_sdk.tiling: the
// training side cuts its tiles and stitches its maps with the runtime's own arithmetic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>

#include "arrays.hpp"
#include "registry.hpp"
#include "edge_sdk/runtime/tiling.hpp"

namespace edge_py {
namespace {

edge::TileMerge merge_of(const std::string& merge) {
  if (merge == "mean") return edge::TileMerge::Mean;
  if (merge == "max") return edge::TileMerge::Max;
  throw py::value_error("merge: expected \"mean\" or \"max\", got \"" + merge + "\"");
}

std::vector<int64_t> starts(int64_t extent, int64_t tile, int64_t stride) {
  try {
    return edge::tile_starts(extent, tile, stride);
  } catch (const std::exception& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace

EDGE_PY_BINDER(tiling) {
  m.attr("MAX_TILES_PER_FRAME") = edge::kMaxTilesPerFrame;
  m.attr("MAX_TILE_SIDE") = edge::kMaxTileSide;
  m.def(
      "tile_starts",
      [](int64_t extent, int64_t tile, int64_t stride) {
        py::list out;
        for (int64_t s : starts(extent, tile, stride)) out.append(s);
        return out;
      },
      py::arg("extent"), py::arg("tile"), py::arg("stride"));
  m.def(
      "stitch_tiles",
      [](py::handle maps_obj, int64_t frame_h, int64_t frame_w, int64_t stride_y, int64_t stride_x,
         const std::string& merge_name) {
        auto maps = require_array<float>(maps_obj, "maps", 3, 3);
        const edge::TileMerge merge = merge_of(merge_name);
        const int64_t t = maps.shape(0), th = maps.shape(1), tw = maps.shape(2);
        const auto ys = starts(frame_h, th, stride_y), xs = starts(frame_w, tw, stride_x);
        if (static_cast<size_t>(t) != ys.size() * xs.size())
          throw py::value_error("maps: " + std::to_string(t) + " tile maps, the grid has " + std::to_string(ys.size()) +
                                " x " + std::to_string(xs.size()));
        py::array_t<float> out({frame_h, frame_w});
        float* o = out.mutable_data();
        const float* src = maps.data();
        {
          py::gil_scoped_release release;
          std::fill_n(o, frame_h * frame_w, merge == edge::TileMerge::Max ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
          int64_t k = 0;
          for (int64_t y : ys)
            for (int64_t x : xs) edge::stitch_tile(o, frame_w, src + (k++) * th * tw, x, y, th, tw, merge);
          if (merge == edge::TileMerge::Mean)
            edge::finish_mean(o, edge::tile_cover_counts(frame_h, th, stride_y), edge::tile_cover_counts(frame_w, tw, stride_x));
        }
        return out;
      },
      py::arg("maps"), py::arg("frame_h"), py::arg("frame_w"), py::arg("stride_y"), py::arg("stride_x"),
      py::arg("merge"));
}

}  // namespace edge_py
