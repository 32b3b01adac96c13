"""Region layouts, per-region thresholds, product decisions and k-of-n evaluation."""

import json
import os

import numpy as np
import pytest

from edge_sdk.regions import (RegionError, RegionLayout, RegionPatches, calibrate_region_thresholds, decide,
                              evaluate_decisions, k_of_n_correct)


def _layout_dict():
    return {"schema_version": 1, "frame": {"width": 40, "height": 30},
            "regions": [{"name": "a", "x": 0, "y": 0, "width": 20, "height": 30, "part": "left"},
                        {"name": "b", "x": 20, "y": 10, "width": 20, "height": 20, "threshold": 0.5}]}


def test_layout_round_trip_and_cut(tmp_path, rng):
    lay = RegionLayout.from_dict(_layout_dict())
    assert lay.names == ["a", "b"] and lay.regions[0].extra == {"part": "left"}
    lay.save(tmp_path)
    again = RegionLayout.load(tmp_path)
    assert again == lay and again.to_dict() == lay.to_dict()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    img = rng.integers(0, 255, (30, 40), dtype=np.uint8)
    a, b = lay.cut(img)
    np.testing.assert_array_equal(a, img[:, :20])
    np.testing.assert_array_equal(b, img[10:30, 20:40])
    with pytest.raises(RegionError, match="does not match the layout"):
        lay.cut(img[:, :39])
    with pytest.raises(RegionError, match="without a threshold.*'a'"):
        lay.thresholds()
    t = lay.with_thresholds({"a": 0.1, "b": 0.2})
    assert t.bundle_regions() == [dict(name="a", x=0, y=0, width=20, height=30, threshold=0.1),
                                  dict(name="b", x=20, y=10, width=20, height=20, threshold=0.2)]


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.pop("frame"), "missing 'frame'"),
    (lambda d: d["regions"][1].update(name="a"), r"regions\[1\]\.name: duplicate"),
    (lambda d: d["regions"][1].update(x=25), r"regions\[1\] \(b\): rectangle .* leaves the 40x30 frame"),
    (lambda d: d["regions"][0].update(width=0), "must be positive"),
    (lambda d: d["regions"][0].update(y=True), r"regions\[0\]\.y: expected an integer"),
    (lambda d: d["regions"][1].update(threshold="high"), r"regions\[1\]\.threshold"),
    (lambda d: d.update(regions=[]), "non-empty list"),
    (lambda d: d.update(schema_version=2), "schema_version"),
])
def test_layout_errors_name_file_and_field(tmp_path, edit, match):
    d = _layout_dict()
    edit(d)
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(d))
    with pytest.raises(RegionError, match=match) as info:
        RegionLayout.load(path)
    assert str(path) in str(info.value)


def test_layout_missing_or_broken_file(tmp_path):
    with pytest.raises(RegionError, match="not found"):
        RegionLayout.load(tmp_path)
    (tmp_path / "regions.json").write_text("{")
    with pytest.raises(RegionError, match="not valid JSON"):
        RegionLayout.load(tmp_path)


def test_region_patches_on_vial_strips(tmp_path):
    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import make_vial_strip_dataset

    root = make_vial_strip_dataset(str(tmp_path), count=1, products=8, acquisitions=1, region_size=32, seed=2,
                                   progress=False)
    test = load_dataset(root, "mvtec", "test", gray=True)
    lay = RegionLayout.load(root)
    patches = RegionPatches(test, lay)
    assert len(patches) == 20 * len(test)
    meta = {os.path.join(root, e["path"]): e for e in json.load(open(os.path.join(root, "strips.json")))["images"]}
    labels = patches.labels
    for f in range(len(test)):
        frame = test[f]
        e = meta[frame.path]
        for j, name in enumerate(lay.names):
            k = f * 20 + j
            p = patches[k]
            assert patches.region_names[k] == name and patches.frame_index[k] == f
            np.testing.assert_array_equal(p.image, lay.cut(frame.image)[j])
            assert p.path == f"{frame.path}#{name}"
            assert p.label == labels[k]
            if name == e["region"]:
                assert p.label == 1 and p.defect_type == e["defect_type"] and p.mask.any()
            elif e["defect_type"] == "good":
                assert p.label == 0 and p.mask is None
    assert labels.sum() >= 4  # every defective frame has its defective region


