"""The CLI's documented flags and exit codes, run as a user runs them: `python -m edge_sdk.cli ...`
in a subprocess (devices, build-engine without TensorRT, export's --precision / --review-band /
--on-size-mismatch / --overwrite, verify's exit status 1), and the fail-safe verdict of a
non-finite score through the Python runtime."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk  # noqa: E402
from edge_sdk import models  # noqa: E402

pytestmark = pytest.mark.onnxruntime

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def run(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=cwd or REPO,
                       capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from edge_sdk.data.synthetic import make_dataset

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("cli")
    root = make_dataset(tmp / "data", kind="tile", n_train=12, n_test=10, size=SIZE, seed=3)
    from edge_sdk.data import load_dataset

    train = load_dataset(root, "mvtec", "train")
    model_dir, other_dir = tmp / "model", tmp / "other"
    models.PaDiM(d=32, input_size=SIZE, batch_size=8, seed=0).fit(train, progress=False).save(model_dir)
    # The same method with another random feature subset: a different model, other scores.
    models.PaDiM(d=32, input_size=SIZE, batch_size=8, seed=1).fit(train, progress=False).save(other_dir)
    return tmp, root, model_dir, other_dir


def test_devices_lists_the_cpu():
    p = run("devices")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert isinstance(info["built_with_cuda"], bool)
    cpu = [d for d in info["devices"] if d["kind"] == "cpu"]
    assert len(cpu) == 1 and cpu[0]["threads"] >= 1


def test_build_engine_without_tensorrt_is_a_clear_refusal(tmp_path):
    from edge_sdk.converters.trt_builder import TensorRTUnavailable, require_tensorrt

    try:
        require_tensorrt()
        pytest.skip("TensorRT works here: the success path runs in benchmarks/gpu_check")
    except TensorRTUnavailable:
        pass
    onnx_file = REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle" / "features.onnx"
    assert onnx_file.is_file()
    p = run("build-engine", onnx_file, "--out", tmp_path / "engines")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "tensorrt" in p.stderr.lower()
    assert not (tmp_path / "engines").exists() or not any((tmp_path / "engines").iterdir())


def test_export_flags_reach_the_manifest_and_overwrite_is_explicit(setup):
    tmp, root, model_dir, _ = setup
    bundle = tmp / "flags.bundle"
    p = run("export", model_dir, "--out", bundle, "--data", root, "--layout", "mvtec", "--real", "2",
            "--precision", "fp32,fp16", "--review-band", "0.1", "--on-size-mismatch", "reject", "--run-vote", "3/5")
    assert p.returncode == 0, p.stderr
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["decision"]["run"] == {"k": 3, "n": 5}
    bad = run("export", model_dir, "--out", tmp / "never", "--run-vote", "6/5")
    assert bad.returncode == 2 and "--run-vote: expected 1 <= K <= N <= 1024, got '6/5'" in bad.stderr
    assert m["input"]["on_size_mismatch"] == "reject"
    assert m["decision"]["review_band"] == pytest.approx(0.1)
    assert {n["precision"] for n in m["networks"]} == {"fp32", "fp16"}, m["networks"]
    # --on-size-mismatch reject: the runtime refuses another size (naming the image) instead of resizing it.
    with pytest.raises(ValueError, match=r"image 0: size 68x64 differs .*on_size_mismatch is .reject."):
        edge_sdk.Runtime(bundle, threads=1).predict(np.zeros((SIZE + 4, SIZE, 3), np.uint8))
    before = (bundle / "manifest.json").read_bytes()
    # An existing bundle is not replaced without --overwrite, and stays as it was.
    p = run("export", model_dir, "--out", bundle)
    assert p.returncode == 2 and "--overwrite" in p.stderr, p.stderr
    assert (bundle / "manifest.json").read_bytes() == before
    p = run("export", model_dir, "--out", bundle, "--overwrite", "--on-size-mismatch", "resize")
    assert p.returncode == 0, p.stderr
    assert json.loads((bundle / "manifest.json").read_text())["input"]["on_size_mismatch"] == "resize"


def test_verify_exit_status_is_one_when_the_figures_disagree(setup):
    tmp, root, model_dir, other_dir = setup
    bundle = tmp / "verify.bundle"
    assert run("export", model_dir, "--out", bundle).returncode == 0
    ok = run("verify", bundle, "--against", model_dir, "--data", root, "--layout", "mvtec", "--threads", "1",
             "--json", tmp / "ok.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads((tmp / "ok.json").read_text())["passed"] is True
    bad = run("verify", bundle, "--against", other_dir, "--data", root, "--layout", "mvtec", "--threads", "1",
              "--json", tmp / "bad.json")
    fig = json.loads((tmp / "bad.json").read_text())
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert fig["passed"] is False and fig["max_score_rel_diff"] > 1e-4


def test_a_non_finite_score_is_review_never_accept(setup):
    tmp, _, model_dir, _ = setup
    bundle = tmp / "nan.bundle"
    assert run("export", model_dir, "--out", bundle).returncode == 0
    rt = edge_sdk.Runtime(bundle, threads=1)
    x = np.full((3, SIZE, SIZE, 3), 128, np.float32)
    x[1, 5, 5, 0] = np.nan
    res = rt.predict(x)
    assert np.isnan(res.scores[1]) and res.verdicts[1] == "review"
    assert res.errors[1] and "finite" in res.errors[1]
    assert np.isfinite(res.scores[[0, 2]]).all() and res.errors[0] is None


def test_version_and_help_texts():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.startswith("edge-sdk ") and edge_sdk.__version__ in p.stdout
    p = run("eval", "--help")
    assert "PRO (to 30 % FPR)" in " ".join(p.stdout.split())


def test_every_option_of_every_command_has_help():
    import argparse

    from edge_sdk.cli import build_parser

    parsers = [build_parser()]
    missing = []
    while parsers:
        p = parsers.pop()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                parsers += list(a.choices.values())
                missing += [f"{p.prog} {c.dest}" for c in a._choices_actions if not c.help]
            if a.dest != "help" and not a.help:
                missing.append(f"{p.prog} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, missing


def test_a_closed_pipe_ends_quietly():
    bundle = REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle"
    p = subprocess.Popen([sys.executable, "-m", "edge_sdk.cli", "inspect", str(bundle), "--json"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(1)
    p.stdout.close()  # as `| head -c 1` does
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) in (0, 141) and "Traceback" not in err and "BrokenPipe" not in err


def test_predict_names_what_it_cannot_use(setup, tmp_path):
    from PIL import Image

    _, _, model_dir, _ = setup
    folder = tmp_path / "parts"
    (folder / "masks").mkdir(parents=True)
    Image.fromarray(np.full((SIZE, SIZE, 3), 90, np.uint8)).save(folder / "p0.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(folder / "masks" / "p0_mask.png")
    p = run("predict", model_dir, folder, "--out", tmp_path / "v.csv")
    assert p.returncode == 2 and "model directory" in p.stderr and "edge-sdk export" in p.stderr
    bundle = REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle"
    p = run("predict", bundle, folder, "--out", tmp_path / "v.csv")
    assert p.returncode == 0, p.stderr
    assert "mask folders" in p.stderr
    rows = (tmp_path / "v.csv").read_text().splitlines()
    assert len(rows) == 2 and "p0.png" in rows[1]  # the mask was not judged as a part
    if not edge_sdk.built_with_cuda() or not any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        p = run("predict", bundle, folder, "--out", tmp_path / "w.csv", "--device", "cuda:0")
        assert p.returncode == 2 and "cuda" in p.stderr.lower()


def test_one_name_and_one_meaning_per_option(setup, tmp_path):
    from edge_sdk.data.synthetic import make_dataset

    root = make_dataset(tmp_path / "d", kind="tile", n_train=6, n_test=4, size=SIZE, seed=5)
    out = tmp_path / "m"
    args = ["train", "--model", "padim", "--data", root, "--layout", "mvtec", "--out", out, "--input-size", SIZE,
            "--threads", "1"]
    assert run(*args, "--batch", "4").returncode == 0
    # an existing model is not replaced without --overwrite; the older --batch-size still works
    p = run(*args, "--batch-size", "4")
    assert p.returncode == 2 and "--overwrite" in p.stderr
    assert run(*args, "--batch-size", "4", "--overwrite").returncode == 0
    for bad in (["--batch", "0"], ["--batch", "-3"], ["--threads", "-1"], ["--threads", "0"]):
        p = run(*args, *bad)
        assert p.returncode == 2 and bad[0] in p.stderr, (bad, p.stderr)
    # eval runs without --json (the metrics are printed), and writes them with it
    p = run("eval", out, "--data", root, "--layout", "mvtec", "--no-progress")
    assert p.returncode == 0 and '"image_auroc"' in p.stdout, p.stderr
    # inspect --json: printed without a path, written with one
    bundle = REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle"
    assert json.loads(run("inspect", bundle, "--json").stdout)["format"] == "edge-sdk-bundle"
    assert run("inspect", bundle, "--json", tmp_path / "m.json").returncode == 0
    assert json.loads((tmp_path / "m.json").read_text())["format"] == "edge-sdk-bundle"


def test_a_missing_extra_is_named(tmp_path):
    # A real interpreter in which tqdm cannot be imported (a meta-path finder refusing it), running
    # the real command: the error names the extra that installs it, with no traceback.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoTqdm:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tqdm' or name.startswith('tqdm.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'tqdm'\", name='tqdm')\n"
        "sys.meta_path.insert(0, _NoTqdm())\n")
    import os

    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "synth", "tile", "--out", str(tmp_path / "d"),
                        "--size", "64", "--n-train", "2", "--n-test", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "pip install 'edge-sdk[train]'" in p.stderr and "Traceback" not in p.stderr
