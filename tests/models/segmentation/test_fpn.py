"""Tests for perpixel.models.segmentation.fpn."""

import math

import torch

from perpixel.models.segmentation.fpn import FPN

from ..base import ModelTester

SMALL = {"fpn_channels": 8, "semantic_channels": 4}


class TestFPN(ModelTester):
    name = "fpn"
    model_class = FPN
    conf = {"backbone": "resnet50", "backbone_widths": [4, 4, 6, 8], **SMALL}
    # batch-1 training needs more than one stride-32 pixel for the backbone's batch norms
    sizes = [(33, 45), (37, 53), (64, 64)]


class TestFPNVGG(ModelTester):
    name = "fpn"
    model_class = FPN
    conf = {"backbone": "vgg16", "backbone_widths": [4, 4, 6, 8, 8], **SMALL}


def test_pyramid_levels_per_backbone():
    resnet = FPN(backbone="resnet18", backbone_widths=[4, 4, 6, 8], **SMALL)
    assert resnet.levels == [1, 2, 3, 4]
    assert [resnet.feature_strides[k] for k in resnet.levels] == [4, 8, 16, 32]
    assert [len(b) for b in resnet.head.semantic] == [1, 1, 2, 3]
    vgg = FPN(backbone="vgg16", backbone_widths=[4, 4, 6, 8, 8], **SMALL)
    assert [vgg.feature_strides[k] for k in vgg.levels] == [4, 8, 16]  # no stride 32
    dilated = FPN(backbone="resnet18", output_stride=16, backbone_widths=[4, 4, 6, 8], **SMALL)
    assert [dilated.feature_strides[k] for k in dilated.levels] == [4, 8, 16, 16]
    for model in (resnet, vgg, dilated):
        model.eval()
        with torch.no_grad():
            scores = model.decode(model.features(torch.rand(1, 3, 37, 53)))
        assert scores.shape == (1, 21, math.ceil(37 / 4), math.ceil(53 / 4))
