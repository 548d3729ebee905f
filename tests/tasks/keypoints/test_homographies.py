"""Random homographies: the reference's in-bounds rule, direction, determinism; warping of
points, images and masks agree."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError
from perpixel.tasks.keypoints.homographies import (
    HOMOGRAPHY_AUGMENTATION,
    HOMOGRAPHY_DEFAULTS,
    inside,
    sample_homographies,
    sample_homography,
    warp_images,
    warp_mask,
    warp_points,
)

SHAPE = (120, 160)


def _patch(shape, ratio):
    """Corners (4, 2) xy of the warped image's centred patch, in pixels."""
    h, w = shape
    m = (1 - ratio) / 2
    unit = torch.tensor([[m, m], [m, m + ratio], [m + ratio, m + ratio], [m + ratio, m]])
    return unit * torch.tensor([w - 1.0, h - 1.0])


def _in_pixel_hull(p, shape, tol=1e-3):
    h, w = shape
    return bool(((p >= -tol) & (p <= torch.tensor([w - 1.0, h - 1.0]) + tol)).all())


def _within(p, shape, pad):
    h, w = shape
    x, y = p[..., 0], p[..., 1]
    return (x >= -0.5 - pad) & (x < w - 0.5 + pad) & (y >= -0.5 - pad) & (y < h - 0.5 + pad)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("ratio", [0.5, 0.85, 0.95])
def test_no_artifacts_keeps_the_patch_in_the_image(ratio):
    conf = {**HOMOGRAPHY_DEFAULTS, "allow_artifacts": False, "patch_ratio": ratio}
    Hs = sample_homographies(300, SHAPE, conf, _gen(0))
    corners = _patch(SHAPE, ratio)
    back = warp_points(corners, torch.linalg.inv(Hs.double()).float())  # (n, 4, 2) in the original
    assert all(_in_pixel_hull(b, SHAPE) for b in back)
    # the rule is not vacuous: the opposite direction or artifacts break it
    assert not all(_in_pixel_hull(b, SHAPE) for b in warp_points(corners, Hs))
    art = sample_homographies(300, SHAPE, {**conf, "allow_artifacts": True}, _gen(0))
    back_art = warp_points(corners, torch.linalg.inv(art.double()).float())
    assert not all(_in_pixel_hull(b, SHAPE) for b in back_art)


def test_no_artifacts_warped_ones_image_is_full_in_the_patch():
    conf = {**HOMOGRAPHY_DEFAULTS, "allow_artifacts": False, "patch_ratio": 0.9}
    Hs = sample_homographies(20, SHAPE, conf, _gen(1))
    warped = warp_images(torch.ones(20, 1, *SHAPE), Hs, SHAPE)
    (x0, y0), (x1, y1) = _patch(SHAPE, 0.9)[0], _patch(SHAPE, 0.9)[2]
    inner = warped[:, 0, int(y0) + 1 : int(y1), int(x0) + 1 : int(x1)]
    assert inner.min() > 1 - 1e-4
    assert warped.min() < 0.5  # outside the patch there is padding


def test_deterministic_finite_invertible():
    a = sample_homography(SHAPE, None, _gen(3))
    b = sample_homography(SHAPE, None, _gen(3))
    c = sample_homography(SHAPE, None, _gen(4))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    Hs = sample_homographies(200, SHAPE, HOMOGRAPHY_AUGMENTATION, _gen(5))
    assert Hs.shape == (200, 3, 3) and Hs.dtype == torch.float32
    assert torch.isfinite(Hs).all() and torch.allclose(Hs[:, 2, 2], torch.ones(200))
    inv = torch.linalg.inv(Hs.double())
    assert torch.allclose(
        inv @ Hs.double(), torch.eye(3, dtype=torch.float64).expand(200, 3, 3), atol=1e-6
    )


def test_no_perturbation_is_identity_and_unknown_option_fails():
    off = {k: False for k in ("translation", "rotation", "scaling", "perspective")}
    assert torch.allclose(sample_homography(SHAPE, off, _gen(0)), torch.eye(3), atol=1e-5)
    with pytest.raises(ConfigError, match="unknown"):
        sample_homography(SHAPE, {"rotate": True})


def test_rotation_takes_the_reference_angles():
    conf = {k: False for k in ("translation", "scaling", "perspective")}
    conf.update(max_angle=1.0, n_angles=5)
    # square image: the reference rotates in unit-square coordinates, a shear when H != W
    Hs = sample_homographies(200, (96, 96), conf, _gen(2))
    angles = torch.atan2(Hs[:, 1, 0], Hs[:, 0, 0])
    assert torch.allclose(Hs[:, 0, 0], Hs[:, 1, 1], atol=1e-5)
    grid = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    nearest = (angles[:, None] - grid).abs().amin(1)
    assert nearest.max() < 1e-4 and angles.min() < -0.99 and angles.max() > 0.99


