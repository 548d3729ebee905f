"""Edge thinning by non-maximum suppression, as the HED / structured-edges evaluation does.

A port of Piotr Dollar's edges toolbox (`convTri`, `gradient2`, `edgesNmsMex.cpp`) and of
the step that HED, RCF and their successors run on a soft edge map before the benchmark:

    E = convTri(E, 1);
    [Ox, Oy] = gradient2(convTri(E, 4));
    [Oxx, ~] = gradient2(Ox); [Oxy, Oyy] = gradient2(Oy);
    O = mod(atan(Oyy .* sign(-Oxy) ./ (Oxx + 1e-5)), pi);
    E = edgesNmsMex(E, O, 1, 5, 1.01, 4);

`thin_edges` is that whole step; `edge_nms` is `edgesNmsMex`. Arithmetic is single precision,
as in the reference. The orientation O (radians, [0, pi)) is the direction of the edge
normal in (column, row) coordinates: a pixel is kept when it is at least 1/m of the
bilinearly interpolated values at distances 1..r along the normal on both sides.
"""

from __future__ import annotations

import numpy as np


def convtri(x: np.ndarray, r: float) -> np.ndarray:
    """Triangle-filter smoothing over the last two axes (`convTri`, symmetric borders).

    Args:
        x: (..., H, W) float map.
        r: radius; r >= 1 uses the filter [1 .. r r+1 r .. 1] / (r+1)^2, 0 < r < 1 the
            filter [1 p 1] / (2+p) with p = 12/r/(r+2) - 2, r = 0 returns x.

    Returns:
        (..., H, W) float32.
    """
    from scipy.ndimage import convolve1d

    x = np.asarray(x, dtype=np.float32)
    if r == 0:
        return x.copy()
    if r < 1:
        p = 12.0 / r / (r + 2) - 2
        f = np.array([1.0, p, 1.0]) / (2 + p)
    else:
        r = int(round(r))
        f = np.concatenate([np.arange(1, r + 2), np.arange(r, 0, -1)]) / float((r + 1) ** 2)
    f = f.astype(np.float32)
    # scipy's 'reflect' is MATLAB's 'symmetric' (the edge sample repeated)
    y = convolve1d(x, f, axis=-2, mode="reflect")
    return convolve1d(y, f, axis=-1, mode="reflect")


def gradient2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> (Gx, Gy): central differences inside, one-sided at borders (`gradient2`)."""
    x = np.asarray(x, dtype=np.float32)
    gy, gx = np.gradient(x)
    return gx.astype(np.float32), gy.astype(np.float32)


def edge_orientation(E: np.ndarray, r: float = 4) -> np.ndarray:
    """Edge-normal orientation from second derivatives of `convtri(E, r)`.

    Args:
        E: (H, W) soft edge map.

    Returns:
        (H, W) float32 angle in [0, pi) radians of the normal, measured from the column (x)
        axis towards the row (y) axis: 0 for a vertical edge, pi/2 for a horizontal one.
        As in the reference it is approximate: on a straight ridge whose normal is at
        angle theta it gives atan(tan(theta)^2), exact at multiples of 45 degrees; and
        where Oxy is exactly 0 (a perfectly axis-aligned horizontal ridge) it gives 0.
    """
    ox, oy = gradient2(convtri(E, r))
    oxx, _ = gradient2(ox)
    oxy, oyy = gradient2(oy)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.arctan(oyy * np.sign(-oxy) / (oxx + np.float32(1e-5)))
    return np.mod(o, np.float32(np.pi)).astype(np.float32)


def _interp(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of (H, W) `img` at columns x, rows y, clamped as the reference."""
    h, w = img.shape
    x = np.clip(x, np.float32(0), np.float32(w - 1.001))
    y = np.clip(y, np.float32(0), np.float32(h - 1.001))
    x0, y0 = x.astype(np.intp), y.astype(np.intp)
    dx0, dy0 = x - x0.astype(np.float32), y - y0.astype(np.float32)
    dx1, dy1 = np.float32(1) - dx0, np.float32(1) - dy0
    return (
        img[y0, x0] * dx1 * dy1
        + img[y0, x0 + 1] * dx0 * dy1
        + img[y0 + 1, x0] * dx1 * dy0
        + img[y0 + 1, x0 + 1] * dx0 * dy0
    )


def edge_nms(
    E: np.ndarray,
    r: int = 1,
    s: int = 5,
    m: float = 1.01,
    orientation: np.ndarray | None = None,
) -> np.ndarray:
    """Non-maximum suppression of an edge map along its normal (`edgesNmsMex`).

    Args:
        E: (H, W) soft edge map, non-negative.
        r: suppression radius: compare with the samples at distances 1..r on both sides.
        s: border width: the map is multiplied by a ramp from 0 to 1 over the outer s
            pixels (noisy estimates near image borders).
        m: a pixel is suppressed when m x its value is below a sample along the normal.
        orientation: (H, W) normal orientation O in radians (`edge_orientation(E)` when
            omitted).

    Returns:
        (H, W) float32 map: E where kept, 0 where suppressed, ramped near the border.
    """
    e0 = np.ascontiguousarray(E, dtype=np.float32)
    if e0.ndim != 2:
        raise ValueError(f"edge map must be (H, W), got shape {e0.shape}")
    o = edge_orientation(e0) if orientation is None else np.asarray(orientation, np.float32)
    if o.shape != e0.shape:
        raise ValueError(f"orientation shape {o.shape} != edge map shape {e0.shape}")
    h, w = e0.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    cos_o, sin_o = np.cos(o), np.sin(o)
    e = e0 * np.float32(m)
    keep = np.ones((h, w), dtype=bool)
    for d in range(-r, r + 1):
        if d:
            sample = _interp(e0, cols + np.float32(d) * cos_o, rows + np.float32(d) * sin_o)
            keep &= ~(e < sample)
    out = np.where(keep, e0, np.float32(0))

    s = min(s, w // 2, h // 2)
    if s > 0:
        ramp = np.arange(s, dtype=np.float32) / np.float32(s)
        out[:, :s] *= ramp
        out[:, w - s :] *= ramp[::-1]
        out[:s, :] *= ramp[:, None]
        out[h - s :, :] *= ramp[::-1, None]
    return out


def thin_edges(
    E: np.ndarray, r: int = 1, s: int = 5, m: float = 1.01, presmooth: float = 1
) -> np.ndarray:
    """The standard thinning before the BSDS benchmark (HED / RCF / structured edges).

    Smooths with `convtri(E, presmooth)`, estimates the orientation on `convtri(., 4)`, then
    `edge_nms(E, r, s, m, orientation)`.

    Args:
        E: (H, W) soft edge map in [0, 1].

    Returns:
        (H, W) float32 thinned map, never above the smoothed input.
    """
    e = convtri(np.asarray(E, dtype=np.float32), presmooth)
    return edge_nms(e, r=r, s=s, m=m, orientation=edge_orientation(e, 4))
