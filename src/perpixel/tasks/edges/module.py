"""The edge-detection LightningModule: a model from `config["model"]` returning
{"fused", "sides"} logits, the deep-supervised class-balanced loss, and an approximate F on
validation.

Batches are dicts {"image": (B, 3, H, W) in [0, 1], "edges": (B, 1, H, W) annotator fraction
(-1 = not scored), "annotators": (B,), "name"}.
"""

from __future__ import annotations

import math

import torch

from perpixel.engine.module import TaskModule
from perpixel.errors import ConfigError
from perpixel.models import build_model
from perpixel.models.edges import FusedLogits
from perpixel.tasks.edges.loss import EdgeLoss
from perpixel.tasks.edges.metrics import approx_f_counts, f_from_counts


class EdgeTask(TaskModule):
    """Model from `config["model"]` + deep-supervised `EdgeLoss`; checkpoints carry the config
    and beta, so `EdgeTask.load_from_checkpoint(path)` rebuilds everything."""

    task = "edges"
    thresholds: torch.Tensor  # a buffer, (T,) validation thresholds
    f_counts: torch.Tensor  # a buffer, (4, T) approximate-F counts

    def __init__(self, config: dict, beta: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.model = build_model(config["model"])
        lc = config["loss"]
        beta = lc["beta"] if lc["beta"] is not None else beta
        self.beta = beta
        try:
            self.loss = EdgeLoss(
                lc["balance"],
                beta=beta,
                consensus=lc["consensus"],
                side_weights=lc["side_weights"],
                fused_weight=lc["fused_weight"],
                pixel_reduction=lc["pixel_reduction"],
            )
        except ValueError as e:
            raise ConfigError(f"loss: {e}") from None
        v = config["val"]
        t = torch.linspace(0, 1, v["thresholds"] + 2)[1:-1]
        self.register_buffer("thresholds", t, persistent=False)
        self.register_buffer(
            "f_counts", torch.zeros(4, len(t), dtype=torch.float64), persistent=False
        )
        self.last_metrics: dict[str, dict] = {}
        if config["trainer"].get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, image: torch.Tensor) -> dict:
        """(B, 3, H, W) in [0, 1] -> {"fused": (B, 1, H, W), "sides": [...]} logits."""
        if self.config["trainer"].get("channels_last"):
            image = image.contiguous(memory_format=torch.channels_last)
        return self.model(image)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss.terms(self(batch["image"]), batch["edges"], batch["annotators"])
        loss = self.loss.combine(terms)
        n = len(batch["image"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train/loss_fused", terms["fused"], on_step=False, on_epoch=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        out = self(batch["image"])
        loss = self.loss(out, batch["edges"], batch["annotators"])
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=len(batch["image"]))
        h, w = batch["image"].shape[-2:]
        radius = max(1, round(self.config["val"]["tolerance"] * math.hypot(h, w)))
        prob = out["fused"].float().sigmoid()
        self.f_counts += approx_f_counts(
            prob, batch["edges"], batch["annotators"], self.thresholds, radius
        )

    def _eval_end(self, stage: str) -> None:
        counts = self.trainer.strategy.reduce(self.f_counts.clone(), reduce_op="sum")
        f, i = f_from_counts(counts)
        self.last_metrics[stage] = {"f_approx": f, "threshold": float(self.thresholds[i])}
        self.log(f"{stage}/f_approx", f, prog_bar=True)  # already summed over processes
        self.f_counts.zero_()

    def export_model(self) -> torch.nn.Module:
        """The fused (B, 1, H, W) edge logits alone, for ONNX."""
        return FusedLogits(self.model)
