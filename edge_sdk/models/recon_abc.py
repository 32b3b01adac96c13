"""ResGANAD's encoder and decoder as published for the vial line: stages of three concatenating
blocks A, B and C.

- A: three consecutive 3x3 convolutions, concatenated with one 1x1 convolution of the same input;
- B: three consecutive 3x3 convolutions, concatenated with their input (block A's output);
- C: three consecutive 3x3 convolutions (the last one strided), concatenated with a downsampling
  block (1x1, 3x3 with stride 2, 1x1) whose middle convolution halves H and W.

Every convolution is conv-BN-ReLU with `width = filters * 2^s` channels in stage s; block C's
downsampling branch sets the stage's output width (4 * width, and `top` channels after the last
stage: 16 x 16 x 1024 for a 256 x 256 patch with the full preset). The concatenations keep every
earlier feature map next to the new one, so the 3x3 convolutions can stay narrow; that is what
keeps the published network at about 0.17 ms a patch (see benchmarks/gpu_estimate.py) while
reaching 1024 channels. The dense bottleneck (flatten -> `latent`) and the decoder mirror it: per
stage an upsampling C (4x4 transposed convolutions with stride 2 in both branches), then B and A,
ending in a 3x3 convolution and a sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up_cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _chain(cin: int, width: int, *, last_stride: int = 1, up: bool = False) -> nn.Sequential:
    first = _up_cbr(cin, width) if up else _cbr(cin, width)
    return nn.Sequential(first, _cbr(width, width), _cbr(width, width, stride=last_stride))


class BlockA(nn.Module):
    """concat(3x3 -> 3x3 -> 3x3, 1x1): cin -> 2 * width."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.chain = _chain(cin, width)
        self.side = _cbr(cin, width, k=1)
        self.out_channels = 2 * width

    def forward(self, x):
        return torch.cat([self.chain(x), self.side(x)], dim=1)


class BlockB(nn.Module):
    """concat(3x3 -> 3x3 -> 3x3, input): cin -> cin + width."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.chain = _chain(cin, width)
        self.out_channels = cin + width

    def forward(self, x):
        return torch.cat([self.chain(x), x], dim=1)


class BlockC(nn.Module):
    """concat(3x3 -> 3x3 -> 3x3/2, 1x1 -> 3x3/2 -> 1x1): cin -> width + out_extra, H and W halved.
    With ``up`` the strided convolutions become 4x4 transposed ones and H and W double."""

    def __init__(self, cin: int, width: int, out_extra: int, *, up: bool = False):
        super().__init__()
        if up:
            self.chain = _chain(cin, width, up=True)
            middle = _up_cbr(width, width)
        else:
            self.chain = _chain(cin, width, last_stride=2)
            middle = _cbr(width, width, stride=2)
        self.sample = nn.Sequential(_cbr(cin, width, k=1), middle, _cbr(width, out_extra, k=1))
        self.out_channels = width + out_extra

    def forward(self, x):
        return torch.cat([self.chain(x), self.sample(x)], dim=1)


def check_geometry(size: int, stages: int) -> None:
    div = 2**stages
    if size % div or size < div:
        raise ValueError(f"size: {size} must be a positive multiple of {div} for {stages} stages")


class ABCEncoder(nn.Module):
    """Image (N, C, S, S) -> latent (N, latent) through `stages` A-B-C stages and a dense bottleneck."""

    def __init__(self, channels: int, size: int, filters: int, stages: int, latent: int, top: int):
        super().__init__()
        check_geometry(size, stages)
        layers, cin = [], channels
        for s in range(stages):
            width = filters * 2**s
            a = BlockA(cin, width)
            b = BlockB(a.out_channels, width)
            out = top if s == stages - 1 else 4 * width
            if out <= width:
                raise ValueError(f"top: expected more than {width} channels, got {out}")
            c = BlockC(b.out_channels, width, out - width)
            layers += [a, b, c]
            cin = c.out_channels
        self.stages = nn.Sequential(*layers)
        self.out_channels = cin
        self.grid = size // 2**stages
        self.bottleneck = nn.Sequential(nn.Flatten(), nn.Linear(cin * self.grid**2, latent))

    def features(self, x):
        return self.stages(x)

    def forward(self, x):
        return self.bottleneck(self.features(x))


class ABCDecoder(nn.Module):
    """Latent -> image in [0, 1] (sigmoid), mirroring `ABCEncoder`: per stage an upsampling C, then B, A."""

    def __init__(self, channels: int, size: int, filters: int, stages: int, latent: int, top: int):
        super().__init__()
        check_geometry(size, stages)
        self.grid = size // 2**stages
        self.top = top
        self.expand = nn.Linear(latent, top * self.grid**2)
        layers, cin = [], top
        for s in reversed(range(stages)):
            width = filters * 2**s
            c = BlockC(cin, width, width, up=True)
            b = BlockB(c.out_channels, width)
            a = BlockA(b.out_channels, width)
            layers += [c, b, a]
            cin = a.out_channels
        self.stages = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, channels, 3, padding=1)

    def forward(self, z):
        x = self.expand(z).view(z.shape[0], self.top, self.grid, self.grid)
        return torch.sigmoid(self.head(self.stages(x)))
