"""Homographic adaptation: with a detector that sees bright blobs, the aggregated heatmap
peaks at the blobs of the original image, whatever the warps."""

from __future__ import annotations

import numpy as np
import torch

from perpixel.tasks.keypoints.adaptation import adapt_folder, adapt_points, adapted_heatmap

BLOBS = torch.tensor([[20.0, 16.0], [45.0, 30.0], [70.0, 50.0], [33.0, 52.0]])  # xy


def blob_image(h=64, w=96) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    img = torch.zeros(h, w)
    for x, y in BLOBS.tolist():
        img = torch.maximum(img, torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2)))
    return img[None]


def blob_logits(images: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W) -> (n, 65, H/8, W/8): a point where a cell's pixel is bright."""
    cells = torch.nn.functional.pixel_unshuffle(images, 8) * 30
    dustbin = torch.full_like(cells[:, :1], 30 * 0.3)
    return torch.cat([cells, dustbin], 1)


def test_adapted_points_are_the_blobs():
    g = torch.Generator().manual_seed(0)
    conf = {"radius": 4, "threshold": 0.05, "top_k": None, "border": 4}
    kp, scores = adapt_points(blob_logits, blob_image(), conf, num=30, generator=g)
    assert len(kp) == len(BLOBS)
    d = torch.cdist(kp, BLOBS)
    assert d.min(1).values.max() < 1.0  # each found point is on a blob
    assert d.min(0).values.max() < 1.0  # each blob is found


def test_identity_only_is_the_plain_heatmap():
    from perpixel.tasks.keypoints.labels import heatmap

    img = blob_image()
    heat = adapted_heatmap(blob_logits, img, num=1)
    plain = heatmap(blob_logits(img[None]))[0]
    inner = (slice(4, -4), slice(4, -4))  # the border the valid mask gives up
    assert torch.allclose(heat[inner], plain[inner], atol=1e-5)


def test_adapt_folder_writes_plain_label_files(tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    arr = (blob_image()[0].numpy() * 255).astype(np.uint8)
    Image.fromarray(np.stack([arr] * 3, -1)).save(images / "blobs.png")
    conf = {"radius": 4, "threshold": 0.05, "top_k": None, "border": 4}
    written = adapt_folder(
        blob_logits, images, tmp_path / "labels", (64, 96), conf, num=10, progress=False
    )
    with np.load(written[0], allow_pickle=False) as f:
        assert f["shape"].tolist() == [64, 96]
        pts = torch.from_numpy(f["points"])
    assert torch.cdist(pts, BLOBS).min(0).values.max() < 1.0
