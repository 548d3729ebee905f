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
from typing import Any, cast

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from perpixel.data.images import to_float
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import ConfigError

AREA = 0.8 * np.pi  # area of a thing of radius 1
STUFF = ["sky", "grass", "road", "water"]
THINGS = ["disc", "triangle", "quad", "star"]

SYNTHETIC = Taxonomy(
    names=STUFF + THINGS,
    colors=[(120, 180, 240), (60, 160, 60), (110, 110, 110), (30, 80, 180),
            (240, 200, 40), (230, 80, 60), (160, 90, 200), (250, 140, 210)],
    things=list(THINGS),
    categories=["sky", "nature", "flat", "nature", "round", "polygon", "polygon", "polygon"],
)  # fmt: skip

default_conf: dict = {
    "height": 128,
    "width": 128,
    "min_stuff": 2,  # stuff regions per image (distinct classes), at most len(STUFF)
    "max_stuff": 4,
    "min_things": 2,
    "max_things": 6,
    # thing "radius" sqrt(area / AREA) range, as a fraction of min(height, width)
    "thing_size": (0.15, 0.3),
    "max_occlusion": 0.08,  # later things may hide at most this fraction of a thing
    # min RGB distance (0..255 units) between the two colours of a texture (x1.5 for sky),
    # and (x0.75) between a thing and most of what it covers
    "min_contrast": 80.0,
    "thing_speckle": 6.0,  # std of the grey speckle on every thing, 0..255 units
    "noise": 4.0,  # std of the per-pixel Gaussian noise on the image, 0..255 units
}


SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # seed offsets of the train/val/test splits


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


def check_conf(conf: dict) -> dict:
    unknown = set(conf) - set(default_conf)
    if unknown:
        raise ValueError(
            f"synthetic: unknown options {sorted(unknown)}; known: {sorted(default_conf)}"
        )
    c = {**default_conf, **conf}
    if c["height"] < 8 or c["width"] < 8:
        raise ValueError(f"synthetic: image size {c['height']}x{c['width']} is below 8x8")
    if not 1 <= c["min_stuff"] <= c["max_stuff"] <= len(STUFF):
        raise ValueError(f"synthetic: need 1 <= min_stuff <= max_stuff <= {len(STUFF)}")
    if not 0 <= c["min_things"] <= c["max_things"]:
        raise ValueError("synthetic: need 0 <= min_things <= max_things")
    if not 0 < c["thing_size"][0] <= c["thing_size"][1]:
        raise ValueError(f"synthetic: bad thing_size {c['thing_size']}: need 0 < min <= max")
    return c


def _colour_pair(rng: np.random.Generator, min_dist: float) -> np.ndarray:
    """(2, 3) random RGB colours (0..255), at least `min_dist` apart if 20 draws find such."""
    pairs = rng.uniform(0.0, 255.0, (20, 2, 3))
    d = np.linalg.norm(pairs[:, 0] - pairs[:, 1], axis=1)
    ok = np.flatnonzero(d >= min_dist)
    return pairs[ok[0] if ok.size else d.argmax()]


def _stuff_regions(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    """(H, W) int region index 0..k-1: a Voronoi partition of smoothly warped coordinates."""
    s = min(h, w)
    seeds = rng.uniform(0, 1, (k, 2)) * [w, h]
    for _ in range(50):  # spread the seeds so that no region is tiny
        d = np.linalg.norm(seeds[:, None] - seeds[None], axis=-1) + np.eye(k) * s
        if d.min() >= 0.4 * s:
            break
        seeds = rng.uniform(0, 1, (k, 2)) * [w, h]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    amp, freq = rng.uniform(0.04, 0.1, 4) * s, rng.uniform(3, 9, 4) / s
    phase = rng.uniform(0, 6.3, 4)
    xw = x + amp[0] * np.sin(freq[0] * y + phase[0]) + amp[1] * np.sin(freq[1] * x + phase[1])
    yw = y + amp[2] * np.sin(freq[2] * x + phase[2]) + amp[3] * np.sin(freq[3] * y + phase[3])
    d2 = (xw[None] - seeds[:, 0, None, None]) ** 2 + (yw[None] - seeds[:, 1, None, None]) ** 2
    return d2.argmin(0)


def _texture(
    rng: np.random.Generator, name: str, x: np.ndarray, y: np.ndarray, grass: np.ndarray | None
) -> np.ndarray:
    """Texture value in [0, 1] at pixel coordinates `x`, `y` (1-D arrays) for a stuff class.

    `grass` is the (H, W) blob pattern that grass samples.
    """
    a = rng.uniform(0, np.pi)
    if name == "sky":  # smooth, mostly vertical gradient across the region
        a = np.pi / 2 + rng.uniform(-0.5, 0.5)
        p = x * np.cos(a) + y * np.sin(a)
        return (p - p.min()) / max(float(p.max() - p.min()), 1.0)
    p, q = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
    if name == "road":  # crisp parallel stripes, period 5-9 px
        period = rng.uniform(5.0, 9.0)
        return 0.5 + 0.5 * np.clip(
            3.0 * np.sin(2 * np.pi * p / period + rng.uniform(0, 6.3)), -1, 1
        )
    if name == "water":  # smooth wavy ripples, period 14-24 px
        period, wobble = rng.uniform(14.0, 24.0), rng.uniform(20.0, 40.0)
        bend = rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * q / wobble + rng.uniform(0, 6.3))
        return 0.5 + 0.5 * np.sin(2 * np.pi * p / period + rng.uniform(0, 6.3) + bend)
    if name == "grass":  # high-frequency two-tone blobs
        return cast(np.ndarray, grass)[y.astype(int), x.astype(int)]  # given for grass
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


