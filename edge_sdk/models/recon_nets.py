"""Networks of the reconstruction models (ResGANAD, GRD-Net), in PyTorch.

Generator = encoder -> bottleneck -> decoder (the exported part) + a second encoder that
re-encodes the reconstruction (training only). Two encoder/decoder architectures: "abc", the
published A/B/C blocks (recon_abc.py, the full preset), and "resnetv2" below (the small preset,
and what model dirs saved without an `arch` setting use). The "resnetv2" encoder is ResNet-V2 style: a 3x3 stem at full
resolution, then `stages` stages of `blocks` pre-activation bottleneck blocks (Keras "stack2"): the
first block of a stage has a 1x1 projection shortcut, the last halves H and W (strided 3x3, 1x1
max-pool shortcut); stage s has bottleneck width filters * 2^s and output 4 * filters * 2^s
channels. With filters=32 and 4 stages a 256 x 256 x 1 input ends at 16 x 16 x 1024.

Bottleneck: "dense" (flatten -> Linear(latent); latent 64) or "conv" (1x1 conv to 32 channels then
a strided conv: 32 x H/32 x W/32, e.g. 32 x 8 x 8). The decoder mirrors the encoder with transposed
convolutions (each stage doubles H and W) and ends in a 3x3 conv and a sigmoid (images in [0, 1]).

Discriminator: strided 4x4 convolutions down to H/16 (the feature map used by the adversarial
feature-matching loss) and a dense real/fake head. GRD-Net adds a U-Net (DRAEM's discriminative
sub-network) on concat(input, reconstruction) that predicts the anomaly mask.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class PreActBottleneck(nn.Module):
    """ResNet-V2 bottleneck: BN-ReLU -> 1x1 (w) -> BN-ReLU -> 3x3 (w, stride) -> BN-ReLU -> 1x1 (4w)."""

    def __init__(self, in_ch: int, width: int, *, stride: int = 1, project: bool = False):
        super().__init__()
        out_ch = 4 * width
        self.pre = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        if project:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride)
        elif stride > 1:
            self.shortcut = nn.MaxPool2d(1, stride=stride)
        else:
            if in_ch != out_ch:
                raise ValueError(f"identity shortcut needs in_ch == 4*width, got {in_ch} vs {out_ch}")
            self.shortcut = nn.Identity()
        self.project = project
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1),
        )

    def forward(self, x):
        p = self.pre(x)
        # Keras ResNetV2: the projection shortcut reads the pre-activated input, the identity one the raw input.
        s = self.shortcut(p) if self.project else self.shortcut(x)
        return s + self.body(p)


class PreActUpBottleneck(nn.Module):
    """Decoder block doubling H and W: the 3x3 conv becomes a 4x4 stride-2 transposed conv and the
    shortcut a 2x2 stride-2 transposed conv to the new channel count."""

    def __init__(self, in_ch: int, width: int, out_ch: int):
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        self.shortcut = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1),
        )

    def forward(self, x):
        p = self.pre(x)
        return self.shortcut(p) + self.body(p)


def _check_geometry(size: int, stages: int, bottleneck: str) -> None:
    div = 2 ** (stages + (1 if bottleneck == "conv" else 0))
    if size % div or size < div:
        raise ValueError(f"size: {size} must be a positive multiple of {div} for {stages} stages "
                         f"with a {bottleneck} bottleneck")


class Encoder(nn.Module):
    """Image (N, C, S, S) -> latent: (N, latent) for "dense", (N, 32, S/2^(stages+1), ...) for "conv"."""

    def __init__(self, channels: int, size: int, filters: int, stages: int, blocks: int, latent: int,
                 bottleneck: str = "dense"):
        super().__init__()
        _check_geometry(size, stages, bottleneck)
        self.stem = nn.Conv2d(channels, filters, 3, padding=1)
        layers, in_ch = [], filters
        for s in range(stages):
            width = filters * 2**s
            for b in range(blocks):
                layers.append(PreActBottleneck(in_ch, width, stride=2 if b == blocks - 1 else 1, project=b == 0))
                in_ch = 4 * width
        self.stages = nn.Sequential(*layers)
        self.post = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        self.out_channels = in_ch
        self.grid = size // 2**stages
        if bottleneck == "dense":
            self.bottleneck = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * self.grid**2, latent))
        elif bottleneck == "conv":
            self.bottleneck = nn.Sequential(nn.Conv2d(in_ch, 32, 1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                                            nn.Conv2d(32, 32, 4, stride=2, padding=1))
        else:
            raise ValueError(f"bottleneck: expected 'dense' or 'conv', got {bottleneck!r}")

    def features(self, x):
        return self.post(self.stages(self.stem(x)))

    def forward(self, x):
        return self.bottleneck(self.features(x))


class Decoder(nn.Module):
    """Latent -> image in [0, 1] (sigmoid), mirroring `Encoder`."""

    def __init__(self, channels: int, size: int, filters: int, stages: int, blocks: int, latent: int,
                 bottleneck: str = "dense"):
        super().__init__()
        _check_geometry(size, stages, bottleneck)
        top = 4 * filters * 2 ** (stages - 1)
        self.grid = size // 2**stages
        self.top = top
        self.bottleneck_kind = bottleneck
        if bottleneck == "dense":
            self.expand = nn.Linear(latent, top * self.grid**2)
        else:
            self.expand = nn.ConvTranspose2d(32, top, 4, stride=2, padding=1)
        layers, in_ch = [], top
        for s in reversed(range(stages)):
            width = filters * 2**s
            out_ch = 2 * width
            layers.append(PreActUpBottleneck(in_ch, width, out_ch))
            for _ in range(blocks - 1):
                layers.append(PreActBottleneck(out_ch, out_ch // 4))
            in_ch = out_ch
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True), nn.Conv2d(in_ch, channels, 3, padding=1))

    def forward(self, z):
        if self.bottleneck_kind == "dense":
            x = self.expand(z).view(z.shape[0], self.top, self.grid, self.grid)
        else:
            x = self.expand(z)
        return torch.sigmoid(self.head(self.stages(x)))


def make_coder(arch: str, *, channels: int, size: int, filters: int, stages: int, blocks: int, latent: int,
               bottleneck: str = "dense", top: int = 1024):
    """(encoder, decoder) of one architecture: "abc" (the published A/B/C blocks, recon_abc.py) or
    "resnetv2" (pre-activation bottlenecks, this module)."""
    if arch == "abc":
        from edge_sdk.models.recon_abc import ABCDecoder, ABCEncoder

        if bottleneck != "dense":
            raise ValueError(f"bottleneck: the abc architecture has a dense bottleneck, got {bottleneck!r}")
        kw = dict(channels=channels, size=size, filters=filters, stages=stages, latent=latent, top=top)
        return ABCEncoder(**kw), ABCDecoder(**kw)
    if arch == "resnetv2":
        kw = dict(channels=channels, size=size, filters=filters, stages=stages, blocks=blocks, latent=latent,
                  bottleneck=bottleneck)
        return Encoder(**kw), Decoder(**kw)
    raise ValueError(f"arch: expected 'abc' or 'resnetv2', got {arch!r}")


class Generator(nn.Module):
    """Encoder-decoder-encoder. forward(x) -> (reconstruction, z, z_hat)."""

    def __init__(self, arch: str = "resnetv2", **kw):
        super().__init__()
        self.encoder, self.decoder = make_coder(arch, **kw)
        self.encoder2, _ = make_coder(arch, **kw)

    def forward(self, x):
        z = self.encoder(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder2(x_hat)


class Reconstructor(nn.Module):
    """What is exported: encoder + decoder, preprocessed image -> reconstruction."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image):
        return self.decoder(self.encoder(image))


