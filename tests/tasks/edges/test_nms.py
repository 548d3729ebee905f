"""Edge NMS: one-pixel-wide ridges, orientation, and a literal port of edgesNmsMex."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from perpixel.tasks.edges.nms import convtri, edge_nms, edge_orientation, thin_edges


def _line(h=40, w=40, col=20, sigma=1.5):
    e = np.zeros((h, w), np.float32)
    e[:, col] = 1
    e = gaussian_filter(e, sigma)
    return e / e.max()


def _circle(n=64, radius=18, sigma=1.5, center=(31.7, 32.4)):
    # off the pixel grid: see test_orientation_quirk_of_the_reference
    yy, xx = np.mgrid[:n, :n]
    d = np.hypot(yy - center[0], xx - center[1])
    return np.exp(-((d - radius) ** 2) / (2 * sigma**2)).astype(np.float32)


def _reference_nms(E, ori, r, s, m):
    """edgesNmsMex.cpp, pixel by pixel (x = column, y = row), for a small map."""
    h, w = E.shape

    def interp(x, y):
        x = 0 if x < 0 else min(x, w - 1.001)
        y = 0 if y < 0 else min(y, h - 1.001)
        x0, y0 = int(x), int(y)
        dx0, dy0 = x - x0, y - y0
        dx1, dy1 = 1 - dx0, 1 - dy0
        return (
            E[y0, x0] * dx1 * dy1
            + E[y0, x0 + 1] * dx0 * dy1
            + E[y0 + 1, x0] * dx1 * dy0
            + E[y0 + 1, x0 + 1] * dx0 * dy0
        )

    out = E.astype(np.float64).copy()
    for x in range(w):
        for y in range(h):
            e = out[y, x]
            if not e:
                continue
            e *= m
            c, sn = math.cos(ori[y, x]), math.sin(ori[y, x])
            for d in range(-r, r + 1):
                if d and e < interp(x + d * c, y + d * sn):
                    out[y, x] = 0
                    break
    s = min(s, w // 2, h // 2)
    for x in range(s):
        out[:, x] *= x / s
        out[:, w - 1 - x] *= x / s
    for y in range(s):
        out[y, :] *= y / s
        out[h - 1 - y, :] *= y / s
    return out


def test_matches_a_literal_port_of_the_reference():
    rng = np.random.default_rng(0)
    e = convtri(rng.random((17, 23)).astype(np.float32) ** 3, 1)
    o = edge_orientation(e)
    for r, s in [(1, 5), (2, 3)]:
        ours = edge_nms(e, r=r, s=s, m=1.01, orientation=o)
        ref = _reference_nms(e, o, r, s, 1.01)
        # float32 vs float64 may flip a comparison that is a near-tie; none here
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
        assert (ours == 0).sum() > 0.3 * e.size  # it did suppress


def test_blurred_line_becomes_one_pixel_wide_and_keeps_its_peak():
    e = _line()
    out = edge_nms(e)
    inner = out[8:-8, 8:-8]  # away from the border ramp
    np.testing.assert_array_equal(np.count_nonzero(inner, axis=1), 1)
    assert np.all(inner[:, 20 - 8] == pytest.approx(1.0))
    assert np.all(out <= e + 1e-7)
    # the whole pipeline thins it too, to a single column
    thin = thin_edges(e)
    assert np.all(np.count_nonzero(thin[8:-8], axis=1) == 1)
    assert np.all(thin <= convtri(e, 1) + 1e-7)


def test_blurred_circle_becomes_thin():
    e = _circle()
    out = thin_edges(e)
    on = out > 0.05
    # a 1-px wide ring of radius 18 has about 2*pi*18 ~ 113 (8-connected) pixels, the
    # blurred input has several times more
    assert 90 < on.sum() < 160 < (e > 0.05).sum()
    yy, xx = np.nonzero(on)
    radius = np.hypot(yy - 31.7, xx - 32.4)
    assert np.abs(radius - 18).max() <= 1.0
    # no 2x2 block fully on: one pixel wide
    blocks = on[:-1, :-1] & on[1:, :-1] & on[:-1, 1:] & on[1:, 1:]
    assert not blocks.any()


def test_border_ramp():
    e = np.ones((20, 30), np.float32)
    out = edge_nms(e, s=5, orientation=np.zeros_like(e))
    np.testing.assert_allclose(out[10, :6], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[:6, 15], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    assert out[0, 0] == 0 and out[1, 1] == pytest.approx(0.04)


def test_orientation_of_vertical_and_horizontal_edges():
    vertical = _line(col=20)  # normal along the columns (x): angle 0 (or pi)
    o = edge_orientation(vertical)[10:30, 17:24]
    assert np.all(np.minimum(o, np.pi - o) < 0.05)
    # a nearly horizontal line: normal close to the rows (y), angle near pi/2
    yy, xx = np.mgrid[:40, :40]
    dist = (yy - 20 - 0.05 * xx) / math.hypot(1, 0.05)
    o = edge_orientation(np.exp(-(dist**2) / 4.5))[20:22, 10:30]
    assert np.all(np.abs(o - np.pi / 2) < 0.01)
    # at 45 degrees on the circle the normal is diagonal
    o = edge_orientation(_circle())
    y, x = round(31.7 + 18 / math.sqrt(2)), round(32.4 + 18 / math.sqrt(2))
    assert abs(o[y, x] - np.pi / 4) < 0.15


@pytest.mark.parametrize("theta", [0.3, math.pi / 4, 1.2, 2.0, 2.8])
def test_orientation_is_the_references_approximation(theta):
    # on a straight ridge with normal angle theta the Hessian is f'' n n^T, so the
    # reference's formula gives atan(tan(theta)^2) (mirrored above pi/2): exact at
    # multiples of 45 degrees only; the thinning needs no more than that
    yy, xx = np.mgrid[:48, :48]
    dist = (xx - 24) * math.cos(theta) + (yy - 24) * math.sin(theta)
    o = edge_orientation(np.exp(-(dist**2) / 4.5))
    on_ridge = (np.abs(dist) < 0.5) & (np.hypot(xx - 24, yy - 24) < 12)
    expected = math.atan(math.tan(theta) ** 2)
    expected = expected if theta < np.pi / 2 else np.pi - expected
    np.testing.assert_allclose(o[on_ridge], expected, atol=0.03)


def test_orientation_quirk_of_the_reference():
    # O = atan(Oyy * sign(-Oxy) / Oxx): where Oxy is exactly 0 (a perfectly axis-aligned
    # horizontal edge) sign(0) = 0 gives O = 0 instead of pi/2, in the reference as here,
    # so such an edge is not thinned; real edge maps are never exactly symmetric.
    horizontal = _line(col=20).T.copy()
    assert np.all(edge_orientation(horizontal)[17:24, 10:30] == 0)
    assert np.count_nonzero(thin_edges(horizontal)[:, 20] > 0.5) > 1


def test_convtri_is_the_triangle_filter():
    x = np.zeros((9, 9), np.float32)
    x[4, 4] = 1
    y = convtri(x, 2)
    f = np.array([1, 2, 3, 2, 1]) / 9
    np.testing.assert_allclose(y[2:7, 2:7], np.outer(f, f), atol=1e-7)
    assert convtri(np.ones((5, 6)), 4).min() == pytest.approx(1.0)  # symmetric borders
    np.testing.assert_allclose(convtri(x, 1)[3:6, 4], [0.125, 0.25, 0.125], atol=1e-7)