def _polygon_area(v: np.ndarray) -> float:
    """Area of the simple polygon `v` (K, 2) (shoelace formula)."""
    x, y = v[:, 0], v[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _min_angle(v: np.ndarray) -> float:
    """Smallest interior angle (radians) of the triangle `v` (3, 2)."""
    u, w = np.roll(v, -1, 0) - v, np.roll(v, 1, 0) - v
    cos = (u * w).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1) + 1e-12)
    return float(np.arccos(np.clip(cos, -1, 1)).min())


def _thing_shape(rng: np.random.Generator, name: str, r: float):
    """A random thing of class `name` and area `AREA * r**2`, centred on the origin.

    Returns (vertices (K, 2) (x, y), None) for polygons, (None, (a, b, angle)) for ellipses.
    """
    rot = rng.uniform(0, 2 * np.pi)
    if name == "disc":
        aspect = rng.uniform(0.8, 1.0)
        a = r * np.sqrt(AREA / np.pi / aspect)
        return None, (a, a * aspect, rot)
    if name == "triangle":
        for _ in range(20):  # keep every angle >= 48 degrees so that the corners stay visible
            ang = rot + np.array([0, 2, 4]) * np.pi / 3 + rng.uniform(-0.15, 0.15, 3)
            v = np.stack([np.cos(ang), np.sin(ang)], 1) * rng.uniform(0.9, 1.0, (3, 1))
            if _min_angle(v) >= np.radians(48):
                break
    elif name == "quad":  # square, rectangle or parallelogram
        v = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
        v = v * [1.0, rng.uniform(0.75, 1.0)]
        v[:, 0] += rng.uniform(-0.15, 0.15) * v[:, 1]
    elif name == "star":
        n, inner = 5, rng.uniform(0.38, 0.45)
        ang = np.arange(2 * n) * np.pi / n
        rad = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
        v = np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
    else:
        raise AssertionError(name)
    v = v * (np.sqrt(AREA / _polygon_area(v)) * r)
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
    """A random RGB colour (3,) that stands out from (almost) all the pixels `under` (M, 3)."""
    cand = rng.uniform(0.0, 255.0, (10, 3))
    close = (np.linalg.norm(under[None, ::4] - cand[:, None], axis=-1) < min_dist).mean(1)
    ok = np.flatnonzero(close < 0.05)
    return cand[ok[0] if ok.size else close.argmin()]


