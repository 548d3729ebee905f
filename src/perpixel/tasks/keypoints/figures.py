"""The task's pictures: points on an image, and matches between two images with the outline of
the first warped into the second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from perpixel.io import write_png

GREEN, RED, YELLOW, CYAN = (40, 220, 60), (230, 40, 40), (250, 220, 30), (40, 200, 250)


def to_rgb8(image: torch.Tensor | np.ndarray) -> Image.Image:
    """(1 or 3, H, W) float in [0, 1] (tensor or array) or (H, W[, 3]) uint8 -> an RGB image."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a.transpose(1, 2, 0)
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    return Image.fromarray(a, "RGB")


def _dot(draw: ImageDraw.ImageDraw, x: float, y: float, colour, r: float = 2.0) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=1)


def keypoint_picture(image, keypoints: torch.Tensor, colour=GREEN) -> Image.Image:
    """The image with a small circle at every (x, y) of `keypoints` (N, 2)."""
    pic = to_rgb8(image)
    draw = ImageDraw.Draw(pic)
    for x, y in keypoints.tolist():
        _dot(draw, x, y, colour)
    return pic


def draw_keypoints(image, keypoints: torch.Tensor, path: str | Path) -> Path:
    """Write `keypoint_picture` as a PNG."""
    return write_png(path, np.asarray(keypoint_picture(image, keypoints)))


def match_picture(
    image_a,
    image_b,
    kp_a: torch.Tensor,
    kp_b: torch.Tensor,
    matches: torch.Tensor,
    inliers: torch.Tensor | None = None,
    homography: torch.Tensor | None = None,
) -> Image.Image:
    """A and B side by side: every point, a line per match (green inlier, red outlier), and
    A's outline warped into B by `homography` (yellow)."""
    a, b = keypoint_picture(image_a, kp_a, CYAN), keypoint_picture(image_b, kp_b, CYAN)
    pic = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    pic.paste(a, (0, 0))
    pic.paste(b, (a.width, 0))
    draw = ImageDraw.Draw(pic)
    ok = inliers if inliers is not None else torch.ones(len(matches), dtype=torch.bool)
    for (i, j), good in zip(matches.tolist(), ok.tolist(), strict=True):
        (xa, ya), (xb, yb) = kp_a[i].tolist(), kp_b[j].tolist()
        draw.line((xa, ya, xb + a.width, yb), fill=GREEN if good else RED, width=1)
    if homography is not None:
        w, h = a.width, a.height
        corners = torch.tensor([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        p = torch.cat([corners, torch.ones(4, 1)], 1).double() @ homography.double().T
        xy = (p[:, :2] / p[:, 2:]).tolist()
        draw.polygon([(x + a.width, y) for x, y in xy], outline=YELLOW, width=2)
    return pic


def draw_matches(path: str | Path, *args, **kwargs) -> Path:
    """Write `match_picture(*args, **kwargs)` as a PNG."""
    return write_png(path, np.asarray(match_picture(*args, **kwargs)))
