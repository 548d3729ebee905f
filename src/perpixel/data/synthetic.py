"""The synthetic world: textured *stuff* regions under randomly coloured *thing* shapes.

One procedural generator serves three tasks: semantic segmentation (`semantic`,
`instances`), edge detection (`boundaries`) and interest points (`corners`). A sample is
a pure function of `(seed, index, conf)`: it draws only from
`numpy.random.default_rng(SeedSequence([seed, index]))`, so it is the same on every machine.

Stuff classes are told apart by TEXTURE, things by SHAPE; every region and every thing
takes its colours from the same broad random distribution, so a pixel's colour alone says
(almost) nothing about its class. Pixel centres sit at integer coordinates: pixel
(row r, column c) is the point (x=c, y=r), and a pixel belongs to a shape when its centre does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from perpixel.data.taxonomy import Taxonomy

STUFF = ["sky", "grass", "road", "water"]
THINGS = ["disc", "triangle", "quad", "star"]

SYNTHETIC = Taxonomy(
    names=STUFF + THINGS,
    colors=[(120, 180, 240), (60, 160, 60), (110, 110, 110), (30, 80, 180),
            (240, 200, 40), (230, 80, 60), (160, 90, 200), (250, 140, 210)],
    things=list(THINGS),
)  # fmt: skip

default_conf: dict = {
    "height": 128,
    "width": 128,
    "min_stuff": 2,  # stuff regions per image (distinct classes), at most len(STUFF)
    "max_stuff": 4,
    "min_things": 2,
    "max_things": 6,
    "thing_size": (0.1, 0.2),  # thing radius range, as a fraction of min(height, width)
    "max_occlusion": 0.4,  # a new thing may hide at most this fraction of an earlier one
    "min_contrast": 80.0,  # min RGB distance between the two colours of a texture / a thing and its background
    "noise": 4.0,  # std of the per-pixel Gaussian noise, in 0..255 intensity units
}


@dataclass
class SyntheticSample:
    """One generated sample; H, W = conf height, width.

    image: (H, W, 3) uint8 RGB.
    semantic: (H, W) uint8 class ids into `SYNTHETIC.names`.
    instances: (H, W) int32; 0 where no thing is visible, 1..N for the visible thing instances.
    boundaries: (H, W) uint8 0/1; 1 where a pixel's segment (stuff region or thing instance)
        differs from that of its right or bottom neighbour.
    corners: (N, 2) float32 (x, y) pixel coordinates of the visible corners of polygonal
        things (inside the image and not hidden by things drawn later).
    """

    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    boundaries: np.ndarray
    corners: np.ndarray


def _check_conf(conf: dict) -> dict:
    unknown = set(conf) - set(default_conf)
    if unknown:
        raise ValueError(f"synthetic: unknown options {sorted(unknown)}; known: {sorted(default_conf)}")
    c = {**default_conf, **conf}
    if c["height"] < 8 or c["width"] < 8:
        raise ValueError(f"synthetic: image size {c['height']}x{c['width']} is below 8x8")
    if not 1 <= c["min_stuff"] <= c["max_stuff"] <= len(STUFF):
        raise ValueError(f"synthetic: need 1 <= min_stuff <= max_stuff <= {len(STUFF)}")
    if not 0 <= c["min_things"] <= c["max_things"]:
        raise ValueError("synthetic: need 0 <= min_things <= max_things")
    return c


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 255.0, 3)


def _colour_pair(rng: np.random.Generator, min_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """Two random colours at least `min_dist` apart (best of a few tries)."""
    best = None
    for _ in range(20):
        a, b = _random_colour(rng), _random_colour(rng)
        d = np.linalg.norm(a - b)
        if best is None or d > best[0]:
            best = (d, a, b)
        if d >= min_dist:
            break
    return best[1], best[2]


def _stuff_regions(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    """(H, W) int region index 0..k-1: a Voronoi partition of smoothly warped coordinates."""
    s = min(h, w)
    seeds = rng.uniform(0, 1, (k, 2)) * [w, h]
    for _ in range(50):  # spread the seeds so that no region is tiny
        d = np.linalg.norm(seeds[:, None] - seeds[None], axis=-1) + np.eye(k) * s
        if d.min() >= 0.4 * s:
            break
        seeds = rng.uniform(0, 1, (k, 2)) * [w, h]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    amp, freq, phase = rng.uniform(0.04, 0.1, 4) * s, rng.uniform(3, 9, 4) / s, rng.uniform(0, 6.3, 4)
    xw = x + amp[0] * np.sin(freq[0] * y + phase[0]) + amp[1] * np.sin(freq[1] * x + phase[1])
    yw = y + amp[2] * np.sin(freq[2] * x + phase[2]) + amp[3] * np.sin(freq[3] * y + phase[3])
    d2 = (xw[None] - seeds[:, 0, None, None]) ** 2 + (yw[None] - seeds[:, 1, None, None]) ** 2
    return d2.argmin(0)


def _texture(rng: np.random.Generator, name: str, x: np.ndarray, y: np.ndarray, grass_noise):
    """Texture value in [0, 1] at pixel coordinates `x`, `y` (1-D arrays) for a stuff class."""
    a = rng.uniform(0, np.pi)
    if name == "sky":  # smooth, mostly vertical gradient across the region
        a = np.pi / 2 + rng.uniform(-0.5, 0.5)
        p = x * np.cos(a) + y * np.sin(a)
        return (p - p.min()) / max(float(p.max() - p.min()), 1.0)
    p, q = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
    if name == "road":  # crisp parallel stripes, period 5-9 px
        period = rng.uniform(5.0, 9.0)
        return 0.5 + 0.5 * np.clip(3.0 * np.sin(2 * np.pi * p / period + rng.uniform(0, 6.3)), -1, 1)
    if name == "water":  # smooth wavy ripples, period 14-24 px
        period, wobble = rng.uniform(14.0, 24.0), rng.uniform(20.0, 40.0)
        bend = rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * q / wobble + rng.uniform(0, 6.3))
        return 0.5 + 0.5 * np.sin(2 * np.pi * p / period + rng.uniform(0, 6.3) + bend)
    if name == "grass":  # high-frequency two-tone blobs
        return grass_noise[y.astype(int), x.astype(int)]
    raise AssertionError(name)


def _polygon_mask(verts: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test; `verts` (K, 2) (x, y), `x`, `y` broadcastable grids."""
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
    for (xi, yi), (xj, yj) in zip(verts, np.roll(verts, -1, axis=0), strict=True):
        if yi == yj:
            continue
        crosses = (yi > y) != (yj > y)
        inside ^= crosses & (x < xi + (xj - xi) * (y - yi) / (yj - yi))
    return inside


