"""DeepLab v1 (LargeFOV), v2 (ASPP), v3 (ASPP + image pooling) and v3+ (+ decoder) on the
shared backbones (`perpixel.models.backbones.build_backbone`), and `BackboneSegmenter`, the
base that PSPNet and FPN share with them.

Atrous rates are given at the paper's output stride (8 for v1 and v2, 16 for v3 and v3+)
and scale inversely with the one chosen: v3's (6, 12, 18) become (12, 24, 36) at output
stride 8, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import torch
import torch.nn as nn

from perpixel.models.backbones import build_backbone
from perpixel.models.base import Model
from perpixel.models.heads import ASPP, ASPPV2, DeepLabV3PlusDecoder, LargeFOV
from perpixel.models.layers import upsample_to


class BackboneSegmenter(Model):
    """A backbone (`build_backbone`) + a head; subclasses build the head and define
    `decode(feats)`: the backbone's 5 features, finest first -> (B, num_classes, h, w) class
    scores at any stride, which `forward` upsamples (bilinear) to the input size.

    Input (B, in_channels, H, W) RGB in [0, 1] (normalised for the backbone by its
    `preprocess`), any H and W. Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 21,
        "backbone": "resnet50",  # "vgg16", "resnet18", "resnet34" or "resnet50"
        # vgg16: 16 or 8; resnet: 32, 16 or 8 (the last stages dilated); None: undilated
        "output_stride": 16,
        "backbone_widths": None,  # stage widths; None: the standard ones (pretrained weights)
        # what `load_pretrained()` loads into the backbone, by
        # `perpixel.models.backbones.weights.load_backbone_weights` (e.g. "hed" for vgg16);
        # None: nothing (random)
        "backbone_weights": None,
        "dropout": 0.1,
    }
    output = "logits"

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        stride = c["output_stride"] or (16 if c["backbone"] == "vgg16" else 32)
        self.backbone = build_backbone(
            c["backbone"], c["in_channels"], stride, c["backbone_widths"]
        )
        self.feature_channels: list[int] = list(cast(list[int], self.backbone.out_channels))
        self.feature_strides: list[int] = list(cast(list[int], self.backbone.strides))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, in_channels, H, W) in [0, 1] -> the backbone's 5 features, finest first."""
        preprocess = cast(Callable[[torch.Tensor], torch.Tensor], self.backbone.preprocess)
        return self.backbone(preprocess(x))

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_to(self.decode(self.features(x)), x.shape[-2:])

    def load_pretrained(self) -> str | None:
        """Load the backbone weights named by `backbone_weights`; returns their source."""
        spec = self.conf["backbone_weights"]
        if spec in (None, "none"):
            return None
        from perpixel.models.backbones.weights import load_backbone_weights

        return load_backbone_weights(self.backbone, self.conf["backbone"], str(spec))


class _DeepLab(BackboneSegmenter):
    """A DeepLab: `paper_stride` is the output stride that its `rates` option is given at."""

    paper_stride: ClassVar[int] = 16

    def scaled_rates(self, rates: list[int]) -> list[int]:
        """`rates` at the paper's output stride -> at the one chosen (at least 1)."""
        return [max(1, r * self.paper_stride // self.feature_strides[-1]) for r in rates]


class DeepLabV1(_DeepLab):
    """DeepLab-LargeFOV (Chen et al., ICLR 2015): VGG16 at output stride 8 (pool4 3x3 with
    stride 1, conv5 dilated by 2) + `LargeFOV` (pool5, fc6 3x3 at dilation 12 to
    `fov_channels`, fc7, dropout, fc8); the scores upsampled bilinearly to the input (no CRF).
    """

    default_conf = {
        **BackboneSegmenter.default_conf,
        "backbone": "vgg16",
        "output_stride": 8,
        "fov_channels": 1024,  # fc6 and fc7
        "fov_rate": 12,  # fc6's dilation at output stride 8
        "dropout": 0.5,  # after fc6 and after fc7
    }
    paper_stride = 8

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.head = LargeFOV(
            self.feature_channels[-1],
            c["num_classes"],
            c["fov_channels"],
            self.scaled_rates([c["fov_rate"]])[0],
            c["dropout"],
        )

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.head(feats[-1])


class DeepLabV2(_DeepLab):
    """DeepLab v2 (Chen et al., TPAMI 2017): a dilated backbone at output stride 8 (the paper
    uses ResNet-101; resnet50 here) + `ASPPV2` (3x3 convs at rates 6, 12, 18, 24 straight to
    the class scores, summed). `dropout` acts on the backbone feature (0: none, as the
    ResNet model)."""

    default_conf = {
        **BackboneSegmenter.default_conf,
        "output_stride": 8,
        "aspp_rates": [6, 12, 18, 24],  # at output stride 8
        "dropout": 0.0,
    }
    paper_stride = 8

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.head = ASPPV2(
            self.feature_channels[-1],
            c["num_classes"],
            self.scaled_rates(c["aspp_rates"]),
            c["dropout"],
        )

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.head(feats[-1])


class DeepLabV3(_DeepLab):
    """DeepLab v3 (Chen et al. 2017): a dilated backbone at output stride 16 (or 8) + `ASPP`
    (1x1, three 3x3 atrous convs, image pooling; concatenated, projected to `aspp_channels`,
    dropout) + a 1x1 classifier."""

    default_conf = {
        **BackboneSegmenter.default_conf,
        "aspp_channels": 256,
        "aspp_rates": [6, 12, 18],  # at output stride 16
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.aspp = ASPP(
            self.feature_channels[-1],
            c["aspp_channels"],
            self.scaled_rates(c["aspp_rates"]),
            c["dropout"],
        )
        self.classifier = nn.Conv2d(self.head_channels(), c["num_classes"], 1)

    def head_channels(self) -> int:
        """The width that the classifier reads."""
        return int(self.conf["aspp_channels"])

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.aspp(feats[-1]))


class DeepLabV3Plus(DeepLabV3):
    """DeepLab v3+ (Chen et al., ECCV 2018): DeepLab v3's ASPP, then `DeepLabV3PlusDecoder`
    with the backbone's stride-4 feature (reduced to `low_level_channels`; two 3x3 convs to
    `decoder_channels`), a 1x1 classifier at stride 4. Plain (not separable) convolutions."""

    default_conf = {
        **DeepLabV3.default_conf,
        "low_level_channels": 48,
        "decoder_channels": 256,
    }

    def __init__(self, **conf: Any):
        super().__init__(**conf)
        c = self.conf
        self.low_level = self.feature_strides.index(4)
        self.decoder = DeepLabV3PlusDecoder(
            c["aspp_channels"],
            self.feature_channels[self.low_level],
            c["low_level_channels"],
            c["decoder_channels"],
        )

    def head_channels(self) -> int:
        return int(self.conf["decoder_channels"])

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        y = self.decoder(self.aspp(feats[-1]), feats[self.low_level])
        return self.classifier(y)
