"""`edge-sdk bench` end to end on a tiny synthetic bundle: record fields, figures recomputed from
the stored samples, report files (valid PNGs), the command line and its errors. No timing
assertions (speed is checked by benchmarks/)."""

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")


pytestmark = pytest.mark.onnxruntime

from edge_sdk.bench import STAGES, BenchConfig, BenchError, run_bench, write_report  # noqa: E402
from edge_sdk.cli import main  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    import torch

    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import ssim_parts

    torch.set_num_threads(1)
    return str(export_bundle(ssim_parts(size=24), tmp_path_factory.mktemp("bench") / "b", model_type="resganad").bundle)


@pytest.fixture(scope="module")
def record(bundle):
    cfg = BenchConfig(bundle, batches=(1, 4), iterations=3, warmup=1, threads=1, budget_ms=1000.0, units_per_cycle=6)
    return run_bench(cfg, progress=False, log=lambda s: None)


def test_record_fields(record, bundle):
    for key in ("schema", "schema_version", "created", "bundle", "config", "inputs", "environment", "timing", "results"):
        assert key in record
    env = record["environment"]
    for key in ("cpu_model", "cpu_cores", "threads", "gpu_name", "gpu_driver", "cuda_driver_version", "tensorrt_version",
                "onnxruntime_version", "sdk_version", "backend"):
        assert key in env
    assert env["threads"] == 1 and "onnxruntime" in env["backend"]
    manifest = open(f"{bundle}/manifest.json", "rb").read()
    assert record["bundle"]["sha256"] == hashlib.sha256(manifest).hexdigest()
    assert record["bundle"]["model_type"] == "resganad" and record["bundle"]["input"]["height"] == 24
    assert [r["batch"] for r in record["results"]] == [1, 4]
    json.dumps(record)  # JSON-ready as it is


def test_figures_recomputed_from_samples(record):
    for r in record["results"]:
        b = r["batch"]
        s = r["samples"]
        calls, sizes = np.array(s["call_ms"]), np.array(s["call_images"])
        # 6 units a cycle: batch 1 -> 6 calls of 1; batch 4 -> calls of 4 and 2.
        expected_sizes = [1] * 6 if b == 1 else [4, 2]
        assert r["calls_per_cycle"] == len(expected_sizes) and r["cycles"] == 3
        assert list(sizes) == expected_sizes * 3 and r["images"] == 18
        full = calls[sizes == b]
        lat = r["latency_ms"]["per_batch"]
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
            assert lat[name] == pytest.approx(np.percentile(full, q), rel=1e-9)
            assert r["latency_ms"]["per_image"][name] == pytest.approx(np.percentile(full / b, q), rel=1e-9)
        assert lat["max"] == pytest.approx(full.max())
        assert r["throughput_images_per_s"] == pytest.approx(18 / (calls.sum() / 1e3), rel=1e-6)
        cycles = np.array(s["cycle_ms"])
        np.testing.assert_allclose(cycles, calls.reshape(3, -1).sum(axis=1), rtol=1e-6, atol=1e-3)
        bud = r["budget"]
        assert bud["units_per_cycle"] == 6 and bud["cycles"] == 3
        assert bud["fraction_within_budget"] == pytest.approx(np.mean(cycles <= 1000.0))
        # Breakdown: every stage, from the runtime's own times; network time is never zero.
        for stage in STAGES:
            assert stage in r["breakdown"]
        st = s["stages_ms"]
        assert r["breakdown"]["network"]["mean_ms"] == pytest.approx(np.mean(np.array(st["network"])[sizes == b]), rel=1e-3)
        assert r["breakdown"]["network"]["mean_ms"] > 0 and r["breakdown"]["host_to_device"]["mean_ms"] == 0.0
        total = np.array(st["total"])[sizes == b]
        outside = (total - np.array(st["network"])[sizes == b]).sum() / total.sum()
        assert r["outside_network_fraction"] == pytest.approx(outside, rel=1e-3, abs=1e-6)
        bd = r["breakdown"]
        assert bd["postprocess_scoring"]["mean_ms"] + bd["postprocess_maps"]["mean_ms"] == \
            pytest.approx(bd["postprocess"]["mean_ms"], rel=1e-6, abs=1e-6)
        assert bd["postprocess_maps"]["mean_ms"] > 0  # heatmaps on
        assert r["outside_network_and_scoring_fraction"] <= r["outside_network_fraction"]
        assert r["memory"]["peak_rss_bytes"] > 10 * 2**20 and r["memory"]["peak_device_bytes"] is None


