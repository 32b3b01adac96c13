"""Region groups (regions[].group, e.g. the vials of a strip) in the runtime: each group's result is
the largest normalized score of its regions, that region's raw score, and the product rule over
its regions' verdicts; compared with a NumPy aggregation of the runtime's own region results on
random frames, through Python and the C++ core."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk  # noqa: E402
from edge_sdk.converters import export_bundle  # noqa: E402
from tests.bundle_helpers import ssim_parts  # noqa: E402


def _bundle(tmp_path, thresholds):
    frame = {"width": 96, "height": 40}
    regions = [dict(name=f"r{k}", x=24 * k, y=0, width=24, height=40, threshold=t, group=f"v{k // 2}")
               for k, t in enumerate(thresholds)]
    regions.append(dict(name="alone", x=0, y=0, width=8, height=8, threshold=0.5))  # in no group
    return export_bundle(ssim_parts(regions=regions, frame=frame), tmp_path / "b", model_type="resganad").bundle


def test_groups_aggregate_their_regions(tmp_path, rng):
    b = _bundle(tmp_path, [0.3, 0.9, 0.5, 0.2])
    rt = edge_sdk.Runtime(b, threads=1)
    assert rt.group_names == ["v0", "v1"]
    frames = rng.integers(0, 256, (6, 40, 96), dtype=np.uint8)
    frames[:2] = 128  # flat frames: low scores, so both verdicts occur
    res = rt.predict(list(frames))
    names = res.regions.names
    members = {"v0": [names.index("r0"), names.index("r1")], "v1": [names.index("r2"), names.index("r3")]}
    verdicts_seen = set()
    for g, name in enumerate(res.groups.names):
        idx = members[name]
        norm = res.regions.normalized[:, idx]
        best = np.argmax(norm, axis=1)
        np.testing.assert_array_equal(res.groups.normalized[:, g], norm.max(axis=1))
        np.testing.assert_array_equal(res.groups.scores[:, g], res.regions.scores[:, idx][np.arange(len(frames)), best])
        v = res.regions.verdicts[:, idx]
        want = np.where((v == "reject").any(1), "reject", np.where((v == "accept").all(1), "accept", "review"))
        np.testing.assert_array_equal(res.groups.verdicts[:, g], want)
        verdicts_seen |= set(want)
    assert {"accept", "reject"} <= verdicts_seen
    one = res[0]
    assert set(one.groups) == {"v0", "v1"} and one.groups["v0"]["verdict"] in ("accept", "reject", "review")


def test_bad_group_names_are_refused(tmp_path):
    from edge_sdk.bundle.schema import BundleError

    frame = {"width": 32, "height": 32}
    with pytest.raises(BundleError, match="regions.r0.group"):
        export_bundle(ssim_parts(regions=[dict(name="r0", x=0, y=0, width=32, height=32, threshold=0.5, group="")],
                                 frame=frame), tmp_path / "b", model_type="resganad")


def test_vial_layout_groups_each_vial():
    from edge_sdk.data.vial_strip import region_layout
    from edge_sdk.regions import RegionLayout

    layout = RegionLayout.from_dict(region_layout(32))
    groups = layout.groups()
    assert list(groups) == [f"v{v}" for v in range(5)] and all(len(m) == 4 for m in groups.values())
