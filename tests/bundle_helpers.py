"""Small networks and ExportParts-like objects for the bundle, converter and runtime tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def tiny_backbone(channels: int = 3, features: int = 8, seed: int = 0):
    """A small CNN: (N, C, H, W) -> (N, features, H/4, W/4), deterministic weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, features, 3, stride=2, padding=1), torch.nn.AvgPool2d(3, 1, 1),
    )
    return net.eval()


def tiny_parts(size=(32, 40), channels: int = 3, features: int = 8, kind: str = "knn", seed: int = 0,
               regions=None):
    """ExportParts-shaped namespace (see CONTRACTS.md) around tiny_backbone."""
    h, w = size
    rng = np.random.default_rng(seed)
    net = tiny_backbone(channels, features, seed)
    return SimpleNamespace(
        networks={"backbone": (net, ["image"], ["features"])},
        arrays={"memory_bank": rng.standard_normal((50, features)).astype(np.float32),
                "ids": np.arange(5, dtype=np.int64)},
        preprocess=dict(height=h, width=w, channels=channels, mean=[0.485, 0.456, 0.406][:channels] if channels == 3 else [0.5],
                        std=[0.229, 0.224, 0.225][:channels] if channels == 3 else [0.25], scale=1 / 255,
                        resize="bilinear", antialias=False),
        postprocess={"kind": kind, "feature_output": "features", "grid": [h // 4, w // 4], "k": 1,
                     "upsample": "bilinear", "blur_sigma": 4.0, "score": "max_blurred"},
        calibration={"threshold": 2.5, "min": 0.5, "max": 6.0},
        regions=regions,
    )


def tiny_autoencoder(channels: int = 1, seed: int = 0):
    """(N, C, H, W) -> (N, C, H, W) reconstruction, deterministic weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, channels, 3, padding=1), torch.nn.Sigmoid(),
    )
    return net.eval()


def ssim_parts(size: int = 32, channels: int = 1, blur_sigma: float = 2.0, seed: int = 0, regions=None, frame=None,
               calibration=None):
    """ExportParts of a reconstruction model, as ResGANAD exports them (postprocess kind "ssim")."""
    post = {"kind": "ssim", "network": "reconstructor", "input": "input", "reconstruction_output": "reconstruction",
            "ssim": {"window": 7, "sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0},
            "image_score": "one_minus_mean_ssim", "map": "abs_diff_channel_mean", "map_upsample": "bilinear",
            "map_size": "input", "blur_sigma": blur_sigma, "heatmap": "minmax_per_patch"}
    if frame is not None:
        post["frame"] = frame
    return SimpleNamespace(
        networks={"reconstructor": (tiny_autoencoder(channels, seed), ["input"], ["reconstruction"])},
        arrays={},
        preprocess=dict(height=size, width=size, channels=channels, mean=[0.0] * channels, std=[1.0] * channels,
                        scale=1 / 255, resize="bilinear", antialias=False),
        postprocess=post,
        calibration=calibration or {"threshold": 0.5, "min": 0.3, "max": 0.7},
        regions=regions,
    )


def ssim_reference(parts, images):
    """What a reconstruction model's predict computes (ResGANAD's recipe), with edge_sdk.kernels and
    the PyTorch network: (scores (N,), maps list at each image's size)."""
    import torch

    from edge_sdk import kernels

    pre = parts.preprocess
    post = parts.postprocess
    net = parts.networks["reconstructor"][0]
    scores, maps = [], []
    for img in images:
        img = img if img.ndim == 3 else img[..., None]
        x = kernels.preprocess(np.ascontiguousarray(img[None]), (pre["height"], pre["width"]), mean=pre["mean"],
                               std=pre["std"], channels=pre["channels"], scale=pre["scale"])
        with torch.no_grad():
            x_hat = np.ascontiguousarray(net(torch.from_numpy(x)).numpy())
        scores.append(1.0 - kernels.ssim(x, x_hat, **post["ssim"])[0])
        diff = kernels.abs_diff(x, x_hat).mean(axis=1, dtype=np.float32)
        m = kernels.resize_bilinear(np.ascontiguousarray(diff), img.shape[:2])
        if post["blur_sigma"] > 0:
            m = kernels.gaussian_blur(m, post["blur_sigma"])
        maps.append(m[0])
    return np.asarray(scores, np.float32), maps


class _Tokens:
    """(N, C, H, W) -> features (N, L, C) on an (H/4, W/4) grid, as the embedding models' networks."""

    @staticmethod
    def make(channels: int, features: int, seed: int):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(seed)
                self.conv1 = torch.nn.Conv2d(channels, 16, 3, stride=2, padding=1)
                self.conv2 = torch.nn.Conv2d(16, features, 3, stride=2, padding=1)

            def forward(self, x):
                f = self.conv2(torch.relu(self.conv1(x)))
                return f.flatten(2).transpose(1, 2).contiguous()

        return Net().eval()


def embedding_parts(kind: str, size=(32, 40), features: int = 6, seed: int = 0, image_score: str = "max_raw",
                    blur_sigma: float = 2.0, reweight: bool = False, bank_dtype=np.float32, n_train: int = 12):
    """ExportParts of an embedding model (kind "mahalanobis", "knn" or "mhbc") with statistics fitted
    on random training images, in the layout edge_sdk.models exports (features (N, L, C))."""
    import torch

    from edge_sdk import kernels

    h, w = size
    gh, gw = (h + 3) // 4, (w + 3) // 4
    net = _Tokens.make(3, features, seed)
    rng = np.random.default_rng(seed)
    pre = dict(height=h, width=w, channels=3, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], scale=1 / 255,
               resize="bilinear", antialias=False)
    train = rng.integers(0, 256, (n_train, h, w, 3), dtype=np.uint8)
    x = kernels.preprocess(train, (h, w), mean=pre["mean"], std=pre["std"], channels=3)
    with torch.no_grad():
        f = net(torch.from_numpy(x)).numpy().astype(np.float64)  # (n, L, C)
    post = {"kind": kind, "network": "features", "features_output": "features", "grid": [gh, gw],
            "channels": features, "map_upsample": "bilinear", "map_size": "input", "blur_sigma": blur_sigma,
            "image_score": image_score}
    arrays = {}
    if kind in ("mahalanobis", "mhbc"):
        mean = f.mean(axis=0)
        d = f - mean
        cov = np.einsum("nlc,nld->lcd", d, d) / (len(f) - 1) + 0.01 * np.eye(features)
        arrays["mean"] = mean.astype(np.float32)
        arrays["chol"] = np.linalg.cholesky(cov).astype(np.float32)
        post["arrays"] = {"mean": "mean", "chol": "chol"}
    if kind == "mhbc":
        z = kernels.whiten(np.ascontiguousarray(f.astype(np.float32)), arrays["mean"], arrays["chol"])
        arrays["centroids"] = np.ascontiguousarray(z[:3].transpose(1, 0, 2))  # (L, K=3, C)
        post["arrays"]["centroids"] = "centroids"
        post["k"] = 1
    if kind == "knn":
        arrays["bank"] = np.ascontiguousarray(f.reshape(-1, features)[::3].astype(bank_dtype))
        post["arrays"] = {"bank": "bank"}
        post["k"] = 1
        post["reweighting"] = {"enabled": reweight, "num_neighbors": 5}
    return SimpleNamespace(networks={"features": (net, ["input"], ["features"])}, arrays=arrays, preprocess=pre,
                           postprocess=post, calibration={"threshold": 1.0, "min": 0.0, "max": 2.0}, regions=None)


