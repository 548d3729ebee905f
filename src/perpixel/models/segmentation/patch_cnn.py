"""The sliding-window patch classifier: the "first try" at segmentation with a convnet.

Each pixel is classified by a small CNN that sees only the `patch` x `patch` window centred
on it, as in Ciresan, Giusti, Gambardella & Schmidhuber, "Deep neural networks segment
neuronal membranes in electron microscopy images", NIPS 2012. The network (valid
convolutions, 2x2 max-pools of stride 2, a fully connected layer over what is left) is
evaluated densely and exactly at every pixel by filter rarefaction (the "a trous" /
shift-and-stitch equivalence): pools of stride 1 and dilation d, and every layer after the
n-th pool dilated by 2^n, so no resolution is lost and no computation is repeated.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.base import Model
from perpixel.models.segmentation.filterbank import reflect_pad


class PatchCNN(Model):
    """Classify the centre pixel of the `patch` x `patch` window around every pixel.

    Input (B, in_channels, H, W) in [0, 1], any H and W; reflect-padded by patch // 2, so the
    output (B, num_classes, H, W) logits at (y, x) equal `classify_patches` of the window
    centred on (y, x) alone. Per stage: a valid k x k convolution (k = 3 when the window
    side left is even, 4 when odd, so the 2x2 pool tiles it exactly), ReLU, a 2x2 max-pool;
    then a fully connected layer over the s x s map left (`hidden` units, ReLU) and a linear
    layer to the classes (`hidden: 0`: straight to the classes). `patch` is odd; the
    receptive field (`receptive_field`) is exactly `patch`. Default (patch 33, widths 16, 32,
    32): 33 -conv4-> 30 -pool-> 15 -conv4-> 12 -pool-> 6 -conv3-> 4 -pool-> 2 -fc 2x2.

    Cost (`macs_per_pixel`, multiply-adds per output pixel, defaults): this dense evaluation
    runs every layer once per pixel, 26.5k; the network run on each pixel's patch separately
    (the naive sliding window) 2.03M, 76x more; a strided FCN sharing computation (the same
    layers with stride-2 pools, one output per 8 x 8 pixels, upsampled) 3.5k.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        "patch": 33,  # odd: the window side, = the receptive field
        "widths": [16, 32, 32],  # one conv + pool stage each
        "hidden": 64,  # units of the fully connected layer; 0: none
    }
    output = "logits"

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        c = self.conf
        patch = int(c["patch"])
        if patch < 1 or patch % 2 == 0:
            raise ValueError(f"PatchCNN: patch must be odd and positive, not {c['patch']}")
        self.kernels: list[int] = []
        self.sides: list[int] = []  # the window side after each stage's conv, in a patch
        s, cin = patch, c["in_channels"]
        self.convs = nn.ModuleList()
        for w in c["widths"]:
            k = 3 if s % 2 == 0 else 4
            if s - k + 1 < 2:
                raise ValueError(
                    f"PatchCNN: patch {patch} is too small for {len(c['widths'])} stages"
                )
            self.kernels.append(k)
            self.sides.append(s - k + 1)
            self.convs.append(nn.Conv2d(cin, w, k))
            s, cin = (s - k + 1) // 2, w
        self.fc_side = s
        self.fc = nn.Conv2d(cin, c["hidden"] or c["num_classes"], s)
        self.classifier: nn.Conv2d | None = None
        if c["hidden"]:
            self.classifier = nn.Conv2d(c["hidden"], c["num_classes"], 1)
        assert self.receptive_field == patch

    @property
    def receptive_field(self) -> int:
        """The side of the input window one output pixel depends on."""
        r = self.fc_side
        for k in reversed(self.kernels):
            r = 2 * r + k - 1
        return r

    def conv_layers(self) -> list[nn.Conv2d]:
        """The stages' convolutions, first first."""
        return [m for m in self.convs if isinstance(m, nn.Conv2d)]

    def _run(self, x: torch.Tensor, dense: bool) -> torch.Tensor:
        d = 1
        for conv in self.conv_layers():
            x = F.relu(F.conv2d(x, conv.weight, conv.bias, dilation=d))
            x = F.max_pool2d(x, 2, stride=1, dilation=d) if dense else F.max_pool2d(x, 2)
            d = 2 * d if dense else 1
        x = F.conv2d(x, self.fc.weight, self.fc.bias, dilation=d)
        if self.classifier is not None:
            x = self.classifier(F.relu(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(reflect_pad(x, self.conf["patch"] // 2), dense=True)

    def classify_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, patch, patch) windows -> (N, num_classes) logits of their centre
        pixels: the network as it is defined, strided pools, one window at a time."""
        p = self.conf["patch"]
        if tuple(patches.shape[-2:]) != (p, p):
            raise ValueError(f"PatchCNN: patches must be {p} x {p}, not {tuple(patches.shape)}")
        return self._run(patches, dense=False).flatten(1)

    def macs_per_pixel(self) -> dict[str, int]:
        """Multiply-adds per output pixel: "dense" (this model), "patchwise" (the network on
        every pixel's window separately) and "strided_fcn" (the same layers with stride-2
        pools, sharing computation, one output per 2^stages x 2^stages pixels)."""
        dense = patchwise = 0
        fcn = 0.0
        stride = 1
        layers = list(zip(self.conv_layers(), self.sides, strict=True)) + [(self.fc, 1)]
        if self.classifier is not None:
            layers.append((self.classifier, 1))
        for k, (layer, side) in enumerate(layers):
            macs = layer.weight.numel()  # cout x cin x kh x kw
            dense += macs
            patchwise += macs * side * side
            fcn += macs / stride**2
            stride = 2 * stride if k < len(self.convs) else stride
        return {"dense": dense, "patchwise": patchwise, "strided_fcn": round(fcn)}
