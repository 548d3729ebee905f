"""Synthetic shapes: every family draws, deterministically, with points that are corners."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, maximum_filter
from scipy.spatial import ConvexHull

from perpixel.tasks.keypoints import shapes
from perpixel.tasks.keypoints.shapes import FAMILIES, draw_shape, sample

CORNER_FAMILIES = [
    "polygon",
    "multiple_polygons",
    "star",
    "checkerboard",
    "stripes",
    "cube",
    "lines",
]


def draw(family: str, seed: int, shape: tuple[int, int] = (120, 160)):
    return draw_shape(family, np.random.default_rng(seed), shape)


@pytest.mark.parametrize("shape", [(120, 160), (96, 128)])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_draws(family, shape):
    for seed in range(3):
        img, pts = draw(family, seed, shape)
        assert img.shape == shape and img.dtype == np.float32
        assert img.min() >= 0 and img.max() <= 1 and img.std() > 0.005
        assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 2
        h, w = shape
        assert ((pts[:, 0] >= -0.5) & (pts[:, 0] < w - 0.5)).all()
        assert ((pts[:, 1] >= -0.5) & (pts[:, 1] < h - 0.5)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_from_the_seed(family):
    a, pa = draw(family, 7)
    b, pb = draw(family, 7)
    c, _ = draw(family, 8)
    assert np.array_equal(a, b) and np.array_equal(pa, pb)
    assert not np.array_equal(a, c)


def test_point_counts():
    for seed in range(10):
        assert len(draw("ellipses", seed)[1]) == 0
        assert len(draw("gaussian_noise", seed)[1]) == 0
        assert 4 <= len(draw("star", seed)[1]) <= 6  # 3 to 5 branches and the centre
        assert 3 <= len(draw("polygon", seed)[1]) <= 7
        assert len(draw("cube", seed)[1]) <= 7  # the hidden corner is never a point
        assert 2 <= len(draw("lines", seed)[1]) <= 18


def test_checkerboard_is_a_full_grid_without_warp(monkeypatch):
    """With the random warp made the identity, every corner of the rows x cols board is
    inside and the points are the (rows + 1) x (cols + 1) grid, equally spaced."""
    monkeypatch.setattr(shapes, "_random_warp", lambda rng, h, w, params: np.eye(3))
    for seed in range(5):
        _, pts = draw("checkerboard", seed)
        xs, ys = np.unique(pts[:, 0]), np.unique(pts[:, 1])
        assert 4 <= len(xs) <= 7 and 4 <= len(ys) <= 7  # 3 to 6 cells a side
        assert len(pts) == len(xs) * len(ys)
        assert np.allclose(np.diff(xs), xs[1] - xs[0]) and np.allclose(np.diff(ys), xs[1] - xs[0])


def min_eigenvalue(img: np.ndarray) -> np.ndarray:
    """Shi-Tomasi corner strength: the smaller eigenvalue of the structure tensor."""
    gy, gx = np.gradient(img.astype(np.float64))
    a, b, c = (gaussian_filter(v, 1.0) for v in (gx * gx, gx * gy, gy * gy))
    return (a + c) / 2 - np.sqrt(((a - c) / 2) ** 2 + b * b)


def response(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The corner strength at each point's pixel (best of its 3 x 3 neighbours)."""
    m = maximum_filter(min_eigenvalue(img), size=3)
    r, c = np.rint(pts[:, 1]).astype(int), np.rint(pts[:, 0]).astype(int)
    ok = (r >= 0) & (r < img.shape[0]) & (c >= 0) & (c < img.shape[1])
    return m[r[ok], c[ok]]


@pytest.mark.parametrize("family", CORNER_FAMILIES)
def test_points_are_corners(family):
    """Corner strength at the points is far above that 3 px away or with x and y swapped."""
    true, moved, swapped = [], [], []
    for seed in range(6):
        img, pts = draw(family, seed)
        true.extend(response(img, pts))
        moved.extend(response(img, pts + [3, -3]))
        swapped.extend(response(img, pts[:, ::-1]))
    assert np.median(true) > 3 * np.median(moved)
    assert np.median(true) > 10 * np.median(swapped)


def test_cube_hides_its_back_corner():
    """Of the 7 points of a cube seen whole, 6 outline it and the 7th, inside, is the visible
    front corner (where three edges meet), not the hidden back one (inside a flat face)."""
    inner, moved = [], []
    for seed in range(30):
        img, pts = draw("cube", seed)
        if len(pts) < 7:
            continue
        hull = ConvexHull(pts.astype(np.float64))
        assert len(hull.vertices) == 6
        inner.extend(response(img, pts[np.setdiff1d(np.arange(7), hull.vertices)]))
        moved.extend(response(img, pts + [3, -3]))
    assert len(inner) >= 5
    assert np.median(inner) > 3 * np.median(moved)


