"""Anchor boxes: every (size, aspect ratio) pair centred on every cell of a feature map."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """(A, 4) float32 boxes centred on (0, 0), A = len(sizes) * len(aspect_ratios), size-major:
    a box of `size` and ratio r = height / width has area size^2."""
    boxes = []
    for s in sizes:
        for r in aspect_ratios:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            boxes.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(boxes, dtype=torch.float32)


def anchor_grid(
    cell: torch.Tensor, stride: int, size: tuple[int, int], offset: float = 0.5
) -> torch.Tensor:
    """Anchors of one level: `cell` (A, 4) shifted to the centres ((x + offset) stride,
    (y + offset) stride) of the cells of a (h, w) feature map -> (h * w * A, 4), ordered
    (y, x, anchor) like a head's (B, A, h, w) output permuted to (B, h, w, A)."""
    h, w = size
    ys = (torch.arange(h, dtype=torch.float32, device=cell.device) + offset) * stride
    xs = (torch.arange(w, dtype=torch.float32, device=cell.device) + offset) * stride
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([x, y, x, y], -1).reshape(-1, 1, 4)
    return (shifts + cell[None]).reshape(-1, 4)


class AnchorGenerator(nn.Module):
    """Anchors of several feature levels: `sizes[l]` x `aspect_ratios` at `strides[l]`.

    forward(feature sizes [(h_l, w_l)]) -> list of (h_l * w_l * A_l, 4) boxes in input pixels.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[float],
        strides: Sequence[int],
        offset: float = 0.5,
    ):
        super().__init__()
        if len(sizes) != len(strides):
            raise ValueError(f"anchors: {len(sizes)} size lists for {len(strides)} strides")
        self.strides = list(strides)
        self.offset = offset
        self.cells = [cell_anchors(s, aspect_ratios) for s in sizes]

    @property
    def num_anchors(self) -> list[int]:
        """Anchors per cell A_l of each level."""
        return [len(c) for c in self.cells]

    def forward(
        self, sizes: Sequence[tuple[int, int]], device: torch.device | None = None
    ) -> list[torch.Tensor]:
        return [
            anchor_grid(c.to(device), s, tuple(hw), self.offset)  # type: ignore[arg-type]
            for c, s, hw in zip(self.cells, self.strides, sizes, strict=True)
        ]