class Discriminator(nn.Module):
    """forward(x) -> (logit (N,), features (N, C, S/16, S/16))."""

    def __init__(self, channels: int, size: int, filters: int, depth: int = 4):
        super().__init__()
        if size % 2**depth:
            raise ValueError(f"size: {size} must be a multiple of {2 ** depth} for the discriminator")
        layers, in_ch = [nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)], filters
        for i in range(1, depth):
            out = filters * 2**i
            layers += [nn.Conv2d(in_ch, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            in_ch = out
        self.features = nn.Sequential(*layers)
        g = size // 2**depth
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * g * g, 1))

    def forward(self, x):
        f = self.features(x)
        return self.head(f).squeeze(1), f


def _double_conv(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                         nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class MaskUNet(nn.Module):
    """Discriminative U-Net (DRAEM): concat(image, reconstruction) -> mask logits (N, 1, H, W).
    `depth` poolings; widths filters * 2^i (capped at 8x)."""

    def __init__(self, channels: int, filters: int, depth: int = 4):
        super().__init__()
        widths = [filters * min(2**i, 8) for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(2 * channels, widths[0])] +
                                  [_double_conv(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                               nn.Conv2d(widths[i + 1], widths[i], 3, padding=1),
                                               nn.BatchNorm2d(widths[i]), nn.ReLU(inplace=True))
                                 for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], 1, 3, padding=1)
        self.depth = depth

    def forward(self, image, reconstruction):
        x = torch.cat([image, reconstruction], dim=1)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.out(x)


class MaskHead(nn.Module):
    """Exported GRD-Net U-Net: (image, reconstruction) -> mask probability (N, 1, H, W) (sigmoid)."""

    def __init__(self, unet: MaskUNet):
        super().__init__()
        self.unet = unet

    def forward(self, image, reconstruction):
        return torch.sigmoid(self.unet(image, reconstruction))
