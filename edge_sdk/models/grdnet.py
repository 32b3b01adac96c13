"""GRD-Net: the ResGANAD generator (and discriminator) plus a discriminative U-Net that reads
concat(input, reconstruction) and predicts the anomaly mask (Ferrari et al., "GRD-Net:
Generative-Reconstructive-Discriminative Anomaly Detection with Region of Interest Attention").

Training adds to the generator loss w_focal * FocalLoss(sigmoid(U(X*, X^)) * ROI, M), with M the
Perlin mask of the perturbed input X* and ROI an optional region-of-interest mask (1 = inspect);
generator and U-Net are optimized together (L_tot = L_gan + FL).

Scoring path (postprocess kind "mask"; the runtime reproduces it from `export_parts`):

    uint8 patch -> kernels.preprocess (as ResGANAD) -> X -> "reconstructor" -> X^
    -> "mask_head"(X, X^) -> P (N, 1, S, S) = sigmoid(U-Net) -> P * ROI (when an ROI is set: the
       (S, S) float32 array named by postprocess["arrays"]["roi"])
    -> score = max over pixels of kernels.gaussian_blur(P, mask_blur_sigma) at the model size S x S
    -> map = P resized to each input's own size (kernels.resize_bilinear), no further blur.
"""

from __future__ import annotations

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.models import storage
from edge_sdk.models.recon_nets import MaskHead, MaskUNet
from edge_sdk.models.recon_train import focal_loss
from edge_sdk.models.resganad import Prediction, ResGANAD, as_gray_or_rgb
from edge_sdk.models.registry import register_model

__all__ = ["GRDNet"]


@register_model("grdnet", family="reconstruction")
class GRDNet(ResGANAD):
    """GRD-Net (see module doc). `GRDNet(preset="small", seed=0, roi=None, **settings)`."""

    kind = "mask"

    def __init__(self, preset: str = "small", *, seed: int = 0, device: str = "cpu", roi: np.ndarray | None = None,
                 **settings):
        super().__init__(preset, seed=seed, device=device, **settings)
        self.set_roi(roi)

    def _build(self) -> None:
        super()._build()
        c = self.config
        if c.size % 2**c.unet_depth:
            raise ValueError(f"size: {c.size} must be a multiple of {2 ** c.unet_depth} for unet_depth={c.unet_depth}")
        self.unet = MaskUNet(c.channels, c.unet_filters, c.unet_depth).to(self.device)

    def set_roi(self, roi: np.ndarray | None) -> None:
        """Region of interest (S, S) in [0, 1] at the model input size, or None (everywhere)."""
        if roi is None:
            self.roi = None
            return
        r = np.asarray(roi, dtype=np.float32)
        s = self.config.size
        if r.shape != (s, s):
            raise ValueError(f"roi: expected shape ({s}, {s}) (the model input size), got {r.shape}")
        if not np.isfinite(r).all() or r.min() < 0 or r.max() > 1:
            raise ValueError("roi: values must lie in [0, 1]")
        self.roi = np.ascontiguousarray(r)

    def _trainable(self) -> list[torch.nn.Module]:
        return [self.generator, self.unet]

    def _checkpoint_modules(self) -> dict[str, torch.nn.Module]:
        return {**super()._checkpoint_modules(), "unet": self.unet}

    def _roi_tensor(self, like: torch.Tensor) -> torch.Tensor | None:
        return None if self.roi is None else torch.from_numpy(self.roi).to(like)[None, None]

    def _extra_generator_loss(self, x, x_star, x_hat, mask):
        prob = torch.sigmoid(self.unet(x_star, x_hat))
        roi = self._roi_tensor(prob)
        if roi is not None:
            prob = prob * roi
        fl = focal_loss(prob, mask, self.config.focal_gamma)
        return self.config.w_focal * fl, {"focal": fl.item()}

    def mask_head(self) -> MaskHead:
        return MaskHead(self.unet).eval()

    def predict_masks(self, images) -> tuple[np.ndarray, list]:
        """(P (N, S, S) predicted mask probabilities times the ROI, input sizes)."""
        self._check_fitted()
        items = as_gray_or_rgb(images, self.config.channels)
        x = torch.from_numpy(self.preprocess(items)).to(self.device)
        rec, head = self.reconstructor(), self.mask_head()
        with torch.inference_mode():
            p = head(x, rec(x))[:, 0]
            roi = self._roi_tensor(p)
            if roi is not None:
                p = p * roi[0]
        return np.ascontiguousarray(p.cpu().numpy(), dtype=np.float32), [a.shape[:2] for a in items]

    def predict(self, images):
        """Prediction(scores = max of the smoothed predicted mask, maps = predicted mask at input size)."""
        p, sizes = self.predict_masks(images)
        sigma = self.config.mask_blur_sigma
        smooth = kernels.gaussian_blur(p, sigma) if sigma > 0 else p
        scores = smooth.reshape(smooth.shape[0], -1).max(axis=1)
        maps = self._maps_to_sizes(p, sizes, 0.0)
        return Prediction(scores=scores.astype(np.float32), maps=self._stack(maps))

    def heatmaps(self, images):
        """Display heatmaps: the predicted mask probabilities (already in [0, 1])."""
        return self.predict(images).maps

    def _state(self):
        state = super()._state()
        state["unet"] = {k: v.detach().cpu().contiguous().numpy() for k, v in self.unet.state_dict().items()}
        if self.roi is not None:
            state["roi"] = {"roi": self.roi}
        return state

    def _restore_state(self, tensors):
        super()._restore_state(tensors)
        if "unet" not in tensors:
            raise storage.ModelFormatError("unet.safetensors: missing from the GRD-Net model directory")
        try:
            self.unet.load_state_dict({k: torch.from_numpy(v) for k, v in tensors["unet"].items()}, strict=True)
        except RuntimeError as exc:
            raise storage.ModelFormatError(f"unet.safetensors: weights do not fit the configured U-Net ({exc})") from None
        self.set_roi(tensors["roi"]["roi"] if "roi" in tensors else None)

    def _postprocess(self) -> dict:
        return {"kind": "mask", "network": "reconstructor", "input": "input",
                "reconstruction_output": "reconstruction", "mask_network": "mask_head",
                "mask_inputs": ["input", "reconstruction"], "mask_output": "mask",
                "arrays": {"roi": "roi"} if self.roi is not None else {},
                "image_score": "max_blurred", "score_blur_sigma": float(self.config.mask_blur_sigma),
                "score_size": "model", "map": "mask", "map_upsample": "bilinear", "map_size": "input",
                "blur_sigma": 0.0, "heatmap": "raw"}

    def _networks(self) -> dict:
        return {"reconstructor": (self.reconstructor(), ["input"], ["reconstruction"]),
                "mask_head": (self.mask_head(), ["input", "reconstruction"], ["mask"])}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {} if self.roi is None else {"roi": self.roi}
