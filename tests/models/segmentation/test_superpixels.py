"""Tests for perpixel.models.segmentation.superpixels."""

import sys

import numpy as np
import pytest
import torch
from skimage import data as skdata

import perpixel
from perpixel.cli import main
from perpixel.errors import PerpixelError
from perpixel.models import build_model
from perpixel.models.segmentation.superpixels import SuperpixelLinear, region_ids
from perpixel.tasks import load_recipe
from perpixel.tasks.segmentation.train import evaluate, train

from ..base import ModelTester


class TestSuperpixelLinear(ModelTester):
    name = "superpixel_linear"
    model_class = SuperpixelLinear
    conf = {"segment_pixels": 16}  # 17 x 29 test images get about 30 superpixels


class TestSuperpixelMLP(ModelTester):
    name = "superpixel_linear"
    model_class = SuperpixelLinear
    conf = {"segment_pixels": 24, "gaussian_sigmas": [1], "log_sigmas": [2], "dog_sigmas": [1]}
    conf |= {"hidden": 5, "position": False, "colour_std": False, "standardise": False}


def photo(h: int, w: int) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1]: the top-left corner of scikit-image's astronaut."""
    rgb = skdata.astronaut()[50 : 50 + h, 150 : 150 + w]
    return torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_output_is_constant_within_each_superpixel_and_differs_between_them():
    torch.manual_seed(0)
    model = SuperpixelLinear(num_classes=4, segment_pixels=50).eval()
    x = torch.cat([photo(60, 80), torch.rand(1, 3, 60, 80)])
    labels = model.superpixels(x)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 4, 60, 80)
    for b in range(2):
        n = int(labels[b].max()) + 1
        assert sorted(labels[b].unique().tolist()) == list(range(n))
        assert n > 10
        pixels = out[b].flatten(1).t()  # (H W, 4)
        region = labels[b].flatten()
        for k in range(n):
            inside = pixels[region == k]
            assert torch.equal(inside, inside[:1].expand_as(inside)), (b, k)
        assert len(torch.unique(pixels, dim=0)) == n  # one logit vector per region
    # the count follows the image size: about H W / segment_pixels on the photo
    assert 0.5 * 96 < int(labels[0].max()) + 1 <= 1.2 * 96
    big = int(model.superpixels(photo(120, 160)).max()) + 1
    assert 0.5 * 384 < big <= 1.2 * 384


def test_region_features_are_means_of_the_bank_colour_and_position_over_each_region():
    model = SuperpixelLinear()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 30, generator=g)
    labels = torch.zeros(2, 20, 30, dtype=torch.int64)  # hand-made regions, not SLIC's
    labels[0, 10:] = 1
    labels[0, :, 20:] = 2
    labels[1, 5:15, 5:25] = 1
    feats = model.region_features(x, labels)
    assert feats.shape == (3 + 2, len(model.feature_names)) == (5, 17 + 3 + 2 + 3)
    bank = model.bank(x)
    ys, xs = torch.meshgrid(torch.arange(20.0), torch.arange(30.0), indexing="ij")
    row = 0
    for b in range(2):
        for k in range(int(labels[b].max()) + 1):
            mask = labels[b] == k
            want = torch.cat(
                [
                    bank[b][:, mask].mean(dim=1),
                    x[b][:, mask].mean(dim=1),
                    torch.stack([(ys[mask] + 0.5).mean() / 20, (xs[mask] + 0.5).mean() / 30]),
                    x[b][:, mask].std(dim=1, unbiased=False),
                ]
            )
            torch.testing.assert_close(feats[row], want, atol=1e-5, rtol=1e-5)
            row += 1
    ids, n = region_ids(labels)
    assert n == 5 and ids.view(2, 20, 30)[1, 10, 10] == 4  # image 1's region 1 comes 5th


def test_the_classifier_gradient_sums_each_regions_pixels():
    torch.manual_seed(0)
    model = SuperpixelLinear(num_classes=3, segment_pixels=30, standardise=False)
    x = photo(40, 50)
    weights = torch.randn(1, 3, 40, 50)
    (model(x) * weights).sum().backward()
    labels = model.superpixels(x)
    feats = model.region_features(x, labels)  # (R, F)
    n = feats.shape[0]
    per_region = torch.zeros(n, 3).index_add_(0, labels.flatten(), weights[0].flatten(1).t())
    torch.testing.assert_close(model.classifier.weight.grad, per_region.t() @ feats)
    torch.testing.assert_close(model.classifier.bias.grad, weights.sum(dim=(0, 2, 3)))
    assert [n for n, _ in model.named_parameters()] == ["classifier.weight", "classifier.bias"]


def test_without_scikit_image_building_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
    with pytest.raises(PerpixelError) as e:
        build_model({"name": "superpixel_linear"})
    assert str(e.value) == (
        "superpixel_linear needs scikit-image: pip install 'perpixel[superpixels]'"
    )


def test_the_camvid_recipe():
    c = load_recipe("camvid_superpixels")
    assert c["task"] == "segmentation"
    assert c["model"] == {"name": "superpixel_linear"}
    assert c["optim"]["lr"] == 0.01 and c["optim"]["backbone_lr_scale"] == 1.0
    assert c["data"]["augment"]["crop"] == [256, 320]  # from camvid_vgg_unet


def test_trains_evaluates_and_predicts_but_refuses_onnx(tiny_config, tmp_path, capsys):
    conf = tiny_config(
        tmp_path / "run",
        model={"name": "superpixel_linear", "segment_pixels": 32},
        optim={"lr": 0.01},
    )
    conf["data"]["synthetic"] |= {"num_train": 16, "num_val": 8, "num_test": 8}
    conf["trainer"]["max_epochs"] = 1
    r = train(conf)
    m = evaluate(r["best"], conf["data"], split="val")
    assert m["miou"] == pytest.approx(r["best_val_miou"], abs=1e-6)
    image = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    assert perpixel.load(r["best"]).predict(image).labels.shape == (37, 53)

    capsys.readouterr()
    onnx = tmp_path / "m.onnx"
    assert main(["export", str(r["best"]), str(onnx)]) == 2
    assert capsys.readouterr().err == (
        "perpixel export: error: superpixel_linear cannot be exported to ONNX: "
        "SLIC runs in scikit-image\n"
    )
    assert not onnx.exists()