def embedding_reference(parts, images):
    """The embedding models' predict (edge_sdk.models.base.EmbeddingModel.predict and PatchCore's
    reweighting) written out with edge_sdk.kernels and the PyTorch network: (scores, maps)."""
    import torch

    from edge_sdk import kernels

    pre, post, a = parts.preprocess, parts.postprocess, parts.arrays
    net = parts.networks["features"][0]
    gh, gw = post["grid"]
    scores, maps = [], []
    for img in images:
        img = img if img.ndim == 3 else img[..., None]
        x = kernels.preprocess(np.ascontiguousarray(img[None]), (pre["height"], pre["width"]), mean=pre["mean"],
                               std=pre["std"], channels=3, scale=pre["scale"])
        with torch.no_grad():
            f = np.ascontiguousarray(net(torch.from_numpy(x)).numpy())
        if post["kind"] == "mahalanobis":
            g = kernels.mahalanobis(f, a["mean"], a["chol"])
        elif post["kind"] == "mhbc":
            g = kernels.local_nearest(kernels.whiten(f, a["mean"], a["chol"]), a["centroids"])
        else:
            dist, idx = kernels.knn(np.ascontiguousarray(f.reshape(-1, f.shape[-1])), a["bank"], k=1)
            g = dist[:, 0][None]
        grid = g.reshape(1, gh, gw).astype(np.float32)
        m = kernels.resize_bilinear(np.ascontiguousarray(grid), img.shape[:2])
        if post["blur_sigma"] > 0:
            m = kernels.gaussian_blur(m, post["blur_sigma"])
        maps.append(m[0])
        if post["image_score"] == "max_blurred":
            scores.append(m[0].max())
            continue
        flat = grid.reshape(-1)
        best = int(flat.argmax())
        s = np.float32(flat[best])
        rw = post.get("reweighting") or {}
        if post["kind"] == "knn" and rw.get("enabled"):
            bank = a["bank"]
            b = min(rw["num_neighbors"], bank.shape[0])
            nn = idx[best, 0]
            _, support = kernels.knn(np.ascontiguousarray(bank[nn][None].astype(np.float32)), bank, k=b)
            d, _ = kernels.knn(np.ascontiguousarray(f[0, best][None]), np.ascontiguousarray(bank[support[0]]), k=b)
            d = d[0].astype(np.float64)
            s = np.float32((1.0 - 1.0 / np.exp(d - d[0]).sum()) * s)
        scores.append(s)
    return np.asarray(scores, np.float32), maps


