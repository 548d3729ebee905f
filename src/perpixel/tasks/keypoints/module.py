"""The interest-point LightningModule: a SuperPoint/MagicPoint model from `config["model"]`,
the 65-way cell cross-entropy (both images of a pair), the descriptor hinge loss when the
model has descriptors and the data gives pairs, and detection AP on validation.

Batches are `datasets.collate`d items: {"image": (B, 1, H, W), "labels": (B, H/8, W/8),
"valid": (B, H/8, W/8), "points": [(N, 2)], ...} plus the warped half of a pair.
"""

from __future__ import annotations

import torch

from perpixel.engine.module import TaskModule
from perpixel.models import build_model
from perpixel.models.keypoints import KeypointOutputs
from perpixel.tasks.keypoints.decode import detect
from perpixel.tasks.keypoints.labels import heatmap
from perpixel.tasks.keypoints.losses import descriptor_loss_terms, detector_loss
from perpixel.tasks.keypoints.metrics import detection_ap


class KeypointTask(TaskModule):
    """Model from `config["model"]` + the SuperPoint losses; checkpoints carry the config, so
    `KeypointTask.load(path)` rebuilds everything."""

    task = "keypoints"

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.model = build_model(config["model"])
        self.has_descriptors = bool(self.model.conf.get("descriptors"))
        self.last_metrics: dict[str, dict] = {}
        self._found: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._truth: list[torch.Tensor] = []

    def forward(self, image: torch.Tensor) -> dict:
        """(B, 1 or 3, H, W) in [0, 1] -> {"logits": (B, 65, H/8, W/8), "descriptors"?}."""
        return self.model(image)

    def detect(self, logits: torch.Tensor, threshold: float | None = None) -> list:
        """Decoded points of (B, 65, H/8, W/8) logits: [(keypoints (N, 2), scores (N,))]."""
        d = self.config["detect"]
        return detect(
            heatmap(logits),
            radius=d["radius"],
            threshold=d["threshold"] if threshold is None else threshold,
            top_k=d["top_k"],
            border=d["border"],
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        n = len(batch["image"])
        if "warped" not in batch:
            loss = detector_loss(self(batch["image"])["logits"], batch["labels"], batch["valid"])
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
            return loss
        out = self(torch.cat([batch["image"], batch["warped"]]))
        la, lb = out["logits"].split(n)
        det = detector_loss(la, batch["labels"], batch["valid"]) + detector_loss(
            lb, batch["warped_labels"], batch["warped_valid"]
        )
        loss = det
        if self.has_descriptors:
            c = self.config["loss"]
            da, db = out["descriptors"].split(n)
            terms = descriptor_loss_terms(
                da,
                db,
                batch["homography"],
                batch["warped_valid"],
                pos_margin=c["pos_margin"],
                neg_margin=c["neg_margin"],
                lambda_d=c["lambda_d"],
            )
            loss = det + c["descriptor_weight"] * terms["loss"]
            self.log("train/descriptor_loss", terms["loss"], on_epoch=True, batch_size=n)
            self.log("train/positive_dist", terms["positive_dist"], on_epoch=True, batch_size=n)
            self.log("train/negative_dist", terms["negative_dist"], on_epoch=True, batch_size=n)
        self.log("train/detector_loss", det, on_epoch=True, batch_size=n)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        logits = self(batch["image"])["logits"]
        loss = detector_loss(logits, batch["labels"], batch["valid"])
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=len(logits))
        found = self.detect(logits, threshold=self.config["val"]["threshold"])
        self._found += [(k.cpu(), s.cpu()) for k, s in found]
        self._truth += [p.cpu() for p in batch["points"]]

    def _eval_end(self, stage: str) -> None:
        ap = detection_ap(self._found, self._truth, distance=self.config["val"]["distance"])
        self.last_metrics[stage] = {"ap": ap, "images": len(self._truth)}
        # under DDP each process scores its own share; the logged value is their mean
        self.log(f"{stage}/ap", ap, prog_bar=True, sync_dist=True)
        self._found, self._truth = [], []

    def export_model(self) -> torch.nn.Module:
        """(B, 3, H, W) RGB in [0, 1] -> (logits, descriptors) (or (logits,)), for ONNX: the
        export traces an RGB input, so the file takes 3 channels and converts them to gray."""
        return KeypointOutputs(self.model)