def _best_accuracy(scores, labels):
    best = 0.0
    for t in np.concatenate([np.unique(scores), [np.inf]]):
        best = max(best, ((scores >= t) == labels).mean())
    return best


def test_region_thresholds_accuracy_quantile_auto(rng):
    names = np.array(["a"] * 200 + ["b"] * 100)
    labels = np.zeros(300, np.int64)
    labels[150:200] = 1  # region a has 50 defects, b none
    scores = rng.normal(0, 1, 300) + 2.0 * labels
    thr, used = calibrate_region_thresholds(scores, labels, names)
    assert used == {"a": "accuracy", "b": "quantile"}
    sa, la = scores[:200], labels[:200]
    assert ((sa >= thr["a"]) == la).mean() == pytest.approx(_best_accuracy(sa, la))
    assert thr["b"] == pytest.approx(np.quantile(scores[200:], 0.99))
    thr_q, used_q = calibrate_region_thresholds(scores, labels, names, method="quantile", quantile=0.9)
    assert used_q == {"a": "quantile", "b": "quantile"}
    assert thr_q["a"] == pytest.approx(np.quantile(sa[la == 0], 0.9))
    with pytest.raises(ValueError, match="region 'b'.*needs good and defective"):
        calibrate_region_thresholds(scores, labels, names, method="accuracy")
    with pytest.raises(ValueError, match="no patches of region 'c'"):
        calibrate_region_thresholds(scores, labels, names, names=["a", "c"])
    with pytest.raises(ValueError, match="method"):
        calibrate_region_thresholds(scores, labels, names, method="f2")


def test_decide_rules():
    scores = np.array([[0.1, 0.5], [0.49, 0.2], [np.nan, 0.0]])
    reg, prod = decide(scores, [0.5, 0.5])
    np.testing.assert_array_equal(reg, [[False, True], [False, False], [True, False]])  # >= rejects, NaN rejects
    np.testing.assert_array_equal(prod, [True, False, True])
    with pytest.raises(ValueError, match="thresholds"):
        decide(scores, [0.5])


def test_evaluate_patch_strip_and_k_of_n():
    # 4 products x 10 acquisitions, 2 regions; thresholds 0.5.
    # p0 defective in region 1, rejected 7 of 10 -> correct; p1 defective, rejected 6 of 10 -> wrong;
    # p2 good, 3 false rejects -> correct (7 accepted); p3 good, 4 false rejects -> wrong.
    scores = np.zeros((40, 2))
    labels = np.zeros((40, 2), np.int64)
    products = np.repeat(np.arange(4), 10)
    labels[0:20, 1] = 1
    scores[0:7, 1] = 0.9
    scores[10:16, 1] = 0.9
    scores[20:23, 0] = 0.9
    scores[30:34, 0] = 0.7
    res = evaluate_decisions(scores, labels, [0.5, 0.5], ["r0", "r1"], products=products, k=7)
    assert res["run"] == {"k": 7, "acquisitions": [10], "products": 4, "defective": 2, "accuracy": 0.5,
                          "tpr": 0.5, "tnr": 0.5}
    strip = res["strip"]
    assert strip["n"] == 40 and strip["defective"] == 20
    assert strip["tpr"] == pytest.approx(13 / 20) and strip["tnr"] == pytest.approx(13 / 20)
    r1 = res["patch"]["regions"]["r1"]
    assert r1["tpr"] == pytest.approx(13 / 20) and r1["tnr"] == 1.0
    r0 = res["patch"]["regions"]["r0"]
    assert np.isnan(r0["tpr"]) and r0["tnr"] == pytest.approx(33 / 40)
    assert res["patch"]["all"]["accuracy"] == pytest.approx((40 - 7 + 13 + 20) / 80)
    kn = k_of_n_correct(labels.any(1), (scores >= 0.5).any(1), products, k=7)
    assert kn[0] == (True, 7, 10, True) and kn[1] == (True, 6, 10, False)
    assert kn[2] == (False, 7, 10, True) and kn[3] == (False, 6, 10, False)
    with pytest.raises(ValueError, match="both good and defective"):
        k_of_n_correct([0, 1], [0, 0], [0, 0], k=1)