class _MaskHead:
    @staticmethod
    def make(channels: int, seed: int):
        import torch

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(seed + 1)
                self.conv = torch.nn.Conv2d(2 * channels, 1, 3, padding=1)

            def forward(self, x, rec):
                return torch.sigmoid(self.conv(torch.cat([x, rec], dim=1)))

        return Head().eval()


def mask_parts(size: int = 32, channels: int = 1, roi: bool = True, score_blur_sigma: float = 2.0, seed: int = 0):
    """ExportParts as GRD-Net exports them (postprocess kind "mask": two networks)."""
    arrays = {}
    if roi:
        r = np.ones((size, size), np.float32)
        r[:, : size // 4] = 0.0
        arrays["roi"] = r
    post = {"kind": "mask", "network": "reconstructor", "input": "input", "reconstruction_output": "reconstruction",
            "mask_network": "mask_head", "mask_inputs": ["input", "reconstruction"], "mask_output": "mask",
            "arrays": {"roi": "roi"} if roi else {}, "image_score": "max_blurred",
            "score_blur_sigma": score_blur_sigma, "score_size": "model", "map": "mask", "map_upsample": "bilinear",
            "map_size": "input", "blur_sigma": 0.0, "heatmap": "raw"}
    return SimpleNamespace(
        networks={"reconstructor": (tiny_autoencoder(channels, seed), ["input"], ["reconstruction"]),
                  "mask_head": (_MaskHead.make(channels, seed), ["input", "reconstruction"], ["mask"])},
        arrays=arrays,
        preprocess=dict(height=size, width=size, channels=channels, mean=[0.0] * channels, std=[1.0] * channels,
                        scale=1 / 255, resize="bilinear", antialias=False),
        postprocess=post, calibration={"threshold": 0.6, "min": 0.2, "max": 0.9}, regions=None)


def mask_reference(parts, images):
    """GRD-Net's predict with edge_sdk.kernels and the PyTorch networks: (scores, maps)."""
    import torch

    from edge_sdk import kernels

    pre, post = parts.preprocess, parts.postprocess
    rec, head = parts.networks["reconstructor"][0], parts.networks["mask_head"][0]
    scores, maps = [], []
    for img in images:
        img = img if img.ndim == 3 else img[..., None]
        x = torch.from_numpy(kernels.preprocess(np.ascontiguousarray(img[None]), (pre["height"], pre["width"]),
                                                mean=pre["mean"], std=pre["std"], channels=pre["channels"]))
        with torch.no_grad():
            p = head(x, rec(x))[:, 0]
            if "roi" in parts.arrays:
                p = p * torch.from_numpy(parts.arrays["roi"])
        p = np.ascontiguousarray(p.numpy(), dtype=np.float32)
        s = kernels.gaussian_blur(p, post["score_blur_sigma"]) if post["score_blur_sigma"] > 0 else p
        scores.append(s.reshape(-1).max())
        maps.append(kernels.resize_bilinear(p, img.shape[:2])[0])
    return np.asarray(scores, np.float32), maps


def classifier_model(classes=("good", "crack", "spot"), size: int = 48, seed: int = 0):
    """A DefectClassifier (postprocess kind "classifier") with ImageNet features and a seeded random
    head, not trained: its probabilities vary from image to image, which is all the runtime and
    C ABI comparisons need. Set ``calibration`` (accept_threshold, reject_threshold) before export."""
    from edge_sdk.models.classifier import DefectClassifier

    model = DefectClassifier(input_size=size, classes=list(classes), seed=seed, blur_sigma=2.0)
    model._build(pretrained=True)
    return model


def midway(values) -> float:
    """A threshold halfway between the two middle values (as calibration places them), so that no
    decision hinges on the last bits of a float."""
    s = np.sort(np.asarray(values, np.float64))
    return float((s[len(s) // 2 - 1] + s[len(s) // 2]) / 2) if len(s) > 1 else float(s[0]) + 1e-3


def classifier_thresholds(model, probs) -> None:
    """Sets accept / reject thresholds between the given probabilities, so that several verdicts occur."""
    from edge_sdk.class_decision import top_defect

    pg, q = probs[:, model.good], top_defect(probs, model.good)
    accept = midway(pg)
    reject = midway(q[pg < accept])
    model.calibration = {"threshold": 1.0 - accept, "min": 0.0, "max": 1.0, "accept_threshold": accept,
                         "reject_threshold": reject}
