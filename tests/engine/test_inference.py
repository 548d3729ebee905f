"""Sliding-window inference and test-time augmentation: windows cover the image, band-wise
emission equals accumulating everything, labels equal whole-image inference when the
dropped margin covers the receptive field, and flips/scales average what they should."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from perpixel.engine.inference import (
    TTA,
    blend_weights,
    sliding_window,
    tta,
    window_starts,
)
from perpixel.errors import ConfigError

C = 5


def conv_stack(layers: int, seed: int = 0, symmetric: bool = False) -> nn.Module:
    """`layers` 3x3 convolutions (zero padding, receptive radius `layers`), float64."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Conv2d(3 if i == 0 else 8, C if i == layers - 1 else 8, 3, padding=1))
        if i < layers - 1:
            mods.append(nn.Tanh())
    net = nn.Sequential(*mods).double().eval()
    if symmetric:  # kernels mirror-symmetric left-right: the network commutes with flips
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Conv2d):
                    m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
    return net


def probs_fn(net: nn.Module, calls: list | None = None):
    def fn(x: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(tuple(x.shape))
        with torch.no_grad():
            return net(x.double()).softmax(1).float()

    return fn


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def whole(fn, img: np.ndarray) -> torch.Tensor:
    return fn(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]


@pytest.mark.parametrize(
    "size, window, overlap",
    [(100, 32, 8), (33, 32, 8), (32, 32, 8), (10, 32, 8), (1000, 512, 170), (97, 16, 0)],
)
def test_window_starts_cover_and_end_flush(size, window, overlap):
    starts = window_starts(size, window, overlap)
    assert starts[0] == 0
    if size <= window:
        assert starts == [0]
        return
    assert starts[-1] == size - window  # the last window flush with the border
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all()
    assert all(window - (b - a) >= overlap for a, b in zip(starts, starts[1:], strict=False))
    # no more windows than the nominal stride needs
    assert len(starts) == -(-(size - window) // (window - overlap)) + 1


@pytest.mark.parametrize("window, overlap", [(8, 8), (8, -1), (0, 0)])
def test_window_starts_refuses_bad_overlap(window, overlap):
    with pytest.raises(ConfigError, match="overlap"):
        window_starts(100, window, overlap)


def test_blend_weights_taper_at_inner_edges_only():
    w = blend_weights(start=10, length=32, size=100, overlap=12, margin=3)
    assert (w[:3] == 0).all() and (w[-3:] == 0).all()  # dropped margins
    assert w[3] == pytest.approx(1 / 7) and (w[9:23] == 1).all()
    assert torch.all(w[3:10].diff() > 0)  # a ramp up
    border = blend_weights(start=0, length=32, size=100, overlap=12, margin=3)
    assert border[0] == 1 and border[-1] == 0  # the image border is not tapered
    # neighbours sharing exactly `overlap` pixels cross-fade with weights summing to 1
    a = blend_weights(start=20, length=32, size=100, overlap=12, margin=3)
    b = blend_weights(start=40, length=32, size=100, overlap=12, margin=3)
    torch.testing.assert_close(a[20:] + b[:12], torch.ones(12))


def test_sliding_window_equals_whole_image_when_margin_covers_receptive_field():
    radius = 3
    net = conv_stack(radius)
    calls: list = []
    fn = probs_fn(net, calls)
    img = image(70, 95)
    ref = whole(fn, img)
    calls.clear()
    labels, probs = sliding_window(
        fn, img, window=(24, 32), overlap=12, margin=radius, return_probs=True
    )
    assert len(calls) > 6 and set(calls) == {(1, 3, 24, 32)}  # windows only, never the image
    assert labels.shape == (70, 95) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, ref.argmax(0).numpy())
    np.testing.assert_allclose(probs, ref.numpy(), atol=1e-6)
    # the control: keeping border-affected outputs (margin 0) changes the probabilities
    _, rough = sliding_window(fn, img, window=(24, 32), overlap=12, margin=0, return_probs=True)
    assert np.abs(rough - ref.numpy()).max() > 1e-3


def test_band_emission_equals_accumulating_everything():
    """A model whose output depends on the whole window (its mean colour): windows disagree
    everywhere, so blending and emission order show in every pixel."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        g = torch.arange(C, dtype=torch.float32)[None, :, None, None]
        logits = torch.sin(g * (3 * x.mean() + x[:, :1] * 2 + x[:, 1:2]))
        return logits.softmax(1)

    img = image(61, 77, seed=1)
    H, W = img.shape[:2]
    window, overlap, margin = (20, 26), (8, 10), (1, 2)
    labels, probs = sliding_window(fn, img, window, overlap, margin, return_probs=True)

    num, den = torch.zeros(C, H, W), torch.zeros(H, W)
    for y in window_starts(H, window[0], overlap[0]):
        wy = blend_weights(y, window[0], H, overlap[0], margin[0])
        for x in window_starts(W, window[1], overlap[1]):
            wx = blend_weights(x, window[1], W, overlap[1], margin[1])
            tile = torch.from_numpy(img[y : y + 20, x : x + 26]).permute(2, 0, 1)[None] / 255
            weight = wy[:, None] * wx[None, :]
            num[:, y : y + 20, x : x + 26] += fn(tile.float())[0] * weight
            den[y : y + 20, x : x + 26] += weight
    assert (den > 0).all()
    np.testing.assert_array_equal(labels, num.argmax(0).numpy())
    np.testing.assert_array_equal(probs, (num / den).numpy())
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    labels_only, none = sliding_window(fn, img, window, overlap, margin)
    assert none is None
    np.testing.assert_array_equal(labels_only, labels)


def test_one_window_is_whole_image_inference_and_tensors_work_too():
    fn = probs_fn(conv_stack(2))
    img = image(30, 41)
    ref = whole(fn, img)
    labels, probs = sliding_window(fn, img, window=(64, 64), overlap=16, return_probs=True)
    np.testing.assert_array_equal(probs, ref.numpy())
    np.testing.assert_array_equal(labels, ref.argmax(0).numpy())
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255  # (3, H, W) float input
    a, _ = sliding_window(fn, img, window=(16, 16), overlap=8)
    b, _ = sliding_window(fn, t, window=(16, 16), overlap=8)
    np.testing.assert_array_equal(a, b)


def test_flip_tta_of_a_flip_equivariant_model_changes_nothing():
    x = torch.from_numpy(image(33, 47)).permute(2, 0, 1)[None].float() / 255
    fn = probs_fn(conv_stack(3, symmetric=True))
    torch.testing.assert_close(tta(fn, flips=True)(x), fn(x), atol=1e-6, rtol=0)
    skewed = probs_fn(conv_stack(3, seed=1))  # the control: flipping does change this one
    assert (tta(skewed, flips=True)(x) - skewed(x)).abs().max() > 1e-3


def test_tta_scales_run_resized_and_come_back_at_the_input_size():
    calls: list = []
    fn = tta(probs_fn(conv_stack(2), calls), flips=True, scales=(0.5, 1.0, 1.5))
    x = torch.rand(1, 3, 37, 53)
    p = fn(x)
    assert p.shape == (1, C, 37, 53)
    torch.testing.assert_close(p.sum(1), torch.ones(1, 37, 53))
    sizes = [c[-2:] for c in calls]
    assert sizes == [(18, 26)] * 2 + [(37, 53)] * 2 + [(56, 80)] * 2  # each plain and flipped


def test_tta_parse():
    assert TTA.parse("flip") == TTA(True, (1.0,))
    assert TTA.parse("flip,0.75,1,1.25") == TTA(True, (0.75, 1.0, 1.25))
    assert TTA.parse("0.5, 1") == TTA(False, (0.5, 1.0))
    assert not TTA.parse("1").active and TTA.parse("flip").active
    for bad in ("flop", "0", "flip,-1", ""):
        with pytest.raises(ConfigError, match="neither 'flip' nor a scale"):
            TTA.parse(bad)
