"""Writes the fixtures of the C/C++ SDK consumer tests into OUT_DIR:

  plain/    a small reconstruction-model bundle (SSIM post-processing), 32 x 32 RGB input, its
            threshold at the median score of plain_images so both verdicts occur
  regions/  the same network with three regions cut from 120 x 40 frames (left/middle/right)
  slow/     a heavier network on 256 x 256 images (tens of ms an image) for the deadline tests
  big/      a network with ~36 MB of weights and little compute (sharing of read-only data)
  kind_knn/ (PatchCore reweighting), kind_knn_plain/, kind_mahalanobis/, kind_mhbc/, kind_mask/
            small bundles of the other post-processing kinds (hot-path allocation count)
  classifier/ a supervised classifier (postprocess kind "classifier", classes good / crack / spot),
            48 x 48 input, thresholds between the probabilities of plain_images so several verdicts
            occur; py_results_classifier.txt: the Python API's class results on plain_images
  corrupt/  a copy of plain/ with one byte of backbone network flipped (checksum error)
  plain_images.{txt,bin}, frames.{txt,bin}, slow_images.{txt,bin}
            raw uint8 HWC images ("N H W C" in the .txt)
  py_results_plain.txt, py_results_frames.txt
            the Python API's results on the same images (edge_sdk.Runtime, the same C++ core),
            compared with the C program's by check_results.py
  frames/   the frames as binary PPM files, for the example host program
  png/      plain_images as PNG files (plain_000.png ...) and broken.png (not an image), for the
            OpenCV example host (cpp/examples/opencv_host, checked by check_opencv_host.py)

Usage: python cpp/sdk_tests/make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _write_images(out: Path, name: str, images: np.ndarray) -> None:
    n, h, w, c = images.shape
    (out / f"{name}.txt").write_text(f"{n} {h} {w} {c}\n")
    (out / f"{name}.bin").write_bytes(np.ascontiguousarray(images, dtype=np.uint8).tobytes())


def _images(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Smooth gradients (easy to reconstruct) and, every other image, a noisy patch (hard)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        base = 60 + 120 * (xx / w) * rng.uniform(0.5, 1.0) + 40 * (yy / h) * rng.uniform(0.5, 1.0)
        img = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 2, (h, w, 3))
        if i % 2:
            ph, pw = h // 3, w // 3
            y0, x0 = rng.integers(0, h - ph), rng.integers(0, w - pw)
            img[y0:y0 + ph, x0:x0 + pw] = rng.integers(0, 256, (ph, pw, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _heavy_parts(size: int):
    import torch

    from tests.bundle_helpers import ssim_parts

    torch.manual_seed(1)
    # Many similar layers: a cancelled network call stops between nodes, each a small part of it.
    layers = [torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU()]
    for _ in range(6):
        layers += [torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Conv2d(32, 3, 3, padding=1), torch.nn.Sigmoid()).eval()
    parts = ssim_parts(size=size, channels=3)
    parts.networks = {"reconstructor": (net, ["input"], ["reconstruction"])}
    return parts


class _BigWeights:
    """x + 0.01 * tanh(MLP(mean colour of x)): a 3072 x 3072 hidden layer, a reconstruction close to x."""

    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(2)
                self.mlp = torch.nn.Sequential(torch.nn.Linear(3, 3072), torch.nn.ReLU(), torch.nn.Linear(3072, 3072),
                                               torch.nn.ReLU(), torch.nn.Linear(3072, 3))

            def forward(self, x):
                return x + 0.01 * torch.tanh(self.mlp(x.mean(dim=(2, 3))))[:, :, None, None]

        return Net().eval()


def _big_weights_parts():
    from tests.bundle_helpers import ssim_parts

    parts = ssim_parts(size=32, channels=3)
    parts.networks = {"reconstructor": (_BigWeights(), ["input"], ["reconstruction"])}
    return parts


def _export(parts, out: Path, images: np.ndarray | None, **kw) -> Path:
    """Exports, and when images are given re-exports with the threshold at their median score."""
    import edge_sdk
    from edge_sdk.converters import export_bundle

    path = export_bundle(parts, out, model_type="resganad", model_name=out.name, overwrite=True, **kw).bundle
    if images is None:
        return path
    scores = np.asarray(edge_sdk.Runtime(path, threads=1, heatmaps=False).predict(list(images)).scores, np.float64)
    lo, hi = float(scores.min()), float(scores.max())
    parts.calibration = {"threshold": float(np.median(scores)), "min": lo, "max": hi if hi > lo else lo + 1.0}
    return export_bundle(parts, out, model_type="resganad", model_name=out.name, overwrite=True, **kw).bundle


def _write_results(path: Path, res, regions: bool) -> None:
    lines = []
    for i in range(len(res.scores)):
        fields = [f"{res.scores[i]:.9g}", f"{res.normalized[i]:.9g}", str(res.verdicts[i])]
        if regions:
            for k in range(len(res.regions.names)):
                fields += [f"{res.regions.scores[i][k]:.9g}", str(res.regions.verdicts[i][k])]
        lines.append(" ".join(fields))
    path.write_text("\n".join(lines) + "\n")


def _classifier_fixture(out: Path, images: np.ndarray) -> None:
    """classifier/ and py_results_classifier.txt: "K good accept reject", the class names, then per
    image "verdict top score p_0 .. p_K-1" (verdict codes, top -1 when not judged)."""
    import edge_sdk
    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import classifier_model, classifier_thresholds

    model = classifier_model(("good", "crack", "spot"), size=48, seed=3)
    classifier_thresholds(model, model.predict(list(images)).probabilities)
    path = export_bundle(model.export_parts(), out / "classifier", model_type="classifier", overwrite=True).bundle
    res = edge_sdk.Runtime(path, threads=1).predict(list(images))
    cal = model.calibration
    lines = [f"{len(model.classes)} {model.good} {cal['accept_threshold']!r} {cal['reject_threshold']!r}",
             " ".join(model.classes)]
    for i in range(len(images)):
        probs = " ".join(f"{p:.9g}" for p in res.class_probabilities[i])
        lines.append(f"{int(res.verdict_codes[i])} {int(res.top_class[i])} {res.scores[i]:.9g} {probs}")
    (out / "py_results_classifier.txt").write_text("\n".join(lines) + "\n")


def _bf16_fixture(out: Path) -> None:
    """plain_bf16/: plain/ with a bf16 variant of its network, added without the accuracy gate (the
    C test compares it with fp32 itself, on any CPU)."""
    import onnx

    from edge_sdk.bundle import read_bundle
    from edge_sdk.bundle.writer import add_networks
    from edge_sdk.converters import precision as P

    dst = out / "plain_bf16"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(out / "plain", dst)
    variants = {}
    for net in [n for n in read_bundle(dst).manifest["networks"] if n["precision"] == "fp32"]:
        file = f"{Path(net['file']).stem}.bf16.onnx"
        P.make_bf16(dst / net["file"], out / file)
        variants[file] = ({**net, "precision": "bf16", "file": file}, onnx.load(str(out / file)))
        (out / file).unlink()
    add_networks(dst, variants)


def main(out_dir: str) -> None:
    import torch
    from PIL import Image

    import edge_sdk
    from tests.bundle_helpers import ssim_parts

    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)

    plain_images = _images(rng, 12, 32, 32)
    _write_images(out, "plain_images", plain_images)
    plain = _export(ssim_parts(size=32, channels=3), out / "plain", plain_images)
    res = edge_sdk.Runtime(plain, threads=1).predict(list(plain_images))
    _write_results(out / "py_results_plain.txt", res, regions=False)
    # the same network with its acquisitions declared: 3 frames, judged with their rank images
    _export(ssim_parts(size=32, channels=3), out / "acquisition", None, acquisition_frames=3)
    # The same images as PNG files (RGB as stored), and one file that is no image, for the OpenCV host
    (out / "png").mkdir(exist_ok=True)
    for i, img in enumerate(plain_images):
        Image.fromarray(img).save(out / "png" / f"plain_{i:03d}.png")
    (out / "png" / "broken.png").write_bytes(b"not a png")

    frame = {"width": 120, "height": 40}
    frames = _images(rng, 6, 40, 120)
    crops = np.concatenate([frames[:, 4:36, x:x + 40] for x in (0, 40, 80)])
    probe = _export(ssim_parts(size=32, channels=3), out / "regions_probe", None)
    crop_scores = np.asarray(edge_sdk.Runtime(probe, threads=1, heatmaps=False).predict(list(crops)).scores)
    shutil.rmtree(out / "regions_probe")
    thr = float(np.median(crop_scores))
    regions = [dict(name=name, x=x, y=4, width=40, height=32, threshold=thr, group=group)
               for name, x, group in (("left", 0, "a"), ("middle", 40, "a"), ("right", 80, "b"))]
    regions_bundle = _export(ssim_parts(size=32, channels=3, regions=regions, frame=frame), out / "regions", None)
    _write_images(out, "frames", frames)
    res = edge_sdk.Runtime(regions_bundle, threads=1).predict(list(frames))
    _write_results(out / "py_results_frames.txt", res, regions=True)
    (out / "frames").mkdir(exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(out / "frames" / f"frame_{i:03d}.ppm")  # binary P6, read by the host example

    slow_images = _images(rng, 3, 256, 256)
    _write_images(out, "slow_images", slow_images)
    _export(_heavy_parts(256), out / "slow", slow_images)

    # Weights of about 36 MB for little compute: sharing them between contexts and between
    # runtimes opened from the same bundle shows in the resident memory.
    _export(_big_weights_parts(), out / "big", None)

    # One bundle per other post-processing kind, for the hot-path allocation count.
    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import embedding_parts, mask_parts

    for name, kind, parts in (("knn", "knn", embedding_parts("knn", reweight=True)),
                              ("knn_plain", "knn", embedding_parts("knn", reweight=False)),
                              ("mahalanobis", "mahalanobis", embedding_parts("mahalanobis")),
                              ("mhbc", "mhbc", embedding_parts("mhbc")), ("mask", "mask", mask_parts(channels=3))):
        export_bundle(parts, out / f"kind_{name}", model_type=kind, overwrite=True)

    _classifier_fixture(out, plain_images)

    _bf16_fixture(out)

    corrupt = out / "corrupt"
    if corrupt.exists():
        shutil.rmtree(corrupt)
    shutil.copytree(out / "plain", corrupt)
    onnx = next(corrupt.glob("*.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x40
    onnx.write_bytes(bytes(data))
    print(f"fixtures in {out} (corrupted {onnx.name})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
