"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, CVPR 2015) on VGG16.

The trunk is `perpixel.models.backbones.vgg.VGG16` fed Caffe BGR, as `VGGUNet`'s, so the
same pretrained encoder weights load (`load_pretrained`). Module names follow the reference
Caffe nets: fc6, fc7, score_fr, upscore2, score_pool4, upscore_pool4, score_pool3, and
`upscore` for the final upsampling (the reference's upscore32 / upscore16 / upscore8).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.backbones.vgg import VGG16, VGG16_WIDTHS, to_caffe_bgr
from perpixel.models.layers import pad_to_multiple
from perpixel.models.segmentation.vgg_unet import CaffeVGGModel
from perpixel.models.upsampling import TransposedUp

FINAL_SCALE = {"32s": 32, "16s": 16, "8s": 8}


class FCN(CaffeVGGModel):
    """VGG16 conv1..conv5 + pool5, fc6 (7x7 conv) + ReLU + dropout, fc7 (1x1) + ReLU +
    dropout, score_fr (1x1 to the classes) at stride 32, then by `variant`:

    - "32s": upsample x32.
    - "16s": upsample x2 (learnable, bilinear at start), add score_pool4 (1x1 on pool4,
      stride 16), upsample x16.
    - "8s": as 16s, then upsample x2 (learnable), add score_pool3 (1x1 on pool3, stride 8),
      upsample x8.

    The final upsampling is bilinear and fixed unless `learn_final_upsampling`; score_pool4
    and score_pool3 start at zero (weights and bias), as in the reference nets, so that at
    initialisation FCN-16s / 8s predict what their coarser stream does. score_fr keeps
    PyTorch's default initialisation (the paper zeroes it too, but then no layer below it
    gets a gradient until it has moved).

    Unlike the paper, fc6 pads its 7x7 by 3 ('same'), and there is no pad-100 on conv1_1 and
    crop: the input (B, 3, H, W) RGB in [0, 1] is padded to a multiple of 32 inside and the
    output cropped back to (B, num_classes, H, W) logits, for any H and W. fc6 / fc7 start
    random: only the convolutions of the trunk are pretrained.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 21,
        "variant": "8s",  # "32s", "16s" or "8s"
        # `load_pretrained()`'s start for the trunk: "hed", "imagenet", a VGG16
        # state-dict file, or None (random); see VGGUNet
        "encoder_weights": "hed",
        "widths": list(VGG16_WIDTHS),  # trunk widths; pretrained weights need VGG16's
        "fc_channels": 4096,  # fc6 and fc7
        "dropout": 0.5,  # after fc6 and after fc7
        "learn_final_upsampling": False,  # the paper fixes it to bilinear
    }

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        if c["variant"] not in FINAL_SCALE:
            raise ValueError(
                f"FCN: variant must be one of {list(FINAL_SCALE)}, got {c['variant']!r}"
            )
        n, fc = c["num_classes"], c["fc_channels"]
        self.backbone = VGG16(3, c["widths"])
        widths = self.backbone.out_channels
        self.fc6 = nn.Conv2d(widths[4], fc, 7, padding=3)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.dropout = nn.Dropout(c["dropout"]) if c["dropout"] > 0 else nn.Identity()
        self.score_fr = nn.Conv2d(fc, n, 1)
        if c["variant"] in ("16s", "8s"):
            self.upscore2 = TransposedUp(n, 2)
            self.score_pool4 = _zero_conv(widths[3], n)
        if c["variant"] == "8s":
            self.upscore_pool4 = TransposedUp(n, 2)
            self.score_pool3 = _zero_conv(widths[2], n)
        scale = FINAL_SCALE[c["variant"]]
        self.upscore = TransposedUp(n, scale, learnable=c["learn_final_upsampling"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 32)
        y = to_caffe_bgr(x, self.mean)
        pools = []  # pool1..pool5, strides 2..32
        for block in self.backbone.blocks:
            y = block(y)
            pools.append(F.max_pool2d(y, 2, 2))
        y = self.dropout(F.relu(self.fc6(pools[4])))
        y = self.dropout(F.relu(self.fc7(y)))
        y = self.score_fr(y)
        variant = self.conf["variant"]
        if variant in ("16s", "8s"):
            y = self.upscore2(y) + self.score_pool4(pools[3])
        if variant == "8s":
            y = self.upscore_pool4(y) + self.score_pool3(pools[2])
        return self.upscore(y)[..., :h, :w]


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    """A 1x1 convolution whose weights and bias start at zero (the reference's score_pool*)."""
    conv = nn.Conv2d(cin, cout, 1)
    for p in conv.parameters():
        nn.init.zeros_(p)
    return conv


class FCN32s(FCN):
    """`FCN` with variant "32s"."""

    default_conf = {**FCN.default_conf, "variant": "32s"}


class FCN16s(FCN):
    """`FCN` with variant "16s"."""

    default_conf = {**FCN.default_conf, "variant": "16s"}


class FCN8s(FCN):
    """`FCN` with variant "8s"."""

    default_conf = {**FCN.default_conf, "variant": "8s"}
