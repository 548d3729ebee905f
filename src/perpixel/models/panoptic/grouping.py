"""Panoptic-DeepLab's bottom-up grouping (Cheng et al., CVPR 2020): training targets (centre
heatmap, centre offsets) from semantic and instance maps, and the inference that turns
predicted maps back into instances (centre NMS, offset voting, majority-vote fusion with the
semantic map, instance scores).

Coordinates are pixel indices (row y, column x); every 2-vector is in (y, x) order, offsets
included: offset = centre - pixel, in pixels. Follows the reference implementation
(detectron2's `projects/Panoptic-DeepLab`): the centre of an instance is the mean of its pixel
coordinates; its Gaussian sits at that centre rounded to a pixel, truncated to a square of
side 2 ceil(3 sigma + 1) + 1 (6 sigma + 3 for integer sigma).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F


class PanopticTargets(NamedTuple):
    """Panoptic-DeepLab's dense targets for a batch, H x W = the label size.

    center: (B, 1, H, W) float32, max over instances of a Gaussian at each centre (peak 1).
    offset: (B, 2, H, W) float32, (dy, dx) = centre - pixel, in pixels, on instance pixels of
        thing classes; 0 elsewhere.
    center_weight: (B, 1, H, W) float32, 1 except on void and crowd pixels (0).
    offset_weight: (B, 1, H, W) float32, 1 on instance pixels of thing classes, else 0.
    semantic_weight: (B, H, W) float32, `small_instance_weight` on instances smaller than
        `small_instance_area` pixels, else 1.
    """

    center: torch.Tensor
    offset: torch.Tensor
    center_weight: torch.Tensor
    offset_weight: torch.Tensor
    semantic_weight: torch.Tensor


def is_thing(semantic: torch.Tensor, thing_ids: Sequence[int]) -> torch.Tensor:
    """Bool map, shaped like `semantic`: the pixels of a thing class."""
    return torch.isin(semantic, torch.as_tensor(list(thing_ids), device=semantic.device))


def _centroids(ids: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`ids` (H, W) int64 in 0..count (0 = none) -> (centroids (count, 2) float64 (y, x),
    pixel counts (count,)); rows of empty ids are nan."""
    h, w = ids.shape
    flat = ids.reshape(-1)
    ys = torch.arange(h, device=ids.device, dtype=torch.float64).repeat_interleave(w)
    xs = torch.arange(w, device=ids.device, dtype=torch.float64).repeat(h)
    n = torch.bincount(flat, minlength=count + 1)[1:]
    sy = torch.bincount(flat, ys, minlength=count + 1)[1:]
    sx = torch.bincount(flat, xs, minlength=count + 1)[1:]
    return torch.stack([sy, sx], 1) / n[:, None], n


