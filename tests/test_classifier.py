"""Supervised defect classifier: the CAM of the exported graph against Grad-CAM computed with torch
autograd, the three-way rule and its calibration against brute force, the class metrics against
scikit-learn, labelled splits, the runtime against the model's predict (probabilities to 1e-4
relative, identical top classes and verdicts), bundle refusals, and the CLI from train to predict."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk
from edge_sdk.bundle import BundleError
from edge_sdk.class_decision import ACCEPT, REJECT, REVIEW, calibrate_thresholds, class_verdicts, top_defect
from edge_sdk.class_metrics import cam_localization, classification_metrics
from edge_sdk.data import DataError, load_dataset
from edge_sdk.data.synthetic import make_dataset

from tests.bundle_helpers import classifier_model, classifier_thresholds
from tests.gpu import requires_cuda

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(rng, n=6):
    imgs = [rng.integers(0, 256, (int(rng.integers(40, 70)), int(rng.integers(40, 70)), 3), dtype=np.uint8)
            for _ in range(n)]
    imgs.append(rng.integers(0, 256, (52, 61), dtype=np.uint8))  # gray: replicated to 3 channels
    return imgs


# ---- CAM ------------------------------------------------------------------------------------------

def _centred_reference(maps: np.ndarray, stride: int) -> np.ndarray:
    """float64 bilinear resampling of (N, h, w) cell maps at cell index i + (s - 1) / (2 s) along each
    axis, the last cell repeated beyond the grid (scipy's map_coordinates)."""
    from scipy import ndimage

    n, h, w = maps.shape
    a = (stride - 1) / (2.0 * stride)
    yy, xx = np.meshgrid(np.arange(h) + a, np.arange(w) + a, indexing="ij")
    return np.stack([ndimage.map_coordinates(m.astype(np.float64), [yy, xx], order=1, mode="nearest") for m in maps])


def _pooling_stack(stride):
    """The cells' geometry without learned weights: 3x3 stride-2 average pools padded as the backbone
    pads, down to ``stride``."""
    pool = torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    return torch.nn.Sequential(*[pool] * int(np.log2(stride)))


def _centre_of_mass(grid):
    """(row, column) of a (1, h, w) grid's mass after the runtime's half-pixel resize to 256 x 256."""
    from edge_sdk import kernels

    up = kernels.resize_blur(np.ascontiguousarray(grid.numpy(), dtype=np.float32), (256, 256), 0.0)[0]
    yy, xx = np.mgrid[:256, :256]
    return np.array([(up * yy).sum(), (up * xx).sum()]) / up.sum()


def test_cam_cells_centred_where_a_half_pixel_resize_puts_them(rng):
    """Feature cell i of a symmetric-padded stride-s network is centred on input pixel s i (each
    stride-2 convolution sits half a pixel early), so without centring the resized map lies
    (s - 1) / 2 pixels below and right of what it responds to. Checked on the geometry itself: a
    stack of 3x3 stride-2 average pools with the backbone's padding, fed one bright pixel at random
    places away from the border; the centre of mass of its grid after the runtime's half-pixel
    resize must sit on that pixel once centred (and (s - 1) / 2 off without)."""
    from edge_sdk.models.classifier_net import centre_on_cells

    for stride in (8, 16, 32):
        net = _pooling_stack(stride)
        raw, centred = [], []
        for y, x in rng.integers(2 * stride, 256 - 2 * stride, (30, 2)):
            img = torch.zeros(1, 1, 256, 256)
            img[0, 0, y, x] = 1.0
            grid = net(img)[:, 0]
            c = centre_on_cells(grid, stride)
            np.testing.assert_allclose(c.numpy(), _centred_reference(grid.numpy(), stride), atol=1e-6)
            raw.append(_centre_of_mass(grid) - (y, x))
            centred.append(_centre_of_mass(c) - (y, x))
        raw, centred = np.array(raw), np.array(centred)
        np.testing.assert_allclose(raw.mean(axis=0), (stride - 1) / 2, atol=0.1 * stride)
        assert np.abs(centred.mean(axis=0)).max() < 0.05 * stride, (stride, centred.mean(axis=0))
        assert np.abs(centred).max() < 0.2 * stride, (stride, np.abs(centred).max())


@pytest.mark.parametrize("cam_stride", [8, 16, 32])
def test_onnx_cam_equals_grad_cam(rng, cam_stride):
    from edge_sdk.converters.onnx_export import _session, export_onnx
    from edge_sdk.models.classifier_net import CAM_EPS, CamGraph, Lite0Classifier

    torch.manual_seed(int(rng.integers(1 << 31)))
    net = Lite0Classifier(4, cam_stride=cam_stride).eval()
    good = int(rng.integers(4))
    graph = CamGraph(net, good).eval()
    x = torch.from_numpy(rng.normal(size=(8, 3, 128, 128)).astype(np.float32))
    probs, _, cam_onnx = _session(export_onnx(graph, [x], ["input"], ["probabilities", "score", "cam"])).run(
        None, {"input": x.numpy()})
    assert cam_onnx.shape == (8, 128 // cam_stride, 128 // cam_stride)
    # Grad-CAM of the last feature map for the most probable defect class, with autograd
    feats = net.feature_map(x).detach().requires_grad_(True)
    logits = net.net._fc(feats.mean(dim=(2, 3)))
    defects = [k for k in range(4) if k != good]
    cls = torch.tensor(defects)[torch.softmax(logits, 1)[:, defects].argmax(1)]
    assert cls.tolist() == [defects[int(np.argmax(p[defects]))] for p in probs]
    (grad,) = torch.autograd.grad(logits[torch.arange(8), cls].sum(), feats)
    grad_cam = torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * feats).sum(1)).detach()
    # raw relation: Grad-CAM = ReLU(CAM) / (h w), CAM = sum_c W[k, c] F_c
    cam_raw = torch.einsum("nc,nchw->nhw", net.net._fc.weight[cls], feats).detach()
    h, w = feats.shape[-2:]
    np.testing.assert_allclose(grad_cam.numpy() * h * w, torch.relu(cam_raw).numpy(), rtol=1e-4, atol=1e-5)
    # up to a positive factor per image: equal after the same centring and division by the maximum,
    # against a float64 reference. The graph sums C products in float32, so its error scales with
    # sum_c |W[k, c] F_c|, not with the map's peak: a map whose peak is a small difference of large
    # terms is imprecise after normalization however it is computed. Images are compared with a
    # tolerance of that size; those with no positive cell must come out all zero (or float32 noise
    # normalized by CAM_EPS, which is bounded by the same rule).
    w64 = net.net._fc.weight[cls].detach().double()
    f64 = feats.detach().double()
    centred = _centred_reference(torch.relu(torch.einsum("nc,nchw->nhw", w64, f64)).numpy(), cam_stride)
    scale = torch.einsum("nc,nchw->nhw", w64.abs(), f64.abs()).amax(dim=(1, 2)).numpy()
    peak = centred.max(axis=(1, 2))
    assert np.isfinite(cam_onnx).all() and cam_onnx.min() >= 0 and cam_onnx.max() <= 1 + 1e-6
    float32_error = 64 * np.finfo(np.float32).eps * scale
    compared = 0
    for i in range(len(x)):
        if peak[i] > 1e3 * float32_error[i]:
            np.testing.assert_allclose(cam_onnx[i], centred[i] / peak[i],
                                       atol=1e-6 + float32_error[i] / peak[i], err_msg=f"image {i}")
            compared += 1
        elif peak[i] == 0:
            assert cam_onnx[i].max() <= float32_error[i] / CAM_EPS, f"image {i}"
    assert compared >= 2, "too few images with a clearly positive map: the check compared almost nothing"


def _block_at_offset(block, y, a, b):
    """An inverted-residual block with a stride-2 depthwise convolution whose sampling grid starts
    (a, b) cells later: the input is zero-padded as the network pads it, then cut at (a, b)."""
    from torch.nn import functional as F

    z = torch.clamp(block._bn0(block._expand_conv(y)), 0.0, 6.0) if block.has_expand else y
    conv = block._depthwise_conv
    p = conv.kernel_size[0] // 2
    z = F.pad(z, (p, p, p, p))[:, :, a:, b:]
    z = torch.clamp(block._bn1(F.conv2d(z, conv.weight, None, stride=2, groups=conv.groups)), 0.0, 6.0)
    return block._bn2(block._project_conv(z))


