"""Classic edge baselines: Sobel and Canny (pure numpy/scipy; OpenCV when installed)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from perpixel.tasks.edges.classic import (
    canny_binary,
    canny_edges,
    canny_opencv,
    canny_strength,
    hysteresis,
    opencv_available,
    sobel_edges,
)


def _disc(n=64, radius=18.3, contrast=0.6, noise=0.0, seed=0):
    """(3, n, n) float image: a bright disc (anti-aliased) on a darker background."""
    yy, xx = np.mgrid[:n, :n]
    d = np.hypot(yy - 31.6, xx - 32.2)
    img = 0.2 + contrast * np.clip(radius - d + 0.5, 0, 1)
    img = img + noise * np.random.default_rng(seed).standard_normal((n, n))
    return np.repeat(img[None], 3, axis=0), d


def test_sobel_measures_edge_contrast():
    step = np.zeros((32, 64))
    step[:, 32:] = 0.5
    s = sobel_edges(step)
    assert s.shape == (32, 64) and s.dtype == np.float32
    assert s.max() == pytest.approx(0.5, abs=0.02)  # a step of height 0.5 has contrast 0.5
    assert s[:, :20].max() < 1e-3  # flat far from the edge
    assert np.all((s >= 0) & (s <= 1))
    assert sobel_edges(np.full((16, 16), 0.3)).max() == 0


def test_image_layouts_agree():
    img, _ = _disc(noise=0.02)
    img = np.stack([img[0], img[1] * 0.9, img[2] * 0.8])
    chw = sobel_edges(img)
    np.testing.assert_allclose(sobel_edges(np.moveaxis(img, 0, -1)), chw)
    u8 = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    np.testing.assert_allclose(sobel_edges(u8), sobel_edges(u8 / 255.0), atol=1e-6)
    assert sobel_edges(img[0]).shape == (64, 64)
    with pytest.raises(ValueError, match="shape"):
        sobel_edges(np.zeros((4, 5, 6, 7)))


def test_canny_is_thin_and_on_the_boundary():
    img, d = _disc(noise=0.02)
    strength = canny_strength(img)
    edges = canny_binary(img, high=0.2)
    ring = np.abs(d - 18.3) <= 1.5
    assert edges[ring].sum() > 0.9 * 2 * np.pi * 18.3  # the whole circle is found
    assert not edges[~ring].any()  # and nothing else: noise is below the low threshold
    assert not (edges[:-1, :-1] & edges[1:, :-1] & edges[:-1, 1:] & edges[1:, 1:]).any()
    assert np.all(strength[edges] > 0)


def test_hysteresis_keeps_weak_pixels_connected_to_strong_ones():
    s = np.zeros((5, 12), np.float32)
    s[2, 1:6] = [0.9, 0.3, 0.3, 0.3, 0.3]  # strong seed with a weak tail
    s[2, 8:11] = 0.3  # weak and alone
    out = hysteresis(s, high=0.5, low=0.2)
    np.testing.assert_array_equal(np.flatnonzero(out[2]), [1, 2, 3, 4, 5])
    assert out.sum() == 5


def test_soft_canny_thresholds_to_canny():
    img, _ = _disc(noise=0.08, seed=3)
    img[:, 5:20, 5:20] += gaussian_filter(np.random.default_rng(4).random((15, 15)), 1) * 0.3
    soft = canny_edges(img, levels=20)
    assert soft.max() <= 1 and soft.min() >= 0
    assert np.all(soft[soft > 0] <= canny_strength(img)[soft > 0] / 0.4 + 0.05)
    for k in (1, 3, 6, 10, 14, 20):
        h = k / 20
        np.testing.assert_array_equal(soft >= np.float32(h), canny_binary(img, h, 0.4 * h))
    # the curve is not trivial: higher thresholds keep fewer pixels
    assert (soft >= 0.05).sum() > (soft >= 0.3).sum() > 0


def test_edges_respond_on_human_boundaries(bsds_root):
    from PIL import Image

    from perpixel.tasks.edges.bsds.files import read_groundtruth

    name = sorted((bsds_root / "images" / "test").glob("*.jpg"))[0]
    img = np.asarray(Image.open(name))
    gt = read_groundtruth(bsds_root / "groundTruth" / "test" / f"{name.stem}.mat")
    boundary = gt.boundaries.mean(0) >= 0.5  # where most annotators agree
    from scipy.ndimage import binary_dilation

    near = binary_dilation(boundary, iterations=2)
    s, c = sobel_edges(img), canny_edges(img)
    assert s[boundary].mean() > 2 * s[~near].mean()
    assert c[near].mean() > 2 * c[~near].mean()


@pytest.mark.skipif(not opencv_available(), reason="OpenCV (the 'classic' extra) not installed")
def test_opencv_canny_agrees_roughly():
    img, d = _disc(noise=0.02)
    soft = canny_opencv(img)
    ring = np.abs(d - 18.3) <= 2
    assert soft[ring].mean() > 5 * max(soft[~ring].mean(), 1e-3)
    assert (soft[ring] > 0).sum() > 0.8 * 2 * np.pi * 18.3


def test_opencv_missing_is_explained():
    if opencv_available():
        pytest.skip("OpenCV is installed")
    with pytest.raises(ImportError, match="classic"):
        canny_opencv(np.zeros((8, 8)))
