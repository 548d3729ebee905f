"""Classic baselines: Harris / Shi-Tomasi (PyTorch, equal to OpenCV's), FAST, SIFT, ORB."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError, PerpixelError
from perpixel.tasks.keypoints import classic
from perpixel.tasks.keypoints.matching import mutual_nearest_neighbours
from perpixel.tasks.keypoints.metrics import mean_matching_accuracy

CORNERS = torch.tensor([[16.0, 16], [47, 16], [16, 47], [47, 47]])  # xy of the corner pixels


def _square(blur: bool = False) -> torch.Tensor:
    img = torch.zeros(1, 1, 64, 64)
    img[..., 16:48, 16:48] = 1.0
    if blur:
        img = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, 1)
    return img


def _peaks(r: torch.Tensor, k: int = 4) -> torch.Tensor:
    """(k, 2) xy of the k strongest 5x5 local maxima of an (H, W) map."""
    local = r == F.max_pool2d(r[None, None], 5, 1, 2)[0, 0]
    vals = torch.where(local, r, torch.zeros_like(r)).flatten()
    idx = vals.topk(k).indices
    return torch.stack([idx % r.shape[1], idx // r.shape[1]], dim=1).float()


def _texture(seed=0, shape=(136, 176)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, shape[0] // 4, shape[1] // 4, generator=g)
    return F.interpolate(x, size=shape, mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("fn", [classic.harris_response, classic.shi_tomasi_response])
def test_corner_responses_peak_at_corners(fn):
    r = fn(_square())
    assert r.shape == (1, 64, 64) and r.dtype == torch.float32
    assert r.min() >= 0 and r.max() == pytest.approx(1.0)
    peaks = _peaks(r[0])
    assert torch.cdist(peaks, CORNERS).min(dim=1).values.max() <= 2.0  # each peak at a corner
    assert torch.cdist(CORNERS, peaks).min(dim=1).values.max() <= 2.0  # each corner found
    for x, y in [(31, 16), (31, 47), (16, 31), (47, 31)]:  # middles of the edges
        assert r[0, y, x] < 0.02
    assert r[0, 32, 32] < 0.02 and r[0, 2, 2] < 0.02  # flat inside and outside


def test_responses_are_normalised_per_image():
    batch = torch.cat([_square(), 0.3 * _square()])
    for fn in (classic.harris_response, classic.shi_tomasi_response):
        r = fn(batch)
        assert r.shape == (2, 64, 64)
        torch.testing.assert_close(r[0], r[1], atol=1e-5, rtol=0)
        raw = fn(batch, normalize=False)
        assert raw[1].max() < 0.5 * raw[0].max()


def test_corner_responses_equal_opencv():
    cv2 = pytest.importorskip("cv2")
    img = _texture(1, (40, 56))
    im = img[0, 0].numpy().astype(np.float32)
    harris = classic.harris_response(img, normalize=False)[0].numpy()
    want = cv2.cornerHarris(im, 4, 3, 0.04)
    np.testing.assert_allclose(harris, want, rtol=0, atol=1e-6 * np.abs(want).max())
    mev = classic.shi_tomasi_response(img, normalize=False)[0].numpy()
    want = cv2.cornerMinEigenVal(im, 3, 3)
    np.testing.assert_allclose(mev, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_fast_response_is_a_sparse_map_of_corners():
    pytest.importorskip("cv2")
    r = classic.fast_response(torch.cat([_square(blur=True), torch.zeros(1, 1, 64, 64)]))
    assert r.shape == (2, 64, 64) and r.max() == pytest.approx(1.0)
    assert r[1].count_nonzero() == 0  # nothing on a flat image
    found = r[0].nonzero()[:, [1, 0]].float()
    assert 4 <= len(found) <= 16
    assert torch.cdist(found, CORNERS).min(dim=1).values.max() <= 2.0
    assert torch.cdist(CORNERS, found).min(dim=1).values.max() <= 2.0


@pytest.mark.parametrize(
    "name, dim, dtype", [("sift", 128, torch.float32), ("orb", 32, torch.uint8)]
)
def test_descriptors_match_a_shifted_image(name, dim, dtype):
    pytest.importorskip("cv2")
    fn = classic.CLASSIC_DESCRIPTORS[name]
    big = _texture(2, (160, 200))
    a, b = big[..., 8:136, 4:180], big[..., 13:141, 11:187]  # b = a moved by (-7, -5)
    ka, sa, da = fn(a)
    kb, _, db = fn(b[0, 0])  # (H, W) works too
    assert ka.shape[1] == 2 and len(ka) == len(sa) == len(da) > 50
    assert da.shape[1] == dim and da.dtype == dtype
    assert bool((sa[:-1] >= sa[1:]).all())  # best first
    if name == "sift":
        torch.testing.assert_close(da.norm(dim=1), torch.ones(len(da)))
        m = mutual_nearest_neighbours(da, db)
    else:
        m = classic.hamming_mutual_nearest_neighbours(da, db)
    H = torch.tensor([[1.0, 0, -7], [0, 1, -5], [0, 0, 1]])
    assert len(m) > 100
    assert mean_matching_accuracy(ka, kb, m, H, thresholds=[3])[3] > 0.9
    assert mean_matching_accuracy(ka, kb, m, torch.eye(3), thresholds=[3])[3] < 0.1


def test_without_opencv(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    assert not classic.opencv_available()
    for fn in (classic.fast_response, classic.sift, classic.orb):
        with pytest.raises(PerpixelError, match=r"needs OpenCV: pip install 'perpixel\[classic\]'"):
            fn(_square())
    assert classic.harris_response(_square()).shape == (1, 64, 64)  # no OpenCV needed


def test_registry():
    assert set(classic.CLASSIC_DETECTORS) == {"harris", "shi_tomasi", "fast"}
    assert set(classic.CLASSIC_DESCRIPTORS) == {"sift", "orb"}
    assert [classic.needs_opencv(n) for n in ("harris", "shi_tomasi", "fast", "sift", "orb")] == [
        False,
        False,
        True,
        True,
        True,
    ]
    with pytest.raises(ConfigError, match="unknown classic method"):
        classic.needs_opencv("surf")