def _min_angle(v: np.ndarray) -> float:
    """Smallest interior angle (radians) of the triangle `v` (3, 2)."""
    u, w = np.roll(v, -1, 0) - v, np.roll(v, 1, 0) - v
    cos = (u * w).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1) + 1e-12)
    return float(np.arccos(np.clip(cos, -1, 1)).min())


def _thing_shape(rng: np.random.Generator, name: str, r: float):
    """(vertices (K, 2) relative to the centre, or None for a disc; disc params)."""
    rot = rng.uniform(0, 2 * np.pi)
    if name == "disc":
        return None, (r, r * rng.uniform(0.6, 1.0), rot)
    if name == "triangle":
        for _ in range(20):  # keep every angle >= 35 degrees so that the corners stay visible
            ang = rot + np.array([0, 2, 4]) * np.pi / 3 + rng.uniform(-0.4, 0.4, 3)
            v = np.stack([np.cos(ang), np.sin(ang)], 1) * r * rng.uniform(0.75, 1.0, (3, 1))
            if _min_angle(v) >= np.radians(35):
                break
        return v, None
    if name == "quad":  # square, rectangle or parallelogram
        v = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
        v = v * [1.0, rng.uniform(0.55, 1.0)]
        v[:, 0] += rng.uniform(-0.4, 0.4) * v[:, 1]
    elif name == "star":
        n, inner = 5, rng.uniform(0.45, 0.6)
        ang = np.arange(2 * n) * np.pi / n
        rad = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
        v = np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
    else:
        raise AssertionError(name)
    v = v / np.abs(v).max() * r
    c, s = np.cos(rot), np.sin(rot)
    return v @ np.array([[c, s], [-s, c]]), None


