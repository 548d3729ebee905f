"""Tests for perpixel.models.segmentation.filterbank."""

import re

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2lab

from perpixel.models.segmentation.filterbank import (
    FilterBank,
    FilterBankLinear,
    gaussian_kernels,
    reflect_pad,
    rgb_to_lab,
)

from ..base import ModelTester

WINN_2005 = [
    *[f"G{s}_{c}" for s in (1, 2, 4) for c in "Lab"],
    *[f"LoG{s}" for s in (1, 2, 4, 8)],
    *[f"D{a}{s}" for s in (2, 4) for a in "xy"],
]


def parse(name: str) -> tuple[str, float, str | None]:
    """ "LoG8" -> ("LoG", 8.0, None); "G1_a" -> ("G", 1.0, "a")."""
    m = re.fullmatch(r"(G|LoG|Dx|Dy)([0-9.]+)(?:_(\w+))?", name)
    assert m, name
    return m[1], float(m[2]), m[3]


class TestFilterBankLinear(ModelTester):
    name = "filterbank_linear"
    model_class = FilterBankLinear
    conf = {}  # the full 17-filter bank: the 17 x 29 images are smaller than its radius 24


class TestFilterBankMLP(ModelTester):
    name = "filterbank_linear"
    model_class = FilterBankLinear
    conf = {"gaussian_sigmas": [1], "log_sigmas": [1, 2], "dog_sigmas": [1], "hidden": 6}
    conf |= {"standardise": False}


def test_the_default_bank_is_winn_criminisi_minka_2005():
    bank = FilterBank()
    assert bank.names == WINN_2005
    assert bank.out_channels == 17
    assert FilterBank(in_channels=2).out_channels == 2 * (3 + 4 + 2 * 2)
    assert FilterBank(in_channels=1).names[-1] == "Dy4_c0"


def test_filters_are_fixed_buffers_not_parameters():
    torch.manual_seed(0)
    model = FilterBankLinear(num_classes=4)
    assert [n for n, _ in model.named_parameters()] == ["classifier.weight", "classifier.bias"]
    assert sum(p.numel() for p in model.parameters()) == 17 * 4 + 4
    assert list(model.bank.parameters()) == []
    kernels = dict(model.bank.named_buffers())
    assert len(kernels) == 3 * 4  # Gaussian, first and second derivative at sigma 1, 2, 4, 8
    assert not any(k.startswith("bank.") for k in model.state_dict())  # rebuilt from options

    x = torch.rand(2, 3, 30, 34)
    features = model.bank(x)
    before = {k: v.clone() for k, v in kernels.items()}
    weight = model.classifier.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model(x).square().mean().backward()
    opt.step()
    assert not torch.equal(model.classifier.weight, weight)  # the step did something
    for k, v in model.bank.named_buffers():
        assert torch.equal(v, before[k]), k
    assert torch.equal(model.bank(x), features)


@pytest.mark.parametrize("in_channels", [3, 1])
def test_a_constant_image_gives_zero_derivative_and_log_responses(in_channels):
    bank = FilterBank(in_channels=in_channels)
    colour = torch.tensor([0.2, 0.7, 0.4])[:in_channels].view(1, in_channels, 1, 1)
    x = colour.expand(2, in_channels, 19, 31)  # smaller than the radius 24: reflected twice
    out = bank(x)
    assert out.shape == (2, len(bank.names), 19, 31)
    gauss = [k for k, n in enumerate(bank.names) if n.startswith("G")]
    other = [k for k, n in enumerate(bank.names) if not n.startswith("G")]
    assert len(other) == (8 if in_channels == 3 else 8 * in_channels)
    assert out[:, other].abs().max() < 1e-6
    expected = rgb_to_lab(colour) if in_channels == 3 else colour
    want = expected.expand(2, -1, 19, 31).repeat(1, 3, 1, 1)  # 3 Gaussian scales
    torch.testing.assert_close(out[:, gauss], want, rtol=0, atol=1e-6)


def test_lab_matches_skimage():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 8, 9, generator=g)
    x[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])  # red: Lab (53.24, 80.09, 67.20)
    x[0, :, 0, 1] = 1.0  # white: (100, 0, 0)
    x[0, :, 0, 2] = 0.0  # black: (0, 0, 0)
    want = rgb2lab(x[0].permute(1, 2, 0).double().numpy()) / 100
    got = rgb_to_lab(x)[0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(got[0, 0] * 100, [53.24, 80.09, 67.20], atol=0.02)


@pytest.mark.parametrize("pad", [1, 3, 10])
def test_reflect_pad_is_numpys_reflect_for_any_pad(pad):
    x = torch.rand(1, 2, 4, 3)
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    np.testing.assert_array_equal(reflect_pad(x, pad).numpy(), want)
    one = torch.rand(1, 1, 1, 5)  # a one-pixel side is replicated
    assert torch.equal(reflect_pad(one, 2)[0, 0, :, 2:-2], one[0, 0].expand(5, 5))


def test_responses_equal_2d_correlation_with_mirrored_borders():
    # each feature against its 2-D kernel, correlated by scipy ("mirror" = numpy "reflect")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 30, 41, generator=g)
    bank = FilterBank()
    out = bank(x)[0].double().numpy()
    lab = rgb_to_lab(x)[0].double().numpy()
    for k, name in enumerate(bank.names):
        kind, sigma, _ = parse(name)
        gk, dk, hk = (t.double().numpy() for t in gaussian_kernels(sigma))
        if kind == "G":
            image, kernel = lab["Lab".index(name[-1])], np.outer(gk, gk)
        elif kind == "LoG":
            image, kernel = lab[0], np.outer(hk, gk) + np.outer(gk, hk)
        else:  # Dx: derivative along x (columns), Dy: along y (rows)
            image, kernel = lab[0], np.outer(gk, dk) if kind == "Dx" else np.outer(dk, gk)
        want = ndimage.correlate(image, kernel, mode="mirror")
        np.testing.assert_allclose(out[k], want, atol=1e-5, err_msg=name)


def test_derivatives_of_a_ramp_are_scale_normalised_slopes():
    slope = 0.01
    x = (slope * torch.arange(80.0)).view(1, 1, 1, 80).expand(1, 1, 60, 80)
    bank = FilterBank(in_channels=1)
    out = bank(x)[0]
    inner = (slice(25, -25), slice(25, -25))  # beyond the largest radius, 24 (sigma 8)
    for k, name in enumerate(bank.names):
        kind, sigma, _ = parse(name)
        want = {"Dx": sigma * slope, "Dy": 0.0, "LoG": 0.0}.get(kind)
        if want is None:  # Gaussians keep the ramp itself
            torch.testing.assert_close(out[k][inner], x[0, 0][inner], atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(
                out[k][inner], torch.full_like(out[k][inner], want), atol=1e-5, rtol=0
            )


def test_hidden_layer_and_standardisation_options():
    model = FilterBankLinear(num_classes=3, hidden=8, standardise=False)
    assert sum(p.numel() for p in model.parameters()) == 17 * 8 + 8 + 8 * 3 + 3
    assert isinstance(model.norm, torch.nn.Identity)
    standardised = FilterBankLinear().train()
    x = torch.rand(4, 3, 24, 24)
    standardised(x)
    features = standardised.bank(x)
    mean = features.mean(dim=(0, 2, 3))
    torch.testing.assert_close(standardised.norm.running_mean, mean, atol=1e-5, rtol=1e-4)
