"""Tests for perpixel.models.edges.hed."""

import math

import pytest
import torch

from perpixel.errors import ConfigError
from perpixel.models import build_model
from perpixel.models.edges.hed import CAFFE_BGR_MEAN, HED

from ..base import ModelTester


class TestHED(ModelTester):
    name = "hed"
    model_class = HED
    conf = {"widths": [4, 6, 8, 8, 8], "side_init": "normal"}
    num_sides = 5
    other_in_channels = None  # RGB only: the pretrained weights read Caffe BGR


def test_vgg16_size_and_caffe_init():
    model = HED()
    n = sum(p.numel() for p in model.parameters())
    vgg16_features = 14_714_688  # torchvision's VGG16 `features`
    assert n == vgg16_features + (64 + 128 + 256 + 512 + 512) + 5 + 5 + 1
    assert all((d.weight == 0).all() for d in model.dsn)
    assert (model.fuse.weight == 0.2).all() and model.fuse.bias.item() == 0


def test_stages_pool_like_keras_same_padding():
    # Keras MaxPooling2D(2, 2, padding='same') halves rounding up: 37 -> 19 -> 10 -> 5 -> 3
    model = HED(widths=[2, 2, 2, 2, 2])
    sizes = []
    y = model.preprocess(torch.rand(1, 3, 37, 53))
    for block in model.backbone.blocks:
        y = block(y)
        sizes.append(tuple(y.shape[-2:]))
    expected = [(math.ceil(37 / 2**k), math.ceil(53 / 2**k)) for k in range(5)]
    assert sizes == expected
    # the odd row/column is pooled alone (not dropped): a maximum there survives
    pool = model.backbone.blocks[1][0]
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 2, 2] = 5
    assert pool(x)[0, 0].tolist() == [[0, 0], [0, 5]]


def test_caffe_preprocessing():
    model = HED(widths=[2, 2, 2, 2, 2])
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0] = 1.0  # pure red
    y = model.preprocess(x).flatten().tolist()
    b, g, r = CAFFE_BGR_MEAN
    assert y == pytest.approx([-b, -g, 255 - r], abs=1e-4)  # BGR order, 0..255 minus mean


def test_side_outputs_are_bilinear_upsamplings():
    # a constant image gives constant stage outputs away from the border; the side maps
    # stay finite and the fusion is their weighted sum
    model = HED(widths=[2, 2, 2, 2, 2], side_init="normal").eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 33, 47))
        sides = torch.cat(out["sides"], 1)
        fused = (sides * model.fuse.weight.view(1, 5, 1, 1)).sum(1, keepdim=True) + model.fuse.bias
    torch.testing.assert_close(out["fused"], fused)


def test_rgb_only():
    with pytest.raises(ValueError, match="in_channels"):
        HED(in_channels=1, widths=[2, 2, 2, 2, 2])
    with pytest.raises(ConfigError, match="in_channels"):
        build_model({"name": "hed", "in_channels": 1})
