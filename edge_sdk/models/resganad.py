"""ResGANAD: residual GAN autoencoder for anomaly detection on good patches only.

Scoring path (the runtime reproduces it from `export_parts`, postprocess kind "ssim"):

    uint8 patch -> kernels.preprocess (bilinear resize to size x size, x / 255, mean 0, std 1)
    -> X (N, C, S, S) -> reconstructor network (encoder + decoder) -> X^ (N, C, S, S)
    -> score = 1 - kernels.ssim(X, X^) (window 11, sigma 1.5, k1 0.01, k2 0.03, range 1, valid)
    -> map = channel mean of kernels.abs_diff(X, X^) (N, S, S) -> kernels.resize_bilinear to each
       input's own size -> kernels.gaussian_blur(blur_sigma) when blur_sigma > 0
    -> display heatmap = kernels.minmax_normalize(map) (per patch)

Training (good patches only): rotation within +-pi/8 and vertical flips, Perlin anomalies with
probability q = 0.75 (X* = (1-M)X + (1-b)MX + bN, b ~ U(0.5, 1)); the generator reconstructs X
from X*. Losses: adversarial = L2 between discriminator features of X and X^; contextual =
w_huber * Huber(X, X^) + w_ssim * (1 - SSIM(X, X^)) with the kernel's SSIM definition; encoder =
L1(z, z^); noise = L2 on the perturbed pixels; generator loss = w_adv * adv + w_con * con +
w_enc * enc + w_noise * noise (1, 50, 1, 3; 2 and 1 inside con). Adam (lr 1.5e-4 in the full
preset, 1e-3 in the small one; betas 0.5, 0.999), cosine decay with warm restarts each peaking at
a third of the previous, batch 32.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.models import storage
from edge_sdk.models.contract import AnomalyModel, Prediction, as_image_list, maps_at_sizes
from edge_sdk.models.export_parts import ExportParts
from edge_sdk.models.recon_config import make_config
from edge_sdk.models.recon_nets import Discriminator, Generator, Reconstructor
from edge_sdk.models.recon_train import train_adversarial
from edge_sdk.models.registry import register_model

__all__ = ["ResGANAD", "Prediction", "as_gray_or_rgb"]


def as_gray_or_rgb(images, channels: int) -> list[np.ndarray]:
    """uint8 (N, H, W), (N, H, W, C) or a list of (H, W[, C]) -> list of (H, W, C') uint8 with C' = 1
    for gray models (an RGB image whose channels are equal is taken as gray; a colour one is refused)."""
    items = as_image_list(images)
    if channels != 1:
        return items
    out = []
    for i, img in enumerate(items):
        if img.shape[2] == 3:
            if not (np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])):
                raise ValueError(f"images[{i}]: colour image for a grayscale model (channels=1); "
                                 "load the data set with gray=True or train with channels=3")
            img = np.ascontiguousarray(img[..., :1])
        out.append(img)
    return out


@register_model("resganad", family="reconstruction")
class ResGANAD(AnomalyModel):
    """ResGANAD (see module doc). `ResGANAD(preset="small", seed=0, **settings)`; settings are the
    fields of `ReconConfig` (recon_config.py). The network is in recon_nets.py, the training loop
    in recon_train.py; this file is the model: input, scoring, calibration by region, saving and
    export."""

    kind = "ssim"
    min_held_out_images = 10

    def __init__(self, preset: str = "small", *, seed: int = 0, device: str = "cpu", **settings):
        self.preset = preset
        self.config = make_config(preset, **settings)
        self.seed = int(seed)
        self.device = device
        self.calibration: dict | None = None
        self.regions: dict | None = None  # RegionLayout.to_dict() with per-region thresholds
        self.region_methods: dict = {}
        self.metrics: dict = {}
        self.training_info: dict = {}
        self.history: list[dict] = []
        torch.manual_seed(self.seed)
        self._build()

    # -- networks -------------------------------------------------------------------------------
    def _net_kwargs(self) -> dict:
        c = self.config
        return dict(arch=c.arch, channels=c.channels, size=c.size, filters=c.filters, stages=c.stages,
                    blocks=c.blocks, latent=c.latent, bottleneck=c.bottleneck, top=c.top)

    def _build(self) -> None:
        c = self.config
        self.generator = Generator(**self._net_kwargs()).to(self.device)
        self.discriminator = Discriminator(c.channels, c.size, c.disc_filters).to(self.device)
        self._fitted = False

    def _trainable(self) -> list[torch.nn.Module]:
        """Modules optimized with the generator loss."""
        return [self.generator]

    def reconstructor(self) -> Reconstructor:
        return Reconstructor(self.generator.encoder, self.generator.decoder).eval()

    # -- input ----------------------------------------------------------------------------------
    def preprocess(self, items: list[np.ndarray]) -> np.ndarray:
        """(N, C, S, S) float32 in [0, 1]: kernels.preprocess with mean 0, std 1, scale 1/255."""
        c = self.config
        kw = dict(mean=[0.0] * c.channels, std=[1.0] * c.channels, channels=c.channels, scale=1.0 / 255.0)
        shapes = {a.shape for a in items}
        if len(shapes) == 1:
            return kernels.preprocess(np.stack(items), (c.size, c.size), **kw)
        out = np.empty((len(items), c.channels, c.size, c.size), np.float32)
        for shape in shapes:
            idx = [i for i, a in enumerate(items) if a.shape == shape]
            out[idx] = kernels.preprocess(np.stack([items[i] for i in idx]), (c.size, c.size), **kw)
        return out

    def _load_training(self, dataset, indices, progress: bool) -> torch.Tensor:
        """Preprocessed patches (N, C, S, S) of ``indices``, in that order; across ranks (torchrun)
        each rank loads its shard and every rank gets all of them."""
        from edge_sdk.models import distributed

        if distributed.active():
            local = self._load_training_local(dataset, distributed.shard(indices), progress and distributed.is_main())
            return torch.from_numpy(distributed.unshard(distributed.gather_rows(local.numpy())))
        return self._load_training_local(dataset, indices, progress)

    def _load_training_local(self, dataset, indices, progress: bool) -> torch.Tensor:
        c = self.config
        if not len(indices):
            return torch.zeros((0, c.channels, c.size, c.size), dtype=torch.float32)
        chunks, batch = [], []
        it = indices
        if progress:
            from tqdm import tqdm
            it = tqdm(indices, desc="loading patches", unit="img")
        for i in it:
            s = dataset[i]
            if int(s.label) != 0:
                raise ValueError(f"training data must contain good images only; sample {i} ({s.path}) is anomalous")
            batch.append(s.image)
            if len(batch) == 256:
                chunks.append(self.preprocess(as_gray_or_rgb(batch, self.config.channels)))
                batch = []
        if batch:
            chunks.append(self.preprocess(as_gray_or_rgb(batch, self.config.channels)))
        return torch.from_numpy(np.concatenate(chunks))

    # -- training -------------------------------------------------------------------------------
    def _extra_generator_loss(self, x: torch.Tensor, x_star: torch.Tensor, x_hat: torch.Tensor,
                              mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return x.new_zeros(()), {}

    def train_patches(self, x_all: torch.Tensor, *, epochs: int | None = None, progress: bool = True,
                      checkpoint: str | None = None, resume: bool = False, checkpoint_every: int = 1) -> list[dict]:
        """Adversarial training on preprocessed good patches (N, C, S, S) in [0, 1] (recon_train.py);
        with ``checkpoint`` (a file path) the state is saved every ``checkpoint_every`` epochs, and
        ``resume`` continues from the one found there."""
        history = train_adversarial(self, x_all, epochs=epochs, progress=progress, checkpoint=checkpoint,
                                    resume=resume, checkpoint_every=checkpoint_every)
        self._fitted = True
        self.history += history
        return history

    def _checkpoint_modules(self) -> dict[str, torch.nn.Module]:
        """Every module whose state a training checkpoint holds."""
        return {"generator": self.generator, "discriminator": self.discriminator}

    def _train(self, dataset, indices: list[int], *, progress: bool, epochs: int | None = None,
               checkpoint: str | None = None, resume: bool = False, checkpoint_every: int = 1) -> dict:
        from edge_sdk.models import distributed

        x_all = self._load_training(dataset, indices, progress)
        t0 = time.perf_counter()
        self.train_patches(x_all, epochs=epochs, progress=progress and distributed.is_main(), checkpoint=checkpoint,
                           resume=resume, checkpoint_every=checkpoint_every)
        facts = {"fit_seconds": round(time.perf_counter() - t0, 3), "epochs": int(epochs or self.config.epochs),
                 "final_losses": self.history[-1] if self.history else {}}
        if distributed.world_size() > 1:
            facts["processes"] = distributed.world_size()
            facts["global_batch"] = self.config.batch_size * distributed.world_size()
        return facts

    def _score_batch_size(self) -> int:
        return 64

    # -- scoring --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"{type(self).__name__} is not trained: call fit() or load()")

    def is_fitted(self) -> bool:
        return self._fitted

    def reconstruct(self, images) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """(X, X^, sizes): preprocessed inputs and reconstructions (N, C, S, S) float32, input sizes."""
        self._check_fitted()
        items = as_gray_or_rgb(images, self.config.channels)
        x = self.preprocess(items)
        net = self.reconstructor()
        with torch.inference_mode():
            x_hat = net(torch.from_numpy(x).to(self.device)).cpu().numpy()
        return x, np.ascontiguousarray(x_hat, dtype=np.float32), [a.shape[:2] for a in items]

    def ssim_params(self) -> dict:
        c = self.config
        return dict(window=c.ssim_window, sigma=c.ssim_sigma, k1=c.ssim_k1, k2=c.ssim_k2, data_range=1.0)

    def _maps_to_sizes(self, grid: np.ndarray, sizes, sigma: float) -> list[np.ndarray]:
        """(N, S, S) -> maps at each input's size (bilinear), then Gaussian blur when sigma > 0."""
        return maps_at_sizes(grid, sizes, sigma)

    @staticmethod
    def _stack(maps: list[np.ndarray]):
        return np.stack(maps) if len({m.shape for m in maps}) == 1 else maps

    def predict(self, images):
        """Prediction(scores (N,) = 1 - mean SSIM, maps = |X - X^| at each input's size)."""
        x, x_hat, sizes = self.reconstruct(images)
        scores = 1.0 - kernels.ssim(x, x_hat, **self.ssim_params())
        diff = kernels.abs_diff(x, x_hat).mean(axis=1, dtype=np.float32)
        maps = self._maps_to_sizes(np.ascontiguousarray(diff), sizes, self.config.blur_sigma)
        return Prediction(scores=scores.astype(np.float32), maps=self._stack(maps))

    def heatmaps(self, images):
        """Display heatmaps: each map min-max normalized to [0, 1] per patch (kernels.minmax_normalize)."""
        maps = self.predict(images).maps
        if isinstance(maps, list):
            return [kernels.minmax_normalize(np.ascontiguousarray(m[None]))[0] for m in maps]
        return kernels.minmax_normalize(np.ascontiguousarray(maps))

    def _calibrate_regions(self, dataset, res: dict, method: str, quantile: float) -> None:
        """Per-region thresholds when `dataset` is a RegionPatches (max accuracy where a region has
        defects, else the quantile of its good scores)."""
        from edge_sdk.regions import calibrate_region_thresholds

        scores, labels, threshold = res["scores"], res["labels"], self.calibration["threshold"]
        layout = getattr(dataset, "layout", None)
        if layout is not None and hasattr(dataset, "region_names"):
            names = [dataset.region_names[i] for i in res["indices"]]
            region_method = {"f1": "auto", "accuracy": "auto", "quantile": "quantile"}.get(method, "auto")
            thr, used = calibrate_region_thresholds(scores, labels, names, method=region_method, quantile=quantile,
                                                    names=[n for n in layout.names if n in set(names)],
                                                    views=layout.views())
            missing = [n for n in layout.names if n not in thr]
            for n in missing:  # a region absent from the calibration patches keeps the image threshold
                thr[n], used[n] = float(threshold), "image_threshold"
            self.regions = layout.with_thresholds(thr).to_dict()
            self.region_methods = used

    def region_layout(self):
        from edge_sdk.regions import RegionLayout

        return None if self.regions is None else RegionLayout.from_dict(self.regions, source=f"{self.name} regions")

    def predict_frames(self, frames) -> dict:
        """Frames of the region layout -> per-region scores (N, R), region rejects (N, R) and
        product rejects (N,) (reject when any region's score >= its threshold)."""
        from edge_sdk.regions import decide

        layout = self.region_layout()
        if layout is None:
            raise RuntimeError(f"{self.name}: no region layout (train on RegionPatches to get one)")
        frames = list(frames) if not isinstance(frames, np.ndarray) or frames.ndim > 2 else [frames]
        patches = [p for i, f in enumerate(frames) for p in layout.cut(f, what=f"frames[{i}]")]
        scores = self.predict(patches).scores.reshape(len(frames), len(layout))
        region_rejects, product_rejects = decide(scores, layout.thresholds())
        return {"scores": scores, "region_rejects": region_rejects, "product_rejects": product_rejects,
                "regions": layout.names}

    # -- saving ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, dict[str, np.ndarray]]:
        def arrays(m):
            return {k: v.detach().cpu().contiguous().numpy() for k, v in m.state_dict().items()}
        return {"generator": arrays(self.generator), "discriminator": arrays(self.discriminator)}

    def _restore_state(self, tensors: dict[str, dict[str, np.ndarray]]) -> None:
        def load(m, arrays, what):
            try:
                m.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
            except RuntimeError as exc:
                raise storage.ModelFormatError(f"{what}: weights do not fit the configured network ({exc})") from None
        load(self.generator, tensors["generator"], "generator.safetensors")
        load(self.discriminator, tensors["discriminator"], "discriminator.safetensors")

    def save(self, model_dir) -> Path:
        """config.json + generator/discriminator(/unet).safetensors, atomically, checksummed."""
        self._check_fitted()
        config = {"model": self.name, "preset": self.preset, "seed": self.seed, "settings": self.config.to_json(),
                  "calibration": self.calibration, "regions": self.regions, "region_methods": self.region_methods,
                  "metrics": self.metrics, "training": self.training_info}
        return storage.write_model_dir(model_dir, config, self._state())

    @classmethod
    def load(cls, model_dir, *, device: str = "cpu") -> "ResGANAD":
        config = cls._own_config(model_dir)
        settings = dict(config["settings"])
        for k in ("perlin_scale_range", "perlin_beta"):
            settings[k] = tuple(settings[k])
        model = cls(config.get("preset", "small"), seed=int(config.get("seed", 0)), device=device, **settings)
        tensors = {stem[:-len(".safetensors")]: storage.read_tensors(model_dir, config, stem[:-len(".safetensors")])
                   for stem in config["files"]}
        model._restore_state(tensors)
        for m in model._trainable() + [model.discriminator]:
            m.eval()
        model.calibration = config.get("calibration")
        model.regions = config.get("regions")
        model.region_methods = config.get("region_methods") or {}
        model.metrics = config.get("metrics") or {}
        model.training_info = config.get("training") or {}
        model._fitted = True
        return model

    # -- export ---------------------------------------------------------------------------------
    def _postprocess(self) -> dict:
        return {"kind": "ssim", "arrays": {}, "network": "reconstructor", "input": "input", "reconstruction_output": "reconstruction",
                "ssim": self.ssim_params(), "image_score": "one_minus_mean_ssim",
                "map": "abs_diff_channel_mean", "map_upsample": "bilinear", "map_size": "input",
                "blur_sigma": float(self.config.blur_sigma), "heatmap": "minmax_per_patch"}

    def _networks(self) -> dict:
        return {"reconstructor": (self.reconstructor(), ["input"], ["reconstruction"])}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def export_parts(self) -> ExportParts:
        """Encoder + decoder (the second encoder and the discriminator are training-only), and the
        post-processing recipe of the module doc."""
        self._check_fitted()
        if self.calibration is None:
            raise RuntimeError("model is not calibrated (fit() calibrates; or call calibrate())")
        c = self.config
        post = self._postprocess()
        layout = self.region_layout()
        if layout is not None:
            post["frame"] = {"width": layout.frame_width, "height": layout.frame_height}
        parts = ExportParts(
            networks=self._networks(),
            arrays=self._arrays(),
            preprocess={"height": c.size, "width": c.size, "channels": c.channels, "mean": [0.0] * c.channels,
                        "std": [1.0] * c.channels, "scale": 1.0 / 255.0, "resize": "bilinear", "antialias": False},
            postprocess=post,
            calibration={k: self.calibration[k] for k in ("threshold", "min", "max")},
            regions=layout.bundle_regions() if layout is not None else None,
            metadata={"model": self.name, "preset": self.preset, "settings": c.to_json(), "metrics": self.metrics,
                      "training": self.training_info},
        )
        return parts.validate()
