"""Tests for perpixel.models.segmentation.deconvnet."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.errors import PerpixelError
from perpixel.models.segmentation.deconvnet import DeconvNet
from perpixel.models.segmentation.vgg_unet import pretrained_vgg16

from ..base import ModelTester
from .test_fcn import write_torchvision_vgg16
from .test_segnet import assert_unpools_at_the_argmax, capture

SMALL = {"widths": [4, 4, 6, 6, 8], "fc_channels": 8, "encoder_weights": None}


class TestDeconvNet(ModelTester):
    name = "deconvnet"
    model_class = DeconvNet
    conf = SMALL
    other_in_channels = None  # RGB only: the pretrained encoder reads Caffe BGR
    # odd sizes above 32, so that fc6's batch norm sees more than one value in training
    sizes = [(37, 53), (45, 33), (64, 64)]


def test_layout():
    model = DeconvNet(num_classes=3)
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.bias is None for c in convs)
    assert model.fc6[0].kernel_size == (7, 7) and model.fc6[0].padding == (3, 3)
    assert model.fc7[0].kernel_size == (1, 1) and model.fc7[0].out_channels == 4096
    assert isinstance(model.deconv_fc6[0], nn.ConvTranspose2d)
    deconvs = [m for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert all(d.kernel_size == (3, 3) for d in deconvs)
    # deconv5_1 .. deconv1_2 mirror conv5_3 .. conv1_1, the last one staying at 64
    assert [(d.in_channels, d.out_channels) for d in deconvs] == [
        (c.out_channels, c.in_channels) for c in reversed(convs[1:])
    ] + [(64, 64)]
    assert model.head.kernel_size == (1, 1) and model.head.out_channels == 3
    # the paper's 252 M parameters
    assert 251e6 < sum(p.numel() for p in model.parameters()) < 253e6


def test_fc_layers_keep_the_size_and_the_decoder_unpools_with_the_indices():
    model = DeconvNet(num_classes=3, **SMALL).eval()
    x = torch.rand(2, 3, 70, 40)  # padded to 96 x 64: pool5 is 3 x 2
    seen = {}
    model.fc6.register_forward_hook(lambda m, i, o: seen.update(fc6=o))
    model.deconv_fc6.register_forward_hook(lambda m, i, o: seen.update(deconv_fc6=o))
    enc, dec = capture(model, model.backbone[4], model.decoder[0], x)
    assert seen["fc6"].shape == (2, 8, 3, 2) and seen["deconv_fc6"].shape == (2, 8, 3, 2)
    assert dec.shape == enc.shape == (2, 8, 6, 4)
    assert_unpools_at_the_argmax(enc, seen["deconv_fc6"], dec)
    enc, dec = capture(model, model.backbone[0], model.decoder[4], x)
    assert_unpools_at_the_argmax(enc, F.max_pool2d(dec, 2, 2), dec)


def test_torchvision_file_loads_into_the_encoder(tmp_path):
    write_torchvision_vgg16(tmp_path / "vgg16.pth")
    model = DeconvNet(encoder_weights=str(tmp_path / "vgg16.pth"), fc_channels=8)
    assert model.load_pretrained() == str(tmp_path / "vgg16.pth")
    state, _ = pretrained_vgg16(str(tmp_path / "vgg16.pth"))
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    weights = [v for k, v in state.items() if k.endswith(".weight")]
    for conv, weight in zip(convs, weights, strict=True):
        assert torch.equal(conv.weight, weight)


def test_pretrained_needs_vgg16_widths():
    with pytest.raises(PerpixelError, match="needs the VGG16 widths"):
        DeconvNet(**{**SMALL, "encoder_weights": "hed"}).load_pretrained()
    assert DeconvNet(**SMALL).load_pretrained() is None
