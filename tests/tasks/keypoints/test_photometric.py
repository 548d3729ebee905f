"""Photometric augmentation: shapes, range, determinism, and what each op does alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perpixel.errors import ConfigError
from perpixel.tasks.keypoints.photometric import OPS, PHOTOMETRIC_DEFAULTS, photometric_augment
from perpixel.tasks.keypoints.shapes import draw_shape


def image(seed: int = 0) -> torch.Tensor:
    """A (1, 120, 160) synthetic-shapes image."""
    return torch.from_numpy(draw_shape("checkerboard", np.random.default_rng(seed))[0])[None]


def only(op: str, **params) -> dict:
    conf: dict = {o: {"enable": o == op} for o in OPS}
    conf[op].update(params)
    return conf


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_defaults_are_the_references():
    assert set(OPS) == {
        "random_brightness",
        "random_contrast",
        "additive_speckle_noise",
        "additive_gaussian_noise",
        "additive_shade",
        "motion_blur",
    }
    assert all(PHOTOMETRIC_DEFAULTS[op]["enable"] for op in OPS)
    assert PHOTOMETRIC_DEFAULTS["random_brightness"]["max_abs_change"] == pytest.approx(75 / 255)
    assert PHOTOMETRIC_DEFAULTS["additive_gaussian_noise"]["stddev_range"][1] == pytest.approx(
        15 / 255
    )


@pytest.mark.parametrize("shape", [(1, 120, 160), (3, 1, 96, 128)])
def test_shape_range_and_determinism(shape):
    x = torch.rand(shape)
    a = photometric_augment(x, None, gen(1))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    assert torch.equal(a, photometric_augment(x, None, gen(1)))
    assert not torch.equal(a, photometric_augment(x, None, gen(2)))


def test_each_image_of_a_batch_has_its_own_draw():
    x = image().expand(2, 1, 120, 160).contiguous()
    y = photometric_augment(x, None, gen(0))
    assert not torch.equal(y[0], y[1])


def test_all_disabled_is_the_identity():
    x = image()
    conf = {op: {"enable": False} for op in OPS}
    assert torch.equal(photometric_augment(x, conf, gen(0)), x)


@pytest.mark.parametrize("op", OPS)
def test_each_op_alone_changes_the_image(op):
    x = image()
    changed = [not torch.equal(photometric_augment(x, only(op), gen(s)), x) for s in range(8)]
    # as in the reference, motion blur keeps the image for a kernel of size 1 (1 draw in 4),
    # speckle noise for a probability so small it hits no pixel (here, 1 of the 8 draws)
    assert sum(changed) >= {"motion_blur": 4, "additive_speckle_noise": 7}.get(op, 8)


def test_what_the_ops_do():
    x = image()
    b = photometric_augment(x, only("random_brightness"), gen(0)) - x
    inside = (x > 0.3) & (x < 0.7)  # not clipped
    shift = b[inside]
    assert torch.allclose(shift, shift[0], atol=1e-6) and abs(shift[0]) <= 75 / 255 + 1e-6

    c = photometric_augment(torch.full((1, 8, 8), 0.5), only("random_contrast"), gen(0))
    assert torch.allclose(c, torch.full_like(c, 0.5))  # contrast around the mean

    s = photometric_augment(x, only("additive_speckle_noise", prob_range=[0.05, 0.05]), gen(0))
    moved = s != x
    assert moved.float().mean() == pytest.approx(0.1, abs=0.02)
    assert ((s[moved] == 0) | (s[moved] == 1)).all()

    flat = torch.full((1, 120, 160), 0.5)
    n = photometric_augment(
        flat, only("additive_gaussian_noise", stddev_range=[0.05, 0.05]), gen(0)
    )
    assert float((n - flat).std()) == pytest.approx(0.05, rel=0.05)

    conf = only("additive_shade", transparency_range=[0.5, 0.5])
    d = photometric_augment(flat, conf, gen(0))
    assert (d <= 0.5 + 1e-6).all() and d.min() < 0.4  # darker where the ellipses are
    assert (d[0, 1:] - d[0, :-1]).abs().max() < 0.05  # smooth

    m = photometric_augment(x, only("motion_blur", max_kernel_size=21), gen(3))
    assert (m - x).abs().max() > 0.05
    assert float(m.mean()) == pytest.approx(float(x.mean()), abs=0.01)  # a normalised kernel


def test_bad_configuration():
    with pytest.raises(ConfigError, match="unknown key 'blur'"):
        photometric_augment(image(), {"blur": {}})
    with pytest.raises(ConfigError, match="motion_blur"):
        photometric_augment(image(), {"motion_blur": {"kernel": 3}})
    with pytest.raises(ValueError, match="1, H, W"):
        photometric_augment(torch.rand(2, 3, 8, 8))
