"""The network of the supervised defect classifier and the graph it is exported as.

`Lite0Classifier`: EfficientNet-Lite0 (backbone.py, the shipped ImageNet weights) fine-tuned whole:
stem, the 16 blocks and the 1x1 head to 1280 channels give the last feature map F (N, 1280, h, w);
global average pooling, dropout (training only) and one linear layer give the class logits.
With ``cam_stride=16`` the one stride-2 convolution of the sixth stage runs at stride 1, so F has
twice the resolution (a 10 x 10 grid at 160 x 160 instead of 5 x 5: a defect map that can point at
a crack, not at a quarter of the tile); ``cam_stride=8`` also runs the fourth stage's at stride 1
(a 28 x 28 grid at 224 x 224, at about 6.6 times the training cost of stride 16 on a CPU). The
pretrained weights fit either way and are fine-tuned. A finer map without that training cost:
`dense_copy` evaluates the trained network at half its stride (a 28 x 28 map at 224 x 224 from a
stride-16 network, same weights, same probabilities; ``CamGraph(dense=True)``).
``freeze_blocks`` keeps the stem and the first blocks as pretrained (weights and batch-norm
statistics): their generic edge and texture filters need no tuning, and training skips their
backward pass, the costliest one at full resolution.

`CamGraph`: what the bundle runs (one ONNX graph), for uint8 images preprocessed by the bundle:

    probabilities (N, K) = softmax(W GAP(F) + b)
    score (N, 1)         = 1 - probabilities[:, good]          (the anomaly score: AUROC, display)
    cam (N, h, w)        = CAM of the most probable defect class d*:
                           CAM_d = sum_c W[d, c] F_c, then ReLU, then resampled to the cell
                           centres a half-pixel resize assumes (centre_on_cells), then divided
                           by its maximum

With test-time flips (``flips``, the flips training augments with) the network also runs on each
flipped copy of the image: the probabilities come from the mean of the views' logits, the map from
the mean of the views' maps, each centred on its cells in its own view's coordinates and then flipped
back (the views' cells lie on different pixels: flipped back before centring, a flipped view's map
would sit s - 1 pixels off).

Because the head is linear after global average pooling, the gradient of logit d with respect to
F_c at every location is W[d, c] / (h w), so Grad-CAM of the last feature map,
ReLU(sum_c mean(dy_d/dF_c) F_c), equals ReLU(CAM_d) / (h w): after the same resampling and
division by the maximum the two maps are the same (tested against torch autograd). The map is in
[0, 1] with its peak at 1 (a map whose maximum is below CAM_EPS, no location supporting the class,
is divided by CAM_EPS instead).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from edge_sdk.models.backbone import EfficientNetLite0

FEATURE_CHANNELS = 1280
CAM_STRIDES = (8, 16, 32)
# The blocks whose depthwise convolutions run at stride 1 for a last feature map at that stride
# (block 5 halves the resolution from stride 8 to 16, block 11 from 16 to 32).
_STRIDE1_BLOCKS = {8: (5, 11), 16: (11,), 32: ()}
# A CAM whose maximum is below this has no supporting location: divided by this, it stays near zero.
CAM_EPS = 1e-6


class Lite0Classifier(nn.Module):
    """EfficientNet-Lite0 with a K-class linear head on the globally pooled last feature map."""

    def __init__(self, num_classes: int, *, cam_stride: int = 16, pretrained: bool = True, dropout: float = 0.2,
                 freeze_blocks: int = 0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes: a classifier needs at least 2 classes, got {num_classes}")
        if cam_stride not in CAM_STRIDES:
            raise ValueError(f"cam_stride: expected one of {CAM_STRIDES}, got {cam_stride}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
        net = EfficientNetLite0.pretrained() if pretrained else EfficientNetLite0()
        net._fc = nn.Linear(FEATURE_CHANNELS, num_classes)
        for b in _STRIDE1_BLOCKS[cam_stride]:
            net._blocks[b]._depthwise_conv.stride = (1, 1)
        if not 0 <= freeze_blocks <= len(net._blocks):
            raise ValueError(f"freeze_blocks: expected 0..{len(net._blocks)}, got {freeze_blocks}")
        self.net = net
        self.dropout = nn.Dropout(dropout)
        self.num_classes = num_classes
        self.cam_stride = cam_stride
        self.freeze_blocks = int(freeze_blocks)
        for module in self._frozen():
            for p in module.parameters():
                p.requires_grad_(False)

    def _frozen(self) -> list[nn.Module]:
        # not a registered ModuleList: the state dict keeps one key per weight, whatever is frozen
        if not self.freeze_blocks:
            return []
        return [self.net._conv_stem, self.net._bn0, *self.net._blocks[: self.freeze_blocks]]

    def train(self, mode: bool = True) -> "Lite0Classifier":
        super().train(mode)
        for module in self._frozen():
            module.eval()  # frozen layers keep their pretrained batch-norm statistics
        return self

    def parameter_groups(self) -> tuple[list, list]:
        """(trainable backbone parameters, head parameters)."""
        head = list(self.net._fc.parameters())
        ids = {id(p) for p in head}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in ids], head

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """F (N, 1280, h, w): the last feature map, after the head's ReLU6."""
        n = self.net
        y = torch.clamp(n._bn0(n._conv_stem(x)), 0.0, 6.0)
        for block in n._blocks:
            y = block(y)
        return torch.clamp(n._bn1(n._conv_head(y)), 0.0, 6.0)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net._fc(self.dropout(features.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x))


