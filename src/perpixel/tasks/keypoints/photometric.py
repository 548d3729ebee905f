"""Photometric augmentation of gray images in [0, 1] (rpautrat/SuperPoint's
`photometric_augmentation.py`, ranges of its `magic-point_shapes.yaml`; levels given there on
the 0-255 scale are divided by 255). Each enabled op runs once, in a random order per image
when `random_order`, and the result is clipped to [0, 1] after each, as in the reference.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import kornia
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError

PHOTOMETRIC_DEFAULTS: dict[str, Any] = {
    "random_order": True,  # a new order of the ops for every image (else the order below)
    "random_brightness": {"enable": True, "max_abs_change": 75 / 255},  # x + U(-m, m)
    "random_contrast": {"enable": True, "strength_range": [0.3, 1.8]},  # around the mean
    "additive_speckle_noise": {"enable": True, "prob_range": [0.0, 0.0035]},  # p black, p white
    "additive_gaussian_noise": {"enable": True, "stddev_range": [0.0, 15 / 255]},
    "additive_shade": {  # x * (1 - t * blurred mask of ellipses): darker (t > 0) or lighter
        "enable": True,
        "nb_ellipses": 20,
        "transparency_range": [-0.5, 0.8],
        "kernel_size_range": [50, 100],  # px, OpenCV's Gaussian kernel (sigma from its size)
    },
    "motion_blur": {"enable": True, "max_kernel_size": 7},  # px; h, v or diagonal, odd size
}
OPS = tuple(k for k in PHOTOMETRIC_DEFAULTS if k != "random_order")


def _conf(conf: dict | None) -> dict:
    """The defaults updated by `conf` (op sections merged key by key)."""
    out = copy.deepcopy(PHOTOMETRIC_DEFAULTS)
    for key, value in (conf or {}).items():
        if key not in out:
            raise ConfigError(f"photometric: unknown key {key!r}; known: {', '.join(out)}")
        if key == "random_order":
            out[key] = bool(value)
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"photometric.{key} must be a mapping, got {value!r}")
        unknown = set(value) - set(out[key])
        if unknown:
            raise ConfigError(
                f"photometric.{key}: unknown {sorted(unknown)}; known: {', '.join(out[key])}"
            )
        out[key].update(value)
    return out


def _dev(g: torch.Generator | None) -> torch.device:
    return g.device if g is not None else torch.device("cpu")


def _uniform(g: torch.Generator | None, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, device=_dev(g)))


def _randint(g: torch.Generator | None, lo: int, hi: int) -> int:
    """An integer in [lo, hi)."""
    return int(torch.randint(int(lo), int(hi), (), generator=g, device=_dev(g)))


def _rand_like(x: torch.Tensor, g: torch.Generator | None, normal: bool = False) -> torch.Tensor:
    r = (torch.randn if normal else torch.rand)(x.shape, generator=g, device=_dev(g))
    return r.to(device=x.device, dtype=x.dtype)


def _brightness(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    m = float(c["max_abs_change"])
    return x + _uniform(g, -m, m)


def _contrast(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return (x - mean) * _uniform(g, *c["strength_range"]) + mean


def _speckle(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    p, s = _uniform(g, *c["prob_range"]), _rand_like(x, g)
    x = torch.where(s <= p, torch.zeros_like(x), x)
    return torch.where(s >= 1 - p, torch.ones_like(x), x)


def _gaussian(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    return x + _uniform(g, *c["stddev_range"]) * _rand_like(x, g, normal=True)


def _shade(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    h, w = x.shape[-2:]
    n, m = int(c["nb_ellipses"]), min(h, w) / 4
    u = torch.rand(n, 5, generator=g, device=_dev(g)).to(x.device)
    ax = (u[:, 0] * m).clamp(min=m / 5).floor().clamp(min=1)
    ay = (u[:, 1] * m).clamp(min=m / 5).floor().clamp(min=1)
    r = torch.maximum(ax, ay)
    cx = r + (u[:, 2] * (w - 2 * r).clamp(min=1)).floor()  # an integer in [r, w - r)
    cy = r + (u[:, 3] * (h - 2 * r).clamp(min=1)).floor()
    cos, sin = (u[:, 4] * math.pi / 2).cos(), (u[:, 4] * math.pi / 2).sin()
    transparency = _uniform(g, *c["transparency_range"])
    k = _randint(g, *c["kernel_size_range"]) | 1  # odd
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a kernel of size k
    # The blurred mask is smooth: it is made on a grid f times coarser (each cell the mean of
    # 2 x 2 samples), blurred there and interpolated back: a few times faster, and within 5%
    # of the shade's depth of a full-size blur, but near the border (20 px; padding differs).
    f = max(1, int(sigma // 2))
    hs, ws = -(-h // f), -(-w // f)

    def samples(n_fine: int, n_coarse: int) -> torch.Tensor:  # fine coordinates
        i = torch.arange(2 * n_coarse, device=x.device, dtype=x.dtype)
        return (i + 0.5) / 2 * (n_fine / n_coarse) - 0.5

    yy = samples(h, hs)[None, :, None] - cy[:, None, None]
    xx = samples(w, ws)[None, None, :] - cx[:, None, None]
    cos, sin = cos[:, None, None], sin[:, None, None]
    e1 = (xx * cos + yy * sin) / ax[:, None, None]
    e2 = (yy * cos - xx * sin) / ay[:, None, None]
    mask = (e1 * e1 + e2 * e2 <= 1).any(0).to(x.dtype)[None, None]
    small = F.avg_pool2d(mask, 2)
    sy, sx = sigma * hs / h, sigma * ws / w
    ks = max(3, int(k * max(hs / h, ws / w)) | 1)
    small = kornia.filters.gaussian_blur2d(small, (ks, ks), (sy, sx), border_type="replicate")
    blurred = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return x * (1 - transparency * blurred)


def _motion_blur(x: torch.Tensor, g: torch.Generator | None, c: dict) -> torch.Tensor:
    mode = _randint(g, 0, 4)  # horizontal, vertical, diagonal down, diagonal up
    k = _randint(g, 0, (int(c["max_kernel_size"]) + 1) // 2) * 2 + 1
    if k == 1:
        return x
    centre = (k - 1) // 2
    line = torch.zeros(k, k, dtype=x.dtype, device=x.device)
    idx = torch.arange(k, device=x.device)
    if mode == 0:
        line[centre, :] = 1
    elif mode == 1:
        line[:, centre] = 1
    elif mode == 2:
        line[idx, idx] = 1
    else:
        line[k - 1 - idx, idx] = 1
    d = (idx - centre).to(x.dtype) ** 2
    kernel = line * torch.exp(-(d[:, None] + d[None, :]) / (2 * k * k / 16))
    kernel = kernel / kernel.sum()
    padded = F.pad(x, (centre,) * 4, mode="reflect")
    return F.conv2d(padded, kernel[None, None])


_APPLY = {
    "random_brightness": _brightness,
    "random_contrast": _contrast,
    "additive_speckle_noise": _speckle,
    "additive_gaussian_noise": _gaussian,
    "additive_shade": _shade,
    "motion_blur": _motion_blur,
}


def photometric_augment(
    image: torch.Tensor, conf: dict | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random photometric changes of (B, 1, H, W) or (1, H, W) images in [0, 1], each image
    its own draw; same shape, clipped to [0, 1]. `conf` updates PHOTOMETRIC_DEFAULTS; all
    randomness comes from `generator` (torch's global one if None)."""
    if image.dim() not in (3, 4) or image.shape[-3] != 1:
        raise ValueError(f"expected (B, 1, H, W) or (1, H, W) images, got {tuple(image.shape)}")
    c = _conf(conf)
    ops = [op for op in OPS if c[op]["enable"]]
    batch = image.reshape(-1, 1, 1, *image.shape[-2:])
    out = []
    for x in batch:
        order = list(range(len(ops)))
        if c["random_order"]:
            order = torch.randperm(len(ops), generator=generator, device=_dev(generator)).tolist()
        for i in order:
            x = _APPLY[ops[i]](x, generator, c[ops[i]]).clamp(0, 1)
        out.append(x)
    return torch.cat(out).reshape(image.shape)
