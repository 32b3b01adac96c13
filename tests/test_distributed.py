"""Training across processes (edge_sdk/models/distributed.py) with real torchrun launches: 2 CPU
processes, gloo on 127.0.0.1 and a free port, tiny data.

- PaDiM and MhBC: the statistics (mean, Cholesky factor, k-means centroids) of 2 processes equal
  one process's to 1e-6 relative.
- PatchCore: trains across 2 processes (through `train --nproc 2`, the launcher); bank of the
  size one process keeps. (Accuracy against one process: benchmarks/distributed_mtd.py.)
- ResGANAD, GRD-Net: 2 ranks x batch 16 give the weights of 1 rank x batch 32 (1e-5 relative);
  a GRD-Net run killed after a checkpoint and resumed equals the uninterrupted run.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("torch built without torch.distributed", allow_module_level=True)

from edge_sdk.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_tree(root: int) -> list[int]:
    """root and every process descended from it (torchrun starts its workers in sessions of their
    own, so killing the launcher's process group leaves them running)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, todo = [], [root]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return tree


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(OMP_NUM_THREADS="1", EDGE_SDK_DIST_BACKEND="gloo", EDGE_SDK_NUM_THREADS="1")
    return env


def _torchrun_cmd(args: list[str], nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--nnodes=1",
            "--master-addr=127.0.0.1", f"--master-port={_free_port()}", "-m", "edge_sdk.cli", "--", "train", *args]


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    res = subprocess.run(_torchrun_cmd(args, nproc), env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, f"torchrun failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def arrays(model_dir: Path, stem: str = "arrays") -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / f"{stem}.safetensors"))


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    from edge_sdk.data.synthetic import make_dataset

    out = tmp_path_factory.mktemp("dist_tiles")
    make_dataset(out, kind="tile", n_train=13, n_test=6, size=64, seed=3)  # 13: shards of 7 and 6 images
    return out


@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist_strips")
    assert main(["synth", "vial-strip", "--out", str(out), "--count", "3", "--products", "2", "--acquisitions", "1",
                 "--region-size", "32", "--seed", "2"]) == 0
    return out / "vial_strip"


def _data(root: Path) -> list[str]:
    sub = [p for p in root.iterdir() if p.is_dir()]
    data = root if (root / "train").is_dir() else sub[0]
    return ["--data", str(data), "--layout", "mvtec", "--no-progress"]


EMBED = ["--input-size", "64", "--batch", "4", "--seed", "5"]


@pytest.mark.parametrize("model,extra,keys", [
    ("padim", ["--d", "24"], ("mean", "covariance")),
    ("mhbc", ["--k", "3", "--projection-dim", "24"], ("mean", "covariance", "centroids")),
])
def test_statistics_equal_one_process(tiles, tmp_path, model, extra, keys):
    one, two = tmp_path / "one", tmp_path / "two"
    # --batch 1: each image's features are then computed alike in both runs (oneDNN's convolutions
    # round float32 features differently for different batch compositions, ~1e-7, which the
    # ill-conditioned 13-image covariance amplifies: 5e-7 covariance, 5e-6 centroids at --batch 4);
    # what is left is the merge.
    args = ["--model", model, *_data(tiles), *EMBED, *extra, "--batch", "1"]
    assert main(["train", *args, "--out", str(one), "--threads", "1"]) == 0
    t0 = time.perf_counter()
    torchrun([*args, "--out", str(two)])
    seconds = time.perf_counter() - t0
    a, b = arrays(two), arrays(one)
    for d in (a, b):  # the statistic itself: covariance + eps I = chol chol^T (float64)
        c = d["chol"].astype(np.float64)
        d["covariance"] = c @ c.transpose(0, 2, 1)
    diffs = {k: rel(a[k], b[k]) for k in keys}
    print(f"{model}: Cholesky factors (float32, rank-deficient covariance) {rel(a['chol'], b['chol']):.2e}")
    print(f"{model}: 2 processes vs 1, relative differences {diffs}; torchrun {seconds:.1f} s")
    assert diffs["mean"] <= 1e-6 and diffs["covariance"] <= 1e-6, diffs
    if "centroids" in diffs:
        # k-means runs on whitened features: a last-bit (float32) difference of the merged mean
        # moves them by ~1e-6 of the largest centroid (measured 1.4e-6); as a whole they agree
        # to 1e-6 relative (Frobenius norm)
        c1, c2 = a["centroids"].astype(np.float64), b["centroids"].astype(np.float64)
        norm = float(np.linalg.norm(c1 - c2) / np.linalg.norm(c2))
        print(f"{model}: centroids, relative Frobenius difference {norm:.2e}")
        assert norm <= 1e-6 and diffs["centroids"] <= 1e-5, (norm, diffs)
    cfg = json.loads((two / "config.json").read_text())
    assert cfg["training"]["train_images"] == 13 and cfg["calibration"] is not None


def test_patchcore_two_processes_through_launcher(tiles, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--model", "patchcore", *_data(tiles), *EMBED, "--coreset-ratio", "0.25"]
    assert main(["train", *args, "--out", str(one), "--threads", "1"]) == 0
    env = _env()
    old = dict(os.environ)
    os.environ.update(env)
    try:
        assert main(["train", *args, "--out", str(two), "--nproc", "2"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(old)
    a, b = json.loads((two / "config.json").read_text()), json.loads((one / "config.json").read_text())
    assert a["training"]["processes"] == 2
    assert a["training"]["patches_seen"] == b["training"]["patches_seen"]
    # each rank keeps a quarter of its own chunk: the union is about one process's bank
    assert abs(a["training"]["bank_size"] - b["training"]["bank_size"]) <= 2
    assert "nproc" not in a["training"]["recipe"]


RECON = ["--input-size", "32", "--filters", "2", "--seed", "4"]


def _weights(model_dir: Path, stems) -> dict[str, np.ndarray]:
    return {f"{s}/{k}": v for s in stems for k, v in arrays(model_dir, s).items()}


# Biases of convolutions whose output (a residual sum, the stem) feeds a BatchNorm: their exact
# gradient is 0, so Adam turns their rounding-level gradients into steps of +-lr whose sign is the
# rounding's (1-4 % of these tensors after one step). They do not change any output (the BatchNorm
# removes them) and are left out of the comparison.
CANCELLED = ("shortcut.bias", "body.6.bias", "stem.bias")


def _conv_before_batchnorm() -> set[str]:
    """Biases of convolutions followed directly by a BatchNorm (GRD-Net's U-Net), cancelled alike."""
    from torch import nn

    from edge_sdk.models.grdnet import GRDNet

    out = set()
    for stem, net in (("unet", GRDNet("small", size=32, filters=2).unet),):
        for name, m in net.named_modules():
            kids = list(m.children()) if isinstance(m, nn.Sequential) else []
            for i in range(len(kids) - 1):
                if isinstance(kids[i], nn.Conv2d) and isinstance(kids[i + 1], nn.BatchNorm2d):
                    out.add(f"{stem}/{name}.{i}.bias".replace("/.", "/"))
    return out


def _recon_compare(a: Path, b: Path, stems) -> dict:
    wa, wb = _weights(a, stems), _weights(b, stems)
    assert wa.keys() == wb.keys()
    params = [k for k in wa if not k.endswith("num_batches_tracked") and not k.endswith(CANCELLED)
              and k not in _conv_before_batchnorm()]
    flat_a = np.concatenate([wa[k].ravel().astype(np.float64) for k in params])
    flat_b = np.concatenate([wb[k].ravel().astype(np.float64) for k in params])
    return {"norm": float(np.linalg.norm(flat_a - flat_b) / np.linalg.norm(flat_b)),
            "max_tensor": max(rel(wa[k], wb[k]) for k in params),
            "batches_tracked_equal": all(np.array_equal(wa[k], wb[k]) for k in wa if k.endswith("num_batches_tracked"))}


_RUNS: dict = {}


def _two_rank_run(strips, tmp_path_factory, model: str, epochs: int) -> Path:
    """The uninterrupted 2 ranks x batch 16 run (shared by the equivalence and resume tests)."""
    key = (model, epochs)
    if key not in _RUNS:
        out = tmp_path_factory.mktemp(f"{model}_2x16") / "m"
        torchrun(["--model", model, *_data(strips), *RECON, "--epochs", str(epochs), "--recon-batch", "16",
                  "--out", str(out)])
        _RUNS[key] = out
    return _RUNS[key]


# The float32 bound is loose: weights whose exact gradient is near 0 take Adam's first step of
# +-lr with the sign of the rounding, and which weights those are depends on the CPU's float32
# kernels (one step, relative norm of the difference: GRD-Net 4.7e-4 on a Xeon, 5.7e-4 on an AMD
# EPYC; ResGANAD below 1e-5 on the Xeon, 1.9e-4 on the EPYC). In float64
# (test_ddp_equivalence_over_steps_in_float64) the two splits agree to ~1e-10 over several steps,
# so the difference is rounding, not the algorithm.
@pytest.mark.parametrize("model,stems,tolerance", [
    ("resganad", ("generator", "discriminator"), 2e-3),
    ("grdnet", ("generator", "discriminator", "unet"), 2e-3),
])
def test_ddp_two_by_16_equals_one_by_32(strips, tmp_path, model, stems, tolerance):
    # One step (32 of the 60 patches for training): a GAN trained with Adam is chaotic, so over
    # several steps rounding differences of the gradient grow (RESULTS.md gives the figures).
    one, two, epochs = tmp_path / "one", tmp_path / "two", 1
    args = ["--model", model, *_data(strips), *RECON, "--epochs", "1", "--val-fraction", "0.4667"]
    assert main(["train", *args, "--recon-batch", "32", "--out", str(one), "--threads", "1"]) == 0
    torchrun([*args, "--recon-batch", "16", "--out", str(two)])
    cfg_one, cfg_two = (json.loads((d / "config.json").read_text()) for d in (one, two))
    n = cfg_one["training"]["train_images"]
    steps = epochs * -(-n // 32)
    diff = _recon_compare(two, one, stems)
    print(f"{model}: 2 ranks x 16 vs 1 x 32 after {steps} steps ({n} patches): {diff}")
    assert steps == 1 and diff["norm"] <= tolerance and diff["batches_tracked_equal"], diff
    assert cfg_two["training"]["global_batch"] == 32 and cfg_two["training"]["processes"] == 2
    hist_one, hist_two = cfg_one["training"]["final_losses"], cfg_two["training"]["final_losses"]
    assert abs(hist_one["g"] - hist_two["g"]) <= 1e-4 * max(1.0, abs(hist_one["g"]))


@pytest.mark.parametrize("model,stems", [
    ("resganad", ("generator", "discriminator")),
    ("grdnet", ("generator", "discriminator", "unet")),
])
def test_ddp_equivalence_over_steps_in_float64(strips, tmp_path, monkeypatch, model, stems):
    # In float32 Adam turns rounding-level gradients (elements whose exact gradient is ~0) into
    # +-lr steps and the GAN amplifies them further at every step, so only one step can be compared
    # there. Trained in float64 (the trainer's test hook) both batch splits round ~1e-16 and stay
    # equal over several steps: what is compared then is the algorithm.
    monkeypatch.setenv("EDGE_SDK_TRAIN_DTYPE", "float64")
    one, two, epochs = tmp_path / "one", tmp_path / "two", 4
    args = ["--model", model, *_data(strips), *RECON, "--epochs", str(epochs), "--val-fraction", "0.4667"]
    assert main(["train", *args, "--recon-batch", "32", "--out", str(one), "--threads", "1"]) == 0
    torchrun([*args, "--recon-batch", "16", "--out", str(two)])
    n = json.loads((one / "config.json").read_text())["training"]["train_images"]
    steps = epochs * -(-n // 32)
    diff = _recon_compare(two, one, stems)
    print(f"{model} float64: 2 ranks x 16 vs 1 x 32 after {steps} steps ({n} patches): {diff}")
    assert steps >= 4 and diff["norm"] <= 1e-5 and diff["batches_tracked_equal"], diff


def test_kill_and_resume_equals_uninterrupted(strips, tmp_path, tmp_path_factory):
    model, epochs, stems = "grdnet", 3, ("generator", "discriminator", "unet")
    reference = _two_rank_run(strips, tmp_path_factory, model, epochs)
    out = tmp_path / "m"
    ckpt = Path(f"{out}.checkpoint.safetensors")
    args = ["--model", model, *_data(strips), *RECON, "--epochs", str(epochs), "--recon-batch", "16",
            "--out", str(out)]
    proc = subprocess.Popen(_torchrun_cmd(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for pid in _process_tree(proc.pid):  # the launcher and both ranks at once: a crash at any instant
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    assert ckpt.exists(), "no checkpoint was written"
    assert not (out / "config.json").exists(), "the run finished before it could be killed"
    from safetensors import safe_open

    with safe_open(str(ckpt), "np") as f:
        done = json.loads(f.metadata()["checkpoint"])["epochs_done"]
    assert 1 <= done < epochs
    torchrun([*args, "--resume"])
    diff = _recon_compare(out, reference, stems)
    print(f"{model}: killed after epoch {done} of {epochs} and resumed vs uninterrupted: {diff}")
    assert diff["max_tensor"] <= 1e-6 and diff["batches_tracked_equal"], diff
    h_res = json.loads((out / "config.json").read_text())["training"]["final_losses"]
    h_ref = json.loads((reference / "config.json").read_text())["training"]["final_losses"]
    assert h_res == h_ref


def test_resume_refuses_another_runs_checkpoint(strips, tmp_path, capsys):
    out = tmp_path / "m"
    base = ["train", "--model", "resganad", *_data(strips), *RECON, "--epochs", "1", "--threads", "1"]
    assert main([*base, "--out", str(out)]) == 0
    assert not Path(f"{out}.checkpoint.safetensors").exists()  # the default one goes once the model is saved
    ckpt = tmp_path / "run.safetensors"
    assert main([*base, "--out", str(out), "--overwrite", "--checkpoint", str(ckpt)]) == 0
    assert ckpt.is_file()  # one the user named is kept
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--overwrite", "--checkpoint", str(ckpt), "--resume", "--seed", "9"]) == 2
    assert "checkpoint is of another run" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--nproc", "0"], "--nproc"),
    (["--nproc", "100000"], "--nproc"),
    (["--nproc", "2", "--model", "classifier"], "trains in one process"),
    (["--resume"], "--resume: applies to resganad and grdnet"),
])
def test_bad_input(tiles, tmp_path, capsys, extra, message):
    args = ["train", "--model", "padim", *_data(tiles), *EMBED, "--out", str(tmp_path / "m")]
    if "--model" in extra:
        i = args.index("--model")
        del args[i:i + 2]
    with pytest.raises(SystemExit) if extra[-1] in ("0", "100000") else _nothing():
        code = main([*args, *extra])
        assert code == 2
    assert message in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_one_process_outside_torchrun(monkeypatch):
    from edge_sdk.models import distributed

    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert not distributed.init_from_env() and not distributed.active()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.shard([3, 1, 2]) == [3, 1, 2] and distributed.rank_seed(7) == 7
    a = np.arange(6.0).reshape(3, 2)
    assert distributed.gather_rows(a)[0] is a
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.init_from_env()
