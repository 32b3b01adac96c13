"""`edge-sdk triton`: a model repository of bundles served by a real Triton Inference Server
(tritonserver of the nvidia-pytriton wheel, in the serving venv of scripts/setup_triton.sh), talked
to with tritonclient over HTTP and gRPC (the client runs in that venv: edge_sdk/serving/triton_client.py).

Every figure through Triton is compared bit for bit with the in-process edge_sdk.Runtime."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk  # noqa: E402
from edge_sdk.converters import export_bundle  # noqa: E402
from edge_sdk.runtime import VERDICTS  # noqa: E402
from edge_sdk.serving import triton_repo as tr  # noqa: E402
from edge_sdk.serving.triton_server import Server, ServerError, environment, find_env  # noqa: E402

from tests.bundle_helpers import classifier_model, classifier_thresholds, embedding_parts, ssim_parts  # noqa: E402

pytestmark = pytest.mark.onnxruntime

try:
    ENV = find_env()
except ServerError as exc:  # a CI run (EDGE_SDK_REQUIRE_FULL=1) fails on this skip (tests/conftest.py)
    pytest.skip(f"Triton serving environment not installed: {exc}", allow_module_level=True)

MTD = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "magnetic_tile"
REVIEW, ACCEPT = VERDICTS.index("review"), VERDICTS.index("accept")


def _export(parts, out, threshold=None):
    if threshold is not None:
        parts.calibration = {"threshold": float(threshold), "min": 0.3, "max": 0.8}
    return export_bundle(parts, out, model_type="patchcore", overwrite=True).bundle


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo bundles and images: a k-NN bundle (any image size, resized) with its threshold at the
    median score of the demo images, a second version of it with another threshold, a region
    bundle (gray frames, fixed size), and the synthetic vial images of the demo."""
    from edge_sdk.data import load_dataset
    from edge_sdk.data.synthetic import make_dataset

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("triton")
    root = make_dataset(tmp / "data", kind="vial", n_train=2, n_test=12, size=64, seed=0)
    images = [np.ascontiguousarray(s.image) for s in load_dataset(root, "mvtec", "test", category="vial")]
    rng = np.random.default_rng(0)
    images += [rng.integers(0, 256, (48, 56, 3), dtype=np.uint8) for _ in range(4)]
    first = _export(embedding_parts("knn"), tmp / "probe")
    scores = edge_sdk.Runtime(first, threads=1).predict(images).scores
    v1 = _export(embedding_parts("knn"), tmp / "knn", np.median(scores))
    v2 = _export(embedding_parts("knn"), tmp / "knn_v2", np.quantile(scores, 0.25))
    frame = {"width": 64, "height": 40}
    regions = [dict(name="left", x=0, y=0, width=30, height=40, threshold=0.1),
               dict(name="right", x=34, y=4, width=30, height=30, threshold=10.0)]
    reg = export_bundle(ssim_parts(regions=regions, frame=frame), tmp / "regions", model_type="resganad").bundle
    frames = [rng.integers(0, 256, (40, 64, 1), dtype=np.uint8) for _ in range(6)]
    model = classifier_model(("good", "crack", "spot"), size=48, seed=3)
    tiles = ([np.ascontiguousarray(a[:48, :48]) for a in images[:6]] + [rng.integers(0, 256, (48, 48, 3), np.uint8)]
             + [np.full((48, 48, 3), v, np.uint8) for v in (0, 128, 255)])
    classifier_thresholds(model, model.predict(tiles).probabilities)
    cls = export_bundle(model.export_parts(), tmp / "classifier", model_type="classifier").bundle
    return dict(tmp=tmp, v1=Path(v1), v2=Path(v2), regions=Path(reg), images=images, frames=frames,
                classifier=Path(cls), tiles=tiles)


@pytest.fixture(scope="module")
def repo(demo):
    out = demo["tmp"] / "repo"
    tr.write_repository([demo["v1"], demo["regions"], demo["v1"], demo["classifier"]], out,
                        names=["knn", "regions", "swap", "classifier"],
                        options=tr.ServeOptions(threads=1, max_batch=8, queue_delay_us=2000))
    return out


