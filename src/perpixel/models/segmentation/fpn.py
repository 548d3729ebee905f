"""Semantic FPN: a backbone + the Panoptic FPN semantic branch (Kirillov et al., CVPR 2019)
on a feature pyramid (Lin et al., CVPR 2017)."""

from __future__ import annotations

from typing import Any

import torch

from perpixel.models.heads import FPNSemanticHead
from perpixel.models.segmentation.deeplab import BackboneSegmenter


class FPN(BackboneSegmenter):
    """Backbone + `FPNSemanticHead` on its features of stride 4 and more: ResNet's layer1..4
    (strides 4..32 at output stride 32, the paper's P2..P5; a dilated output stride repeats
    the last stride), VGG16's stages 3..5 (strides 4, 8, 16: it has no stride-32 feature).
    Class scores at stride 4, upsampled bilinearly to the input.
    """

    default_conf = {
        **BackboneSegmenter.default_conf,
        "output_stride": None,  # undilated: resnet 32, vgg16 16
        "fpn_channels": 256,  # the pyramid's width
        "semantic_channels": 128,  # the semantic branch's width
        "dropout": 0.0,  # before the classifier (the paper has none)
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.levels = [k for k, s in enumerate(self.feature_strides) if s >= 4]
        self.head = FPNSemanticHead(
            [self.feature_channels[k] for k in self.levels],
            [self.feature_strides[k] for k in self.levels],
            c["num_classes"],
            c["fpn_channels"],
            c["semantic_channels"],
            c["dropout"],
        )

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.head([feats[k] for k in self.levels])