@pytest.mark.parametrize("cam_stride", [16, 32])
def test_dense_feature_map_is_the_strided_network_shifted(rng, cam_stride):
    """dense_copy's map at cells (2i + a, 2j + b) is the strided network whose last stride-2
    convolution samples (a, b) cells later, the layers after it unchanged: computed here with the
    strided network's own layers and a plain convolution, on an input with an odd cell count."""
    from edge_sdk.models.classifier_net import dense_copy, Lite0Classifier

    torch.manual_seed(int(rng.integers(1 << 31)))
    net = Lite0Classifier(3, cam_stride=cam_stride).eval()
    x = torch.from_numpy(rng.normal(size=(2, 3, 88, 80)).astype(np.float32))
    n = net.net
    last = max(b for b, blk in enumerate(n._blocks) if blk._depthwise_conv.stride == (2, 2))
    with torch.no_grad():
        dense = dense_copy(net).feature_map(x)
        y = torch.clamp(n._bn0(n._conv_stem(x)), 0.0, 6.0)
        for block in n._blocks[:last]:
            y = block(y)
        assert dense.shape[-2:] == y.shape[-2:]  # half the stride: the grid of the layer before
        for a in (0, 1):
            for b in (0, 1):
                z = _block_at_offset(n._blocks[last], y, a, b)
                for block in n._blocks[last + 1:]:
                    z = block(z)
                want = torch.clamp(n._bn1(n._conv_head(z)), 0.0, 6.0)
                got = dense[:, :, a::2, b::2]
                assert got.shape == want.shape, (a, b)
                # float32 sums of up to 1280 channels in another order: values up to 6 differ by about 1e-5
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=2e-5,
                                           err_msg=f"cells ({a}, {b})")
        np.testing.assert_allclose(dense[:, :, ::2, ::2].numpy(), net.feature_map(x).numpy(), rtol=2e-5, atol=2e-5)
    assert net.cam_stride == cam_stride and n._blocks[last]._depthwise_conv.stride == (2, 2)  # left as it was