def test_warp_points_shapes():
    H = sample_homographies(3, SHAPE, None, _gen(0))
    p = torch.rand(5, 2) * 100
    assert warp_points(p, H[0]).shape == (5, 2)
    batched = warp_points(p, H)
    assert batched.shape == (3, 5, 2)
    assert torch.allclose(batched[1], warp_points(p, H[1]))
    assert torch.allclose(warp_points(p.expand(3, 5, 2), H), batched)
    assert torch.allclose(warp_points(warp_points(p, H[2]), torch.linalg.inv(H[2])), p, atol=1e-3)


def test_inside_convention():
    p = torch.tensor([[-0.5, 0.0], [-0.51, 0.0], [159.49, 119.49], [159.5, 0.0], [0.0, 119.5]])
    assert inside(p, SHAPE).tolist() == [True, False, True, False, False]


def test_warped_dots_land_where_warp_points_says():
    h, w = SHAPE
    ys, xs = torch.meshgrid(
        torch.arange(16, h - 15, 16), torch.arange(16, w - 15, 16), indexing="ij"
    )
    points = torch.stack([xs.flatten(), ys.flatten()], -1).float()
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    d2 = (xx[..., None] - points[:, 0]) ** 2 + (yy[..., None] - points[:, 1]) ** 2
    image = torch.exp(-d2 / (2 * 1.5**2)).amax(-1)[None, None]
    conf = {**HOMOGRAPHY_DEFAULTS, "allow_artifacts": False, "max_angle": 0.5}
    for seed in range(4):
        H = sample_homography(SHAPE, conf, _gen(seed))
        warped = warp_images(image, H[None], SHAPE)[0, 0]
        target = warp_points(points, H)
        ok = inside(target, (h - 6, w - 6)) & (target >= 5).all(-1)
        assert ok.sum() > 10
        # peaks of the warped image: local maxima over a 7x7 window, refined by a 5x5 centroid
        peak = (warped == F.max_pool2d(warped[None], 7, 1, 3)[0]) & (warped > 0.5)
        py, px = torch.nonzero(peak, as_tuple=True)
        win = torch.arange(-2, 3)
        wy, wx = py[:, None, None] + win[:, None], px[:, None, None] + win
        mass = warped[wy.clamp(0, h - 1), wx.clamp(0, w - 1)]
        cx = (mass * wx).sum((1, 2)) / mass.sum((1, 2))
        cy = (mass * wy).sum((1, 2)) / mass.sum((1, 2))
        found = torch.stack([cx, cy], -1)
        dist = torch.cdist(target[ok], found).amin(1)
        assert dist.max() < 0.5, (seed, dist.max())
        wrong = warp_points(points, torch.linalg.inv(H))[ok]  # the opposite direction misses
        assert torch.cdist(wrong, found).amin(1).max() > 2


def test_warp_mask_matches_a_warped_ones_image():
    Hs = sample_homographies(6, SHAPE, HOMOGRAPHY_DEFAULTS, _gen(7))
    mask = warp_mask(SHAPE, Hs, SHAPE)
    ones = warp_images(torch.ones(6, 1, *SHAPE), Hs, SHAPE)
    assert mask.shape == (6, 1, *SHAPE)
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and (mask == 0).any()
    assert (mask[ones > 1 - 1e-4] == 1).all()
    assert (mask[ones < 1e-4] == 0).all()
    # and with the pixel convention: 1 where the source position of the pixel is inside
    h, w = SHAPE
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    grid = torch.stack([xx.flatten(), yy.flatten()], -1)
    src = warp_points(grid, torch.linalg.inv(Hs.double()).float())
    expect = inside(src, SHAPE).view(6, 1, h, w)
    near = _within(src, SHAPE, 0.05) != _within(src, SHAPE, -0.05)  # rounding ties, float error
    assert (mask.bool() == expect)[~near.view(6, 1, h, w)].all()
    assert near.float().mean() < 0.01


def test_warp_mask_erosion():
    H = sample_homographies(2, SHAPE, HOMOGRAPHY_DEFAULTS, _gen(8))
    full = warp_mask(SHAPE, H, SHAPE)
    eroded = warp_mask(SHAPE, H, SHAPE, erode=3)
    assert (eroded <= full).all() and eroded.sum() < full.sum()
    # a pixel survives iff its 7x7 window (clipped to the image) is all valid
    window_ok = -F.max_pool2d(-full, 7, stride=1, padding=3)
    assert torch.equal(eroded, window_ok)
    # the image's own edge is not eroded: identity keeps everything
    assert warp_mask(SHAPE, torch.eye(3), SHAPE, erode=3).min() == 1