def _shape_mask(verts, disc, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Boolean mask of a thing at coordinates `gx`, `gy` relative to its centre."""
    if verts is not None:
        return _polygon_mask(verts, gx, gy)
    a, b, rot = disc
    u, v = gx * np.cos(rot) + gy * np.sin(rot), -gx * np.sin(rot) + gy * np.cos(rot)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _pick_colour(rng: np.random.Generator, under: np.ndarray, min_dist: float) -> np.ndarray:
    """A random colour that stands out from the pixels `under` (M, 3) (best of a few tries)."""
    best = None
    for _ in range(10):
        colour = _random_colour(rng)
        close = float((np.linalg.norm(under - colour, axis=1) < min_dist).mean())
        if best is None or close < best[0]:
            best = (close, colour)
        if close < 0.05:
            break
    return best[1]


def generate(seed: int, index: int = 0, **conf) -> SyntheticSample:
    """Sample `index` of the synthetic world `seed`; `conf` overrides `default_conf`."""
    c = _check_conf(conf)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    h, w, s = c["height"], c["width"], min(c["height"], c["width"])

    # Stuff: a warped Voronoi partition, one distinct textured class per region.
    k = int(rng.integers(c["min_stuff"], c["max_stuff"] + 1))
    classes = rng.permutation(len(STUFF))[:k]
    regions = _stuff_regions(rng, h, w, k)
    semantic = classes[regions].astype(np.uint8)
    image = np.zeros((h, w, 3), np.float32)
    grass = None
    if STUFF.index("grass") in classes:
        n = gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 1.0)
        grass = 1.0 / (1.0 + np.exp(-2.5 * n / n.std()))
    for j, cls in enumerate(classes):
        ys, xs = np.nonzero(regions == j)
        c1, c2 = _colour_pair(rng, c["min_contrast"])
        t = _texture(rng, STUFF[cls], xs.astype(np.float32), ys.astype(np.float32), grass)
        image[ys, xs] = c1 + (c2 - c1) * t[:, None]

    # Things: random shapes, drawn in order; later ones occlude earlier ones.
    instances = np.zeros((h, w), np.int32)
    things: list[tuple[np.ndarray | None, tuple | None, float, float]] = []
    area = [0]
    lo, hi = c["thing_size"]
    for _ in range(int(rng.integers(c["min_things"], c["max_things"] + 1))):
        name = THINGS[int(rng.integers(len(THINGS)))]
        for _attempt in range(10):
            r = rng.uniform(lo, hi) * s
            cx, cy = rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h
            verts, disc = _thing_shape(rng, name, r)
            x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, w)
            y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, h)
            gx, gy = np.arange(x0, x1)[None] - cx, np.arange(y0, y1)[:, None] - cy
            mask = _shape_mask(verts, disc, gx, gy)
            if mask.sum() < 0.5 * r * r:  # mostly outside the image
                continue
            hidden = instances[y0:y1, x0:x1][mask]
            ids, counts = np.unique(hidden[hidden > 0], return_counts=True)
            if np.any(counts > c["max_occlusion"] * np.asarray(area)[ids]):
                continue
            break
        else:
            continue
        under = image[y0:y1, x0:x1][mask]
        colour = _pick_colour(rng, under, 0.5 * c["min_contrast"])
        image[y0:y1, x0:x1][mask] = colour
        semantic[y0:y1, x0:x1][mask] = len(STUFF) + THINGS.index(name)
        instances[y0:y1, x0:x1][mask] = len(area)
        for i, n_hidden in zip(ids, counts, strict=True):
            area[i] -= int(n_hidden)
        area.append(int(mask.sum()))
        things.append((verts, disc, cx, cy))

    # Corners: inside the image, not inside a later thing, next to a pixel of their thing.
    corners = []
    for i, (verts, _, cx, cy) in enumerate(things):
        for vx, vy in [] if verts is None else verts + [cx, cy]:
            if not (0 <= vx <= w - 1 and 0 <= vy <= h - 1):
                continue
            later = things[i + 1 :]
            if any(_shape_mask(v, d, np.array(vx - x), np.array(vy - y)) for v, d, x, y in later):
                continue
            py, px = np.mgrid[int(vy) - 1 : int(vy) + 3, int(vx) - 1 : int(vx) + 3]
            near = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            near &= (px - vx) ** 2 + (py - vy) ** 2 <= 1.5**2
            if np.any(instances[py[near], px[near]] == i + 1):
                corners.append((vx, vy))

    # Renumber the visible instances 1..N; segments are stuff regions and instances.
    lut = np.zeros(len(area), np.int32)
    visible = np.flatnonzero(np.asarray(area) > 0)
    lut[visible] = np.arange(1, visible.size + 1)
    instances = lut[instances]
    segments = np.where(instances > 0, instances + k, regions)
    boundaries = np.zeros((h, w), np.uint8)
    boundaries[:, :-1] |= segments[:, :-1] != segments[:, 1:]
    boundaries[:-1] |= segments[:-1] != segments[1:]

    image += rng.standard_normal((h, w, 3), dtype=np.float32) * c["noise"]
    return SyntheticSample(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        semantic=semantic,
        instances=instances,
        boundaries=boundaries,
        corners=np.asarray(corners, np.float32).reshape(-1, 2),
    )


class SyntheticSegmentation(torch.utils.data.Dataset):
    """`num_samples` samples of the synthetic world; sample i is `generate(seed, i, **conf)`.

    Items are dicts: "image" float32 (3, H, W) in [0, 1], "mask" int64 (H, W) class ids,
    "name" `synthetic_{seed}_{i:06d}`; then `transform(item)` when a transform is given.
    """

    taxonomy = SYNTHETIC

    def __init__(self, num_samples: int, seed: int = 0, transform=None, **conf):
        self.conf = _check_conf(conf)
        if num_samples < 0:
            raise ValueError(f"synthetic: num_samples must be >= 0, got {num_samples}")
        self.num_samples, self.seed, self.transform = int(num_samples), int(seed), transform

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.num_samples:
            raise IndexError(f"synthetic: index {i} out of range for {self.num_samples} samples")
        sample = generate(self.seed, i, **self.conf)
        item = {
            "image": torch.from_numpy(sample.image).permute(2, 0, 1).float().div_(255.0),
            "mask": torch.from_numpy(sample.semantic.astype(np.int64)),
            "name": f"synthetic_{self.seed}_{i:06d}",
        }
        return self.transform(item) if self.transform is not None else item
