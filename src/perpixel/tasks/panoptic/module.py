"""The panoptic task: a panoptic model (its own losses and grouping) trained by Lightning,
scored with IoU, iIoU, category scores, panoptic quality and mask AP."""

from __future__ import annotations

import math
from typing import cast

import torch

from perpixel.data.taxonomy import Taxonomy
from perpixel.engine.module import TaskModule
from perpixel.models import build_model
from perpixel.models.panoptic import PanopticMaps, PanopticModel, PanopticOutput
from perpixel.tasks.panoptic.evaluation import PanopticEvaluator

LOGGED = ("pq", "pq_things", "pq_stuff", "miou", "miiou", "ap")


class PanopticTask(TaskModule):
    """Wraps a model from `config["model"]` (`num_classes`, `thing_ids` and `ignore_index`
    come from the taxonomy); checkpoints carry the config and the taxonomy.

    Batches are dicts {"image": (B, 3, H, W) in [0, 1], "mask": (B, H, W) int64 class ids,
    "instances": (B, H, W) int64 (0 = none), "size": [(h, w), ...] before padding}.
    """

    task = "panoptic"

    def __init__(self, config: dict, taxonomy: dict):
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.taxonomy = t = Taxonomy.from_dict(taxonomy)
        self.model = build_model(
            {
                **config["model"],
                "num_classes": t.num_classes,
                "thing_ids": t.thing_ids,
                "ignore_index": t.ignore_index,
            }
        )
        self.evaluators = {s: self.make_evaluator() for s in ("val", "test")}
        self.last_metrics: dict[str, dict] = {}

    @property
    def panoptic_model(self) -> PanopticModel:
        return cast(PanopticModel, self.model)

    def make_evaluator(self) -> PanopticEvaluator:
        e = self.config["eval"]
        return PanopticEvaluator(self.taxonomy, avg_sizes=e["avg_sizes"], ap=e["ap"])

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> the model's dense maps."""
        return self.model(image)

    def predict(self, image: torch.Tensor) -> list[PanopticOutput]:
        """(B, 3, H, W) in [0, 1] -> one `PanopticOutput` per image."""
        return self.panoptic_model.predict(image)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.panoptic_model.losses(batch["image"], batch["mask"], batch["instances"])
        loss = cast(torch.Tensor, sum(terms.values()))
        n = len(batch["image"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for k, v in terms.items():
            self.log(f"train/{k}", v, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        preds = self.predict(batch["image"])
        ev = self.evaluators[stage]
        for k, p in enumerate(preds):
            h, w = batch["size"][k]
            ev.update(crop(p, h, w), batch["mask"][k, :h, :w], batch["instances"][k, :h, :w])

    def _eval_end(self, stage: str) -> None:
        ev = self.evaluators[stage]
        result = ev.compute()
        self.last_metrics[stage] = result
        for k in LOGGED:
            v = result.get(k)
            if v is not None and not math.isnan(v):
                self.log(f"{stage}/{k}", v, prog_bar=k == "pq", rank_zero_only=True)
        self.evaluators[stage] = self.make_evaluator()

    def export_model(self) -> torch.nn.Module:
        """The dense maps as a tuple, sorted by name (grouping runs outside the network)."""
        return PanopticMaps(self.panoptic_model)


def crop(p: PanopticOutput, h: int, w: int) -> PanopticOutput:
    """The prediction of a padded image cut back to its (h, w)."""
    labels = None if p.labels is None else p.labels[:h, :w]
    return PanopticOutput(
        p.semantic[:h, :w], p.instances[:h, :w], p.masks[:, :h, :w], p.classes, p.scores, labels
    )
