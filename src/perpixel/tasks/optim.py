"""What every task's LightningModule shares: the optimiser and learning-rate schedule from a
recipe's `optim:` section, and validation/test hooks that call `_eval_step` / `_eval_end`."""

from __future__ import annotations

import math

import lightning as L
import torch

from perpixel.errors import ConfigError


def configure_optim(module: L.LightningModule, o: dict):
    """`configure_optimizers` for a recipe: `name` adamw (default) | adam | sgd, `lr`,
    `weight_decay`, `momentum` (sgd); `schedule` cosine | poly | constant, stepped per batch,
    after `warmup_epochs` of linear warm-up."""
    params, name = module.parameters(), o.get("name", "adamw")
    if name == "adamw":
        opt = torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
    elif name == "adam":
        opt = torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])
    elif name == "sgd":
        opt = torch.optim.SGD(
            params, lr=o["lr"], momentum=o.get("momentum", 0.9), weight_decay=o["weight_decay"]
        )
    else:
        raise ConfigError(f"unknown optim.name {name!r}: adamw, adam or sgd")
    if o["schedule"] in (None, "none", "constant"):
        return opt
    if o["schedule"] not in ("cosine", "poly"):
        raise ConfigError(f"unknown optim.schedule {o['schedule']!r}: cosine, poly or constant")
    total = max(1, module.trainer.estimated_stepping_batches)
    warm = int(o.get("warmup_epochs", 0) * total / max(1, module.trainer.max_epochs))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1 + math.cos(math.pi * p)) if o["schedule"] == "cosine" else (1 - p) ** 0.9

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class RecipeTask(L.LightningModule):
    """Base of the tasks: `self.config` is the recipe; subclasses define `_eval_step(batch,
    stage)` (accumulate) and `_eval_end(stage)` (compute, log, reset) for "val" and "test"."""

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def configure_optimizers(self):
        return configure_optim(self, self.config["optim"])
