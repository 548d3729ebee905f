"""Homographic adaptation (SuperPoint, section 5): run the detector on many random warps of an
image, warp each heatmap back, average where the warps saw the image, and keep the points of
the average. It turns a detector trained on synthetic shapes into labels for real images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from perpixel.data.images import list_images
from perpixel.io import atomic_path
from perpixel.tasks.keypoints.datasets import read_gray
from perpixel.tasks.keypoints.decode import detect
from perpixel.tasks.keypoints.homographies import sample_homographies, warp_images, warp_mask
from perpixel.tasks.keypoints.labels import heatmap

BORDER = 3  # pixels given up at the edge of each warp's valid region (the reference's)


@torch.inference_mode()
def adapted_heatmap(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    num: int = 100,
    homography: dict | None = None,
    generator: torch.Generator | None = None,
    chunk: int = 25,
) -> torch.Tensor:
    """The aggregated heatmap of one image under `num` warps (the first is the identity).

    Args:
        logits_of: (n, 1, H, W) images -> (n, 65, H/8, W/8) detector logits.
        image: (1, H, W) or (1, 1, H, W) gray in [0, 1], H and W multiples of 8.
        num: number of warps, the identity included (the paper: 100).
        homography: sampling ranges (`homographies.HOMOGRAPHY_DEFAULTS` when None).
    Returns:
        (H, W) the mean point probability over the warps that saw each pixel.
    """
    image = image.reshape(1, 1, *image.shape[-2:])
    shape = (int(image.shape[-2]), int(image.shape[-1]))
    Hs = sample_homographies(num, shape, homography, generator).to(image)
    Hs[0] = torch.eye(3)
    total = torch.zeros(shape, device=image.device)
    count = torch.zeros(shape, device=image.device)
    for Hc in Hs.split(chunk):
        warped = warp_images(image.expand(len(Hc), -1, -1, -1), Hc, shape)
        heat = heatmap(logits_of(warped).float())[:, None]
        inv = torch.linalg.inv(Hc)
        seen = warp_mask(shape, inv, shape, erode=BORDER)
        total += (warp_images(heat, inv, shape) * seen).sum((0, 1))
        count += seen.sum((0, 1))
    return total / count.clamp_min(1)


def adapt_points(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    detect_conf: dict,
    num: int = 100,
    homography: dict | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(keypoints (N, 2), scores (N,)) of the adapted heatmap, decoded with `detect_conf`
    ({"radius", "threshold", "top_k", "border"})."""
    heat = adapted_heatmap(logits_of, image, num, homography, generator)
    return detect(heat[None], **detect_conf)[0]


def adapt_folder(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    images: str | Path,
    out: str | Path,
    shape: tuple[int, int],
    detect_conf: dict,
    num: int = 100,
    homography: dict | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> list[Path]:
    """Write `out/NAME.npz` (plain arrays "points" (N, 2) float32 xy, "scores" (N,), "shape")
    for every image of the folder `images`, fitted to `shape` as training reads them."""
    files = list_images(Path(images))
    written = []
    for i, path in enumerate(track(files, "adapt", disable=not progress)):
        gray = read_gray(path, shape).to(device)
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        points, scores = adapt_points(logits_of, gray, detect_conf, num, homography, g)
        target = Path(out) / f"{path.stem}.npz"
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                points=points.cpu().numpy().astype(np.float32),
                scores=scores.cpu().numpy().astype(np.float32),
                shape=np.array(shape, dtype=np.int64),
            )
        written.append(target)
    return written
