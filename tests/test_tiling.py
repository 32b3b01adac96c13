"""Overlapping tiles (input.tiling): the grid, validation on load, and the runtime's stitched frame
map and frame score against an independent float64 NumPy reference built tile by tile from the
runtime's own per-tile outputs (an untiled bundle of the same network run on each cut-out tile),
and against the training side's scoring (edge_sdk.tiling.TiledPredictor)."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk  # noqa: E402
from edge_sdk.bundle import BundleError  # noqa: E402
from edge_sdk.converters import export_bundle  # noqa: E402
from edge_sdk.models.contract import Prediction  # noqa: E402
from edge_sdk.tiling import Tiling, TiledPredictor  # noqa: E402
from tests.bundle_helpers import ssim_parts  # noqa: E402
from tests.gpu import requires_cuda  # noqa: E402

FRAME_H, FRAME_W = 100, 150


def ref_starts(extent, tile, stride):
    """Independent grid: origins 0, s, 2s, ... while the tile ends inside; then one aligned to the edge."""
    starts = list(range(0, max(extent - tile, 0), stride))
    if not starts or starts[-1] + tile < extent:
        starts.append(extent - tile)
    return starts


def ref_stitch(maps, origins, th, tw, merge):
    acc = np.zeros((FRAME_H, FRAME_W), np.float64)
    count = np.zeros((FRAME_H, FRAME_W), np.float64)
    top = np.full((FRAME_H, FRAME_W), -np.inf)
    for m, (y, x) in zip(maps, origins):
        m = np.asarray(m, np.float64)
        acc[y:y + th, x:x + tw] += m
        count[y:y + th, x:x + tw] += 1
        top[y:y + th, x:x + tw] = np.maximum(top[y:y + th, x:x + tw], m)
    assert (count > 0).all(), "the tiles must cover the frame"
    return acc / count if merge == "mean" else top


@pytest.mark.parametrize("extent,tile,stride", [(100, 48, 24), (150, 64, 40), (64, 64, 7), (65, 64, 64), (10, 3, 1),
                                                (1000, 320, 256), (4096, 1, 1)])
def test_grid_matches_reference_and_covers_the_frame(extent, tile, stride):
    core = edge_sdk._core
    s = list(core.tile_starts(extent, tile, stride))
    assert s == ref_starts(extent, tile, stride)
    assert s[0] == 0 and s[-1] + tile == extent  # first at 0, last aligned to the edge
    assert all(b - a <= stride and b > a for a, b in zip(s, s[1:]))  # no gap, strictly increasing
    with pytest.raises(ValueError):
        core.tile_starts(extent, extent + 1, 1)
    with pytest.raises(ValueError):
        core.tile_starts(extent, tile, tile + 1)


def _parts(kind, tiling, merge):
    parts = ssim_parts(size=32, channels=3 if kind == "rgb" else 1)
    if tiling:
        th, tw, sy, sx = tiling
        parts.tiling = {"tile": [th, tw], "stride": [sy, sx], "merge": merge,
                        "frame": {"width": FRAME_W, "height": FRAME_H}}
    return parts


def _bundles(tmp_path, kind, tiling, merge):
    mt = "resganad"
    tiled = export_bundle(_parts(kind, tiling, merge), tmp_path / "tiled", model_type=mt).bundle
    plain = export_bundle(_parts(kind, None, merge), tmp_path / "plain", model_type=mt).bundle
    return tiled, plain


def _frames(rng, n=3):
    frames = rng.integers(0, 256, (n, FRAME_H, FRAME_W, 3), dtype=np.uint8)
    frames[0] = 120  # a flat frame
    frames[1, 40:52, 70:90] = 255  # a small bright defect across tile overlaps
    return frames


@pytest.mark.parametrize("kind", ["rgb", "gray"])
@pytest.mark.parametrize("merge", ["mean", "max"])
def test_stitched_map_and_score_match_tile_by_tile_reference(tmp_path, rng, kind, merge):
    th, tw, sy, sx = 48, 64, 24, 40  # 100 x 150 frame: 4 x 4 tiles, the last of each axis edge-aligned
    tiled, plain = _bundles(tmp_path, kind, (th, tw, sy, sx), merge)
    rt = edge_sdk.Runtime(tiled, threads=1, max_batch=5)  # 16 tiles a frame: chunks split frames
    ref_rt = edge_sdk.Runtime(plain, threads=1)
    frames = _frames(rng) if kind == "rgb" else np.ascontiguousarray(_frames(rng)[..., 0])
    ys, xs = ref_starts(FRAME_H, th, sy), ref_starts(FRAME_W, tw, sx)
    origins = [(y, x) for y in ys for x in xs]
    assert rt.region_names == [f"tile_{r}_{c}" for r in range(len(ys)) for c in range(len(xs))]
    t = rt.tiling
    assert (t.tile_h, t.tile_w, t.stride_y, t.stride_x, t.merge, t.frame_h, t.frame_w) == \
        (th, tw, sy, sx, merge, FRAME_H, FRAME_W)
    res = rt.predict(list(frames))
    cal = rt.manifest["calibration"]
    for i, f in enumerate(frames):
        tiles = [np.ascontiguousarray(f[y:y + th, x:x + tw]) for y, x in origins]
        ref = ref_rt.predict(tiles)  # the runtime's own per-tile outputs, tile by tile
        assert all(m.shape == (th, tw) for m in ref.heatmaps)
        np.testing.assert_allclose(res.regions.scores[i], ref.scores, rtol=1e-5, atol=1e-6)
        want = ref_stitch(ref.heatmaps, origins, th, tw, merge)
        got = res.heatmaps[i]
        assert got.shape == (FRAME_H, FRAME_W) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
        # the frame score is the largest tile score, judged once with the bundle's rule
        top = float(np.max(ref.scores.astype(np.float64)))
        np.testing.assert_allclose(res.scores[i], top, rtol=1e-5)
        norm = np.clip((res.scores[i] - cal["threshold"]) / (cal["max"] - cal["min"]) + 0.5, 0, 1)
        np.testing.assert_allclose(res.normalized[i], norm, rtol=1e-6, atol=1e-7)
        assert res.verdicts[i] == ("reject" if res.scores[i] >= cal["threshold"] else "accept")
    # the training side: a model's predict over the same tiles, stitched by edge_sdk.tiling
    model = type("M", (), {"predict": lambda self, imgs: (lambda r: Prediction(r.scores, np.stack(r.heatmaps)))(
        ref_rt.predict(list(imgs)))})()
    pred = TiledPredictor(model, t, batch=7).predict(list(frames))
    np.testing.assert_allclose(pred.scores, res.scores, rtol=1e-5)
    for i in range(len(frames)):
        np.testing.assert_allclose(pred.maps[i], res.heatmaps[i], rtol=1e-5, atol=1e-6 * np.abs(pred.maps[i]).max())


def test_training_cuts_the_runtimes_tiles(tmp_path, rng):
    from edge_sdk.data import Sample
    from edge_sdk.regions import RegionPatches

    th, tw, sy, sx = 48, 64, 24, 40
    tiled, _ = _bundles(tmp_path, "rgb", (th, tw, sy, sx), "mean")
    rt = edge_sdk.Runtime(tiled, threads=1)
    layout = rt.tiling.layout()
    assert layout.names == rt.region_names
    assert [(r.y, r.x) for r in layout.regions] == [(y, x) for y in ref_starts(FRAME_H, th, sy)
                                                   for x in ref_starts(FRAME_W, tw, sx)]
    frames = _frames(rng, 2)
    patches = RegionPatches([Sample(image=f, mask=None, label=0, defect_type="good", path=None, index=i)
                             for i, f in enumerate(frames)], layout)
    assert len(patches) == 2 * len(layout)
    for k in range(len(patches)):
        r = layout.regions[k % len(layout)]
        np.testing.assert_array_equal(patches[k].image, frames[k // len(layout)][r.y:r.y + th, r.x:r.x + tw])


def test_frames_of_another_size_are_review(tmp_path, rng):
    tiled, _ = _bundles(tmp_path, "rgb", (48, 64, 24, 40), "max")
    res = edge_sdk.Runtime(tiled, threads=1).predict(
        rng.integers(0, 256, (FRAME_H + 1, FRAME_W, 3), dtype=np.uint8), on_error="review")
    assert res.verdicts[0] == "review" and "frame" in res.errors[0]


@pytest.mark.parametrize("tiling,field", [
    ((101, 64, 24, 40), "input.tiling.tile"),     # taller than the frame
    ((48, 64, 49, 40), "input.tiling.stride"),    # stride > tile leaves gaps
    ((48, 64, 0, 40), "input.tiling.stride"),
    ((2, 2, 1, 1), "input.tiling.stride"),         # 99 x 149 tiles: over the cap of 4096 per frame
])
def test_bad_tilings_are_refused_naming_the_field(tmp_path, tiling, field):
    with pytest.raises(BundleError, match=field.replace(".", r"\.")):
        export_bundle(_parts("rgb", tiling, "mean"), tmp_path / "bad", model_type="patchcore")


def test_tiling_and_regions_exclude_each_other(tmp_path):
    parts = _parts("rgb", (48, 64, 24, 40), "mean")
    parts.regions = [dict(name="r", x=0, y=0, width=10, height=10, threshold=1.0)]
    parts.postprocess = {**parts.postprocess, "frame": {"width": FRAME_W, "height": FRAME_H}}
    with pytest.raises(BundleError, match="input.tiling"):
        export_bundle(parts, tmp_path / "bad", model_type="patchcore")


def test_tiling_object_checks():
    with pytest.raises(ValueError, match="stride"):
        Tiling(10, 10, 11, 5)
    with pytest.raises(ValueError, match="merge"):
        Tiling(10, 10, 5, 5, "median")
    t = Tiling(48, 64, 24, 40, "max").for_frame(FRAME_H, FRAME_W)
    assert Tiling.from_dict(t.to_dict()) == t
    assert len(t) == 16  # y: 0, 24, 48, 52 (edge); x: 0, 40, 80, 86 (edge)


def test_c_abi_returns_the_stitched_map(tmp_path, rng):
    """A C host (cpp/sdk_tests/tiled_frame.c, built against the in-place library): the ABI 1.3 tiling
    fields, an ABI 1.2-sized output spec left untouched past its size, and the stitched frame maps
    and frame scores equal to the Python API's (the same C++ core, checked above against NumPy)."""
    import os
    import shutil
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cc = shutil.which("cc") or shutil.which("gcc")
    lib = os.path.join(repo, "edge_sdk")
    if not cc or not any(n.startswith("libedge_sdk.so") for n in os.listdir(lib)):
        pytest.skip("no C compiler or no in-place libedge_sdk.so")
    exe = tmp_path / "tiled_frame"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(repo, "cpp", "include"),
                    os.path.join(repo, "cpp", "sdk_tests", "tiled_frame.c"), "-o", str(exe), "-L", lib,
                    "-l:libedge_sdk.so", f"-Wl,-rpath,{lib}"], check=True)
    th, tw, sy, sx = 48, 64, 24, 40
    tiled, _ = _bundles(tmp_path, "rgb", (th, tw, sy, sx), "mean")
    frames = _frames(rng, 3)
    (tmp_path / "frames.txt").write_text(f"{len(frames)} {FRAME_H} {FRAME_W} 3\n")
    (tmp_path / "frames.bin").write_bytes(frames.tobytes())
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "config", "--onnxruntime-lib"], capture_output=True,
                       text=True, cwd=repo)
    if r.returncode == 0 and r.stdout.strip():
        env["EDGE_SDK_ONNXRUNTIME_LIB"] = r.stdout.strip()
    r = subprocess.run([str(exe), str(tiled), str(tmp_path / "frames"), str(tmp_path / "heat.bin")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    spec = [int(v) for v in lines[0].split()[1:]]
    ys, xs = ref_starts(FRAME_H, th, sy), ref_starts(FRAME_W, tw, sx)
    assert spec == [1, th, tw, sy, sx, len(ys) * len(xs), FRAME_H, FRAME_W]
    tiles = [tuple(int(v) for v in ln.split()[1:]) for ln in lines if ln.startswith("tile ")]
    assert tiles == [(y, x, th, tw) for y in ys for x in xs]
    got = [ln.split()[1:] for ln in lines if ln.startswith("frame ")]
    heat = np.fromfile(tmp_path / "heat.bin", np.float32).reshape(len(frames), FRAME_H, FRAME_W)
    py = edge_sdk.Runtime(tiled, threads=1).predict(list(frames))
    codes = {"review": 0, "accept": 1, "reject": 2}
    for i in range(len(frames)):
        np.testing.assert_allclose(float(got[i][0]), py.scores[i], rtol=1e-6)
        assert int(got[i][2]) == codes[py.verdicts[i]]
        np.testing.assert_allclose(heat[i], py.heatmaps[i], rtol=1e-6, atol=1e-7)


@requires_cuda
@pytest.mark.parametrize("merge", ["mean", "max"])
def test_tiled_frames_on_the_gpu_match_the_cpu(tmp_path, rng, merge):
    """The tiles cut, judged and stitched with the pipeline's kernels on cuda:0 (the network on ONNX
    Runtime's CPU provider) give the CPU runtime's frame scores, verdicts and stitched maps."""
    tiled, _ = _bundles(tmp_path, "rgb", (48, 64, 24, 40), merge)
    frames = list(_frames(rng))
    cpu = edge_sdk.Runtime(tiled, threads=1, heatmaps=True).predict(frames)
    gpu = edge_sdk.Runtime(tiled, device="cuda:0", threads=1, provider="cpu", heatmaps=True).predict(frames)
    np.testing.assert_allclose(gpu.scores, cpu.scores, rtol=1e-5)
    np.testing.assert_allclose(gpu.regions.scores, cpu.regions.scores, rtol=1e-5)
    assert gpu.verdicts.tolist() == cpu.verdicts.tolist()
    for g, c in zip(gpu.heatmaps, cpu.heatmaps):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6 * np.abs(c).max())


def test_cli_trains_exports_and_predicts_tiled_frames(tmp_path):
    """`train --tile` -> `export` -> `predict`: the bundle carries the tiling, and predict's scores
    are the runtime's tiled frame scores (the largest tile score)."""
    import csv
    import json
    import subprocess
    import sys
    from pathlib import Path

    from edge_sdk.data import load_dataset
    from edge_sdk.data.synthetic import make_dataset

    repo = Path(__file__).resolve().parents[1]
    root = make_dataset(tmp_path / "d", kind="tile", n_train=8, n_test=4, size=128, seed=4)

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=repo, capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        return p

    cli("train", "--model", "padim", "--data", root, "--layout", "mvtec", "--out", tmp_path / "m", "--input-size", "64",
        "--d", "20", "--tile", "64", "--tile-stride", "32", "--threads", "1", "--no-progress")
    cli("export", tmp_path / "m", "--out", tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["input"]["tiling"] == {"tile": [64, 64], "stride": [32, 32], "merge": "mean"}
    assert m["frame"] == {"width": 128, "height": 128}
    test = load_dataset(root, "mvtec", "test")
    cli("predict", tmp_path / "b", *test.paths, "--out", tmp_path / "v.csv", "--threads", "1")
    rows = list(csv.DictReader((tmp_path / "v.csv").open()))
    res = edge_sdk.Runtime(tmp_path / "b", threads=1).predict([s.image for s in test])
    assert len(rows) == len(test) and res.regions.scores.shape == (len(test), 9)
    np.testing.assert_allclose([float(r["score"]) for r in rows], res.regions.scores.max(axis=1), rtol=1e-6)
    assert [r["verdict"] for r in rows] == res.verdicts.tolist()
