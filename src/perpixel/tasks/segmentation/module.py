"""The semantic-segmentation task: model + loss + metrics, trained by Lightning."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch

from perpixel.data.taxonomy import Taxonomy
from perpixel.engine.module import TaskModule
from perpixel.metrics.confusion import SegmentationMetrics
from perpixel.models import Model, build_model
from perpixel.tasks.segmentation.losses import SegmentationLoss

LOGGED = ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "mean_dice")


class SegmentationTask(TaskModule):
    """Wraps a model from `config["model"]`; checkpoints carry the config and the taxonomy,
    so `perpixel.load(checkpoint)` rebuilds everything.

    Batches are dicts {"image": (B, 3, H, W) in [0, 1], "mask": (B, H, W) int64}.
    """

    task = "segmentation"

    def __init__(self, config: dict, taxonomy: dict, class_weights: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.taxonomy = Taxonomy.from_dict(taxonomy)
        t = self.taxonomy
        self.model = build_model({**config["model"], "num_classes": t.num_classes})
        loss = config["loss"]
        self.loss = SegmentationLoss(loss["ce"], loss["dice"], class_weights, t.ignore_index)
        self.metrics = torch.nn.ModuleDict(
            {
                s: SegmentationMetrics(t.num_classes, t.ignore_index, t.names)
                for s in ("val", "test")
            }
        )
        self.last_metrics: dict[str, dict] = {}
        # (B, 3, H, W) -> (B, H, W) labels in place of the plain forward, e.g. windows and
        # test-time augmentation (`train.evaluate`); no eval loss is logged then
        self.eval_labels: Callable[[torch.Tensor], torch.Tensor] | None = None
        if config["trainer"].get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _layout(self, image: torch.Tensor) -> torch.Tensor:
        """`image` in the memory format the model was put in (`trainer.channels_last`)."""
        if self.config["trainer"].get("channels_last"):
            return image.contiguous(memory_format=torch.channels_last)
        return image

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H, W) logits."""
        return self.model(self._layout(image))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        image, mask = self._layout(batch["image"]), batch["mask"]
        logits, aux = cast(Model, self.model).forward_with_aux(image)
        loss = self.loss(logits, mask)
        # deep supervision (PSPNet's auxiliary head): the same loss, weighted by `loss.aux`
        for a in aux:
            loss = loss + self.config["loss"].get("aux", 0.4) * self.loss(a, mask)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["image"]),
        )
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        if self.eval_labels is not None:
            labels = self.eval_labels(batch["image"])
            cast(SegmentationMetrics, self.metrics[stage]).update(labels, batch["mask"])
            return
        logits = self(batch["image"])
        self.log(
            f"{stage}/loss",
            self.loss(logits, batch["mask"]),
            sync_dist=True,
            batch_size=len(logits),
        )
        cast(SegmentationMetrics, self.metrics[stage]).update(logits.argmax(1), batch["mask"])

    def _eval_end(self, stage: str) -> None:
        m = cast(SegmentationMetrics, self.metrics[stage])
        result = m.compute()  # summed over processes by torchmetrics (m.confmat stays local)
        self.last_metrics[stage] = result
        for k in LOGGED:
            if not math.isnan(result[k]):
                self.log(f"{stage}/{k}", result[k], prog_bar=k == "miou")  # already global
        m.reset()