def test_group_level_decisions():
    # 4 regions, two groups of two; a group is rejected when any of its regions is, defective when any is
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.6], [0.1, 0.1, 0.1, 0.1]])
    labels = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    res = evaluate_decisions(scores, labels, [0.5] * 4, ["a0", "a1", "b0", "b1"], groups={"a": [0, 1], "b": [2, 3]})
    a, b = res["group"]["groups"]["a"], res["group"]["groups"]["b"]
    assert a == {"n": 3, "defective": 1, "accuracy": 1.0, "tpr": 1.0, "tnr": 1.0}
    # frame 1: group b defective (b0) and rejected (by b1): a hit at group level, a miss at region level
    assert b["tpr"] == 1.0 and b["accuracy"] == 1.0
    assert res["group"]["all"]["n"] == 6 and res["group"]["all"]["accuracy"] == 1.0
    assert res["patch"]["regions"]["b0"]["tpr"] == 0.0


def test_product_ids_and_region_patch_evaluation(tmp_path):
    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import make_vial_strip_dataset
    from edge_sdk.regions import evaluate_region_patches, product_ids

    assert product_ids(["/a/p0003_a07.png", "p12_a00.jpg"]).tolist() == [3, 12]
    assert product_ids(["/a/p0003_a07.png", "x.png"]) is None
    root = make_vial_strip_dataset(str(tmp_path), count=1, products=2, acquisitions=7, region_size=16, seed=0,
                                   progress=False)
    test = load_dataset(root, "mvtec", "test", gray=True)
    patches = RegionPatches(test, RegionLayout.load(root))
    y = patches.labels
    # a perfect scorer: score = label; thresholds 0.5 everywhere
    res = evaluate_region_patches(y.astype(float), patches, np.full(20, 0.5), k=7)
    assert res["strip"]["accuracy"] == 1.0 and res["patch"]["all"]["accuracy"] == 1.0
    assert res["run"]["products"] == 2 and res["run"]["accuracy"] == 1.0
    res = evaluate_region_patches(np.zeros(len(patches)), patches, np.full(20, 0.5), k=7)
    assert res["run"]["tpr"] == 0.0 and res["run"]["tnr"] == 1.0
    with pytest.raises(ValueError, match="one per patch"):
        evaluate_region_patches(np.zeros(3), patches, np.full(20, 0.5))


def test_views_share_one_threshold_from_their_pooled_patches(rng):
    d = {"frame": {"width": 30, "height": 10},
         "regions": [dict(name=f"r{i}", x=10 * i, y=0, width=10, height=10, view="top" if i < 2 else "side")
                     for i in range(3)]}
    layout = RegionLayout.from_dict(d)
    assert layout.views() == {"r0": "top", "r1": "top", "r2": "side"}
    names = np.repeat(["r0", "r1", "r2"], 50)
    scores = rng.normal(0, 1, 150) + np.repeat([0.0, 3.0, 10.0], 50)
    labels = np.zeros(150, dtype=int)
    thr, _ = calibrate_region_thresholds(scores, labels, names, method="quantile", quantile=0.9, views=layout.views())
    pooled = np.quantile(scores[:100], 0.9)
    assert thr["r0"] == thr["r1"] == pytest.approx(pooled, rel=0.02)
    assert thr["r2"] == pytest.approx(np.quantile(scores[100:], 0.9), rel=0.02)
    alone, _ = calibrate_region_thresholds(scores, labels, names, method="quantile", quantile=0.9)
    assert alone["r0"] != alone["r1"]  # without views each region has its own
    bad = {**d, "regions": [{**d["regions"][0], "view": ""}]}
    with pytest.raises(RegionError, match=r"regions\[0\]\.view"):
        RegionLayout.from_dict(bad)


