"""MagicPoint's synthetic shapes (DeTone et al. 2018, after rpautrat/SuperPoint's
`synthetic_dataset.py`), drawn on the fly with exact corners.

Each family draws on a smooth textured background and returns its interest points: line ends,
polygon vertices, star centre and tips, checkerboard and stripe corners, the 7 visible cube
corners; ellipses and noise have none. The reference's parameters, set relative to the image
size, are kept. Differences: shapes are drawn with Pillow at `SUPERSAMPLE` times the size and
box-averaged down (the reference draws at 960x1280, blurs, resizes to 120x160 with OpenCV
and scales the points by 1/8, which puts them 7/16 px off); the points here follow the image's
own transform, so a drawn corner is where its point says (within 0.25 px, 0.5 px at sharp
corners). Shapes that would overlap or hide a corner (lines, multiple polygons) are rejected
with a 1 px clearance, and the cube's hidden corner is found from its depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 8  # shapes are drawn at this many times the image size, then box-averaged
BLUR_SIGMA = 0.35  # px; with the box average, the reference's blur (sigma 3.5 px at 8x)


class _Canvas:
    """An (H, W) image being drawn: a background, and shapes drawn at SUPERSAMPLE x the size.
    The image point (x, y) is at SUPERSAMPLE * (x + 0.5) - 0.5 on the large canvas."""

    def __init__(self, background: np.ndarray):
        self.h, self.w = background.shape
        self.md = min(self.h, self.w)
        self.bg = background.astype(np.float32)
        self.bg_color = int(background.mean())
        s = SUPERSAMPLE
        self.big = Image.fromarray(background).resize(
            (self.w * s, self.h * s), Image.Resampling.NEAREST
        )
        self.draw = ImageDraw.Draw(self.big)

    def polygon(self, pts: np.ndarray, color: int) -> None:
        self.draw.polygon(_big(pts), fill=int(color))

    def line(self, p: np.ndarray, q: np.ndarray, color: int, thickness: float) -> None:
        width = max(1, round(thickness * SUPERSAMPLE))
        self.draw.line(_big(np.stack([p, q])), fill=int(color), width=width)

    def image(self) -> np.ndarray:
        """The drawing at (H, W), 0-255 float32."""
        return np.asarray(self.big.reduce(SUPERSAMPLE), np.float32)


def _big(pts: np.ndarray) -> list[tuple[int, int]]:
    # Pillow truncates float vertices: round them, so the error is at most half a fine pixel
    q = np.rint(SUPERSAMPLE * (np.asarray(pts, np.float64) + 0.5) - 0.5).astype(int)
    return [(int(x), int(y)) for x, y in q]


def _coverage(pts: np.ndarray, h: int, w: int) -> tuple[slice, slice, np.ndarray]:
    """The fraction of each pixel a polygon covers, on its bounding box (rows, cols, cov)."""
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in pts.min(0))
    x1, y1 = (min(int(np.ceil(v)) + 2, n) for v, n in zip(pts.max(0), (w, h), strict=True))
    s = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s))
    ImageDraw.Draw(mask).polygon(_big(pts - [x0, y0]), fill=255)
    cov = np.asarray(mask.reduce(s), np.float32) / 255
    return slice(y0, y1), slice(x0, x1), cov


def _box_blur(img: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window (OpenCV's `blur`) of a uint8 image, edges repeated."""
    pil = Image.fromarray(img)
    return np.asarray(pil.filter(ImageFilter.BoxBlur((k - 1) / 2)) if k > 1 else pil)


def _gauss3(img: np.ndarray, sigma: float) -> np.ndarray:
    """A separable 3-tap Gaussian blur (enough for sigma < 0.5 px), edges mirrored."""
    e = math.exp(-1 / (2 * sigma**2))
    w0, w1 = 1 / (1 + 2 * e), e / (1 + 2 * e)
    p = np.pad(img, 1, mode="reflect")
    p = w0 * p[1:-1] + w1 * (p[:-2] + p[2:])
    return w0 * p[:, 1:-1] + w1 * (p[:, :-2] + p[:, 2:])


