"""What every instance / panoptic model offers the panoptic task: its losses from semantic and
instance maps, and per-image predictions (a panoptic map and scored instance masks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from perpixel.models.base import Model


@dataclass
class PanopticOutput:
    """One image's prediction, H x W = the input's size.

    semantic: (H, W) int64 class ids of the panoptic map; `ignore_index` where it is void.
    instances: (H, W) int64 instance ids, 0 = none; non-overlapping (a panoptic map with
        `semantic`: a thing pixel with instance 0 is unassigned).
    masks: (N, H, W) bool instance masks for mask AP (they may overlap).
    classes: (N,) int64 class id of each mask.
    scores: (N,) float32 confidence of each mask, in [0, 1].
    labels: (H, W) int64 class ids of the semantic head alone, never void (for IoU); None:
        `semantic` has no void and serves.
    """

    semantic: torch.Tensor
    instances: torch.Tensor
    masks: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor | None = None


class PanopticModel(Model):
    """Base of the panoptic models. Options every one has: `num_classes`, `thing_ids` (the
    class ids of the thing classes, set by the task from its taxonomy), `ignore_index`
    (void label value in the semantic targets) and `in_channels`.

    `forward(image)` returns the heads' dense outputs as a dict of (B, *, h, w) tensors;
    `losses` and `predict` are the training and inference entry points.
    """

    output = "panoptic"
    exportable: ClassVar[bool] = True
    default_conf: ClassVar[dict[str, Any]] = {
        "num_classes": 8,
        "thing_ids": [4, 5, 6, 7],
        "ignore_index": 255,
        "in_channels": 3,
    }

    def losses(
        self, image: torch.Tensor, semantic: torch.Tensor, instances: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms (scalars; the task sums and logs them) for a batch.

        Args:
            image: (B, 3, H, W) in [0, 1].
            semantic: (B, H, W) int64 class ids, `ignore_index` = void.
            instances: (B, H, W) int64 instance ids, 0 = none (thing pixels with 0: crowd).
        """
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> list[PanopticOutput]:
        """(B, 3, H, W) in [0, 1] -> one `PanopticOutput` per image (in eval mode)."""
        raise NotImplementedError

    def map_channels(self) -> dict[str, int]:
        """The channels of each map `forward` returns, by key."""
        return {"semantic": self.conf["num_classes"]}


class PanopticMaps(torch.nn.Module):
    """A panoptic model as ONNX exports it: (B, 3, H, W) -> its dense maps as a tuple, in
    sorted key order (`output_names`)."""

    def __init__(self, model: PanopticModel):
        super().__init__()
        self.model = model
        self.output_names = tuple(sorted(model.map_channels()))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        return tuple(out[k] for k in self.output_names)