def generate(seed: int, index: int = 0, **conf) -> SyntheticSample:
    """Sample `index` of the synthetic world `seed` (both ints >= 0).

    `conf` overrides `default_conf` (unknown keys raise ValueError). Each image gets
    `min_stuff..max_stuff` stuff regions and tries `min_things..max_things` things; a thing
    that finds no place (inside the image, hiding little of the others) in 10 tries is left out.
    Polygons lie wholly inside the image; discs may stick out a little.
    """
    c = check_conf(conf)
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"synthetic: seed {seed} and index {index} must be >= 0")
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
        n = gaussian_filter(rng.standard_normal((h, w)), 1.0)
        grass = 1.0 / (1.0 + np.exp(-2.5 * n / n.std()))
    for j, cls in enumerate(classes):
        ys, xs = np.nonzero(regions == j)
        c1, c2 = _colour_pair(rng, c["min_contrast"] * (1.5 if STUFF[cls] == "sky" else 1.0))
        t = _texture(rng, STUFF[cls], xs.astype(np.float64), ys.astype(np.float64), grass)
        image[ys, xs] = c1 + (c2 - c1) * t[:, None]

    # Things: random shapes, drawn in order; later ones occlude earlier ones.
    instances = np.zeros((h, w), np.int32)
    things: list[tuple] = []  # (vertices or None, disc or None, cx, cy) in drawing order
    area, full_area = [0], [0]  # visible and drawn pixel counts per instance
    lo, hi = c["thing_size"]
    for _ in range(int(rng.integers(c["min_things"], c["max_things"] + 1))):
        name = THINGS[int(rng.integers(len(THINGS)))]
        for _attempt in range(10):
            r = rng.uniform(lo, hi) * s
            verts, disc = _thing_shape(rng, name, r)
            # centre range: polygons keep all their corners inside, discs most of their area
            if verts is None:
                lo_xy, hi_xy = np.full(2, 0.75 * disc[1]), np.array([w, h]) - 1 - 0.75 * disc[1]
            else:
                lo_xy, hi_xy = -verts.min(0), np.array([w, h]) - 1 - verts.max(0)
            (ix0, iy0), (ix1, iy1) = np.ceil(lo_xy).astype(int), np.floor(hi_xy).astype(int)
            free = np.flatnonzero(instances[iy0 : iy1 + 1, ix0 : ix1 + 1] == 0)
            if ix0 > ix1 or iy0 > iy1 or free.size == 0:
                continue
            cy, cx = np.divmod(free[rng.integers(free.size)], ix1 + 1 - ix0)
            centre = np.array([cx + ix0, cy + iy0]) + rng.uniform(-0.5, 0.5, 2)
            cx, cy = np.clip(centre, lo_xy, hi_xy)  # on a pixel where no thing is yet
            ext = disc[0] if verts is None else float(np.abs(verts).max())
            x0, x1 = max(int(np.floor(cx - ext)), 0), min(int(np.ceil(cx + ext)) + 1, w)
            y0, y1 = max(int(np.floor(cy - ext)), 0), min(int(np.ceil(cy + ext)) + 1, h)
            gx, gy = np.arange(x0, x1)[None] - cx, np.arange(y0, y1)[:, None] - cy
            mask = _shape_mask(verts, disc, gx, gy)
            if mask.sum() < 0.9 * AREA * r * r:  # a disc too far outside the image
                continue
            hidden = instances[y0:y1, x0:x1][mask]
            full, area_np = np.asarray(full_area), np.asarray(area)
            ids, counts = np.unique(hidden[hidden > 0], return_counts=True)
            if np.any(full[ids] - area_np[ids] + counts > c["max_occlusion"] * full[ids]):
                continue
            break
        else:
            continue
        under = image[y0:y1, x0:x1][mask]
        colour = _pick_colour(rng, under, 0.75 * c["min_contrast"])
        speckle = rng.standard_normal((int(mask.sum()), 1), dtype=np.float32)
        image[y0:y1, x0:x1][mask] = colour + c["thing_speckle"] * speckle
        semantic[y0:y1, x0:x1][mask] = len(STUFF) + THINGS.index(name)
        instances[y0:y1, x0:x1][mask] = len(area)
        for i, n_hidden in zip(ids, counts, strict=True):
            area[i] -= int(n_hidden)
        area.append(int(mask.sum()))
        full_area.append(area[-1])
        things.append((verts, disc, cx, cy))

    # Corners: inside the image, not inside a later thing, next to a pixel of their thing.
    corners: list[tuple[Any, Any]] = []  # (x, y)
    oy, ox = np.mgrid[-1:3, -1:3].reshape(2, 1, 16)
    for i, (verts, _, cx, cy) in enumerate(things):
        if verts is None:
            continue
        vx, vy = verts[:, 0] + cx, verts[:, 1] + cy
        keep = (vx >= 0) & (vx <= w - 1) & (vy >= 0) & (vy <= h - 1)
        for v, d, x, y in things[i + 1 :]:
            keep &= ~_shape_mask(v, d, vx - x, vy - y)
        px, py = vx.astype(int)[:, None] + ox, vy.astype(int)[:, None] + oy  # (K, 16)
        near = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        near &= (px - vx[:, None]) ** 2 + (py - vy[:, None]) ** 2 <= 1.5**2
        mine = instances[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)] == i + 1
        keep &= (near & mine).any(1)
        corners.extend(zip(vx[keep], vy[keep], strict=True))

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
    "name" `synthetic_{seed}_{i:06d}`, with `instances` also "instances" int64 (H, W) (0 =
    none); then `transform(item)` when a transform is given.
    """

    taxonomy = SYNTHETIC

    def __init__(
        self, num_samples: int, seed: int = 0, transform=None, instances: bool = False, **conf
    ):
        self.conf = check_conf(conf)
        if num_samples < 0:
            raise ValueError(f"synthetic: num_samples must be >= 0, got {num_samples}")
        self.num_samples, self.seed, self.transform = int(num_samples), int(seed), transform
        self.instances = instances

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        if not 0 <= i < self.num_samples:
            raise IndexError(f"synthetic: index {i} out of range for {self.num_samples} samples")
        sample = generate(self.seed, i, **self.conf)
        item = {
            "image": to_float(sample.image),
            "mask": torch.from_numpy(sample.semantic.astype(np.int64)),
            "name": f"synthetic_{self.seed}_{i:06d}",
        }
        if self.instances:
            item["instances"] = torch.from_numpy(sample.instances.astype(np.int64))
        return self.transform(item) if self.transform is not None else item


def synthetic_split(
    section: dict, split: str, seed: int = 0, instances: bool = False, transform=None
) -> SyntheticSegmentation:
    """The `split` ("train", "val" or "test") of a recipe's `data.synthetic` section
    (`num_train`, `num_val`, `num_test` and generator options): `num_{split}` samples of world
    `1000 * seed + SPLIT_SEEDS[split]`."""
    if split not in SPLIT_SEEDS:
        raise ConfigError(f"synthetic data has splits train/val/test, not {split!r}")
    conf = {k: v for k, v in section.items() if not k.startswith("num_")}
    n = section[f"num_{split}"]
    return SyntheticSegmentation(
        n, 1000 * seed + SPLIT_SEEDS[split], transform, instances=instances, **conf
    )