def pixel_coverage(poly: np.ndarray, rows: np.ndarray, cols: np.ndarray, ss: int = 8) -> np.ndarray:
    """The fraction of each pixel (rows x cols) inside the polygon, by ss x ss samples; pixel
    (r, c) covers [c - 0.5, c + 0.5] x [r - 0.5, r + 0.5]."""
    off = (np.arange(ss) + 0.5) / ss - 0.5
    y, x = np.meshgrid((rows[:, None] + off).ravel(), (cols[:, None] + off).ravel(), indexing="ij")
    px, py = x.ravel()[:, None], y.ravel()[:, None]
    a, b = poly, np.roll(poly, -1, 0)
    straddle = (a[:, 1] > py) != (b[:, 1] > py)
    dy = np.where(straddle, b[:, 1] - a[:, 1], 1.0)
    xcross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
    inside = ((straddle & (px < xcross)).sum(1) % 2).astype(float)
    return inside.reshape(len(rows), ss, len(cols), ss).mean((1, 3))


def vertex_offset(img: np.ndarray, poly: np.ndarray, i: int, rad: int = 4):
    """Fit the image around vertex i (9 x 9 px) as contrast * (coverage of the polygon moved
    by (dx, dy)) + a quadratic background, over moves of up to 1 px: (dx, dy, contrast, R^2)."""
    r0, c0 = int(round(poly[i, 1])), int(round(poly[i, 0]))
    rows = np.arange(max(r0 - rad, 0), min(r0 + rad + 1, img.shape[0]))
    cols = np.arange(max(c0 - rad, 0), min(c0 + rad + 1, img.shape[1]))
    if len(rows) < 3 or len(cols) < 3:
        return np.inf, np.inf, 0.0, 0.0
    patch = img[np.ix_(rows, cols)].ravel().astype(np.float64)
    rr, cc = (v.ravel() - v.mean() for v in np.meshgrid(rows, cols, indexing="ij"))
    background = np.c_[np.ones_like(rr), rr, cc, rr * rr, rr * cc, cc * cc]
    best = (np.inf, 0.0, 0.0, 0.0)
    for dx in np.arange(-1, 1.01, 0.25):
        for dy in np.arange(-1, 1.01, 0.25):
            cov = pixel_coverage(poly + [dx, dy], rows, cols).ravel()
            a = np.c_[cov, background]
            coef = np.linalg.lstsq(a, patch, rcond=None)[0]
            sse = float(((a @ coef - patch) ** 2).sum())
            if sse < best[0]:
                best = (sse, dx, dy, coef[0])
    sse, dx, dy, contrast = best
    return dx, dy, contrast, 1 - sse / max(((patch - patch.mean()) ** 2).sum(), 1e-12)


def located(img: np.ndarray, poly: np.ndarray) -> list[bool]:
    """For each vertex with enough contrast: is the drawn corner within 0.5 px of it?"""
    out = []
    for i in range(len(poly)):
        dx, dy, contrast, r2 = vertex_offset(img, poly, i)
        if abs(contrast) >= 0.1:
            out.append(max(abs(dx), abs(dy)) <= 0.5 and r2 > 0.9)
    return out


def test_polygon_vertices_are_drawn_where_the_points_say():
    """An exact model of the drawn polygon (the points as vertices, supersampled) fits the
    image best within 0.5 px of the points; the same check rejects points 1.5 px off or
    with x and y swapped."""
    checked = 0
    for seed in range(5):
        img, pts = draw("polygon", seed)
        poly = pts.astype(np.float64)
        ok = located(img, poly)
        assert all(ok), (seed, ok)
        checked += len(ok)
        if seed < 2:
            assert not any(located(img, poly + [1.5, 0]))
            assert not any(located(img, poly[:, ::-1]))
    assert checked >= 8


def test_unknown_family():
    with pytest.raises(ValueError, match="hexagon.*checkerboard"):
        draw_shape("hexagon", np.random.default_rng(0))
    with pytest.raises(ValueError, match="known"):
        sample(np.random.default_rng(0), (120, 160), ["cube", "hexagon"])
    with pytest.raises(ValueError, match="16x16"):
        draw_shape("cube", np.random.default_rng(0), (8, 8))


def test_sample_chooses_among_the_families():
    rng = np.random.default_rng(0)
    seen = {sample(rng, (64, 64), ["cube", "star"])[2] for _ in range(20)}
    assert seen == {"cube", "star"}
    seen = {sample(rng, (64, 64))[2] for _ in range(150)}
    assert seen == set(FAMILIES)
    img, pts, family = sample(np.random.default_rng(3), (96, 128), ("polygon",))
    assert family == "polygon" and img.shape == (96, 128) and len(pts) >= 3
