"""PSPNet (Zhao et al., CVPR 2017): a dilated backbone at output stride 8, the pyramid
pooling module (`perpixel.models.heads.PyramidPooling`) and a 1x1 classifier, with the
auxiliary head on the stage before the last for deep supervision in training."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from perpixel.models.heads import PyramidPooling, conv_bn_relu
from perpixel.models.layers import upsample_to
from perpixel.models.segmentation.deeplab import BackboneSegmenter


class PSPNet(BackboneSegmenter):
    """Backbone (resnet50 at output stride 8: the paper uses ResNet-101 with a deep stem) +
    `PyramidPooling` (bins 1, 2, 3, 6; 3x3 conv to `ppm_channels` + BN + ReLU + dropout) + a
    1x1 classifier.

    The auxiliary head reads the backbone's second-to-last feature (ResNet's layer3, the
    paper's res4b22; VGG16's conv4_3): 3x3 conv to `aux_channels` + BN + ReLU + dropout, 1x1
    to the classes. `forward_with_aux` returns its logits upsampled to the input size
    (the training loss weights them, 0.4 in the paper); `forward` skips it.
    """

    default_conf = {
        **BackboneSegmenter.default_conf,
        "output_stride": 8,
        "ppm_bins": [1, 2, 3, 6],
        "ppm_channels": 512,
        "aux_channels": 256,
        "dropout": 0.1,  # after the pyramid pooling's and the auxiliary head's 3x3 conv
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        n = c["num_classes"]
        self.ppm = PyramidPooling(
            self.feature_channels[-1], c["ppm_channels"], c["ppm_bins"], c["dropout"]
        )
        self.classifier = nn.Conv2d(c["ppm_channels"], n, 1)
        self.aux = nn.Sequential(
            conv_bn_relu(self.feature_channels[-2], c["aux_channels"], 3),
            nn.Dropout(c["dropout"]),
            nn.Conv2d(c["aux_channels"], n, 1),
        )

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.ppm(feats[-1]))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, in_channels, H, W) -> ((B, num_classes, H, W) logits, [the auxiliary head's
        (B, num_classes, H, W) logits])."""
        feats = self.features(x)
        size = x.shape[-2:]
        return upsample_to(self.decode(feats), size), [upsample_to(self.aux(feats[-2]), size)]
