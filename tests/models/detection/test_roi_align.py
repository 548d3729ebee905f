"""Tests for perpixel.models.detection.roi_align: against a direct loop over bins and samples."""

import math

import pytest
import torch

from perpixel.models.detection import roi_align as roi_align_module
from perpixel.models.detection.roi_align import RoIAlign, roi_align


def bilinear(fmap: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """fmap (C, H, W) at (y, x), torchvision's rules for the borders."""
    _, h, w = fmap.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(fmap.shape[0], dtype=fmap.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_low = y_high = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_low = x_high = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (
        hy * hx * fmap[:, y_low, x_low]
        + hy * lx * fmap[:, y_low, x_high]
        + ly * hx * fmap[:, y_high, x_low]
        + ly * lx * fmap[:, y_high, x_high]
    )


def reference(features, rois, size, scale, ratio, aligned):
    ph, pw = size
    out = torch.zeros(len(rois), features.shape[1], ph, pw, dtype=features.dtype)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gy = ratio if ratio > 0 else math.ceil(rh / ph)
        gx = ratio if ratio > 0 else math.ceil(rw / pw)
        count = max(gy * gx, 1)
        for i in range(ph):
            for j in range(pw):
                acc = torch.zeros(features.shape[1], dtype=features.dtype)
                for iy in range(max(gy, 0)):
                    y = sy + i * bh + (iy + 0.5) * bh / gy
                    for ix in range(max(gx, 0)):
                        x = sx + j * bw + (ix + 0.5) * bw / gx
                        acc += bilinear(features[int(b)], y, x)
                out[k, :, i, j] = acc / count
    return out


def random_rois(g, n, batch, h, w, scale):
    """Boxes in input pixels, many partly or wholly outside the (h / scale, w / scale) image."""
    H, W = h / scale, w / scale
    x = torch.rand(n, 2, generator=g, dtype=torch.float64) * 1.6 * W - 0.3 * W
    y = torch.rand(n, 2, generator=g, dtype=torch.float64) * 1.6 * H - 0.3 * H
    b = torch.randint(0, batch, (n, 1), generator=g).double()
    return torch.cat(
        [b, x.min(1, True)[0], y.min(1, True)[0], x.max(1, True)[0], y.max(1, True)[0]], 1
    )


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [2, 1, 0, -1])
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_matches_direct_loops(aligned, ratio, scale):
    g = torch.Generator().manual_seed(int(aligned) + 10 * ratio + int(100 * scale))
    feats = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64)
    rois = random_rois(g, 12, 2, 9, 11, scale)
    # hand-picked cases: a box straddling the top-left corner, one beyond the bottom-right edge,
    # a degenerate (zero-size) box, an inverted one
    rois = torch.cat([rois, torch.tensor([
        [0, -3.0, -2.5, 4.0, 3.0],
        [1, 8.0, 6.0, 14.0, 12.5],
        [0, 5.0, 4.0, 5.0, 4.0],
        [1, 6.0, 5.0, 2.0, 1.0],
    ], dtype=torch.float64) / torch.tensor([1, scale, scale, scale, scale])])  # fmt: skip
    for size in [(2, 2), (3, 4)]:
        got = roi_align(feats, rois, size, scale, ratio, aligned)
        want = reference(feats, rois, size, scale, ratio, aligned)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_chunked_path_matches_one_chunk(monkeypatch):
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 4, 20, 24, generator=g, dtype=torch.float64)
    rois = random_rois(g, 40, 2, 20, 24, 0.5)
    whole = roi_align(feats, rois, 5, 0.5, -1)
    monkeypatch.setattr(roi_align_module, "_BUDGET", 2000)  # forces many chunks
    torch.testing.assert_close(roi_align(feats, rois, 5, 0.5, -1), whole)


def test_constant_map_and_gradient():
    feats = torch.full((1, 2, 8, 8), 3.0, requires_grad=True)
    rois = torch.tensor([[0, 4.0, 4.0, 20.0, 28.0]])  # inside the 32x32 image at stride 4
    out = RoIAlign(7, 0.25, 2)(feats, rois)
    torch.testing.assert_close(out, torch.full((1, 2, 7, 7), 3.0))
    out.sum().backward()
    # every sample's weights sum to 1: the gradient sums to the number of bins per channel
    torch.testing.assert_close(feats.grad.sum(), torch.tensor(2 * 49.0))
    assert (feats.grad[..., :, 7] == 0).all()  # columns the box does not reach
    assert roi_align(feats, torch.zeros(0, 5), 3).shape == (0, 2, 3, 3)


def test_gradcheck():
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = random_rois(g, 5, 2, 6, 7, 1.0)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 3, 1.0, 2), (feats,))


@pytest.mark.parametrize("ratio", [2, 0])
def test_small_boxes_on_a_large_map(ratio):
    """RoIs far smaller than the map take the per-RoI window path (the others: whole map)."""
    g = torch.Generator().manual_seed(11 + ratio)
    feats = torch.randn(2, 3, 30, 34, generator=g, dtype=torch.float64)
    xy = torch.rand(10, 2, generator=g, dtype=torch.float64) * torch.tensor([30.0, 26.0]) - 2
    wh = torch.rand(10, 2, generator=g, dtype=torch.float64) * 8 + 0.2
    b = torch.randint(0, 2, (10, 1), generator=g).double()
    rois = torch.cat([b, xy, xy + wh], 1)
    got = roi_align(feats, rois, (3, 2), 1.0, ratio, True)
    torch.testing.assert_close(got, reference(feats, rois, (3, 2), 1.0, ratio, True))
    # the same RoIs among one that spans the whole map (that chunk goes the whole-map way)
    big = torch.cat([rois, torch.tensor([[1.0, -1.0, -1.0, 40.0, 35.0]], dtype=torch.float64)])
    torch.testing.assert_close(roi_align(feats, big, (3, 2), 1.0, ratio)[:10], got)