def test_dense_cam_graph_keeps_the_probabilities(rng):
    """CamGraph(dense=True) exported to ONNX: the strided graph's probabilities and score, a map of
    twice the cells along each axis, equal to the torch graph's; its float16 variant loads."""
    from edge_sdk.converters.onnx_export import _session, export_onnx
    from edge_sdk.models.classifier_net import CamGraph, Lite0Classifier

    torch.manual_seed(int(rng.integers(1 << 31)))
    net = Lite0Classifier(4, cam_stride=16).eval()
    x = torch.from_numpy(rng.normal(size=(3, 3, 96, 96)).astype(np.float32))
    outs = ["probabilities", "score", "cam"]
    strided = _session(export_onnx(CamGraph(net, 1), [x], ["input"], outs)).run(None, {"input": x.numpy()})
    graph = CamGraph(net, 1, dense=True)
    dense = _session(export_onnx(graph, [x], ["input"], outs)).run(None, {"input": x.numpy()})
    np.testing.assert_allclose(dense[0], strided[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dense[1], strided[1], rtol=1e-4, atol=1e-6)
    assert strided[2].shape == (3, 6, 6) and dense[2].shape == (3, 12, 12)
    with torch.no_grad():
        np.testing.assert_allclose(dense[2], graph(x)[2].numpy(), atol=1e-5)
    assert not np.allclose(dense[2][:, ::2, ::2], strided[2], atol=1e-2)  # a new map, not the old one spread


@pytest.mark.parametrize("flips", [((2,),), ((2,), (3,), (2, 3))])
def test_flipped_views_land_on_the_image(rng, flips):
    """views_on_image on the geometry of the cells (the pooling stack of the centring test): each
    flipped view of one bright pixel, centred in its own coordinates and flipped back, has its centre
    of mass on the pixel, and so has their mean. Flipped back first and centred after, a flipped
    view lies s - 1 pixels off: the order matters and the check sees it."""
    from edge_sdk.models.classifier_net import centre_on_cells, views_on_image

    for stride in (8, 16, 32):
        net = _pooling_stack(stride)
        mean_off, views_off, wrong_off = [], [], []
        for y, x in rng.integers(2 * stride, 256 - 2 * stride, (20, 2)):
            img = torch.zeros(1, 1, 256, 256)
            img[0, 0, y, x] = 1.0
            grids = net(torch.cat([img] + [img.flip(d) for d in flips]))[:, 0]
            mean_off.append(_centre_of_mass(views_on_image(grids, stride, flips)) - (y, x))
            for v, dims in enumerate(flips):  # the flipped view alone: twice the mean of two, less the image's
                two = views_on_image(torch.stack([grids[0], grids[v + 1]]), stride, (dims,))
                views_off.append(_centre_of_mass(2 * two - centre_on_cells(grids[:1], stride)) - (y, x))
                back = grids[v + 1:v + 2].flip(tuple(a - 1 for a in dims))
                wrong_off.append(np.abs(_centre_of_mass(centre_on_cells(back, stride)) - (y, x)).max())
        assert np.abs(np.mean(mean_off, axis=0)).max() < 0.05 * stride, (stride, np.mean(mean_off, axis=0))
        assert np.abs(views_off).max() < 0.2 * stride, (stride, np.abs(views_off).max())
        assert np.mean(wrong_off) > 0.7 * (stride - 1), (stride, np.mean(wrong_off))


def _flip_reference(graph, x, good, flips):
    """float64 test-time flips from the network's feature maps: mean logits of the views, then per
    view the ReLU'd CAM of the top defect class, centred (scipy), flipped back; mean, / max.
    Returns (probabilities, maps, per-image float32 error scale)."""
    fc = graph.model.net._fc
    w, b = fc.weight.detach().double().numpy(), fc.bias.detach().double().numpy()
    views = [x] + [x.flip(d) for d in flips]
    with torch.no_grad():
        feats = [graph.model.feature_map(v).double().numpy() for v in views]
    pooled = [f[:, :, ::2, ::2] if graph.dense else f for f in feats]
    logits = np.mean([p.mean(axis=(2, 3)) @ w.T + b for p in pooled], axis=0)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    defects = [k for k in range(w.shape[0]) if k != good]
    top = np.array(defects)[np.argmax(logits[:, defects], axis=1)]
    maps, scale = [], 0
    for f, dims in zip(feats, [()] + list(flips)):
        m = _centred_reference(np.maximum(np.einsum("nc,nchw->nhw", w[top], f), 0), graph.model.cam_stride)
        maps.append(np.flip(m, tuple(a - 1 for a in dims)) if dims else m)
        scale = np.maximum(scale, np.einsum("nc,nchw->nhw", np.abs(w[top]), np.abs(f)).max(axis=(1, 2)))
    return probs, np.mean(maps, axis=0), scale


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("flips", [((2,),), ((2,), (3,), (2, 3))])
def test_test_time_flips_against_numpy(rng, dense, flips):
    """CamGraph with test-time flips, exported to ONNX, on non-square images: probabilities and map
    against the float64 reference; and the graph follows a flipped image (the set of views is closed
    under each flip: the flipped image gives the same probabilities and the flipped map)."""
    from edge_sdk.converters.onnx_export import _session, export_onnx
    from edge_sdk.models.classifier_net import CamGraph, Lite0Classifier

    torch.manual_seed(int(rng.integers(1 << 31)))
    net = Lite0Classifier(4, cam_stride=16).eval()
    good = int(rng.integers(4))
    graph = CamGraph(net, good, dense=dense, flips=flips).eval()
    x = torch.from_numpy(rng.normal(size=(5, 3, 64, 96)).astype(np.float32))
    session = _session(export_onnx(graph, [x[:2]], ["input"], ["probabilities", "score", "cam"]))
    probs, score, cam = session.run(None, {"input": x.numpy()})  # another batch than exported with
    assert cam.shape == ((5, 8, 12) if dense else (5, 4, 6))
    want_p, want_map, scale = _flip_reference(graph, x, good, flips)
    np.testing.assert_allclose(probs, want_p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(score[:, 0], 1 - want_p[:, good], rtol=1e-4, atol=1e-6)
    peak = want_map.max(axis=(1, 2))
    error = 64 * np.finfo(np.float32).eps * scale
    compared = [i for i in range(len(x)) if peak[i] > 1e3 * error[i]]
    for i in compared:
        np.testing.assert_allclose(cam[i], want_map[i] / peak[i], atol=1e-6 + error[i] / peak[i], err_msg=f"{i}")
    assert len(compared) >= 2, "too few images with a clearly positive map"
    with torch.no_grad():
        p0, _, m0 = graph(x)
        for dims in flips:
            p1, _, m1 = graph(x.flip(dims))
            np.testing.assert_allclose(p1.numpy(), p0.numpy(), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(m1.numpy(), m0.flip(tuple(a - 1 for a in dims)).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="flips"):
        CamGraph(net, good, flips=((1,),))


def test_test_time_flips_are_those_training_used():
    from edge_sdk.models.classifier_net import test_time_flips

    assert test_time_flips(False, True) == ()
    assert test_time_flips(True, False) == ((2,),)
    assert test_time_flips(True, True) == ((2,), (3,), (2, 3))


# ---- the decision rule and its calibration ---------------------------------------------------------

def _rule_by_hand(p, good, accept, reject):
    if not np.isfinite(p).all():
        return REVIEW, -1
    top = int(np.argmax(p))
    # in double, as the runtime compares (NumPy would compare a float32 with a float in float32)
    if max(float(v) for k, v in enumerate(p) if k != good) >= reject:
        return REJECT, top
    return (ACCEPT if float(p[good]) >= accept else REVIEW), top


def test_class_verdicts_follow_the_rule(rng):
    for _ in range(20):
        k = int(rng.integers(2, 7))
        p = rng.dirichlet(np.ones(k) * 0.5, size=40).astype(np.float32)
        p[rng.random(40) < 0.1, int(rng.integers(k))] = np.nan
        good, acc, rej = int(rng.integers(k)), float(rng.uniform(0.3, 1)), float(rng.uniform(0.3, 1))
        p[0, good] = np.float32(acc)
        p[1, good] = acc = float(np.float32(acc))  # exactly at the threshold: accepted (>=)
        codes, top = class_verdicts(p, good, acc, rej)
        want = [_rule_by_hand(row, good, acc, rej) for row in p]
        assert codes.tolist() == [w[0] for w in want]
        assert top.tolist() == [w[1] for w in want]
    with pytest.raises(ValueError, match="accept threshold"):
        class_verdicts(p, 0, 1.5, 0.5)
    with pytest.raises(ValueError, match="good"):
        class_verdicts(p, k, 0.5, 0.5)


def test_calibrated_thresholds_are_the_lowest_meeting_the_targets(rng):
    for _ in range(10):
        k = int(rng.integers(2, 5))
        y = rng.integers(0, k, 120)
        y[:3] = 0
        y[3:6] = 1
        logits = rng.normal(size=(120, k)) + 2.5 * np.eye(k)[y]
        p = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
        fa, fr = float(rng.choice([0.0, 0.02, 0.1])), float(rng.choice([0.0, 0.05]))
        cal = calibrate_thresholds(p, y, 0, max_false_accept=fa, max_false_reject=fr)
        d = y != 0
        pg, q = p[:, 0].astype(np.float64), top_defect(p, 0).astype(np.float64)
        for values, neg, target, key in ((pg, pg[d], fa, "accept_threshold"), (q, q[~d], fr, "reject_threshold")):
            u = np.unique(values)
            cands = np.concatenate(([u[0]], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]))
            ok = [t for t in cands if (neg >= t).sum() <= np.floor(target * neg.size + 1e-9)]
            assert cal[key] == pytest.approx(min(max(0.5, min(ok)), 1.0), abs=0)
        v = cal["validation"]
        codes, _ = class_verdicts(p, 0, cal["accept_threshold"], cal["reject_threshold"])
        assert v["false_accept_rate"] == ((codes == ACCEPT) & d).sum() / d.sum() <= fa + 1e-12
        assert v["eject_rate"] == pytest.approx((codes == REVIEW).mean())
    with pytest.raises(ValueError, match="good and defective"):
        calibrate_thresholds(p[y == 0], y[y == 0], 0)


# ---- metrics --------------------------------------------------------------------------------------

def test_classification_metrics_match_scikit_learn(rng):
    sk = pytest.importorskip("sklearn.metrics")
    for _ in range(10):
        k = int(rng.integers(2, 6))
        t = rng.integers(0, k, 80)
        p = np.where(rng.random(80) < 0.6, t, rng.integers(0, k, 80))
        names = [f"c{i}" for i in range(k)]
        m = classification_metrics(t, p, names)
        labels = list(range(k))
        prec, rec, f1, sup = sk.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
        present = sup > 0
        assert m["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
        assert m["macro_f1"] == pytest.approx(f1[present].mean())
        assert m["confusion"]["matrix"] == sk.confusion_matrix(t, p, labels=labels).tolist()
        for i, n in enumerate(names):
            assert m["per_class"][n]["precision"] == pytest.approx(prec[i])
            assert m["per_class"][n]["recall"] == pytest.approx(rec[i])
            assert m["per_class"][n]["support"] == sup[i]
    m = classification_metrics([0, 1, 1], [0, -1, 1], ["good", "crack"])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["confusion"]["not_judged"] == 1
    with pytest.raises(ValueError, match="pred"):
        classification_metrics([0, 1], [0, 2], ["good", "crack"])


def test_cell_cover_and_guidance_loss_against_numpy(rng):
    from edge_sdk.models.classifier_net import Lite0Classifier
    from edge_sdk.models.classifier_train import cam_guidance_loss, cell_cover

    for stride, (h, w) in ((16, (64, 80)), (8, (40, 33)), (32, (70, 64))):
        masks = (rng.random((3, 1, h, w)) < 0.3).astype(np.float32)
        got = cell_cover(torch.from_numpy(masks), stride).numpy()
        gh, gw = -(-h // stride), -(-w // stride)
        assert got.shape == (3, gh, gw)
        want = np.zeros((3, gh, gw))
        lo = stride // 2
        for i in range(gh):  # cell i: the stride pixels around input pixel stride * i, zeros outside
            for j in range(gw):
                y0, x0 = stride * i - lo, stride * j - lo
                win = masks[:, 0, max(y0, 0):y0 + stride, max(x0, 0):x0 + stride].astype(np.float64)
                want[:, i, j] = win.sum(axis=(1, 2)) / stride ** 2
        np.testing.assert_allclose(got, want, atol=1e-6)

    torch.manual_seed(0)
    net = Lite0Classifier(3, pretrained=False).eval()
    feats = torch.from_numpy(rng.random((4, 1280, 3, 5)).astype(np.float32))
    labels = torch.tensor([1, 2, 1, 0])
    cover = torch.from_numpy((rng.random((4, 3, 5)) * (rng.random((4, 3, 5)) < 0.4)).astype(np.float32))
    cover[:, 0, 0] = 0.5
    with torch.no_grad():
        got = float(cam_guidance_loss(net, feats, labels, cover))
    wt = net.net._fc.weight.detach().numpy().astype(np.float64)
    ref = []
    for b in range(4):
        cam = np.einsum("c,chw->hw", wt[labels[b]], feats[b].numpy().astype(np.float64)).ravel()
        p = np.exp(cam - cam.max())
        p /= p.sum()
        c = cover[b].numpy().astype(np.float64).ravel()
        ref.append(-np.log((p * c / c.max()).sum()))
    assert got == pytest.approx(float(np.mean(ref)), rel=1e-4)


def _two_masked_images(rng):
    """A pretrained network, two random 64-pixel images of the defect class, their masks' cell cover."""
    from edge_sdk.models.classifier_net import Lite0Classifier
    from edge_sdk.models.classifier_train import cell_cover

    torch.manual_seed(1)
    net = Lite0Classifier(2, cam_stride=16).eval()  # batch-norm statistics fixed: two images are no batch
    x = torch.from_numpy(rng.normal(size=(2, 3, 64, 64)).astype(np.float32))
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0, 40:56, 8:20] = 1.0
    masks[1, 0, 2:10, 50:62] = 1.0
    return net, x, cell_cover(masks, 16), torch.tensor([1, 1])


def test_guidance_pulls_the_map_onto_the_mask(rng):
    """A few steps on the guidance loss alone move the true class's map onto the masked cells."""
    from edge_sdk.models.classifier_train import cam_guidance_loss

    net, x, cover, labels = _two_masked_images(rng)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def mass():
        with torch.no_grad():
            cam = torch.einsum("bc,bchw->bhw", net.net._fc.weight[labels], net.feature_map(x)).flatten(1)
            return (torch.softmax(cam, 1) * (cover.flatten(1) > 0)).sum(1)

    before = mass()
    for _ in range(60):  # 15 steps were too few for some random inputs (0.06 -> 0.14 seen)
        loss = cam_guidance_loss(net, net.feature_map(x), labels, cover)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = mass()
    assert (after > before + 0.2).all(), (before, after)


def test_peak_guidance_loss_against_numpy(rng):
    """The hinge of the highest outside cell over the highest inside one, by hand in float64; images
    whose every cell touches the defect, or whose defect covers no cell by half, add 0."""
    from edge_sdk.models.classifier_net import Lite0Classifier
    from edge_sdk.models.classifier_train import PEAK_MARGIN, cam_guidance_loss

    torch.manual_seed(0)
    net = Lite0Classifier(3, pretrained=False).eval()
    feats = torch.from_numpy(rng.random((5, 1280, 4, 5)).astype(np.float32))
    labels = torch.tensor([1, 2, 1, 0, 2])
    cover = torch.from_numpy((rng.random((5, 4, 5)) * (rng.random((5, 4, 5)) < 0.4)).astype(np.float32))
    cover[:, 0, 0] = 0.9
    cover[4] = 0.05 + torch.from_numpy(rng.random((4, 5)).astype(np.float32))  # no cell outside
    cover[3] = 0.0
    cover[3, 1, 2] = 3e-7  # a defect rotated almost out of view: under the clamp, so no cell inside
    with torch.no_grad():
        got = float(cam_guidance_loss(net, feats, labels, cover, "peak"))
    wt = net.net._fc.weight.detach().numpy().astype(np.float64)
    ref = []
    for b in range(5):
        cam = np.einsum("c,chw->hw", wt[labels[b]], feats[b].numpy().astype(np.float64)).ravel()
        c = cover[b].numpy().astype(np.float64).ravel()
        c /= max(c.max(), 1e-6)
        out, inside = cam[c <= 0], cam[c >= 0.5]
        ref.append(max(0.0, out.max() - inside.max() + PEAK_MARGIN) if out.size and inside.size else 0.0)
    assert ref[3] == ref[4] == 0.0 and max(ref) > 0
    assert got == pytest.approx(float(np.mean(ref)), rel=1e-4)


def test_peak_guidance_moves_the_peak_into_the_mask_and_then_stops(rng):
    """Steps on the peak loss alone bring the true class's highest cell onto the masked cells; once
    every image's peak is there by the margin, the loss and its gradient are 0."""
    from edge_sdk.models.classifier_train import cam_guidance_loss

    net, x, cover, labels = _two_masked_images(rng)
    inside = (cover / cover.flatten(1).amax(1)[:, None, None]).flatten(1) >= 0.5

    def peaks_inside():
        with torch.no_grad():
            cam = torch.einsum("bc,bchw->bhw", net.net._fc.weight[labels], net.feature_map(x)).flatten(1)
            return inside[torch.arange(2), cam.argmax(1)]

    assert not peaks_inside().all()  # else the test proves nothing
    # The head alone: on random inputs, training every layer can saturate the features' ReLU6 on
    # both sides of the hinge and stall it; the head's weights meet it on any features that differ.
    opt = torch.optim.Adam(net.net._fc.parameters(), lr=1e-2)
    for _ in range(300):
        loss = cam_guidance_loss(net, net.feature_map(x), labels, cover, "peak")
        if float(loss.detach()) == 0.0:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) == 0.0 and peaks_inside().all()
    net.zero_grad()
    cam_guidance_loss(net, net.feature_map(x), labels, cover, "peak").backward()
    assert all(p.grad is None or not p.grad.any() for p in net.parameters())


@pytest.mark.parametrize("option,attribute,kinds", [("--cam-guidance-loss", "cam_guidance_loss", "GUIDANCE_LOSSES"),
                                                    ("--select-by", "select_by", "SELECTIONS")])
def test_training_kinds_are_the_cli_choices(capsys, option, attribute, kinds):
    """Each guidance loss and epoch selection goes from `edge-sdk train` into the model and its saved
    settings, the first being the default; others are refused, naming the option."""
    from edge_sdk.cli import build_parser
    from edge_sdk.commands._classifier_options import build_classifier
    from edge_sdk.models import classifier_train
    from edge_sdk.models.classifier import DefectClassifier

    kinds = getattr(classifier_train, kinds)
    base = ["train", "--model", "classifier", "--data", "d", "--layout", "folder", "--out", "m"]
    assert getattr(build_classifier(build_parser().parse_args(base)), attribute) == kinds[0]
    for kind in kinds:
        model = build_classifier(build_parser().parse_args(base + [option, kind]))
        assert getattr(DefectClassifier(**model._settings()), attribute) == kind
    with pytest.raises(SystemExit):
        build_parser().parse_args(base + [option, "area"])
    assert option in capsys.readouterr().err


def test_unknown_guidance_loss_is_refused_by_training():
    from edge_sdk.models import classifier_train

    with pytest.raises(ValueError, match="cam_loss"):
        classifier_train.train_classifier(None, None, np.zeros(4, np.int64), names=["a", "b"], validate=None,
                                          epochs=1, batch_size=2, lr=1e-3, weight_decay=0.0, patience=1,
                                          max_angle=0.0, vflip=0.0, hflip=False, mean=(0,) * 3, std=(1,) * 3,
                                          seed=0, cam_loss="area")


def test_guidance_weight_by_hand():
    from edge_sdk.models.classifier_train import guidance_weight

    assert [guidance_weight(0.5, 0.0, s, 10) for s in (0, 9)] == [0.5, 0.5]
    got = [guidance_weight(2.0, 0.5, s, 10) for s in (0, 1, 4, 5, 9)]
    np.testing.assert_allclose(got, [2.0, 1.6, 0.4, 0.0, 0.0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("decay", [0.0, 0.5])
def test_decaying_guidance_stops_at_its_share_of_the_steps(rng, monkeypatch, decay):
    """The training loop adds the guidance loss, with the scheduled weight, only while that weight
    is positive: every step without decay, the first half of the steps with decay 0.5."""
    from edge_sdk.models import classifier_train
    from edge_sdk.models.classifier_net import Lite0Classifier

    weights_seen = []
    real_loss = classifier_train.cam_guidance_loss
    real_weight = classifier_train.guidance_weight

    def spy_weight(weight, d, step, total):
        w = real_weight(weight, d, step, total)
        weights_seen.append((step, total, w))
        return w

    def spy_loss(*args):
        spy_loss.calls += 1
        return real_loss(*args)

    spy_loss.calls = 0
    monkeypatch.setattr(classifier_train, "guidance_weight", spy_weight)
    monkeypatch.setattr(classifier_train, "cam_guidance_loss", spy_loss)
    n, size = 8, (32, 32)
    imgs = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1] * (n // 2), np.int64)
    masks = {i: np.full(size, 255, np.uint8) for i in range(n) if labels[i] == 1}
    train = classifier_train.ResizedImages(lambda i: imgs[i], n, size, max_bytes=1 << 20, progress=False)
    torch.manual_seed(0)
    net = Lite0Classifier(2, cam_stride=16, pretrained=False)
    classifier_train.train_classifier(
        net, train, labels, names=["good", "bad"], validate=lambda: {"val_loss": 1.0, "val_macro_f1": 0.5}, epochs=2, batch_size=4, lr=1e-3,
        weight_decay=0.0, patience=2, max_angle=0.0, vflip=0.0, hflip=False, mean=(0.5,) * 3, std=(0.25,) * 3,
        seed=0, masks=masks, cam_weight=2.0, cam_decay=decay, progress=False)
    assert [s for s, _, _ in weights_seen] == [0, 1, 2, 3] and all(t == 4 for _, t, _ in weights_seen)
    want = [2.0, 2.0, 2.0, 2.0] if decay == 0 else [2.0, 1.0, 0.0, 0.0]
    np.testing.assert_allclose([w for _, _, w in weights_seen], want, rtol=0, atol=1e-12)
    assert spy_loss.calls == sum(w > 0 for w in want)


@pytest.mark.parametrize("good", [0, 2])
@pytest.mark.parametrize("flips", [(), ((2,), (3,), (2, 3))])
def test_cam_graph_converts_to_float16(rng, tmp_path, good, flips):
    """The float16 converter mistypes some ops (a Gather of class lists, ops reading a graph output);
    the CAM graph's float16 variant, with test-time flips or without, must load and agree with
    float32."""
    from edge_sdk.converters.onnx_export import _session, export_onnx
    from edge_sdk.converters.precision import make_fp16
    from edge_sdk.models.classifier_net import CamGraph, Lite0Classifier

    torch.manual_seed(3)
    graph = CamGraph(Lite0Classifier(3, cam_stride=16).eval(), good, flips=flips).eval()
    x = rng.normal(size=(2, 3, 64, 64)).astype(np.float32)
    src = export_onnx(graph, [torch.from_numpy(x)], ["input"], ["probabilities", "score", "cam"])
    path = tmp_path / "fp32.onnx"
    path.write_bytes(src if isinstance(src, bytes) else src.SerializeToString())
    dst = make_fp16(path, tmp_path / "fp16.onnx")
    want = _session(str(path)).run(None, {"input": x})
    got = _session(str(dst)).run(None, {"input": x})
    np.testing.assert_allclose(got[0], want[0], atol=5e-3)
    np.testing.assert_allclose(got[1][:, 0], 1.0 - want[0][:, good], atol=5e-3)


def test_class_weights_by_hand():
    from edge_sdk.models.classifier_train import class_weights

    labels = np.array([0] * 12 + [1] * 3 + [3] * 1)  # class 2 has no image
    full = class_weights(labels, 4)
    np.testing.assert_allclose(full, [16 / (4 * 12), 16 / (4 * 3), 1.0, 16 / (4 * 1)], rtol=1e-6)
    np.testing.assert_allclose(class_weights(labels, 4, 0.5), [np.sqrt(w) if w != 1.0 else 1.0 for w in full],
                               rtol=1e-6)
    np.testing.assert_array_equal(class_weights(labels, 4, 0.0), np.ones(4, np.float32))


def test_cam_localization_by_hand():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4, 2:4] = 1
    hit = np.zeros((10, 10), np.float32)
    hit[2:4, 2:5] = 1.0  # peak on the defect; 4 of 6 above 0.5 are defect pixels: IoU 4/6
    miss = np.zeros((10, 10), np.float32)
    miss[8, 8] = 1.0
    out = cam_localization([hit, miss, miss], [mask, mask, np.zeros_like(mask)])
    assert out["cam_accuracy"] == 0.5 and out["cam_images"] == 2 and out["cam_skipped_without_mask"] == 1
    assert out["cam_iou"] == pytest.approx((4 / 6 + 0.0) / 2)
    with pytest.raises(ValueError, match="maps\\[0\\]"):
        cam_localization([hit[:5]], [mask])


def _three_scripted_epochs(rng, rows, **kw):
    """Trains a tiny network 3 epochs with the validation figures of ``rows`` (one per epoch) in place
    of the measured ones; returns the facts, the network and its weights after each epoch."""
    from edge_sdk.models import classifier_train
    from edge_sdk.models.classifier_net import Lite0Classifier

    after = []

    def scripted():
        after.append({k: v.clone() for k, v in net.state_dict().items()})
        return {"val_loss": 1.0, "val_accuracy": 0.5, **rows[len(after) - 1]}

    n, size = 8, (32, 32)
    imgs = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1] * (n // 2), np.int64)
    images = classifier_train.ResizedImages(lambda i: imgs[i], n, size, max_bytes=1 << 20, progress=False)
    torch.manual_seed(0)
    net = Lite0Classifier(2, cam_stride=16, pretrained=False)
    facts = classifier_train.train_classifier(
        net, images, labels, names=["good", "bad"], validate=scripted, epochs=3, batch_size=4, lr=1e-2,
        weight_decay=0.0, patience=3, max_angle=0.0, vflip=0.0, hflip=False, mean=(0.5,) * 3, std=(0.25,) * 3,
        seed=0, progress=False, **kw)
    return facts, net, after


@pytest.mark.parametrize("select,best", [("macro_f1", 1), ("macro_f1+cam", 2)])
def test_the_kept_epoch_is_the_best_by_the_selection_figure(rng, monkeypatch, select, best):
    """Epoch 1 classifies best, epoch 2 has the best mean of macro-F1 and CAM accuracy: each selection
    keeps its own epoch's weights (all three epochs run: patience 3)."""
    rows = [{"val_macro_f1": 0.9, "val_cam_accuracy": 0.1, "val_cam_images": 5},
            {"val_macro_f1": 0.7, "val_cam_accuracy": 0.8, "val_cam_images": 5},
            {"val_macro_f1": 0.8, "val_cam_accuracy": None, "val_cam_images": 0}]  # no map measured: 0
    facts, net, after = _three_scripted_epochs(rng, rows, select=select)
    assert facts["best_epoch"] == best and facts["epochs_run"] == 3
    assert not all(torch.equal(after[0][k], after[1][k]) for k in after[0])  # the epochs differ
    for key, value in net.state_dict().items():
        assert torch.equal(value, after[best - 1][key]), key


def test_selection_by_the_map_needs_validation_masks(rng, tmp_path):
    """select_by "macro_f1+cam" with no validation image that has a defect mask, or an unknown
    selection, is refused before training, naming the argument."""
    from PIL import Image

    from edge_sdk.models.classifier import DefectClassifier

    for cls, n in (("good", 4), ("dent", 4)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(tmp_path, "classes", "train", classes=True)
    model = DefectClassifier(input_size=32, epochs=1, select_by="macro_f1+cam")
    with pytest.raises(ValueError, match=r"select_by: 'macro_f1\+cam' needs validation images with defect masks"):
        model.fit(data, val_dataset=data, progress=False)
    assert model.net is None  # refused before the network was built
    with pytest.raises(ValueError, match="select: expected one of"):
        _three_scripted_epochs(rng, [{"val_macro_f1": 0.5}] * 3, select="cam")
    with pytest.raises(ValueError, match="select_by: expected one of"):
        DefectClassifier(select_by="accuracy")


# ---- labelled splits -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tile_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tile"), "tile", 14, 16, 64, 3, defects=["spot", "scratch"],
                        anomaly_fraction=0.75)


def test_labelled_split_is_stratified_disjoint_and_seeded(tile_root):
    train = load_dataset(tile_root, "mvtec", "train", category="tile", classes=True)
    test = load_dataset(tile_root, "mvtec", "test", category="tile", classes=True)
    pooled = load_dataset(tile_root, "mvtec", "train", category="tile").paths + \
        load_dataset(tile_root, "mvtec", "test", category="tile").paths
    assert not set(train.paths) & set(test.paths)
    assert sorted(train.paths + test.paths) == sorted(pooled)
    types = train.defect_types + test.defect_types
    for t in set(types):
        assert test.defect_types.count(t) == int(round(0.2 * types.count(t)))
    again = load_dataset(tile_root, "mvtec", "test", category="tile", classes=True)
    assert again.paths == test.paths
    other = load_dataset(tile_root, "mvtec", "test", category="tile", classes=True, seed=5)
    assert other.paths != test.paths
    masked = [s for s in test if s.label == 1]
    assert masked and all(s.mask is not None and s.mask.any() for s in masked)


def test_classes_layout(tmp_path, rng):
    from PIL import Image

    for cls, n in (("good", 6), ("dent", 3), ("scratch", 2)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    m = np.zeros((20, 24), np.uint8)
    m[5:9, 5:9] = 255
    Image.fromarray(m).save(tmp_path / "dent" / "0_mask.png")
    full = load_dataset(tmp_path, "classes", "train", classes=True, test_fraction=0.34)
    test = load_dataset(tmp_path, "classes", "test", classes=True, test_fraction=0.34)
    assert len(full) + len(test) == 11 and set(full.defect_types) == {"good", "dent", "scratch"}
    dents = [s for s in list(full) + list(test) if s.defect_type == "dent"]
    assert sum(s.mask is not None for s in dents) == 1  # only 0.png has a mask
    anomaly = load_dataset(tmp_path, "classes", "test", test_fraction=0.5)  # anomaly models: defects in test
    assert anomaly.defect_types.count("dent") == 3 and anomaly.defect_types.count("good") == 3
    Image.fromarray(m).save(tmp_path / "scratch" / "9_mask.png")
    with pytest.raises(DataError, match="9_mask.png"):
        load_dataset(tmp_path, "classes", "train", classes=True)
    with pytest.raises(DataError, match="good images and at least one defect"):
        load_dataset(tmp_path / "good", "folder", "train", classes=True, normal_dir=".")


# ---- runtime ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["strided", "dense", "flips"])
def test_runtime_matches_predict(tmp_path, rng, variant):
    from edge_sdk.converters import export_bundle

    model = classifier_model(classes=("crack", "good", "spot", "dent"))
    if variant == "dense":  # the dense map: a finer grid through the same runtime path
        model.cam_dense = True
        model._set_graph()
        assert model.grid == (6, 6)
    if variant == "flips":  # test-time flips: more views inside the graph, the same outputs
        model.tta, model.hflip = True, True
        model._set_graph()
        assert len(model.graph.flips) == 3
    imgs = _images(rng, 10)
    classifier_thresholds(model, model.predict(imgs).probabilities)
    want = model.predict(imgs)
    assert len(set(want.verdicts.tolist())) >= 2
    out = export_bundle(model.export_parts(), tmp_path / "b", model_type="classifier").bundle
    rt = edge_sdk.Runtime(out, threads=1, max_batch=4)
    res = rt.predict(imgs)
    assert rt.class_names == ["crack", "good", "spot", "dent"]
    np.testing.assert_allclose(res.class_probabilities, want.probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.scores, want.scores, rtol=1e-4, atol=1e-6)
    assert res.top_class.tolist() == want.top_class.tolist()
    assert res.verdict_codes.tolist() == want.verdicts.tolist()
    for got, exp in zip(res.heatmaps, want.maps):
        assert got.shape == exp.shape
        np.testing.assert_allclose(got, exp, atol=1e-4)
    one = res[0]
    assert one.top_class == rt.class_names[int(want.top_class[0])]
    assert one.probabilities["good"] == pytest.approx(float(want.probabilities[0, 1]), rel=1e-4)
    # an image the runtime cannot use: review, no class, NaN probabilities
    bad = rt.predict([imgs[0], np.zeros((8, 8, 4), np.uint8)], on_error="review")
    assert bad.verdicts[1] == "review" and bad.top_class[1] == -1 and np.isnan(bad.class_probabilities[1]).all()
    assert bad.top_class[0] == want.top_class[0]


def test_verify_compares_the_three_way_verdicts(tmp_path, rng):
    """converters.verify on a classifier bundle: the runtime's verdicts against the model's own
    three-way ones (review included), not against a score threshold; thresholds that differ from
    the bundle's are caught."""
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.verify import compare

    model = classifier_model(classes=("crack", "good", "spot"))
    imgs = _images(rng, 12)
    classifier_thresholds(model, model.predict(imgs).probabilities)
    verdicts = model.predict(imgs).verdicts
    assert {0, 1, 2} <= set(verdicts.tolist()), verdicts  # review, accept and reject all occur
    rt = edge_sdk.Runtime(export_bundle(model.export_parts(), tmp_path / "b", model_type="classifier").bundle,
                          threads=1, max_batch=4)
    fig = compare(rt, model, imgs, batch=5)
    assert fig["passed"] and fig["verdict_agreement"] == 1.0 and fig["scores_outside_tolerance"] == 0, fig
    cal = dict(model.calibration)
    model.calibration["accept_threshold"] = 1e-9  # the model now accepts whatever no defect class rejects
    bad = compare(rt, model, imgs, batch=5)
    model.calibration = cal
    assert not bad["passed"] and bad["verdict_disagreements"] >= 1, bad


@requires_cuda
def test_runtime_on_the_gpu_matches_the_cpu(tmp_path, rng):
    from edge_sdk.converters import export_bundle

    model = classifier_model()
    imgs = _images(rng, 6)
    classifier_thresholds(model, model.predict(imgs).probabilities)
    out = export_bundle(model.export_parts(), tmp_path / "b", model_type="classifier").bundle
    cpu = edge_sdk.Runtime(out, threads=1).predict(imgs)
    # the network on ONNX Runtime's CPU provider: the pipeline's kernels run on the GPU
    gpu = edge_sdk.Runtime(out, device="cuda:0", threads=1, provider="cpu").predict(imgs)
    np.testing.assert_allclose(gpu.class_probabilities, cpu.class_probabilities, rtol=1e-5, atol=1e-7)
    assert gpu.top_class.tolist() == cpu.top_class.tolist()
    assert gpu.verdict_codes.tolist() == cpu.verdict_codes.tolist()
    for g, c in zip(gpu.heatmaps, cpu.heatmaps):
        np.testing.assert_allclose(g, c, atol=1e-5)


@pytest.mark.parametrize("field,value,message", [
    ("accept_threshold", 1.5, "accept_threshold"),
    ("reject_threshold", 0.0, "reject_threshold"),
    ("good_class", 3, "good_class"),
    ("classes", [{"id": 0, "name": "good"}, {"id": 0, "name": "crack"}], "id"),
    ("classes", [{"id": 0, "name": "good"}, {"id": 1, "name": "good"}], "names two classes"),
    ("grid", [2, 2], "cam_output"),
])
def test_runtime_refuses_bad_classifier_fields(tmp_path, field, value, message):
    from edge_sdk.converters import export_bundle

    model = classifier_model(classes=("good", "crack"))
    model.calibration = {"threshold": 0.4, "min": 0.0, "max": 1.0, "accept_threshold": 0.6, "reject_threshold": 0.7}
    parts = model.export_parts()
    parts.postprocess[field] = value
    out = export_bundle(parts, tmp_path / "b", model_type="classifier").bundle
    with pytest.raises(BundleError, match=f"postprocess.*{message}"):
        edge_sdk.Runtime(out, threads=1)


# ---- training and the CLI --------------------------------------------------------------------------

def _cli(*args, cwd, ok=True):
    """Runs edge-sdk; asserts it succeeded (``ok``) or failed (``ok=False``)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=900)
    assert (r.returncode == 0) == ok, f"edge-sdk {' '.join(args)} (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def config_settings(work):
    return json.loads((work / "model" / "config.json").read_text())["settings"]


@pytest.fixture(scope="module")
def trained(tile_root, tmp_path_factory):
    """A classifier trained through the CLI on the tiny tile set (2 epochs, 32 x 32, synthetic defects)."""
    work = tmp_path_factory.mktemp("cls")
    _cli("train", "--model", "classifier", "--data", str(tile_root), "--layout", "mvtec", "--category", "tile",
         "--out", "model", "--input-size", "32", "--epochs", "2", "--batch", "4", "--synthetic", "2",
         "--cam-guidance", "1", "--cam-guidance-decay", "0.5", "--threads", "1", "--class-val-fraction", "0.3",
         "--no-progress", cwd=work)
    return work


def test_training_saves_a_calibrated_model_that_reloads(trained, tile_root):
    from edge_sdk.models import load_model

    model = load_model(trained / "model")
    info = model.training_info
    assert model.classes == ["good", "scratch", "spot"]
    assert info["synthetic_images"] == 4 and info["train_images"] == info["real_train_images"] + 4
    defective = int(sum(n for c, n in info["class_counts"].items() if c != "good"))
    # every defective training image of the tile set has a mask, the pasted ones included
    assert info["masks_guiding_the_cam"] == defective and config_settings(trained)["cam_guidance"] == 1.0
    assert model.cam_guidance_decay == 0.5 and model.cam_guidance_loss == "mass" and model.select_by == "macro_f1"
    # a guided map is measured after every epoch
    assert all(0 <= h["val_cam_images"] <= info["validation_images"] for h in info["history"])
    assert 1 <= info["epochs_run"] <= 2 and len(info["history"]) == info["epochs_run"]
    cal = model.calibration
    assert 0.5 <= cal["accept_threshold"] <= 1 and 0.5 <= cal["reject_threshold"] <= 1
    assert cal["validation"]["images"] == info["validation_images"]
    config = json.loads((trained / "model" / "config.json").read_text())
    assert config["training"]["recipe"]["synthetic"] == 2
    test = load_dataset(tile_root, "mvtec", "test", category="tile", classes=True)
    imgs = [s.image for s in test]
    a, b = model.predict(imgs), load_model(trained / "model").predict(imgs)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    val_files = set(load_dataset(tile_root, "mvtec", "train", category="tile", classes=True).paths)
    assert not val_files & set(test.paths)  # validation came out of the training split
    # the stem and the first 5 blocks stayed as pretrained (batch-norm statistics too), later ones learned
    from edge_sdk.models.backbone import EfficientNetLite0

    pretrained = EfficientNetLite0.pretrained().state_dict()
    tuned = model.net.net.state_dict()
    for key in ("_conv_stem.weight", "_bn0.running_mean", "_blocks.4._project_conv.weight",
                "_blocks.4._bn2.running_var"):
        assert torch.equal(tuned[key], pretrained[key]), key
    for key in ("_blocks.5._project_conv.weight", "_conv_head.weight"):
        assert not torch.equal(tuned[key], pretrained[key]), key


def test_training_starts_from_a_trained_classifier(trained, tile_root):
    """--init-from: the weights start where the given classifier ended (at another CAM stride here),
    not at ImageNet's; a model trained on another split is refused, naming it."""
    from edge_sdk.models import load_model
    from edge_sdk.models.backbone import EfficientNetLite0

    common = ("train", "--model", "classifier", "--data", str(tile_root), "--layout", "mvtec", "--category", "tile",
              "--input-size", "32", "--batch", "4", "--threads", "1", "--no-progress", "--init-from", "model")
    # a learning rate too small to move a weight by more than 1e-6 in one epoch
    _cli(*common, "--out", "refined", "--epochs", "1", "--lr", "1e-8", "--cam-stride", "8",
         "--class-val-fraction", "0.3", cwd=trained)
    source, refined = load_model(trained / "model"), load_model(trained / "refined")
    assert refined.cam_stride == 8 and refined.grid == (4, 4) and source.grid == (2, 2)
    start = refined.training_info["initialized_from"]
    assert start["model_dir"] == str((trained / "model").resolve()) and start["cam_stride"] == 16
    imagenet = EfficientNetLite0.pretrained().state_dict()
    for key in ("_blocks.5._project_conv.weight", "_conv_head.weight", "_fc.weight"):
        got, want = refined.net.net.state_dict()[key], source.net.net.state_dict()[key]
        assert torch.allclose(got, want, rtol=0, atol=1e-6), key
        if key != "_fc.weight":  # ImageNet's head has 1000 classes
            assert (got - imagenet[key]).abs().max() > 1e-4, key  # far more than the 1e-6 above
    r = _cli(*common, "--out", "other", "--epochs", "1", "--class-val-fraction", "0.5", cwd=trained, ok=False)
    assert "init_from model" in r.stderr and "validation fraction 0.3" in r.stderr, r.stderr
    assert not (trained / "other").exists()


def test_distillation_loss_against_numpy(rng):
    from edge_sdk.models.classifier_train import DISTILL_TEMPERATURE, distillation_loss

    s, t = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4)) * 3
    T = DISTILL_TEMPERATURE

    def softmax(z):
        e = np.exp(z / T - (z / T).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(t), softmax(s)
    want = T * T * np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    got = distillation_loss(torch.from_numpy(s).float(), torch.from_numpy(t).float())
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(distillation_loss(torch.from_numpy(t).float(), torch.from_numpy(t).float())) == pytest.approx(0, abs=1e-6)


def test_distillation_pulls_the_network_toward_its_teacher(rng):
    """With a teacher, the trained network's predictions on its training images end closer to the
    teacher's than the same training without one (same seed, same batches): far closer where the
    teacher disagrees with half of the labels."""
    from edge_sdk.models import classifier_train
    from edge_sdk.models.classifier_net import Lite0Classifier

    n, size = 8, (32, 32)
    imgs = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1] * (n // 2), np.int64)
    images = classifier_train.ResizedImages(lambda i: imgs[i], n, size, max_bytes=1 << 20, progress=False)
    torch.manual_seed(1)
    teacher = Lite0Classifier(2, cam_stride=16, pretrained=False).eval()
    with torch.no_grad():  # a teacher sure of class 0 for every image, against half of the labels
        teacher.net._fc.bias.copy_(torch.tensor([3.0, -3.0]))
    x = classifier_train.normalize(images.batch(range(n)), (0.5,) * 3, (0.25,) * 3)
    gaps = {}
    for weight in (0.0, 20.0):
        torch.manual_seed(0)
        net = Lite0Classifier(2, cam_stride=16, pretrained=False)
        classifier_train.train_classifier(
            net, images, labels, names=["good", "bad"], validate=lambda: {"val_loss": 1.0, "val_macro_f1": 0.5},
            epochs=5, batch_size=4, lr=0.1, weight_decay=0.0, patience=5, max_angle=0.0, vflip=0.0, hflip=False,
            mean=(0.5,) * 3, std=(0.25,) * 3, seed=0, teacher=teacher, distill_weight=weight, progress=False)
        with torch.no_grad():
            gaps[weight] = float(classifier_train.distillation_loss(net(x), teacher(x)))
    assert gaps[20.0] < 0.2 * gaps[0.0], gaps


def test_training_distils_a_classifier_of_the_same_split(trained, tile_root):
    """--distill-from: recorded in the training facts, its weight in the settings; a teacher trained on
    another split, or a directory that holds no model, is refused before training, naming the option."""
    from edge_sdk.models import load_model

    common = ("train", "--model", "classifier", "--data", str(tile_root), "--layout", "mvtec", "--category", "tile",
              "--input-size", "32", "--batch", "4", "--threads", "1", "--no-progress", "--epochs", "1",
              "--distill-from", "model", "--distill-weight", "0.5")
    _cli(*common, "--out", "student", "--class-val-fraction", "0.3", cwd=trained)
    student = load_model(trained / "student")
    settings = json.loads((trained / "student" / "config.json").read_text())["settings"]
    assert student.distill_weight == settings["distill_weight"] == 0.5
    assert student.training_info["distilled_from"]["model_dir"] == str((trained / "model").resolve())
    r = _cli(*common, "--out", "other", "--class-val-fraction", "0.5", cwd=trained, ok=False)
    assert "distill_from model" in r.stderr and "validation fraction 0.3" in r.stderr, r.stderr
    assert not (trained / "other").exists()
    r = _cli(*common[:-6], "--out", "none", "--epochs", "0", "--init-from", "model", "--distill-from", "model",
             cwd=trained, ok=False)
    assert "distill_from: needs training" in r.stderr, r.stderr
    for option in ("--distill-from", "--init-from"):  # a directory that holds no model: named with its option
        r = _cli(*common[:-4], "--out", "none", option, "no_such_model", cwd=trained, ok=False)
        assert f"{option[2:].replace('-', '_')}: no_such_model: not a model directory" in r.stderr, r.stderr
    assert not (trained / "none").exists()


def test_no_training_applies_the_dense_map_to_a_trained_classifier(trained, tile_root):
    """--epochs 0 --init-from M --cam-dense: M's weights, measured again with the dense map (twice the
    grid, the same probabilities, thresholds and validation classification); refused without
    --init-from and for the anomaly models."""
    from edge_sdk.models import load_model

    common = ("train", "--data", str(tile_root), "--layout", "mvtec", "--category", "tile", "--input-size", "32",
              "--batch", "4", "--threads", "1", "--no-progress", "--epochs", "0")
    _cli(*common, "--model", "classifier", "--out", "dense", "--init-from", "model", "--cam-dense",
         "--class-val-fraction", "0.3", cwd=trained)
    source, dense = load_model(trained / "model"), load_model(trained / "dense")
    assert dense.cam_dense and dense.grid == (4, 4) and source.grid == (2, 2)
    assert dense.training_info["epochs_run"] == 0
    for key in ("accuracy", "macro_f1", "eject_rate"):
        assert dense.metrics["validation"][key] == source.metrics["validation"][key], key
    for key in ("accept_threshold", "reject_threshold"):  # midpoints of probabilities equal to float rounding
        assert dense.calibration[key] == pytest.approx(source.calibration[key], rel=0, abs=1e-6), key
    imgs = [s.image for s in load_dataset(tile_root, "mvtec", "test", category="tile", classes=True)][:6]
    a, b = source.predict(imgs), dense.predict(imgs)
    np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=1e-4, atol=1e-6)
    assert a.maps.shape == b.maps.shape and not np.allclose(a.maps, b.maps, atol=1e-3)
    for extra in (("--model", "classifier", "--out", "x"), ("--model", "padim", "--out", "y", "--init-from", "model")):
        r = _cli(*common, *extra, cwd=trained, ok=False)
        assert "--epochs 0" in r.stderr, r.stderr
    _cli(*common, "--model", "classifier", "--out", "flips", "--init-from", "model", "--tta",
         "--class-val-fraction", "0.3", cwd=trained)
    flips = load_model(trained / "flips")
    assert flips.tta and flips.graph.flips == ((2,),) and flips.grid == source.grid
    assert flips.training_info["epochs_run"] == 0
    assert json.loads((trained / "flips" / "config.json").read_text())["settings"]["tta"] is True
    # the mean logits of the image and its upside-down copy: softmax of the mean log-probabilities
    c, d = flips.predict(imgs), source.predict([np.ascontiguousarray(i[::-1]) for i in imgs])
    mean_log = 0.5 * (np.log(a.probabilities.astype(np.float64)) + np.log(d.probabilities.astype(np.float64)))
    want = np.exp(mean_log - mean_log.max(axis=1, keepdims=True))
    np.testing.assert_allclose(c.probabilities, want / want.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    r = _cli(*common, "--model", "classifier", "--out", "z", "--init-from", "model", "--cam-stride", "8",
             "--class-val-fraction", "0.3", cwd=trained, ok=False)
    assert "trained at CAM stride 16" in r.stderr, r.stderr
    assert not any((trained / d).exists() for d in ("x", "y", "z"))


@pytest.mark.parametrize("batch", [1, 3])
def test_measure_against_every_map_at_once(trained, tile_root, monkeypatch, batch):
    """measure() adds up its figures batch by batch: equal to classification_metrics and
    class_metrics.cam_localization over all predictions and maps at once, and to a float64
    cross-entropy. (The tiny model classifies few defects right: its probabilities are replaced by
    ones that make all but one good and one defective image correct; the maps stay the model's.)"""
    from edge_sdk.models import load_model

    model = load_model(trained / "model")
    test = load_dataset(tile_root, "mvtec", "train", category="tile", classes=True)  # more defects
    y = np.array([model.class_index(t) for t in test.defect_types])
    k = len(model.classes)
    chosen = y.copy()
    for miss in (np.flatnonzero(y == model.good)[0], np.flatnonzero(y != model.good)[0]):
        chosen[miss] = (y[miss] + 1) % k  # one good and one defective image wrong
    probs = np.full((len(y), k), 0.1 / (k - 1), np.float32)
    probs[np.arange(len(y)), chosen] = 0.9
    real_predict = model.predict
    seen = []

    def predict(images):
        pred = real_predict(images)
        pred.probabilities = probs[len(seen):len(seen) + len(images)]
        seen.extend(range(len(images)))
        return pred

    monkeypatch.setattr(model, "predict", predict)
    model.batch_size = batch
    res, got = model.measure(test, progress=False)
    every = model.predict_dataset(test, progress=False, keep_maps=True)  # the real maps, all at once
    np.testing.assert_array_equal(res["probabilities"], probs)
    want = classification_metrics(y, chosen, model.classes)
    assert (got["accuracy"], got["macro_f1"]) == (want["accuracy"], want["macro_f1"])
    assert got["loss"] == pytest.approx(np.mean(-np.log(probs[np.arange(len(y)), y].astype(np.float64))), rel=1e-12)
    right = np.flatnonzero((y != model.good) & (chosen == y))
    loc = cam_localization([every["maps"][i] for i in right], [every["masks"][i] for i in right])
    assert got["cam_images"] == loc["cam_images"] >= 2
    assert got["cam_accuracy"] == pytest.approx(loc["cam_accuracy"], abs=1e-12)
    assert got["cam_iou"] == pytest.approx(loc["cam_iou"], rel=1e-9)


@pytest.mark.parametrize("dense", [False, True])
def test_the_kept_epochs_logged_figures_are_the_saved_models(tile_root, dense):
    """Training's per-epoch validation is the saved model's measurement: the kept epoch's logged
    accuracy, macro-F1 and CAM accuracy are exactly those in the model's metrics, strided and
    dense map alike."""
    from edge_sdk.models.classifier import DefectClassifier

    data = load_dataset(tile_root, "mvtec", "train", category="tile", classes=True)
    model = DefectClassifier(input_size=48, epochs=2, patience=2, batch_size=4, cam_guidance=1.0, cam_dense=dense,
                             select_by="macro_f1+cam", val_fraction=0.3).fit(data, progress=False)
    info, saved = model.training_info, model.metrics["validation"]
    kept = info["history"][info["best_epoch"] - 1]
    assert info["epochs_run"] == 2
    assert (kept["val_accuracy"], kept["val_macro_f1"]) == (saved["accuracy"], saved["macro_f1"])
    assert (kept["val_cam_accuracy"], kept["val_cam_images"]) == (saved["cam_accuracy"], saved["cam_images"])
    assert model.grid == ((6, 6) if dense else (3, 3))


def test_cli_eval_export_predict(trained, tile_root):
    r = _cli("eval", "model", "--json", "eval.json", "--heatmaps", "heat", "--num-heatmaps", "2", "--no-progress",
             cwd=trained)
    out = json.loads((trained / "eval.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion", "cam_accuracy", "cam_iou", "eject_rate"):
        assert key in out, key
    assert out["images"] == len(load_dataset(tile_root, "mvtec", "test", category="tile", classes=True))
    assert sum(map(sum, out["confusion"]["matrix"])) == out["images"]
    assert len(os.listdir(trained / "heat")) == 2 and "macro_f1" in r.stdout
    _cli("export", "model", "--out", "bundle", "--real", "2", cwd=trained)
    _cli("predict", "bundle", os.path.join(str(tile_root), "tile", "test"), "--out", "v.json", "--heatmaps",
         "pred_heat", cwd=trained)
    rows = json.loads((trained / "v.json").read_text())["results"]
    assert rows and all(r["top_class"] in ("good", "scratch", "spot") for r in rows)
    assert all(abs(sum(v for k, v in r.items() if k.startswith("p_")) - 1) < 1e-4 for r in rows)


def test_threshold_revision_refuses_a_classifier_bundle(tmp_path):
    from edge_sdk.bundle.revise import revise_decision
    from edge_sdk.converters import export_bundle

    model = classifier_model(classes=("good", "crack"))
    model.calibration = {"threshold": 0.4, "min": 0.0, "max": 1.0, "accept_threshold": 0.6, "reject_threshold": 0.7}
    out = export_bundle(model.export_parts(), tmp_path / "b", model_type="classifier").bundle
    with pytest.raises(BundleError, match="accept_threshold and reject_threshold"):
        revise_decision(out, tmp_path / "b2", reason="tighter", threshold=0.3)