def _colors(rng: np.random.Generator, background: int, n: int) -> np.ndarray:
    """n gray levels with some contrast to the background's mean (int64)."""
    c = rng.integers(256, size=n)
    return np.where(np.abs(c - background) < 30, (c + 128) % 256, c)


def _color(rng: np.random.Generator, background: int) -> int:
    return int(_colors(rng, background, 1)[0])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Thresholded noise and 100 gray disks, blurred by a wide box: (H, W) uint8."""
    dim = max(h, w)
    img = np.where(rng.random((h, w)) * 255 > rng.integers(256), 255, 0).astype(np.uint8)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    blobs = rng.random((100, 3)) * [w, h, 0.011 * dim] + [0, 0, 0.02 * dim]
    for (x, y, r), col in zip(
        blobs.tolist(), _colors(rng, int(img.mean()), 100).tolist(), strict=True
    ):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=col)
    k = int(rng.integers(int(dim * 150 / 1280), int(dim * 500 / 1280) + 1))
    return _box_blur(np.asarray(pil), k)


def _texture(rng: np.random.Generator, h: int, w: int, dim: int, background: int) -> np.ndarray:
    """The fill of a polygon of `multiple_polygons`: a gray level under small random blobs,
    blurred (the reference's `generate_custom_background`), (h, w) float 0-255."""
    img = np.where(
        rng.random((h, w)) < 0.45,
        _color(rng, background),
        _colors(rng, background, h * w).reshape(h, w),
    )
    k = int(rng.integers(int(dim * 50 / 1280), int(dim * 100 / 1280) + 1))
    return _box_blur(img.astype(np.uint8), k).astype(np.float32)


def _random_polygon(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A star-shaped polygon of 3-7 vertices in a circle inside the image, its flat (>= 120
    degrees) and near-duplicate vertices removed: (N, 2), N may be < 3."""
    md = min(h, w)
    u = rng.random(18).tolist()
    n = 3 + int(u[0] * 5)
    rad = max(u[1] * (md - 1) / 2, md / 10)
    cx, cy = rad + u[2] * (w - 1 - 2 * rad), rad + u[3] * (h - 1 - 2 * rad)
    pts = []
    for i in range(n):
        a, r = (i + u[4 + i]) * 2 * math.pi / n, max(u[11 + i], 0.4) * rad
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    while len(pts) >= 3:  # removing a vertex changes its neighbours' angles: until stable
        keep = []
        for i, (x, y) in enumerate(pts):
            (px, py), (nx, ny) = pts[i - 1], pts[(i + 1) % len(pts)]
            d1, d2 = math.hypot(px - x, py - y), math.hypot(nx - x, ny - y)
            cos = ((px - x) * (nx - x) + (py - y) * (ny - y)) / max(d1 * d2, 1e-12)
            keep.append(d1 > 1.0 and cos > -0.5)  # angle < 120 degrees
        if all(keep):
            break
        pts = [p for p, k in zip(pts, keep, strict=True) if k]
    return np.array(pts).reshape(-1, 2)


def _claim(taken: np.ndarray, pts: np.ndarray) -> tuple[slice, slice, np.ndarray] | None:
    """The coverage of a polygon (as `_coverage`) if it keeps 1 px clear of the pixels already
    `taken`, which it then takes, grown by 1 px; None if it overlaps, contains or touches them."""
    rows, cols, cov = _coverage(pts, *taken.shape)
    on = cov > 0
    if (taken[rows, cols] & on).any():
        return None
    grown = on.copy()  # `on` has a 1 px margin inside its box: the growth stays in it
    grown[1:] |= on[:-1]
    grown[:-1] |= on[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    taken[rows, cols] |= grown
    return rows, cols, cov


def _lines(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    taken = np.zeros((c.h, c.w), bool)
    ends: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, 10))):
        p, q = rng.random((2, 2)) * [c.w - 1, c.h - 1]
        thickness = rng.uniform(0.01, 0.02) * c.md
        d = q - p
        n = np.array([-d[1], d[0]]) * thickness / 2 / max(float(np.hypot(*d)), 1e-9)
        if _claim(taken, np.stack([p + n, q + n, q - n, p - n])) is None:
            continue  # a line crossing or touching another would hide its ends
        ends += [p, q]
        c.line(p, q, _color(rng, c.bg_color), thickness)
    return np.array(ends)


def _polygon(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    while True:
        pts = _random_polygon(rng, c.h, c.w)
        if len(pts) >= 3:
            c.polygon(pts, _color(rng, c.bg_color))
            return pts


def _multiple_polygons(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    img = c.bg.copy()
    taken = np.zeros((c.h, c.w), bool)
    polys: list[np.ndarray] = []
    for _ in range(30):
        pts = _random_polygon(rng, c.h, c.w)
        box = _claim(taken, pts) if len(pts) >= 3 else None
        if box is None:
            continue
        rows, cols, cov = box
        polys.append(pts)
        tex = _texture(rng, cov.shape[0], cov.shape[1], max(c.h, c.w), c.bg_color)
        img[rows, cols] += cov * (tex - img[rows, cols])
    c.bg = img  # textured polygons are composited by coverage, not drawn on the canvas
    return np.concatenate(polys) if polys else np.empty((0, 2))


def _ellipses(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    disks: list[tuple[float, float, float]] = []  # centre and largest radius of each
    m = c.md / 4
    t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    for _ in range(20):
        u = rng.random(5).tolist()
        ax, ay = max(u[0] * m, m / 5), max(u[1] * m, m / 5)
        r = max(ax, ay)
        x, y = r + u[2] * (c.w - 1 - 2 * r), r + u[3] * (c.h - 1 - 2 * r)
        if any(r > math.hypot(x - x2, y - y2) - r2 for x2, y2, r2 in disks):
            continue
        disks.append((x, y, r))
        a = math.radians(u[4] * 90)
        rot = np.array(
            [[ax * math.cos(a), -ay * math.sin(a)], [ax * math.sin(a), ay * math.cos(a)]]
        )
        c.polygon(circle @ rot.T + [x, y], _color(rng, c.bg_color))
    return np.empty((0, 2))


def _star(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(3, 6))
    thickness = rng.uniform(0.01, 0.02) * c.md
    rad = max(rng.random() * (c.md - 1) / 2, c.md / 5)
    xy = np.array([rng.uniform(rad, c.w - 1 - rad), rng.uniform(rad, c.h - 1 - rad)])
    angles = (np.arange(n) + rng.random(n)) * 2 * math.pi / n
    r = np.maximum(rng.random(n), 0.3) * rad
    tips = xy + r[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    for tip in tips:
        c.line(xy, tip, _color(rng, c.bg_color), thickness)
    return np.vstack([xy, tips])


def _solve_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    m = np.linalg.solve(np.c_[src, np.ones(3)], dst).T
    return np.vstack([m, [0, 0, 1]])


def _solve_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    a = np.zeros((8, 8))
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
    return np.append(np.linalg.solve(a, dst.reshape(-1)), 1).reshape(3, 3)


def _random_warp(
    rng: np.random.Generator, h: int, w: int, params: tuple[float, float]
) -> np.ndarray:
    """An affine map then a homography, both moving a centred square's corners at random."""
    alpha = max(h, w) * (params[0] + rng.random() * params[1])
    cx, cy, q = w / 2, h / 2, min(h, w) // 3
    src = np.array([[cx + q, cy + q], [cx + q, cy - q], [cx - q, cy - q], [cx - q, cy + q]])
    affine = _solve_affine(src[:3], src[:3] + rng.uniform(-alpha, alpha, (3, 2)))
    persp = _solve_homography(src, src + rng.uniform(-alpha / 2, alpha / 2, (4, 2)))
    return persp @ affine


def _warp(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ m.T
    return p[:, :2] / p[:, 2:]


def _checkerboard(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    rows, cols = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    s = min((c.w - 1) // cols, (c.h - 1) // rows)
    gy, gx = np.mgrid[: rows + 1, : cols + 1]
    pts = _warp(_random_warp(rng, c.h, c.w, (0.05, 0.15)), s * np.c_[gx.ravel(), gy.ravel()])
    grid = pts.reshape(rows + 1, cols + 1, 2)
    colors = np.zeros((rows, cols), int)
    for i in range(rows):
        for j in range(cols):
            near = [colors[i - 1, j]] * (i > 0) + [colors[i, j - 1]] * (j > 0)
            col = int(rng.integers(256)) if near else _color(rng, c.bg_color)
            for _ in range(20):  # the reference's get_different_color
                if all(abs(col - n) >= 50 for n in near):
                    break
                col = int(rng.integers(256))
            colors[i, j] = col
            quad = [grid[i, j], grid[i, j + 1], grid[i + 1, j + 1], grid[i + 1, j]]
            c.polygon(np.array(quad), col)
    thickness = rng.uniform(0.01, 0.015) * c.md
    for _ in range(int(rng.integers(2, rows + 2))):
        i, j1, j2 = rng.integers((rows + 1, cols + 1, cols + 1)).tolist()
        c.line(grid[i, j1], grid[i, j2], _color(rng, c.bg_color), thickness)
    for _ in range(int(rng.integers(2, cols + 2))):
        j, i1, i2 = rng.integers((cols + 1, rows + 1, rows + 1)).tolist()
        c.line(grid[i1, j], grid[i2, j], _color(rng, c.bg_color), thickness)
    return pts


def _stripes(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    bh, bw = c.h * (1 + rng.random()), c.w * (1 + rng.random())
    n = int(rng.integers(5, 13))
    xs = np.unique(np.r_[bw * rng.random(n - 1), 0, bw - 1])
    min_width = c.md * 0.04
    xs = xs[np.diff(np.r_[xs, bw + min_width]) >= min_width]
    n = len(xs) - 1
    top, bottom = np.c_[xs, np.zeros(n + 1)], np.c_[xs, np.full(n + 1, bh - 1)]
    pts = _warp(_random_warp(rng, c.h, c.w, (0.1, 0.1)), np.r_[top, bottom])
    color = _color(rng, c.bg_color)
    for i in range(n):
        color = (color + 128 + int(rng.integers(-30, 30))) % 256
        c.polygon(pts[[i, i + 1, n + i + 2, n + i + 1]], color)
    thickness = rng.uniform(0.01, 0.015) * c.md
    for _ in range(int(rng.integers(2, 5))):
        row = int(rng.choice([0, n + 1]))
        i1, i2 = rng.integers(n + 1), rng.integers(n + 1)
        c.line(pts[row + i1], pts[row + i2], _color(rng, c.bg_color), thickness)
    for _ in range(int(rng.integers(2, n + 2))):
        i = int(rng.integers(n + 1))
        c.line(pts[i], pts[i + n + 1], _color(rng, c.bg_color), thickness)
    return pts


def _cube(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    md = min(c.h, c.w)
    size = md * 0.2 + rng.random(3) * 2 * md / 3
    # vertex i has coordinates bits (i & 1, i & 2, i & 4): neighbours differ by one bit
    cube = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)]) * size
    a = rng.random(3) * 3 * math.pi / 10 + math.pi / 10
    ca, sa = np.cos(a), np.sin(a)
    r1 = np.array([[ca[0], -sa[0], 0], [sa[0], ca[0], 0], [0, 0, 1]])
    r2 = np.array([[1, 0, 0], [0, ca[1], -sa[1]], [0, sa[1], ca[1]]])
    r3 = np.array([[ca[2], 0, -sa[2]], [0, 1, 0], [sa[2], 0, ca[2]]])
    scale = np.diag(0.4 + rng.random(3) * 0.6)
    dx = rng.integers(-int(c.w * 0.2), int(c.w * 0.2))
    dy = rng.integers(-int(c.h * 0.2), int(c.h * 0.2))
    cube = [c.w * 0.5 + dx, c.h * 0.5 + dy, 0] + cube @ (scale @ r1 @ r2 @ r3).T
    # seen from +z (the reference's view: corner 7 in front, 0 hidden, for its rotations)
    front = int(np.argmax(cube[:, 2]))
    xy = cube[:, :2]
    faces = []
    for bit in (1, 2, 4):
        b1, b2 = [b for b in (1, 2, 4) if b != bit]
        faces.append([front, front ^ b1, front ^ b1 ^ b2, front ^ b2])
    col_face = _color(rng, c.bg_color)
    for f in faces:
        c.polygon(xy[f], col_face)
    thickness = rng.uniform(0.003, 0.015) * md
    for f in faces:
        for k in range(4):
            col = (col_face + 128 + int(rng.integers(-64, 64))) % 256
            c.line(xy[f[k]], xy[f[(k + 1) % 4]], col, thickness)
    return np.delete(xy, front ^ 7, axis=0)  # the corner opposite the front one is hidden


def _gaussian_noise(c: _Canvas, rng: np.random.Generator) -> np.ndarray:
    # the reference's uniform noise at 8x, blurred and resized: mid-gray, std 5.9 levels
    c.bg = (127.5 + 5.9 * rng.standard_normal((c.h, c.w))).astype(np.float32)
    return np.empty((0, 2))


_DRAW: dict[str, Callable[[_Canvas, np.random.Generator], np.ndarray]] = {
    "lines": _lines,
    "polygon": _polygon,
    "multiple_polygons": _multiple_polygons,
    "ellipses": _ellipses,
    "star": _star,
    "checkerboard": _checkerboard,
    "stripes": _stripes,
    "cube": _cube,
    "gaussian_noise": _gaussian_noise,
}
FAMILIES: tuple[str, ...] = tuple(_DRAW)
_CANVAS_FREE = ("multiple_polygons", "gaussian_noise")  # these only change `bg`


def _check(family: str) -> None:
    if family not in _DRAW:
        raise ValueError(f"unknown shape family {family!r}; known: {', '.join(FAMILIES)}")


def draw_shape(
    family: str, rng: np.random.Generator, shape: tuple[int, int] = (120, 160)
) -> tuple[np.ndarray, np.ndarray]:
    """One image of a family: (image (H, W) float32 in [0, 1], points (N, 2) float32 xy pixel
    coordinates, those inside the image only)."""
    _check(family)
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < 16:
        raise ValueError(f"shapes are drawn on images of at least 16x16, got {h}x{w}")
    canvas = _Canvas(_background(rng, h, w))
    points = _DRAW[family](canvas, rng).reshape(-1, 2)
    img = canvas.bg if family in _CANVAS_FREE else canvas.image()
    img = np.clip(_gauss3(img, BLUR_SIGMA) / 255, 0, 1).astype(np.float32)
    x, y = points[:, 0], points[:, 1]
    keep = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    return img, points[keep].astype(np.float32)


def sample(
    rng: np.random.Generator,
    shape: tuple[int, int] = (120, 160),
    families: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A family chosen uniformly (from `families`, default all) and one image of it:
    (image (H, W), points (N, 2) xy, family)."""
    names = FAMILIES if families is None else tuple(families)
    if not names:
        raise ValueError(f"no shape family to sample from; known: {', '.join(FAMILIES)}")
    for f in names:
        _check(f)
    family = names[int(rng.integers(len(names)))]
    image, points = draw_shape(family, rng, shape)
    return image, points, family
