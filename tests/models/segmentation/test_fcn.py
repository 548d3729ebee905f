"""Tests for perpixel.models.segmentation.fcn."""

import pytest
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError, PerpixelError
from perpixel.models import build_model
from perpixel.models.backbones.vgg import VGG16_CONVS, VGG16_WIDTHS
from perpixel.models.segmentation.fcn import FCN8s, FCN16s, FCN32s
from perpixel.models.segmentation.vgg_unet import pretrained_vgg16
from perpixel.models.upsampling import TransposedUp, bilinear, bilinear_kernel

from ..base import ModelTester

SMALL = {"widths": [4, 4, 6, 6, 8], "fc_channels": 8, "encoder_weights": None}
TORCHVISION_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def write_torchvision_vgg16(path) -> dict[str, torch.Tensor]:
    """A random torchvision VGG16 state dict (`features.N.*`) saved at `path`."""
    widths = [w for w, n in zip(VGG16_WIDTHS, VGG16_CONVS, strict=True) for _ in range(n)]
    tv, cin = {}, 3
    for idx, cout in zip(TORCHVISION_VGG16_CONVS, widths, strict=True):
        tv[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        tv[f"features.{idx}.bias"] = torch.randn(cout) * 0.01
        cin = cout
    torch.save(tv, path)
    return tv


class TestFCN32s(ModelTester):
    name = "fcn32s"
    model_class = FCN32s
    conf = SMALL
    other_in_channels = None  # RGB only: the pretrained trunk reads Caffe BGR


class TestFCN16s(TestFCN32s):
    name = "fcn16s"
    model_class = FCN16s


class TestFCN8s(TestFCN32s):
    name = "fcn8s"
    model_class = FCN8s


def reference_up(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear (half-pixel) upsampling of x ringed by zeros: what `TransposedUp` starts as."""
    return bilinear(F.pad(x, (1, 1, 1, 1)), scale)[..., scale:-scale, scale:-scale]


@pytest.mark.parametrize(
    "name, ups",
    [
        ("fcn32s", {"upscore": 32}),
        ("fcn16s", {"upscore2": 2, "upscore": 16}),
        ("fcn8s", {"upscore2": 2, "upscore_pool4": 2, "upscore": 8}),
    ],
)
def test_upsamplings_start_bilinear_and_the_final_one_is_fixed(name, ups):
    model = build_model({"name": name, "num_classes": 3, **SMALL})
    found = {n: m.scale for n, m in model.named_modules() if isinstance(m, TransposedUp)}
    assert found == ups
    for n, scale in ups.items():
        weight = getattr(model, n).weight
        assert torch.equal(weight, bilinear_kernel(3, 2 * scale))
    params = dict(model.named_parameters())
    assert "upscore.weight" not in params and not model.upscore.weight.requires_grad
    assert "upscore.weight" in model.state_dict()
    assert all(f"{n}.weight" in params for n in ups if n != "upscore")
    learned = build_model({"name": name, "learn_final_upsampling": True, **SMALL})
    assert dict(learned.named_parameters())["upscore.weight"].requires_grad


@pytest.mark.parametrize("name", ["fcn16s", "fcn8s"])
def test_at_initialisation_the_skips_add_nothing(name):
    """Zero score_pool4 / score_pool3: the output is score_fr upsampled by the bilinear chain
    (x2, x16 or x2, x2, x8), each step bilinear of the zero-ringed map, cropped to H x W."""
    model = build_model({"name": name, "num_classes": 3, **SMALL}).eval()
    skips = [model.score_pool4] + ([model.score_pool3] if name == "fcn8s" else [])
    for conv in skips:
        assert not conv.weight.any() and not conv.bias.any()
    seen = {}
    model.score_fr.register_forward_hook(lambda m, i, o: seen.update(score=o))
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        y = model(x)
    want = seen["score"]  # (2, 3, 2, 2): the 64 x 64 padded input at stride 32
    assert want.shape == (2, 3, 2, 2)
    for scale in (2, 16) if name == "fcn16s" else (2, 2, 8):
        want = reference_up(want, scale)
    torch.testing.assert_close(y, want[..., :37, :53], rtol=1e-5, atol=1e-5)


def test_fcn32s_is_its_score_map_upsampled_bilinearly():
    model = build_model({"name": "fcn32s", **SMALL}).eval()
    seen = {}
    model.score_fr.register_forward_hook(lambda m, i, o: seen.update(score=o))
    with torch.no_grad():
        y = model(torch.rand(1, 3, 70, 40))
    want = reference_up(seen["score"], 32)[..., :70, :40]
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    # in the interior (16 pixels from the padded 96 x 64 map's border), plain bilinear
    plain = bilinear(seen["score"], 32)
    torch.testing.assert_close(y[..., 16:70, 16:40], plain[..., 16:70, 16:40])


def test_the_skip_scores_learn_from_zero():
    model = build_model({"name": "fcn8s", "num_classes": 3, **SMALL}).train()
    model(torch.rand(2, 3, 40, 40)).square().sum().backward()
    for conv in (model.score_pool4, model.score_pool3):
        assert conv.weight.grad.abs().sum() > 0 and conv.bias.grad.abs().sum() > 0


def test_variant_option():
    variants = [c.default_conf["variant"] for c in (FCN32s, FCN16s, FCN8s)]
    assert variants == ["32s", "16s", "8s"] and FCN32s.default_conf["fc_channels"] == 4096
    model = build_model({"name": "fcn8s", "variant": "16s", **SMALL})
    assert hasattr(model, "score_pool4") and not hasattr(model, "score_pool3")
    with pytest.raises(ConfigError, match="variant must be one of"):
        build_model({"name": "fcn8s", "variant": "4s", **SMALL})
    with pytest.raises(ConfigError, match="in_channels must be 3"):
        build_model({"name": "fcn8s", "in_channels": 1, **SMALL})


def test_torchvision_file_loads_into_the_trunk(tmp_path):
    tv = write_torchvision_vgg16(tmp_path / "vgg16.pth")
    model = FCN16s(encoder_weights=str(tmp_path / "vgg16.pth"), fc_channels=8)
    assert model.load_pretrained() == str(tmp_path / "vgg16.pth")
    state, _ = pretrained_vgg16(str(tmp_path / "vgg16.pth"))
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(model.backbone.blocks[4][5].weight, tv["features.28.weight"])


def test_pretrained_needs_vgg16_widths():
    with pytest.raises(PerpixelError, match="needs the VGG16 widths"):
        FCN8s(**{**SMALL, "encoder_weights": "hed"}).load_pretrained()
    assert FCN8s(**SMALL).load_pretrained() is None
