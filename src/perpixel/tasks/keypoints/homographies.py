"""Random homographies (SuperPoint's homographic adaptation and augmentation) and warping of
points, images and validity masks.

Convention: a homography H (3, 3) or (B, 3, 3) maps points of image A to image B,
x_B ~ H x_A, in pixel coordinates where the centre of pixel (row r, col c) is (x=c, y=r).

Sampling follows rpautrat/SuperPoint, superpoint/models/homographies.py (sample_homography,
commit 1411bbd), re-written in PyTorch. The reference returns the map warped -> original (as
tf.contrib.image.transform wants); `sample_homography` here returns its inverse,
original -> warped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.linalg import transform_points
from kornia.geometry.transform import get_perspective_transform, warp_perspective

from perpixel.errors import ConfigError

# Homographic adaptation, rpautrat/SuperPoint configs/magic-point_coco_export.yaml
# (model.homography_adaptation.homographies); max_angle from homography_adaptation_default_config
# (pi), n_scales / n_angles / translation_overflow from sample_homography's defaults.
HOMOGRAPHY_DEFAULTS: dict = {
    "translation": True,
    "rotation": True,
    "scaling": True,
    "perspective": True,
    "scaling_amplitude": 0.2,
    "perspective_amplitude_x": 0.2,
    "perspective_amplitude_y": 0.2,
    "patch_ratio": 0.85,
    "max_angle": math.pi,
    "allow_artifacts": True,
    "translation_overflow": 0.0,
    "n_scales": 5,
    "n_angles": 25,
}

# Homographic augmentation of the synthetic shapes, configs/magic-point_shapes.yaml
# (data.augmentation.homographic.params).
HOMOGRAPHY_AUGMENTATION: dict = {
    **HOMOGRAPHY_DEFAULTS,
    "patch_ratio": 0.8,
    "max_angle": 1.57,
    "translation_overflow": 0.05,
}


def _conf(conf: dict | None) -> dict:
    c = dict(HOMOGRAPHY_DEFAULTS)
    if conf:
        unknown = sorted(set(conf) - set(c))
        if unknown:
            raise ConfigError(f"homography: unknown option(s) {unknown}, known: {sorted(c)}")
        c.update(conf)
    if not 0 < c["patch_ratio"] <= 1:
        raise ConfigError(f"homography.patch_ratio must be in (0, 1], got {c['patch_ratio']}")
    if c["n_scales"] < 1 or c["n_angles"] < 1:
        raise ConfigError("homography.n_scales and homography.n_angles must be >= 1")
    return c


def _truncated_normal(size: tuple[int, ...], g: torch.Generator | None) -> torch.Tensor:
    """Standard normal truncated to [-2, 2] (tf.truncated_normal), by inverting the CDF."""
    lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))
    u = lo + (1 - 2 * lo) * torch.rand(size, generator=g, dtype=torch.float64)
    return torch.special.ndtri(u)


def _pick(valid: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """(n, K) bool -> (n,) index of one True per row, uniformly (0 if a row has none)."""
    r = torch.rand(valid.shape, generator=g, dtype=torch.float64)
    return r.masked_fill(~valid, -1).argmax(1)


def _choose(
    candidates: torch.Tensor, allow_artifacts: bool, g: torch.Generator | None
) -> torch.Tensor:
    """(n, K, 4, 2) candidate patches, candidate 0 the unchanged one -> (n, 4, 2): with
    artifacts any but candidate 0, else any whose corners stay in the unit square."""
    if allow_artifacts:
        valid = torch.ones(candidates.shape[:2], dtype=torch.bool)
        valid[:, 0] = False
    else:
        valid = ((candidates >= 0) & (candidates <= 1)).flatten(2).all(-1)
    return candidates[torch.arange(len(candidates)), _pick(valid, g)]


def sample_homographies(
    n: int,
    shape: tuple[int, int],
    conf: dict | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`n` random homographies (n, 3, 3) float32 (CPU; `generator` must be a CPU one) mapping
    points of an (H, W) image to its warped version of the same size, x_B ~ H x_A.

    As in the reference, a centred patch of `patch_ratio` of the image (the warped image's
    patch) is matched to a perturbed patch of the original: perspective, then scaling, then
    translation, then rotation. With `allow_artifacts` False the original's patch corners stay
    inside the image's pixel centres [0, W-1] x [0, H-1], so the warped image has no padding
    inside its centred patch. (The reference scales by (W, H) instead of (W-1, H-1): its patch
    may touch the half pixel beyond the last centre.) As in the reference, the perturbations
    act in unit-square coordinates, so a rotation shears a non-square image a little."""
    c = _conf(conf)
    g, art = generator, bool(c["allow_artifacts"])
    pr = float(c["patch_ratio"])
    margin = (1 - pr) / 2
    # Unit-square (x, y) corners: top-left, bottom-left, bottom-right, top-right.
    pts1 = margin + torch.tensor([[0, 0], [0, pr], [pr, pr], [pr, 0]], dtype=torch.float64)
    pts2 = pts1.expand(n, 4, 2).clone()

    if c["perspective"]:
        amp_x, amp_y = c["perspective_amplitude_x"], c["perspective_amplitude_y"]
        if not art:
            amp_x, amp_y = min(amp_x, margin), min(amp_y, margin)
        d = _truncated_normal((n, 3), g)
        dy, left, right = d[:, 0] * amp_y / 2, d[:, 1] * amp_x / 2, d[:, 2] * amp_x / 2
        pts2 = pts2 + torch.stack(
            [
                torch.stack([left, dy], -1),
                torch.stack([left, -dy], -1),
                torch.stack([right, dy], -1),
                torch.stack([right, -dy], -1),
            ],
            1,
        )

    if c["scaling"]:
        amp = c["scaling_amplitude"]
        scales = torch.cat(
            [
                torch.ones(n, 1, dtype=torch.float64),
                1 + _truncated_normal((n, c["n_scales"]), g) * amp / 2,
            ],
            1,
        )
        center = pts2.mean(1, keepdim=True)[:, None]
        scaled = (pts2[:, None] - center) * scales[:, :, None, None] + center
        pts2 = _choose(scaled, art, g)

    if c["translation"]:
        t_min, t_max = pts2.amin(1), (1 - pts2).amin(1)  # (n, 2)
        if art:
            t_min, t_max = t_min + c["translation_overflow"], t_max + c["translation_overflow"]
        u = torch.rand((n, 2), generator=g, dtype=torch.float64)
        pts2 = pts2 + (-t_min + u * (t_max + t_min))[:, None]

    if c["rotation"]:
        m = float(c["max_angle"])
        angles = torch.linspace(-m, m, c["n_angles"], dtype=torch.float64)
        angles = torch.cat([torch.zeros(1, dtype=torch.float64), angles])
        cos, sin = angles.cos(), angles.sin()
        rot = torch.stack([cos, -sin, sin, cos], -1).view(-1, 2, 2)
        center = pts2.mean(1, keepdim=True)[:, None]
        rotated = (pts2[:, None] - center) @ rot + center  # row vectors, as the reference
        pts2 = _choose(rotated, art, g)

    h, w = shape
    size = torch.tensor([w - 1, h - 1], dtype=torch.float64)
    # original patch (pts2) -> centred patch of the warped image (pts1)
    H = get_perspective_transform(pts2 * size, (pts1 * size).expand(n, 4, 2))
    return (H / H[:, 2:, 2:]).float()