def test_report_files(record, tmp_path):
    files = write_report(record, tmp_path / "out")
    names = {p.name for p in files.values()}
    assert {"bench.json", "bench.md", "latency_hist.png", "batch_sweep.png", "breakdown.png", "cycle_budget.png"} <= names
    from PIL import Image

    for p in files.values():
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_SIGNATURE
            with Image.open(p) as im:
                im.verify()
            with Image.open(p) as im:
                assert im.size[0] > 300 and im.size[1] > 200
    md = (tmp_path / "out" / "bench.md").read_text()
    assert "| batch | p50 |" in md and "Cycle budget" in md and "![latency histogram](latency_hist.png)" in md
    again = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert again["results"][0]["samples"]["call_ms"] == record["results"][0]["samples"]["call_ms"]
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_folder_of_real_images(bundle, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(((24, 24), (40, 30), (24, 24))):
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    rec = run_bench(BenchConfig(bundle, batches=(2,), iterations=2, warmup=0, threads=1, images_dir=str(tmp_path)),
                    progress=False, log=lambda s: None)
    assert rec["inputs"]["distinct_images"] == 3 and rec["inputs"]["shape"] is None
    assert rec["results"][0]["images"] == 4


def test_cli_runs_and_compares(bundle, tmp_path, capsys):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    common = [bundle, "--threads", "1", "--batch", "1,2", "--iterations", "3", "--warmup", "1", "--no-progress"]
    assert main(["bench", *common, "--out", str(out_a)]) == 0
    assert main(["bench", *common, "--no-heatmaps", "--out", str(out_b)]) == 0
    text = capsys.readouterr().out
    assert "img/s" in text and "bench.json" in text
    assert main(["bench", "--compare", str(out_a / "bench.json"), str(out_b / "bench.json"), "--out",
                 str(tmp_path / "cmp")]) == 0
    text = capsys.readouterr().out
    assert "B/A" in text and "latency p50 per batch" in text
    cmp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert cmp["batches"] == [1, 2] and cmp["differences"]["config.heatmaps"] == [True, False]


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "bundle not found"),
    (["{notbundle}"], "not a valid bundle"),
    (["{bundle}", "--batch", "1,x"], "--batch"),
    (["{bundle}", "--batch", "8", "--units", "4"], "exceed --units 4"),
    (["{bundle}", "--backend", "tensorrt"], "tensorrt"),
    (["{bundle}", "--device", "cuda:0"], "cuda"),
    (["{bundle}", "--precision", "int8"], "int8"),
    (["{bundle}", "--preset", "mvtec"], "refuses the benchmark's images"),  # 3-channel images, 1-channel model
    (["{bundle}", "--images", "{empty}"], "no image files"),
    (["{bundle}", "--preset", "mvtec", "--shape", "8x8x1"], "exclude each other"),
    ([], "BUNDLE is required"),
    (["{bundle}", "--compare", "a.json", "b.json"], "not both"),
    (["--compare", "{missing}", "{missing}"], "no such benchmark record"),
])
def test_cli_errors(bundle, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notbundle").mkdir()
    (tmp_path / "notbundle" / "manifest.json").write_text("{}")
    subst = {"bundle": bundle, "missing": str(tmp_path / "missing"), "notbundle": str(tmp_path / "notbundle"),
             "empty": str(tmp_path / "empty")}
    argv = ["bench", *[a.format(**subst) for a in args], "--threads", "1", "--iterations", "1", "--warmup", "0",
            "--no-progress", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "edge-sdk bench: error:" in err and message in err
    assert not (tmp_path / "out" / "bench.json").exists()


def test_bad_config_raises_before_running(bundle):
    with pytest.raises(BenchError, match="--iterations"):
        run_bench(BenchConfig(bundle, iterations=0), progress=False)


def test_region_bundle_benchmarks_frames(tmp_path):
    # A bundle with regions judges frames: the generated images have the frame's size.
    import torch

    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import ssim_parts

    torch.set_num_threads(1)
    regions = [dict(name="left", x=0, y=0, width=30, height=40, threshold=0.1),
               dict(name="right", x=34, y=4, width=30, height=30, threshold=10.0)]
    out = export_bundle(ssim_parts(regions=regions, frame={"width": 64, "height": 40}), tmp_path / "b",
                        model_type="resganad").bundle
    rec = run_bench(BenchConfig(str(out), batches=(2,), iterations=2, warmup=0, threads=1), progress=False,
                    log=lambda s: None)
    assert rec["inputs"]["shape"] == [40, 64, 1] and rec["bundle"]["regions"] == 2
    assert rec["results"][0]["images"] == 4