@pytest.fixture(scope="module")
def server(repo, demo):
    with Server(repo, log=demo["tmp"] / "server.log") as s:
        yield s


def _drive(job: dict, tmp: Path, name: str, wait: bool = True):
    """Runs the tritonclient driver in the serving venv; returns (summary, results) or the process."""
    job = {"heatmaps": True, "mode": "load", "clients": 1, **job, "out": str(tmp / f"{name}.npz")}
    (tmp / f"{name}.json").write_text(json.dumps(job))
    cmd = [str(ENV.python), "-m", "edge_sdk.serving.triton_client", str(tmp / f"{name}.json")]
    if not wait:
        return subprocess.Popen(cmd, env=environment(ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = subprocess.run(cmd, env=environment(ENV), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1]), dict(np.load(job["out"]))


def _save_images(images, path: Path) -> str:
    np.savez(path, **{str(i): a for i, a in enumerate(images)})
    return str(path)


def _reference(bundle, images):
    """In-process results, one image per call, as serial reference."""
    rt = edge_sdk.Runtime(bundle, threads=1)
    return [rt.predict(a[None]) for a in images]


def _assert_equal_to(ref, out, rows=None, regions=False):
    rows = range(len(out["index"])) if rows is None else rows
    for k in rows:
        want = ref[int(out["index"][k])]
        assert out["error"][k] == "", out["error"][k]
        np.testing.assert_array_equal(out["SCORE"][k], want.scores)
        np.testing.assert_array_equal(out["NORMALIZED"][k], want.normalized)
        np.testing.assert_array_equal(out["VERDICT"][k], want.verdict_codes)
        heat = out["HEATMAP"][k] if "HEATMAP" in out else out[f"HEATMAP_{k}"]  # images of several sizes
        np.testing.assert_array_equal(heat, want.heatmaps[0])


def test_repository_layout_and_config(repo, demo):
    model = repo / "knn"
    assert (repo / tr.MARKER).is_file() and (model / "1" / "model.py").read_text() == tr.MODEL_TEMPLATE.read_text()
    assert (model / "1" / "bundle" / "manifest.json").is_file()
    cfg = (model / "config.pbtxt").read_text()
    assert 'backend: "python"' in cfg and "max_batch_size: 8" in cfg
    assert 'name: "IMAGE" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ]' in cfg  # the bundle resizes any size
    for out in ("SCORE", "NORMALIZED", "VERDICT", "VERSION", "HEATMAP"):
        assert f'name: "{out}"' in cfg
    assert "REGION_SCORES" not in cfg
    assert "# 0 review, 1 accept, 2 reject" in cfg and f'string_value: "{",".join(VERDICTS)}"' in cfg
    assert "preferred_batch_size: [ 4, 8 ]" in cfg and "max_queue_delay_microseconds: 2000" in cfg
    assert "{ count: 1 kind: KIND_CPU }" in cfg and "latest: { num_versions: 1 }" in cfg
    reg = (repo / "regions" / "config.pbtxt").read_text()
    assert 'dims: [ 40, 64, 1 ]' in reg  # frames of the region bundle, fixed size
    assert 'name: "REGION_VERDICTS" data_type: TYPE_INT8 dims: [ 2 ]' in reg and 'string_value: "left,right"' in reg
    gpu = tr.model_config("m", edge_sdk.Runtime(demo["v1"], threads=1).manifest,
                          tr.ServeOptions(kind="gpu", gpus=[0, 1], instances=2), [8])
    assert "{ count: 2 kind: KIND_GPU gpus: [ 0, 1 ] }" in gpu


def test_options_and_repository_writes_are_checked(demo, tmp_path, capsys):
    from edge_sdk.cli import main

    b = str(demo["v1"])
    for argv, needle in [(["--instances", "0"], "--instances: expected an integer from 1 to 64"),
                         (["--queue-delay-us", "2000000"], "--queue-delay-us: expected an integer from 0 to 1000000"),
                         (["--max-batch", "300"], "--max-batch: expected an integer from 1 to 256"),
                         (["--preferred-batch", "4,16"], "preferred_batch (--preferred-batch): expected an integer "
                                                         "from 1 to 8, got 16"),
                         (["--gpus", "0"], "gpus (--gpus): only with kind 'gpu'")]:
        try:
            rc = main(["triton", b, "--repo", str(tmp_path / "r"), *argv])
        except SystemExit as exc:  # argparse's own checks
            rc = exc.code
        assert rc == 2 and needle in capsys.readouterr().err, argv
    assert not (tmp_path / "r").exists()
    with pytest.raises(tr.RepositoryError, match="instances"):
        tr.ServeOptions(instances=100).check()
    # an existing folder is kept without --overwrite, and a user's folder even with it
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(tr.RepositoryError, match="exists; pass --overwrite"):
        tr.write_repository([b], user)
    with pytest.raises(tr.RepositoryError, match="not a model repository written by edge-sdk triton"):
        tr.write_repository([b], user, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep" and sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    # a repository written here is replaced with --overwrite, atomically (no temporary left beside it)
    tr.write_repository([b], tmp_path / "r")
    tr.write_repository([b, b], tmp_path / "r", names=["a", "b"], overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "r"]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["a", "b", tr.MARKER]
    with pytest.raises(tr.RepositoryError, match=r"names: \['x'\] given to more than one bundle"):
        tr.write_repository([b, b], tmp_path / "r2", names=["x", "x"])
    # a bundle of another input size is not a new version of this model
    other = export_bundle(embedding_parts("knn", size=(48, 48)), tmp_path / "other", model_type="patchcore").bundle
    tr.write_repository([demo["regions"]], tmp_path / "r3", names=["m"])
    with pytest.raises(tr.RepositoryError, match="differ from model 'm'"):
        tr.add_version(other, tmp_path / "r3", "m")


def test_tampered_bundle_is_refused_when_written(demo, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(demo["v1"], bad)
    onnx = next(bad.glob("*.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(tr.RepositoryError, match="sha256"):
        tr.write_repository([bad], tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_results_equal_the_runtime_bit_for_bit(server, demo, protocol):
    tmp = demo["tmp"]
    images = _save_images(demo["images"], tmp / "images.npz")
    url = server.http_url if protocol == "http" else server.grpc_url
    summary, out = _drive(dict(url=url, protocol=protocol, model="knn", images=images,
                               requests=len(demo["images"])), tmp, f"parity_{protocol}")
    assert summary["errors"] == 0 and summary["requests"] == len(demo["images"])
    ref = _reference(demo["v1"], demo["images"])
    _assert_equal_to(ref, out)
    assert sorted(out["index"]) == list(range(len(demo["images"])))
    codes = {int(c) for c in out["VERDICT"].ravel()}
    assert {ACCEPT, VERDICTS.index("reject")} <= codes  # the threshold splits the demo images
    assert set(out["model_version"]) == {"1"} and set(out["VERSION"].ravel()) == {1}


def _run_client(code: str, url: str, images: str, out: Path):
    """Runs a tritonclient script (argv: url, images .npz, output .npz) in the serving venv; its output."""
    r = subprocess.run([str(ENV.python), "-c", code, url, images, str(out)], env=environment(ENV),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.load(out)


def test_region_outputs_equal_the_runtime(server, demo):
    code = r"""
import json, sys, numpy as np
from edge_sdk.serving.triton_client import make_client, infer
frames = np.load(sys.argv[2])
t, c = make_client("grpc", sys.argv[1])
outs = {}
for k in sorted(frames.files, key=int):
    o, v = infer(t, c, "regions", frames[k][None], ("SCORE", "VERDICT", "REGION_SCORES", "REGION_NORMALIZED",
                                                    "REGION_VERDICTS", "HEATMAP"))
    outs.update({f"{k}_{n}": a for n, a in o.items()})
np.savez(sys.argv[3], **outs)
"""
    tmp = demo["tmp"]
    frames = _save_images(demo["frames"], tmp / "frames.npz")
    out = _run_client(code, server.grpc_url, frames, tmp / "regions_out.npz")
    rt = edge_sdk.Runtime(demo["regions"], threads=1)
    for k, f in enumerate(demo["frames"]):
        want = rt.predict(f[None])
        np.testing.assert_array_equal(out[f"{k}_SCORE"][:, 0], want.scores)
        np.testing.assert_array_equal(out[f"{k}_VERDICT"][:, 0], want.verdict_codes)
        np.testing.assert_array_equal(out[f"{k}_REGION_SCORES"], want.regions.scores)
        np.testing.assert_array_equal(out[f"{k}_REGION_NORMALIZED"], want.regions.normalized)
        assert [VERDICTS[c] for c in out[f"{k}_REGION_VERDICTS"][0]] == list(want.regions.verdicts[0])
        np.testing.assert_array_equal(out[f"{k}_HEATMAP"], want.heatmaps)


def test_classifier_outputs_equal_the_runtime(server, demo):
    """A classifier bundle: class probabilities and the top class per image, beside the verdicts."""
    code = r"""
import sys, numpy as np
from edge_sdk.serving.triton_client import make_client, infer
tiles = np.load(sys.argv[2])
t, c = make_client("http", sys.argv[1])
batch = np.stack([tiles[k] for k in sorted(tiles.files, key=int)])
parts = [infer(t, c, "classifier", batch[i:i + 5], ("SCORE", "VERDICT", "CLASS_PROBABILITIES", "TOP_CLASS"))[0]
         for i in range(0, len(batch), 5)]
np.savez(sys.argv[3], **{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
"""
    tmp = demo["tmp"]
    tiles = _save_images(demo["tiles"], tmp / "tiles.npz")
    out = _run_client(code, server.http_url, tiles, tmp / "classes_out.npz")
    want = edge_sdk.Runtime(demo["classifier"], threads=1).predict(demo["tiles"])
    np.testing.assert_array_equal(out["CLASS_PROBABILITIES"], want.class_probabilities)
    np.testing.assert_array_equal(out["TOP_CLASS"][:, 0], want.top_class)
    np.testing.assert_array_equal(out["VERDICT"][:, 0], want.verdict_codes)
    np.testing.assert_array_equal(out["SCORE"][:, 0], want.scores)
    assert len(set(want.top_class.tolist())) > 1 and len(set(want.verdict_codes.tolist())) > 1
    config = (tmp / "repo" / "classifier" / "config.pbtxt").read_text()
    assert 'key: "classes" value: { string_value: "good,crack,spot" }' in config


def _metric(text: str, name: str, model: str, version: str = "1") -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{model}"' in line and f'version="{version}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} of {model} version {version} not in the metrics")


def test_concurrent_clients_get_the_serial_results(server, demo):
    tmp = demo["tmp"]
    before = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    images = _save_images(demo["images"], tmp / "images.npz")
    summary, out = _drive(dict(url=server.http_url, protocol="http", model="knn", images=images, clients=8,
                               requests=200), tmp, "concurrent")
    assert summary == {**summary, "requests": 1600, "errors": 0}, summary
    _assert_equal_to(_reference(demo["v1"], demo["images"]), out)
    print(f"8 x 200 requests over HTTP: {summary['wall']:.2f} s, {1600 / summary['wall']:.0f} requests/s, "
          f"p50 {1e3 * np.median(out['latency']):.2f} ms, p99 {1e3 * np.quantile(out['latency'], 0.99):.2f} ms")
    # Triton's metrics count the requests and their time; fewer executions than requests: batched
    after = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    count = _metric(after, "nv_inference_count", "knn") - _metric(before, "nv_inference_count", "knn")
    execs = _metric(after, "nv_inference_exec_count", "knn") - _metric(before, "nv_inference_exec_count", "knn")
    assert count == 1600 and execs < count
    for name in ("nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                 "nv_inference_compute_infer_duration_us"):
        assert _metric(after, name, "knn") > _metric(before, name, "knn")
    assert _metric(after, "nv_inference_request_success", "knn") >= 1600
    print(f"metrics: {count:.0f} inferences in {execs:.0f} executions (mean batch {count / execs:.2f})")


def test_bad_requests_get_errors_or_review_and_the_server_keeps_serving(server, demo):
    tmp = demo["tmp"]
    good = demo["images"][0]
    nan = good[None].astype(np.float32)
    nan[0, :4] = np.nan
    bad = [nan,                                          # NaN pixels (float32: not the uint8 input)
           good[None].astype(np.int16),                   # wrong dtype
           good[None, :, :, 0],                           # wrong rank (no channel axis)
           np.zeros((1, 64, 64, 4), np.uint8),            # 4 channels
           np.zeros((0, 64, 64, 3), np.uint8),            # empty batch
           np.zeros((9, 64, 64, 3), np.uint8),            # more than max_batch_size
           good[None]]                                    # and a good one after them
    images = _save_images(bad, tmp / "bad.npz")
    for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
        _, out = _drive(dict(url=url, protocol=protocol, model="knn", images=images, mode="raw"), tmp, f"bad_{protocol}")
        order = np.argsort(out["index"])
        errors = list(out["error"][order])
        for k, e in enumerate(errors[:-1]):
            assert e != "" or out["VERDICT"][order][k] == REVIEW, (k, e)
        assert all(errors[:-1]), errors
        print(protocol, "\n  ".join(["errors:", *errors[:-1]]))
        assert errors[-1] == ""
        np.testing.assert_array_equal(out["SCORE"][order][-1], _reference(demo["v1"], [good])[0].scores)
    # a frame of the wrong size for the fixed-size region model
    _, out = _drive(dict(url=server.http_url, protocol="http", model="regions",
                         images=_save_images([np.zeros((1, 32, 32, 1), np.uint8)], tmp / "badframe.npz"), mode="raw"),
                    tmp, "bad_frame")
    assert out["error"][0] != ""
    assert urllib.request.urlopen(f"http://{server.http_url}/v2/health/ready", timeout=5).status == 200


def _repo_index(server) -> list[dict]:
    req = urllib.request.Request(f"http://{server.http_url}/v2/repository/index", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _load(server, name):
    req = urllib.request.Request(f"http://{server.http_url}/v2/repository/models/{name}/load", data=b"{}",
                                 method="POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.status


def test_version_swap_under_load_fails_no_request(server, demo, repo):
    tmp = demo["tmp"]
    images = _save_images(demo["images"], tmp / "images.npz")
    progress = tmp / "swap.progress"
    swapped = tmp / "swap.done"
    # 8 clients x at least 200 requests each, going on until the new version serves (then 20 more each)
    proc = _drive(dict(url=server.grpc_url, protocol="grpc", model="swap", images=images, clients=8, requests=200,
                       progress=str(progress), until=str(swapped)), tmp, "swap", wait=False)
    deadline = time.monotonic() + 60
    while not (progress.exists() and progress.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    name, version = tr.add_version(demo["v2"], repo, "swap")
    assert (name, version) == ("swap", 2)
    assert _load(server, "swap") == 200
    swapped.write_text("")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    out = dict(np.load(tmp / "swap.npz"))
    assert summary["errors"] == 0 and summary["requests"] >= 1600, set(out["error"])
    versions = out["model_version"]
    assert set(versions) == {"1", "2"}, np.unique(versions, return_counts=True)
    np.testing.assert_array_equal(out["VERSION"][:, 0].astype(str), versions)  # each response names its judge
    _assert_equal_to(_reference(demo["v1"], demo["images"]), out, np.flatnonzero(versions == "1"))
    _assert_equal_to(_reference(demo["v2"], demo["images"]), out, np.flatnonzero(versions == "2"))
    print(f"swap under load: {len(versions)} requests, {summary['errors']} failed, {np.sum(versions == '1')} judged by "
          f"version 1, {np.sum(versions == '2')} by version 2")
    states = {m["version"]: m.get("state") for m in _repo_index(server) if m["name"] == "swap"}
    assert states.get("2") == "READY" and states.get("1") != "READY", states

    # a tampered new version does not load, and the served one keeps serving
    name, version = tr.add_version(demo["v1"], repo, "swap")
    assert version == 3
    arrays = repo / "swap" / "3" / "bundle" / "arrays.safetensors"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0x01
    arrays.write_bytes(bytes(data))
    with pytest.raises(urllib.error.HTTPError) as err:
        _load(server, "swap")
    message = err.value.read().decode()
    assert "sha256" in message, message
    summary, out = _drive(dict(url=server.http_url, protocol="http", model="swap", images=images,
                               requests=4), tmp, "after_tamper")
    assert summary["errors"] == 0 and set(out["model_version"]) == {"2"}


@pytest.mark.skipif(not MTD.is_dir(), reason=f"Magnetic Tile Defect data set not found at {MTD}")
def test_mtd_images_equal_the_runtime(server, demo):
    from PIL import Image

    files = []
    for cls in ("MT_Free", "MT_Crack", "MT_Blowhole"):
        files += sorted((MTD / cls / "Imgs").glob("*.jpg"))[:2]
    images = [np.ascontiguousarray(np.asarray(Image.open(f).convert("RGB"))) for f in files]
    tmp = demo["tmp"]
    summary, out = _drive(dict(url=server.grpc_url, protocol="grpc", model="knn",
                               images=_save_images(images, tmp / "mtd.npz"), requests=len(images)), tmp, "mtd")
    assert summary["errors"] == 0
    _assert_equal_to(_reference(demo["v1"], images), out)


def test_serve_and_roll_out_from_the_command_line(demo, tmp_path):
    import sys

    from edge_sdk.serving.triton_server import free_port

    repo = tmp_path / "lines"
    cli = [sys.executable, "-m", "edge_sdk.cli", "triton"]
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root)

    def edge(*args):
        r = subprocess.run([*cli, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert "serve it: edge-sdk triton serve" in edge(demo["v1"], "--repo", repo, "--name", "line3", "--threads", 1,
                                                     "--instances", 2)
    assert "{ count: 2 kind: KIND_CPU }" in (repo / "line3" / "config.pbtxt").read_text()
    http, grpc, metrics = free_port(), free_port(), free_port()
    proc = subprocess.Popen([*cli, "serve", "--repo", str(repo), "--http-port", str(http), "--grpc-port", str(grpc),
                             "--metrics-port", str(metrics)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/line3/ready", timeout=2).status == 200:
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "edge-sdk triton serve did not come up"
                time.sleep(0.25)
        assert "line3/2" in edge(demo["v2"], "--repo", repo, "--name", "line3", "--add-version")
        with pytest.raises(AssertionError, match="no model line9 in"):
            edge("load", "line9", "--repo", repo, "--http-port", http)
        assert "version 2 READY" in edge("load", "line3", "--http-port", http)
        summary, out = _drive(dict(url=f"127.0.0.1:{grpc}", protocol="grpc", model="line3",
                                   images=_save_images(demo["images"][:3], tmp_path / "i.npz"), requests=3),
                              tmp_path, "cli")
        assert summary["errors"] == 0 and set(out["model_version"]) == {"2"}
        _assert_equal_to(_reference(demo["v2"], demo["images"][:3]), out)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_preferred_batch_sizes_come_from_the_bundle(demo, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(demo["v1"], b)
    assert tr.bundle_preferred_batch(b, "fp32", 8) == [4, 8]  # no engines: powers of two up to the max
    assert tr.bundle_preferred_batch(b, "fp32", 6) == [4, 6]
    (b / "engines").mkdir()
    profile = {"input": {"min": [1, 3, 32, 40], "opt": [2, 3, 32, 40], "max": [6, 3, 32, 40]}}
    (b / "engines" / "features.fp32.json").write_text(json.dumps({"precision": "fp32", "profiles": [profile]}))
    (b / "engines" / "features.fp16.json").write_text(json.dumps({"precision": "fp16", "profiles": [
        {"input": {"min": [1], "opt": [3], "max": [5]}}]}))
    assert tr.bundle_preferred_batch(b, "fp32", 8) == [2, 6]  # the engine profile's opt and max batch
    assert tr.bundle_preferred_batch(b, "fp16", 8) == [3, 5]
    assert tr.bundle_preferred_batch(b, "fp32", 4) == [2]  # within max_batch
