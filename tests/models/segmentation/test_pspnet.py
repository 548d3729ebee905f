"""Tests for perpixel.models.segmentation.pspnet."""

import torch

from perpixel.models.segmentation.pspnet import PSPNet

from ..base import ModelTester

SMALL = {"backbone_widths": [4, 4, 6, 8], "ppm_channels": 8, "aux_channels": 4}


class TestPSPNet(ModelTester):
    name = "pspnet"
    model_class = PSPNet
    conf = {"backbone": "resnet18", **SMALL}


class TestPSPNetVGG(ModelTester):
    name = "pspnet"
    model_class = PSPNet
    conf = {"backbone": "vgg16", "backbone_widths": [4, 4, 6, 8, 8], "ppm_channels": 8}


def test_forward_with_aux_returns_the_auxiliary_logits():
    torch.manual_seed(0)
    model = PSPNet(backbone="resnet18", num_classes=4, **SMALL).train()
    x = torch.rand(2, 3, 37, 53)
    out, aux = model.forward_with_aux(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 37, 53)
    assert len(aux) == 1 and aux[0].shape == (2, 4, 37, 53)
    y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 4, 37, 53)
    model.eval()
    with torch.no_grad():
        out, aux = model.forward_with_aux(x)
        torch.testing.assert_close(out, model(x))
        assert not torch.allclose(aux[0], out)


def test_auxiliary_head_reads_stage_3_and_the_ppm_the_last_stage():
    model = PSPNet(backbone="resnet50", **SMALL)
    assert model.backbone.strides == [2, 4, 8, 8, 8]  # dilated, output stride 8
    assert model.aux[0][0].in_channels == 6 * 4  # layer3 of a Bottleneck ResNet
    assert model.ppm.stages[0][0].in_channels == 8 * 4  # layer4
    assert model.ppm.bins == (1, 2, 3, 6)
    assert [s[0].out_channels for s in model.ppm.stages] == [8] * 4  # C / 4 per bin
    default = PSPNet()
    assert default.ppm.stages[0][0].out_channels == 512 and default.classifier.in_channels == 512
