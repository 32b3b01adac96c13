"""Failures that once gave a wrong verdict: a Python Runtime shared by threads, and ONNX external
data that escaped the bundle's checksums. Each test compares against a result known to be right
(the serial result; the validator's refusal)."""

import hashlib
import json
import os
import re
import shutil
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import edge_sdk
from edge_sdk import bundle as eb
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import embedding_parts, tiny_parts


@pytest.fixture(scope="module")
def knn_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rel") / "bundle"
    export_bundle(tiny_parts(), out, model_type="patchcore", model_name="tiny")
    return out


@pytest.fixture(scope="module")
def runnable_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rel") / "bundle"
    return export_bundle(embedding_parts("knn"), out, model_type="patchcore").bundle


def _reseal(bundle, name, data):
    (bundle / name).write_bytes(data)
    m = json.loads((bundle / "manifest.json").read_text())
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(m))


def test_shared_python_runtime_gives_every_thread_its_own_results(runnable_bundle):
    """8 threads on one Runtime, two kinds of batches of different sizes: every result must equal
    the serial result of the same batch (scores bit for bit, verdicts, errors, heatmaps)."""
    rt = edge_sdk.Runtime(runnable_bundle, threads=1, max_batch=4)
    rng = np.random.default_rng(1)
    smooth = np.full((32, 40, 3), 128, np.uint8)
    noisy = [rng.integers(0, 256, (32, 40, 3), np.uint8) for _ in range(2)]
    batches = [np.stack(noisy), smooth[None]]  # sizes 2 and 1, different scores
    serial = [rt.predict(b) for b in batches]
    assert serial[0].scores[0] != serial[1].scores[0]

    mismatches, failures = [], []

    def worker(k):
        b = k % 2
        try:
            for _ in range(20):
                r = rt.predict(batches[b])
                same = (len(r) == len(serial[b]) and np.array_equal(r.scores, serial[b].scores)
                        and list(r.verdicts) == list(serial[b].verdicts) and r.errors == serial[b].errors
                        and np.array_equal(r.heatmaps, serial[b].heatmaps))
                if not same:
                    mismatches.append((k, list(r.scores), list(r.verdicts), r.errors))
        except Exception as e:  # noqa: BLE001 - reported below with the thread
            failures.append((k, repr(e)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert not mismatches, f"{len(mismatches)} of 160 calls differ from serial, first: {mismatches[0]}"


def _external_tensor(name, location):
    t = onnx.TensorProto()
    t.name = name
    t.data_type = onnx.TensorProto.FLOAT
    t.dims.append(4)
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


@pytest.mark.parametrize("where", ["initializer", "constant_node", "subgraph", "sparse_initializer"])
def test_onnx_external_data_is_refused(knn_bundle, tmp_path, where, monkeypatch):
    """Every tensor that keeps its bytes outside the .onnx file is refused at validation, wherever
    it sits in the model, even when the file it names exists in the working directory (ONNX Runtime would otherwise read bytes no checksum covers)."""
    b = tmp_path / "b"
    shutil.copytree(knn_bundle, b)
    model = onnx.load(str(b / "backbone.onnx"))
    g = model.graph
    if where == "initializer":
        # As onnx.save writes a model with its weights beside it; the weights then sit, unverified,
        # at the relative path ONNX Runtime would resolve from the working directory.
        ext = tmp_path / "ext"
        ext.mkdir()
        onnx.save_model(model, str(ext / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.bin", size_threshold=0)
        shutil.copy(ext / "weights.bin", tmp_path / "weights.bin")
        model = onnx.load(str(ext / "m.onnx"), load_external_data=False)
        target = model.graph.initializer[0].name
    elif where == "constant_node":
        node = onnx.helper.make_node("Constant", [], ["unused_const"])
        node.attribute.append(onnx.helper.make_attribute("value", _external_tensor("c", "weights.bin")))
        g.node.append(node)
        target = "c"
    elif where == "subgraph":
        inner = onnx.helper.make_graph([], "inner", [], [onnx.helper.make_tensor_value_info("s", onnx.TensorProto.FLOAT, [4])],
                                       initializer=[_external_tensor("s", "weights.bin")])
        node = onnx.helper.make_node("If", ["cond_unused"], ["if_out"], then_branch=inner, else_branch=inner)
        g.node.append(node)
        target = "s"
    else:
        sp = onnx.SparseTensorProto()
        sp.values.CopyFrom(_external_tensor("sv", "weights.bin"))
        sp.indices.CopyFrom(onnx.numpy_helper.from_array(np.arange(4, dtype=np.int64), "si"))
        sp.dims.append(8)
        g.sparse_initializer.append(sp)
        target = "sv"
    data = model.SerializeToString()
    _reseal(b, "backbone.onnx", data)
    monkeypatch.chdir(tmp_path)
    if not (tmp_path / "weights.bin").exists():
        (tmp_path / "weights.bin").write_bytes(b"\0" * 4096)
    with pytest.raises(eb.BundleError, match=rf"backbone\.onnx: tensor \"{re.escape(target)}\" .*external file"):
        eb.validate_bundle(b)
    with pytest.raises(eb.BundleError, match=r"external file"):
        edge_sdk.Runtime(b)