def dense_copy(model: Lite0Classifier) -> Lite0Classifier:
    """The same network evaluated at half its stride (shift-and-stitch by the "a trous" rule): the last
    stride-2 convolution runs at stride 1 and every later depthwise convolution is dilated by 2
    (padding with it). Cells (2i, 2j) of its feature map are the cells (i, j) of ``model``'s; the
    others are where the strided network would put a cell on an input moved by half its stride. The
    weights are the same: a finer map at inference, at no training cost (about 4 times the compute of
    the layers after that convolution). ``cam_stride`` of the copy is its map's stride."""
    dense = copy.deepcopy(model).eval()
    n = dense.net
    last = max(b for b, block in enumerate(n._blocks) if block._depthwise_conv.stride == (2, 2))
    n._blocks[last]._depthwise_conv.stride = (1, 1)
    for block in n._blocks[last + 1:]:
        conv = block._depthwise_conv
        k = conv.kernel_size[0]
        conv.dilation = (2 * conv.dilation[0], 2 * conv.dilation[1])
        conv.padding = (conv.dilation[0] * (k // 2), conv.dilation[1] * (k // 2))
    dense.cam_stride = model.cam_stride // 2
    return dense


def test_time_flips(tta: bool, hflip: bool) -> tuple:
    """The flipped views (the image axes each flips: 2 upside down, 3 left-right) a model trained with
    vertical flips (and with ``hflip`` horizontal ones) averages over when ``tta`` is set: only flips
    it has learned, so every view is an image like its training images."""
    if not tta:
        return ()
    return ((2,), (3,), (2, 3)) if hflip else ((2,),)


class CamGraph(nn.Module):
    """(N, 3, H, W) preprocessed images -> (probabilities, score, cam); see the module doc. With
    ``dense`` the CAM comes from `dense_copy` (twice the grid along each axis) and the probabilities
    from its even cells: the same numbers as the strided network's. ``flips``: the test-time views
    besides the image itself, each a tuple of the axes it flips (2: rows, 3: columns)."""

    def __init__(self, model: Lite0Classifier, good: int, dense: bool = False, flips: tuple = ()):
        super().__init__()
        if not 0 <= good < model.num_classes:
            raise ValueError(f"good: class index {good} outside 0..{model.num_classes - 1}")
        flips = tuple(tuple(int(a) for a in dims) for dims in flips)
        if any(not dims or not set(dims) <= {2, 3} or len(set(dims)) != len(dims) for dims in flips):
            raise ValueError(f"flips: expected views flipping image axes 2 and / or 3, got {flips}")
        self.model = dense_copy(model) if dense else model.eval()
        self.dense = bool(dense)
        self.good = int(good)
        self.flips = flips

    def forward(self, x: torch.Tensor):
        views = 1 + len(self.flips)
        # every view in one batch: one pass through the network, whatever the number of views
        xs = torch.cat([x] + [x.flip(dims) for dims in self.flips]) if self.flips else x
        feats = self.model.feature_map(xs)
        fc = self.model.net._fc
        pooled = feats[:, :, ::2, ::2] if self.dense else feats
        logits = fc(pooled.mean(dim=(2, 3)))
        if self.flips:
            logits = logits.reshape(views, -1, logits.shape[1]).mean(dim=0)
        probs = torch.softmax(logits, dim=1)
        g = self.good
        # P(good) as a sigmoid of its logit against the others' log-sum-exp: equal to probs[:, g], but
        # not an op reading the graph output, which the float16 converter mistypes
        parts = [p for p in (logits[:, :g], logits[:, g + 1:]) if p.shape[1] > 0]
        defect_logits = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        score = 1.0 - torch.sigmoid(logits[:, g:g + 1] - torch.logsumexp(defect_logits, dim=1, keepdim=True))
        # every class's CAM as one 1x1 convolution (no bias: a constant shift is not a place). The top
        # defect class (the largest logit is the largest probability) comes from slices of the logits
        # and integer arithmetic: the float16 converter mistypes a Gather or Slice of the weights,
        # float arithmetic with class masks, and ops reading a graph output.
        cams = F.conv2d(feats, fc.weight[:, :, None, None])
        top = defect_logits.argmax(dim=1)
        top = top + (top >= g).to(top.dtype)
        # chosen by comparison and Where rather than indexing or a Cast: works with a dynamic batch
        # and survives the float16 conversion
        pick = torch.arange(probs.shape[1], device=x.device)[None, :] == top[:, None]
        if self.flips:
            pick = pick.repeat(views, 1)  # each view's map is of the class the mean logits chose
        cam = torch.relu(torch.where(pick[:, :, None, None], cams, torch.zeros_like(cams)).sum(dim=1))
        cam = views_on_image(cam, self.model.cam_stride, self.flips)
        cam = cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(CAM_EPS)
        return probs, score, cam


def cell_offset(stride: int) -> float:
    """Where feature cell i is centred, in cells, relative to where a half-pixel resize puts it.

    With padding k // 2, output i of a stride-2 convolution is centred on input pixel 2i, half a
    pixel before the centre of the two pixels it summarizes; down a stack of stride-2 layers these
    halves add up to (s - 1) / 2 input pixels at total stride s. Feature cell i is therefore centred
    on input pixel s i, while a resize to the input (half-pixel convention, like every map of the
    SDK) puts it at pixel s i + (s - 1) / 2: the defect map would appear (s - 1) / 2 pixels right
    of and below the defect (7.5 pixels of a 224-pixel input at stride 16)."""
    return (stride - 1) / (2.0 * stride)


def centre_on_cells(cam: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, h, w) map of feature cells -> the same grid sampled where a half-pixel resize places its
    cells (cell_offset later along each axis; bilinear, the last row and column repeated): after
    the runtime's resize the map lies on the defect, not (s - 1) / 2 pixels beside it."""
    a = cell_offset(stride)
    # slices and sums rather than an edge-mode Pad and a convolution: plain ops for every backend,
    # and nothing an int8 quantizer would pick up
    cam = (1.0 - a) * cam + a * torch.cat([cam[:, 1:], cam[:, -1:]], dim=1)
    return (1.0 - a) * cam + a * torch.cat([cam[:, :, 1:], cam[:, :, -1:]], dim=2)


def views_on_image(cam: torch.Tensor, stride: int, flips: tuple = ()) -> torch.Tensor:
    """(V n, h, w) cell maps of the views (the n images, then their copies flipped as each of
    ``flips`` says) -> (n, h, w) on the images: each centred on its cells in its own view
    (centre_on_cells), flipped back (map axes are the image axes - 1), then averaged."""
    cam = centre_on_cells(cam, stride)
    if not flips:
        return cam
    parts = cam.reshape(1 + len(flips), -1, *cam.shape[1:])
    return torch.stack([parts[0]] + [parts[v + 1].flip(tuple(a - 1 for a in dims))
                                     for v, dims in enumerate(flips)]).mean(dim=0)