def _brute_force_accuracy(scores, labels, t, spread, level, products, k):
    """Accuracy at `level` of thresholds t + d * spread for d on a dense grid, by the decision rule."""
    best = -1.0
    margins = (scores - t) / spread
    grid = np.concatenate([np.linspace(margins.min() - 1, margins.max() + 1, 3001), margins.ravel() - 1e-9,
                           margins.ravel() + 1e-9])
    frame_label = labels.any(axis=1)
    for d in grid:
        _, frame_rej = decide(scores, t + d * spread)
        if level == "strip":
            acc = np.mean(frame_rej == frame_label)
        else:
            ids = np.unique(products)
            rej = np.array([frame_rej[products == i].sum() >= k for i in ids])
            lab = np.array([frame_label[products == i].any() for i in ids])
            acc = np.mean(rej == lab)
        best = max(best, acc)
    return best


@pytest.mark.parametrize("level", ["strip", "run"])
def test_retune_finds_the_best_shift_for_the_level(rng, level):
    from edge_sdk.regions import retune_thresholds

    n_products, n_acq, r = 12, 10, 4
    products = np.repeat(np.arange(n_products), n_acq)
    labels = np.zeros((n_products * n_acq, r), dtype=int)
    bad = products % 3 == 0  # every third product defective, in one region, seen in most acquisitions
    seen = rng.random(len(products)) < 0.8
    labels[bad & seen, 1] = 1
    scores = rng.normal(1.0, 0.2, labels.shape) * np.array([1.0, 2.0, 0.5, 1.0]) + labels * rng.uniform(0.4, 1.5, labels.shape)
    t = np.quantile(np.where(labels == 0, scores, np.nan), 0.999, axis=0, method="higher")  # strict: misses defects
    t = np.nan_to_num(t, nan=3.0)
    new, info = retune_thresholds(scores, labels, t, level=level, products=products, k=7, n=10)
    spread = np.array(info["spread"])
    assert np.allclose(new, t + info["delta"] * spread, rtol=1e-6, atol=1e-6)
    best = _brute_force_accuracy(scores, labels, t, spread, level, products, 7)
    assert info["after"]["accuracy"] == pytest.approx(best)
    assert info["after"]["accuracy"] >= info["before"]["accuracy"]
    assert info["after"]["accuracy"] > info["before"]["accuracy"]  # the strict start misses defective units
    # the reported figures are the decision rule's on the returned thresholds
    _, frame_rej = decide(scores, new)
    if level == "strip":
        assert info["after"]["accuracy"] == pytest.approx(np.mean(frame_rej == labels.any(axis=1)))
    assert info["units"] == (len(products) if level == "strip" else n_products)


def test_retune_refuses_what_it_cannot_tune_on(rng):
    from edge_sdk.regions import retune_thresholds

    scores = rng.normal(0, 1, (20, 3))
    with pytest.raises(ValueError, match="both good and defective"):
        retune_thresholds(scores, np.zeros((20, 3)), np.zeros(3), level="strip")
    labels = np.zeros((20, 3))
    labels[0, 0] = 1
    with pytest.raises(ValueError, match="needs products"):
        retune_thresholds(scores, labels, np.zeros(3), level="run")
    with pytest.raises(ValueError, match="fewer than k=7"):
        retune_thresholds(scores, labels, np.zeros(3), level="run", products=np.arange(20) // 5)
    with pytest.raises(ValueError, match="level"):
        retune_thresholds(scores, labels, np.zeros(3), level="patch")
