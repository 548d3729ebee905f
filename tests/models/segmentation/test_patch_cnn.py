"""Tests for perpixel.models.segmentation.patch_cnn."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perpixel.models.segmentation.patch_cnn import PatchCNN

from ..base import ModelTester

SMALL = {
    "patch": 13,
    "widths": [4, 8],
    "hidden": 8,
}  # 13 -conv4-> 10 -pool-> 5 -conv4-> 2 -pool-> 1


class TestPatchCNN(ModelTester):
    name = "patch_cnn"
    model_class = PatchCNN
    conf = SMALL


def patch_network(model: PatchCNN, patch: torch.Tensor) -> torch.Tensor:
    """(C, P, P) -> (num_classes,): the network as Ciresan et al. run it, one window, strided
    2x2 pools, written out here independently of the model's code."""
    x = patch[None]
    for conv in model.convs:
        x = F.max_pool2d(torch.relu(conv(x)), kernel_size=2, stride=2)
    x = model.fc(x)
    if model.classifier is not None:
        x = model.classifier(torch.relu(x))
    assert x.shape[-2:] == (1, 1)
    return x[0, :, 0, 0]


def hand_cut(image: torch.Tensor, y: int, x: int, p: int) -> torch.Tensor:
    """(C, H, W) -> (C, p, p): the window centred on (y, x) of the mirrored image (numpy)."""
    r = p // 2
    padded = np.pad(image.numpy(), ((0, 0), (r, r), (r, r)), mode="reflect")
    return torch.from_numpy(padded[:, y : y + p, x : x + p].copy())


@pytest.mark.parametrize("conf", [SMALL, {}, {"patch": 17, "widths": [6], "hidden": 0}])
def test_each_output_pixel_is_the_network_on_its_hand_cut_patch(conf):
    torch.manual_seed(0)
    model = PatchCNN(num_classes=3, **conf).eval()
    p = model.conf["patch"]
    image = torch.rand(3, 37, 41)
    with torch.no_grad():
        out = model(image[None])[0]
        assert out.shape == (3, 37, 41)
        pixels = [(0, 0), (36, 40), (18, 20), (3, 38), (30, 1)]
        cut = torch.stack([hand_cut(image, y, x, p) for y, x in pixels])
        batched = model.classify_patches(cut)
        for k, (y, x) in enumerate(pixels):
            want = patch_network(model, cut[k])
            torch.testing.assert_close(out[:, y, x], want, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(batched[k], want, rtol=1e-5, atol=1e-5)


def test_the_receptive_field_is_exactly_the_patch():
    torch.manual_seed(0)
    model = PatchCNN(**SMALL).eval()
    p, r = 13, 6
    y, x = 20, 21
    image = torch.rand(1, 3, 40, 42)
    with torch.no_grad():
        base = model(image)[0, :, y, x]
        outside = [(y - r - 1, x), (y + r + 1, x), (y, x - r - 1), (y, x + r + 1), (y - 7, x + 7)]
        for yy, xx in outside:  # a change just outside the window changes nothing
            changed = image.clone()
            changed[0, :, yy, xx] = 1 - changed[0, :, yy, xx]
            assert torch.equal(model(changed)[0, :, y, x], base), (yy, xx)
        # positive weights: a large change anywhere in the window passes every ReLU and pool
        for param in model.parameters():
            param.abs_()
        base = model(image)[0, :, y, x]
        border = [(y - r, x - r), (y - r, x + r), (y + r, x - r), (y + r, x + r), (y, x + r)]
        for yy, xx in border:
            changed = image.clone()
            changed[0, :, yy, xx] += 100
            assert (model(changed)[0, :, y, x] - base).abs().min() > 1, (yy, xx)
    assert model.receptive_field == p


def test_layer_schedule():
    model = PatchCNN()  # Ciresan-like: 33 -4-> 30 -pool-> 15 -4-> 12 -pool-> 6 -3-> 4 -pool-> 2
    assert (model.kernels, model.sides, model.fc_side) == ([4, 4, 3], [30, 12, 4], 2)
    assert model.receptive_field == 33
    ciresan = PatchCNN(patch=95, widths=[8, 8, 8, 8])  # their 95 x 95 windows, 4 stages
    assert ciresan.receptive_field == 95
    assert (ciresan.kernels, ciresan.sides, ciresan.fc_side) == ([4, 3, 3, 3], [92, 44, 20, 8], 4)


@pytest.mark.parametrize("bad", [{"patch": 32}, {"patch": 0}, {"patch": 9, "widths": [4, 4]}])
def test_invalid_patches_raise(bad):
    with pytest.raises(ValueError, match="patch"):
        PatchCNN(**bad)


def test_macs_per_pixel():
    model = PatchCNN(in_channels=3, num_classes=2, **SMALL)
    macs = model.macs_per_pixel()
    conv1, conv2, fc, out = 4 * 3 * 4 * 4, 8 * 4 * 4 * 4, 8 * 8 * 1 * 1, 2 * 8
    assert macs["dense"] == conv1 + conv2 + fc + out
    assert macs["patchwise"] == conv1 * 10 * 10 + conv2 * 2 * 2 + fc + out
    assert macs["strided_fcn"] == round(conv1 + conv2 / 4 + (fc + out) / 16)
    assert macs["strided_fcn"] < macs["dense"] < macs["patchwise"]
