"""What a benchmark run measures: `BenchConfig`, the presets, and option parsing with errors that
name the option."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edge_sdk.bundle.schema import PRECISIONS


class BenchError(ValueError):
    """A bad benchmark option or input; the message names the option, file or field."""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    batches: tuple[int, ...]
    image_shape: tuple[int, int, int]  # (height, width, channels) of the generated images
    budget_ms: float | None = None
    units_per_cycle: int | None = None


PRESETS: dict[str, Preset] = {
    "vial-line": Preset(
        "vial-line",
        "the vial line's machine cycle: 60 single-channel 256 x 256 patches per cycle, 500 ms budget",
        batches=(1, 8, 60), image_shape=(256, 256, 1), budget_ms=500.0, units_per_cycle=60),
    "mvtec": Preset(
        "mvtec", "MVTec AD-style colour images: 3 x 256 x 256 at batch 1 and 8",
        batches=(1, 8), image_shape=(256, 256, 3)),
}

DEFAULT_BATCHES = (1, 8)
# The runtime's network backends (edge_sdk.Runtime's backend=).
BACKENDS = ("onnxruntime", "openvino", "tensorrt", "auto")


@dataclass
class BenchConfig:
    """One benchmark run of a bundle.

    batches: batch sizes (images per predict call), measured in this order. iterations: timed
    cycles per batch size; a cycle is ceil(units_per_cycle / batch) predict calls (the last one
    with the remainder), one call when units_per_cycle is None. warmup: untimed calls per batch
    size. image_shape: (H, W, C) of generated images (None: the bundle's input, or its frame for
    region bundles). images_dir: real images instead of random data. max_seconds: stop a batch
    size after this much measuring (at least one cycle is always measured).
    """

    bundle: str
    device: str = "cpu"
    backend: str = "onnxruntime"
    provider: str | None = None
    openvino_device: str | None = None
    precision: str = "fp32"
    batches: tuple[int, ...] = DEFAULT_BATCHES
    iterations: int = 100
    warmup: int = 10
    threads: int | None = None
    images_dir: str | None = None
    image_shape: tuple[int, int, int] | None = None
    budget_ms: float | None = None
    units_per_cycle: int | None = None
    required_fraction: float = 0.99
    heatmaps: bool = True
    max_seconds: float | None = None
    seed: int = 0
    preset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "BenchConfig":
        if not self.batches:
            raise BenchError("--batch: no batch sizes given")
        for b in self.batches:
            if not isinstance(b, int) or b < 1 or b > 4096:
                raise BenchError(f"--batch: batch sizes must be integers in 1..4096, got {b!r}")
        if len(set(self.batches)) != len(self.batches):
            raise BenchError(f"--batch: repeated batch size in {list(self.batches)}")
        if self.iterations < 1:
            raise BenchError(f"--iterations: expected >= 1, got {self.iterations}")
        if self.warmup < 0:
            raise BenchError(f"--warmup: expected >= 0, got {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise BenchError(f"--threads: expected >= 1, got {self.threads}")
        if self.budget_ms is not None and not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise BenchError(f"--budget: expected a positive number of milliseconds, got {self.budget_ms}")
        if self.units_per_cycle is not None:
            if self.units_per_cycle < 1:
                raise BenchError(f"--units: expected >= 1 units per cycle, got {self.units_per_cycle}")
            big = [b for b in self.batches if b > self.units_per_cycle]
            if big:
                raise BenchError(f"--batch: batch size(s) {big} exceed --units {self.units_per_cycle} "
                                 "(a cycle never holds a call of more units than the cycle has)")
        if not 0 < self.required_fraction <= 1:
            raise BenchError(f"--required: expected a fraction in (0, 1], got {self.required_fraction}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise BenchError(f"--max-seconds: expected > 0, got {self.max_seconds}")
        if self.image_shape is not None:
            h, w, c = self.image_shape
            if h < 1 or w < 1 or c not in (1, 3):
                raise BenchError(f"image shape: expected (height, width, 1 or 3), got {self.image_shape}")
        if self.images_dir is not None and self.image_shape is not None:
            raise BenchError("--images and a generated image shape (--preset / --shape) exclude each other")
        if self.precision not in PRECISIONS:
            raise BenchError(f"--precision: expected {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.backend not in BACKENDS:
            raise BenchError(f"--backend: expected {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}, got {self.backend!r}")
        return self

    def calls_per_cycle(self, batch: int) -> int:
        units = self.units_per_cycle if self.units_per_cycle is not None else batch
        return -(-units // batch)

    def call_sizes(self, batch: int) -> list[int]:
        """Images in each call of one cycle at this batch size."""
        units = self.units_per_cycle if self.units_per_cycle is not None else batch
        full, rest = divmod(units, batch)
        return [batch] * full + ([rest] if rest else [])

    def to_json(self) -> dict:
        d = asdict(self)
        d["batches"] = list(self.batches)
        d["image_shape"] = list(self.image_shape) if self.image_shape else None
        return d


def parse_batches(text: str) -> tuple[int, ...]:
    """"1,8,60" -> (1, 8, 60); errors name --batch."""
    try:
        out = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise BenchError(f"--batch: expected comma-separated integers such as 1,8,60, got {text!r}") from None
    if not out:
        raise BenchError(f"--batch: expected comma-separated integers such as 1,8,60, got {text!r}")
    return out


def parse_shape(text: str) -> tuple[int, int, int]:
    """"256x256x1" or "256,256,3" -> (H, W, C)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise BenchError(f"--shape: expected HxWxC such as 256x256x3, got {text!r}") from None
    if len(vals) == 2:
        vals = vals + (3,)
    if len(vals) != 3:
        raise BenchError(f"--shape: expected HxWxC such as 256x256x3, got {text!r}")
    return vals  # type: ignore[return-value]


def apply_preset(config: BenchConfig, name: str, *, batches_given: bool, budget_given: bool,
                 units_given: bool) -> BenchConfig:
    """The preset's workload, where the user did not set the option explicitly."""
    if name not in PRESETS:
        raise BenchError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    p = PRESETS[name]
    if config.images_dir is not None:
        raise BenchError(f"--preset {name} generates its images ({p.image_shape[0]}x{p.image_shape[1]}x"
                         f"{p.image_shape[2]}); it excludes --images")
    return replace(
        config,
        preset=name,
        batches=config.batches if batches_given else p.batches,
        image_shape=p.image_shape,
        budget_ms=config.budget_ms if budget_given or p.budget_ms is None else p.budget_ms,
        units_per_cycle=config.units_per_cycle if units_given or p.units_per_cycle is None else p.units_per_cycle,
    )