def sample_homography(
    shape: tuple[int, int], conf: dict | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random homography (3, 3) mapping points of an (H, W) image to the warped image
    (same size): x_B ~ H x_A. See `sample_homographies`."""
    return sample_homographies(1, shape, conf, generator)[0]


def warp_points(points: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Points (N, 2) or (B, N, 2) xy mapped by H (3, 3) or (B, 3, 3): (N, 2) with (3, 3), else
    (B, N, 2)."""
    if points.ndim == 2 and H.ndim == 3:
        points = points.expand(len(H), *points.shape)
    return transform_points(H.to(points.dtype) if points.is_floating_point() else H, points)


def inside(points: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(..., 2) xy -> (...) bool: in the (H, W) image, -0.5 <= x < W - 0.5 and same for y."""
    h, w = shape
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


def warp_images(images: torch.Tensor, H: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Images (B, C, H, W) warped into the frame of H (B, 3, 3) (or (3, 3)): (B, C, h, w) with
    `shape` = (h, w), bilinear, zeros outside."""
    if H.ndim == 2:
        H = H.expand(len(images), 3, 3)
    return warp_perspective(
        images, H.to(images), (int(shape[0]), int(shape[1])), mode="bilinear", align_corners=True
    )


def warp_mask(
    shape_src: tuple[int, int], H: torch.Tensor, shape_dst: tuple[int, int], erode: int = 0
) -> torch.Tensor:
    """(B, 1, h, w) float, 1 where a pixel of the warped image (`shape_dst` = (h, w)) comes from
    inside the source image of `shape_src` (nearest sampling), H (B, 3, 3) or (3, 3) source ->
    destination. `erode` > 0 also drops pixels within `erode` (square window) of an invalid
    one; the image's own edge does not count as invalid."""
    if H.ndim == 2:
        H = H[None]
    dtype = H.dtype if H.is_floating_point() else torch.float32
    ones = torch.ones(len(H), 1, *shape_src, dtype=dtype, device=H.device)
    mask = warp_perspective(
        ones,
        H.to(dtype),
        (int(shape_dst[0]), int(shape_dst[1])),
        mode="nearest",
        align_corners=True,
    )
    mask = (mask > 0.5).to(dtype)
    if erode > 0:
        mask = 1 - F.max_pool2d(1 - mask, 2 * erode + 1, stride=1, padding=erode)
    return mask


def resize_homography(src: Sequence[int], dst: Sequence[int]) -> torch.Tensor:
    """(3, 3) float64: the homography of resizing an image of size `src` (H, W) to `dst`, in
    the pixel-centre convention (x' = (x + 0.5) * sx - 0.5)."""
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    return torch.tensor(
        [[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], dtype=torch.float64
    )
