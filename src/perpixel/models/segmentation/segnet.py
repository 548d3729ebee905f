"""SegNet and SegNet-Basic (Badrinarayanan, Kendall & Cipolla, TPAMI 2017).

The decoder upsamples with the encoder's max-pooling indices (`upsampling.max_unpool`) and
convolves the sparse result; layer layout as the reference Caffe nets (segnet_train.prototxt,
segnet_basic_train.prototxt). Convolutions followed by batch norm have no bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.backbones.vgg import (
    VGG16_CONVS,
    VGG16_WIDTHS,
    to_caffe_bgr,
    vgg16_conv_names,
)
from perpixel.models.base import Model
from perpixel.models.layers import pad_to_multiple
from perpixel.models.segmentation.vgg_unet import CaffeVGGModel
from perpixel.models.upsampling import max_unpool


def conv_bn(
    cin: int, cout: int, kernel: int = 3, relu: bool = True, transposed: bool = False
) -> nn.Sequential:
    """(B, cin, H, W) -> (B, cout, H, W): a 'same' convolution (or transposed convolution)
    without bias, batch norm, and ReLU if `relu`."""
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    layers = [conv(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if relu else []))


def vgg16_bn_encoder(widths: Sequence[int]) -> nn.ModuleList:
    """VGG16's 13 3x3 convolutions with batch norm + ReLU, one `nn.Sequential` per stage
    (no pooling): stage k maps (B, widths[k - 1], H, W) -> (B, widths[k], H, W), 3 input
    channels for stage 0."""
    if len(widths) != len(VGG16_CONVS):
        raise ValueError(f"widths needs {len(VGG16_CONVS)} entries, got {list(widths)}")
    stages, cin = nn.ModuleList(), 3
    for width, n in zip(widths, VGG16_CONVS, strict=True):
        stages.append(nn.Sequential(*[conv_bn(cin if i == 0 else width, width) for i in range(n)]))
        cin = width
    return stages


def load_vgg16_convs(stages: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy VGG16's 13 convolution weights (a `VGG16` state dict, `pretrained_vgg16`) in
    order into `vgg16_bn_encoder` stages (their biases are dropped: batch norm follows)."""
    convs = [m for m in stages.modules() if isinstance(m, nn.Conv2d)]
    names = [name for stage in vgg16_conv_names() for name in stage]
    with torch.no_grad():
        for conv, name in zip(convs, names, strict=True):
            conv.weight.copy_(state[f"{name}.weight"])


def pool(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """(B, C, H, W) -> 2x2 max-pooled (B, C, H/2, W/2), its indices, and (H, W)."""
    y, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    return y, indices, (x.shape[-2], x.shape[-1])


class UnpoolingVGG(CaffeVGGModel):
    """Base of SegNet and DeconvNet: a `vgg16_bn_encoder` as `backbone` whose max-pooling
    indices a mirrored `decoder` (stages, coarsest first) unpools with; VGG16's pretrained
    convolutions load into the encoder (`load_vgg16_convs`)."""

    backbone: nn.ModuleList
    decoder: nn.ModuleList

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """(B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> (the pooled stage-5 map,
        [(indices, size before pooling)] of each stage, finest first)."""
        y, pooled = to_caffe_bgr(x, self.mean), []
        for stage in self.backbone:
            y, indices, size = pool(stage(y))
            pooled.append((indices, size))
        return y, pooled

    def decode(self, y: torch.Tensor, pooled: list) -> torch.Tensor:
        """Unpool with `encode`'s indices and run the decoder stages, back to the input size."""
        for stage, (indices, size) in zip(self.decoder, reversed(pooled), strict=True):
            y = stage(max_unpool(y, indices, 2, size))
        return y

    def load_encoder(self, state: dict[str, torch.Tensor]) -> None:
        load_vgg16_convs(self.backbone, state)


class SegNet(UnpoolingVGG):
    """VGG16 encoder (13 3x3 convolutions + BN + ReLU, a 2x2 max-pool keeping its indices
    after each of the 5 stages) and its mirror: per stage, unpool with the indices, then the
    stage's convolutions in reverse (+ BN + ReLU), the last one narrowing to the next stage's
    width; the last stage ends in a 3x3 convolution to the classes (conv1_1_D).

    Input (B, 3, H, W) RGB in [0, 1], fed Caffe BGR as VGG16 was trained on, any H and W
    (padded to a multiple of 32 inside, cropped back). Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        # `load_pretrained()`'s start for the encoder convolutions: "hed", "imagenet", a
        # VGG16 state-dict file, or None (random); see VGGUNet
        "encoder_weights": "hed",
        "widths": list(VGG16_WIDTHS),  # encoder widths; pretrained weights need VGG16's
    }

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        widths = list(c["widths"])
        self.backbone = vgg16_bn_encoder(widths)
        self.decoder = nn.ModuleList()  # coarsest first
        for k in reversed(range(len(widths))):
            n, width = VGG16_CONVS[k], widths[k]
            outs = [width] * (n - 1) + ([widths[k - 1]] if k else [])
            cins = [width] + outs[:-1]
            self.decoder.append(
                nn.Sequential(*[conv_bn(a, b) for a, b in zip(cins, outs, strict=True)])
            )
        self.head = nn.Conv2d(widths[0], c["num_classes"], 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2 ** len(self.backbone))
        return self.head(self.decode(*self.encode(x)))[..., :h, :w]


class SegNetBasic(Model):
    """SegNet-Basic, the CamVid model: LRN of the 0..255 image, 4 encoder stages (7x7
    convolution + BN + ReLU, 2x2 max-pool keeping its indices), 4 decoder stages (unpool,
    7x7 convolution + BN, no ReLU: segnet_basic_train.prototxt has none in the decoder and
    the paper says so), then a 1x1 convolution to the classes.

    Input (B, in_channels, H, W) in [0, 1], any H and W (padded to a multiple of 16 inside,
    cropped back). Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 11,  # CamVid's 11 classes
        "width": 64,  # every convolution's
        "kernel_size": 7,
        "depth": 4,  # encoder (and decoder) stages
        "input_lrn": True,  # the reference's LRN on the input (size 5, alpha 1e-4, beta 0.75)
    }
    output = "logits"

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        w, k = c["width"], c["kernel_size"]
        self.lrn = nn.LocalResponseNorm(5, 1e-4, 0.75) if c["input_lrn"] else nn.Identity()
        self.encoder = nn.ModuleList(
            [conv_bn(c["in_channels"] if i == 0 else w, w, k) for i in range(c["depth"])]
        )
        self.decoder = nn.ModuleList([conv_bn(w, w, k, relu=False) for _ in range(c["depth"])])
        self.head = nn.Conv2d(w, c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2 ** len(self.encoder))
        y = self.lrn(x * 255)
        pooled = []
        for stage in self.encoder:
            y, indices, size = pool(stage(y))
            pooled.append((indices, size))
        for stage, (indices, size) in zip(self.decoder, reversed(pooled), strict=True):
            y = stage(max_unpool(y, indices, 2, size))
        return self.head(y)[..., :h, :w]
