"""Overlapping tiles for large frames (the bundle's ``input.tiling``; docs/BUNDLE.md).

A frame of a fixed size (``frame``: width x height) is cut into a regular grid of tiles of
``tile`` = (h, w) pixels whose origins step by ``stride`` = (sy, sx); the last tile of each row and
column is aligned to the frame's edge, so the tiles cover the frame exactly. Each tile is judged as
an image of its own (resized to the network input as any image is); the frame's score is the
largest tile score and its map the tiles' maps stitched at frame resolution, overlaps merged by
``merge``: "mean" (average of the tiles covering a pixel) or "max".

A tiling is a generated region layout: `Tiling.layout` gives the `edge_sdk.regions.RegionLayout`
whose regions are the tiles (``tile_<row>_<col>``, row-major), so training cuts tiles with
`RegionPatches`, the runtime cuts them with its region path, and the grid comes from one function
of the C++ core (``_core.tile_starts``) for both. `stitch` is the runtime's stitching
(``_core.stitch_tiles``, the same C++ code as the runtime's heatmaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Tiling", "TiledPredictor", "tiling_of_model"]

MERGES = ("mean", "max")


def _core():
    from edge_sdk._native import core

    return core


@dataclass(frozen=True)
class Tiling:
    tile_h: int
    tile_w: int
    stride_y: int
    stride_x: int
    merge: str = "mean"
    frame_h: int | None = None  # the frames' size; None until known (set from the training frames)
    frame_w: int | None = None

    def __post_init__(self):
        for name in ("tile_h", "tile_w", "stride_y", "stride_x"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"tiling.{name}: expected an integer >= 1, got {v!r}")
        if self.stride_y > self.tile_h or self.stride_x > self.tile_w:
            raise ValueError(f"tiling.stride: ({self.stride_y}, {self.stride_x}) larger than the tile "
                             f"({self.tile_h}, {self.tile_w}) would leave gaps between tiles")
        if self.merge not in MERGES:
            raise ValueError(f"tiling.merge: expected one of {MERGES}, got {self.merge!r}")

    # -- the manifest's form ----------------------------------------------------------------
    def manifest_tiling(self) -> dict:
        """``input.tiling`` of a manifest."""
        return {"tile": [int(self.tile_h), int(self.tile_w)], "stride": [int(self.stride_y), int(self.stride_x)],
                "merge": self.merge}

    def to_dict(self) -> dict:
        return {**self.manifest_tiling(), "frame": {"height": self.frame_h, "width": self.frame_w}}

    @classmethod
    def from_dict(cls, d: dict, frame: dict | None = None) -> "Tiling":
        """From ``input.tiling`` (+ the manifest's ``frame``) or `to_dict`'s form."""
        frame = frame or d.get("frame") or {}
        tile, stride = list(d["tile"]), list(d["stride"])
        return cls(int(tile[0]), int(tile[1]), int(stride[0]), int(stride[1]), str(d.get("merge", "mean")),
                   frame.get("height"), frame.get("width"))

    def for_frame(self, height: int, width: int) -> "Tiling":
        from dataclasses import replace

        return replace(self, frame_h=int(height), frame_w=int(width))

    # -- grid -------------------------------------------------------------------------------
    def _frame(self) -> tuple[int, int]:
        if self.frame_h is None or self.frame_w is None:
            raise ValueError("tiling: the frame size is not set (Tiling.for_frame)")
        return int(self.frame_h), int(self.frame_w)

    def starts(self) -> tuple[list[int], list[int]]:
        """Tile origins along y and x (the runtime's grid, from the C++ core)."""
        fh, fw = self._frame()
        core = _core()
        ys, xs = core.tile_starts(fh, self.tile_h, self.stride_y), core.tile_starts(fw, self.tile_w, self.stride_x)
        if len(ys) * len(xs) > core.MAX_TILES_PER_FRAME:
            raise ValueError(f"tiling: {len(ys)} x {len(xs)} tiles on a {fh}x{fw} frame; at most "
                             f"{core.MAX_TILES_PER_FRAME} (larger tiles or strides)")
        return list(ys), list(xs)

    def layout(self, threshold: float | None = None):
        """The tiles as an `edge_sdk.regions.RegionLayout` (names ``tile_<row>_<col>``, row-major)."""
        from edge_sdk.regions import Region, RegionLayout

        fh, fw = self._frame()
        ys, xs = self.starts()
        regions = tuple(Region(f"tile_{r}_{c}", x, y, self.tile_w, self.tile_h, threshold)
                        for r, y in enumerate(ys) for c, x in enumerate(xs))
        return RegionLayout(fw, fh, regions)

    def __len__(self) -> int:
        ys, xs = self.starts()
        return len(ys) * len(xs)

    def stitch(self, maps) -> np.ndarray:
        """(T, tile_h, tile_w) tile maps in layout order -> (frame_h, frame_w) float32 frame map,
        with the runtime's stitching."""
        fh, fw = self._frame()
        m = np.ascontiguousarray(maps, dtype=np.float32)
        return _core().stitch_tiles(m, fh, fw, self.stride_y, self.stride_x, self.merge)


class TiledPredictor:
    """A model's ``predict`` over tiled frames: every tile of each frame judged by the model, the
    frame's score the largest tile score, its map the stitched tile maps. Its ``predict`` has the
    model's signature (uint8 frames in, `Prediction` out), so `score_batches` and ``edge-sdk eval``
    use it as they use a model's."""

    def __init__(self, model, tiling: Tiling, batch: int = 16):
        self.model, self.tiling, self.batch = model, tiling, max(1, int(batch))
        self.layout = tiling.layout()

    def tile_predict(self, frame):
        """(tile scores (T,), tile maps (T, h, w)) of one frame, in layout order."""
        tiles = [np.ascontiguousarray(t) for t in self.layout.cut(np.asarray(frame), "frame")]
        scores, maps = [], []
        for i in range(0, len(tiles), self.batch):
            p = self.model.predict(tiles[i:i + self.batch])
            scores.append(np.asarray(p.scores, np.float32))
            maps += [np.asarray(m, np.float32) for m in p.maps]
        return np.concatenate(scores), np.stack(maps)

    def predict(self, images):
        from edge_sdk.models.contract import Prediction

        frames = list(images) if not isinstance(images, np.ndarray) or images.ndim == 4 else (
            [images] if images.ndim in (2, 3) and images.shape[:2] == (self.tiling.frame_h, self.tiling.frame_w)
            else list(images))
        scores, maps = [], []
        for f in frames:
            s, m = self.tile_predict(f)
            scores.append(np.max(s) if np.isfinite(s).all() else np.float32(np.nan))
            maps.append(self.tiling.stitch(m))
        return Prediction(scores=np.asarray(scores, np.float32), maps=np.stack(maps) if maps else np.zeros((0, 0, 0)))


def tiling_of_model(model) -> Tiling | None:
    """The tiling a model was trained with (``training_info["tiling"]``, written by ``edge-sdk train
    --tile``), or None."""
    d = (getattr(model, "training_info", None) or {}).get("tiling")
    return Tiling.from_dict(d) if d else None


class _Subset:
    """Frames ``indices`` of a data set (Samples), for training on the tiles of some frames only."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        paths = getattr(dataset, "paths", None)
        self.paths = [paths[i] for i in self.indices] if paths else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        return self.dataset[self.indices[int(k)]]


def score_frames(model, tiling: Tiling, dataset, indices=None, *, keep_maps: bool = False, batch: int = 4) -> dict:
    """`score_batches` of the frames ``indices`` of ``dataset`` through a `TiledPredictor`."""
    from edge_sdk.models.contract import score_batches

    indices = list(range(len(dataset))) if indices is None else list(indices)
    pred = TiledPredictor(model, tiling, batch=max(16, batch))
    batches = ([dataset[i] for i in indices[j:j + batch]] for j in range(0, len(indices), batch))
    out = score_batches(pred.predict, batches, keep_maps)
    out["indices"] = np.asarray(indices, np.int64)
    return out


def fit_tiled(model, frames, tiling: Tiling, *, val_frames=None, val_fraction: float = 0.1,
              threshold_method: str | None = None, quantile: float = 0.99, progress: bool = True):
    """Trains ``model`` on the tiles of the good training frames (`RegionPatches` of
    ``tiling.layout()``, the runtime's grid) and calibrates it on frame scores (the largest tile
    score, as the runtime scores a tiled frame): on ``val_frames`` when given, else on a held-out
    ``val_fraction`` of the frames (seeded with the model's seed; a whole frame is held out, never
    some of its tiles). ``tiling`` must carry the frame size. Records the tiling in
    ``model.training_info["tiling"]``, from which `edge-sdk export` writes ``input.tiling``."""
    from edge_sdk.calibration import calibrate_scores
    from edge_sdk.models.contract import split_training
    from edge_sdk.regions import RegionPatches

    layout = tiling.layout()
    order, held = split_training(len(frames), model.seed, val_fraction, model.min_held_out_images,
                                 hold_out=val_frames is None)
    model.fit(RegionPatches(_Subset(frames, order), layout), calibrate=False, progress=progress)
    if val_frames is not None:
        cal_set, cal_idx, source = val_frames, range(len(val_frames)), "validation"
    elif held:
        cal_set, cal_idx, source = frames, held, "held_out_train"
    else:
        cal_set, cal_idx, source = frames, order, "train"
    res = score_frames(model, tiling, cal_set, cal_idx)
    model.calibration, model.metrics = calibrate_scores(res["scores"], res["labels"], threshold_method, quantile,
                                                        source)
    model.training_info.update({"calibration_unit": "frame (largest tile score)", "train_frames": len(order), "train_tiles": len(order) * len(layout),
                                "tiling": tiling.to_dict()})
    return model