def _gaussians(centres: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """(K, 2) int64 (y, x) pixel centres -> (H, W) float32, the max of truncated Gaussians."""
    out = torch.zeros(h * w, device=centres.device)
    if centres.numel() == 0:
        return out.reshape(h, w)
    r = int(torch.tensor(3 * sigma + 1).ceil())
    d = torch.arange(-r, r + 1, device=centres.device)
    dy, dx = d[:, None].expand(-1, d.numel()).reshape(-1), d.repeat(d.numel())
    g = torch.exp(-(dy**2 + dx**2).float() / (2 * sigma**2))
    y, x = centres[:, :1] + dy, centres[:, 1:] + dx  # (K, S)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    index = (y * w + x)[inside]
    values = g.expand(centres.shape[0], -1)[inside]
    return out.scatter_reduce(0, index, values, "amax").reshape(h, w)


def panoptic_targets(
    semantic: torch.Tensor,
    instances: torch.Tensor,
    thing_ids: Sequence[int],
    sigma: float = 8.0,
    ignore_index: int = 255,
    small_instance_area: int = 0,
    small_instance_weight: float = 1.0,
) -> PanopticTargets:
    """Centre heatmap, offsets and loss weights (`PanopticTargets`) of a batch.

    Args:
        semantic: (B, H, W) int class ids, `ignore_index` = void.
        instances: (B, H, W) int instance ids, 0 = none; a thing pixel with 0 is crowd.
        thing_ids: the thing class ids.
        sigma: the Gaussian's standard deviation, pixels.
    """
    b, h, w = semantic.shape
    dev = semantic.device
    center = torch.zeros(b, 1, h, w, device=dev)
    offset = torch.zeros(b, 2, h, w, device=dev)
    offset_weight = torch.zeros(b, 1, h, w, device=dev)
    semantic_weight = torch.ones(b, h, w, device=dev)
    thing = is_thing(semantic, thing_ids)
    crowd = thing & (instances == 0)
    center_weight = ((semantic != ignore_index) & ~crowd).float()[:, None]
    ys = torch.arange(h, device=dev, dtype=torch.float64)[:, None]
    xs = torch.arange(w, device=dev, dtype=torch.float64)[None]
    for i in range(b):
        mine = thing[i] & (instances[i] > 0)
        ids_present, inverse = torch.unique(instances[i][mine], return_inverse=True)
        k = ids_present.numel()
        ids = torch.zeros(h, w, dtype=torch.long, device=dev)
        ids[mine] = inverse + 1  # 1..k
        c, n = _centroids(ids, k)
        c0 = torch.cat([c.new_zeros(1, 2), c])  # row 0: none
        offset[i, 0] = torch.where(mine, c0[ids, 0] - ys, 0.0).float()
        offset[i, 1] = torch.where(mine, c0[ids, 1] - xs, 0.0).float()
        offset_weight[i, 0] = mine.float()
        center[i, 0] = _gaussians(c.round().long(), h, w, sigma)
        small = torch.cat([n.new_zeros(1, dtype=torch.bool), n < small_instance_area])
        semantic_weight[i][small[ids]] = small_instance_weight
    return PanopticTargets(center, offset, center_weight, offset_weight, semantic_weight)


def find_centers(
    heatmap: torch.Tensor, threshold: float = 0.1, nms_kernel: int = 7, top_k: int | None = 200
) -> torch.Tensor:
    """Instance centres: local maxima of `heatmap` (1, H, W) or (H, W) above `threshold`
    (max-pool NMS with an odd `nms_kernel`; equal maxima within a window all stay), the
    `top_k` highest. Returns (K, 2) int64 (y, x), highest first."""
    hm = heatmap.reshape(1, 1, *heatmap.shape[-2:]).float()
    hm = torch.where(hm > threshold, hm, torch.full_like(hm, -1.0))
    pooled = F.max_pool2d(hm, nms_kernel, stride=1, padding=nms_kernel // 2)
    peaks = ((hm == pooled) & (hm > threshold))[0, 0]
    yx = peaks.nonzero()
    scores = hm[0, 0][peaks]
    order = torch.argsort(scores, descending=True, stable=True)
    if top_k is not None:
        order = order[:top_k]
    return yx[order]


def group_pixels(
    centers: torch.Tensor, offsets: torch.Tensor, thing_mask: torch.Tensor, chunk: int = 1 << 22
) -> torch.Tensor:
    """Instance ids: each pixel of `thing_mask` (H, W) bool goes to the nearest centre of
    `centers` (K, 2) (y, x) from its vote, pixel + `offsets` (2, H, W) (dy, dx); ties go to
    the first centre. Returns (H, W) int64, 1..K (the centre's row + 1), 0 off things or
    without centres. `chunk` bounds the pixels x centres distances held at once."""
    h, w = thing_mask.shape
    out = torch.zeros(h, w, dtype=torch.long, device=thing_mask.device)
    if centers.shape[0] == 0:
        return out
    yx = thing_mask.nonzero()
    votes = yx.to(offsets.dtype) + offsets[:, yx[:, 0], yx[:, 1]].T  # (N, 2)
    c = centers.to(offsets.dtype)
    step = max(1, chunk // c.shape[0])
    nearest = torch.cat(
        [((v[:, None] - c[None]) ** 2).sum(-1).argmin(1) for v in votes.split(step)]
        or [votes.new_zeros(0, dtype=torch.long)]
    )
    out[yx[:, 0], yx[:, 1]] = nearest + 1
    return out


def merge_panoptic(
    semantic: torch.Tensor,
    instances: torch.Tensor,
    thing_ids: Sequence[int],
    stuff_area: int = 0,
    ignore_index: int = 255,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse a semantic map (H, W) int and instance ids (H, W) int (0 = none) into a panoptic
    map (semantic (H, W) int64, instances (H, W) int64).

    Instances live on thing pixels only; each takes the majority class of its thing pixels
    (ties: the lower id), which all its pixels get, and instances are renumbered 1..N in
    order of their ids. A stuff class covering fewer than `stuff_area` pixels becomes void
    (`ignore_index`). Thing pixels without an instance keep their class with instance 0.
    """
    sem = semantic.long().clone()
    thing = is_thing(sem, thing_ids)
    present, inverse = torch.unique(torch.where(thing, instances.long(), 0), return_inverse=True)
    ids = inverse if bool((present == 0).any()) else inverse + 1  # 0 = none, 1..N
    n = int(ids.max())
    if n > 0:
        inst = ids > 0
        num = int(sem.max()) + 1
        votes = torch.bincount(ids[inst] * num + sem[inst], minlength=(n + 1) * num)
        cls = votes.reshape(n + 1, num).argmax(1)
        sem[inst] = cls[ids[inst]]
    if stuff_area > 0:
        stuff = ~thing & (sem != ignore_index)
        area = torch.bincount(sem[stuff], minlength=int(sem.max()) + 1)
        sem[stuff & (area[sem.clamp(min=0)] < stuff_area)] = ignore_index
    return sem, ids


def instance_scores(
    instances: torch.Tensor, semantic: torch.Tensor, probs: torch.Tensor, center: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scored instance masks of a merged panoptic map (`merge_panoptic`'s output).

    Args:
        instances: (H, W) int64 ids 1..N, 0 = none.
        semantic: (H, W) int64 classes (one per instance).
        probs: (C, H, W) semantic class probabilities.
        center: (1, H, W) or (H, W) predicted centre heatmap.

    Returns masks (N, H, W) bool, classes (N,) int64, scores (N,) float32 in [0, 1]: the
    mean probability of the instance's class over its mask times the heatmap (clamped to
    [0, 1]) at the mask's centroid (truncated to a pixel), as the reference.
    """
    h, w = instances.shape
    n = int(instances.max())
    ids = instances.long()
    masks = ids[None] == torch.arange(1, n + 1, device=ids.device)[:, None, None]
    flat, sem = ids.reshape(-1), semantic.long().reshape(-1)
    inst = flat > 0
    classes = torch.zeros(n + 1, dtype=torch.long, device=ids.device)
    classes[flat[inst]] = sem[inst]
    p = probs.reshape(probs.shape[0], -1).gather(0, sem.clamp(0, probs.shape[0] - 1)[None])[0]
    count = torch.bincount(flat, minlength=n + 1).clamp(min=1)
    mean_p = torch.bincount(flat, p.double(), minlength=n + 1) / count
    c, _ = _centroids(ids, n)
    cy, cx = c[:, 0].nan_to_num(0).long(), c[:, 1].nan_to_num(0).long()
    heat = center.reshape(h, w)[cy, cx].clamp(0, 1).double()
    scores = (mean_p[1:] * heat).clamp(0, 1).float()
    return masks, classes[1:], scores
