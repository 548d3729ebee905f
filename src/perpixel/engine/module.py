"""The base LightningModule of every task: the optimiser and learning-rate schedule from a
recipe's `optim:` section, validation/test hooks that call `_eval_step` / `_eval_end`, and
loading from a checkpoint as plain data (`perpixel.engine.checkpoint`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from perpixel.engine.checkpoint import checkpoint_task, read_checkpoint
from perpixel.errors import ConfigError, PerpixelError

OPTIM_DEFAULTS: dict[str, Any] = {
    "name": "adamw",  # adamw | adam | sgd
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "momentum": 0.9,  # sgd
    "schedule": "cosine",  # cosine | poly | constant
    "warmup_epochs": 0,
    # learning-rate factor of the pretrained part (`model.backbone`), e.g. 0.1: a pretrained
    # encoder moves slower than the freshly initialised decoder
    "backbone_lr_scale": 1.0,
}

_T = TypeVar("_T", bound="TaskModule")


def configure_optim(module: L.LightningModule, o: dict):
    """`configure_optimizers` for a recipe: `name` adamw (default) | adam | sgd, `lr`,
    `weight_decay`, `momentum` (sgd); `schedule` cosine | poly | constant, stepped per batch,
    after `warmup_epochs` of linear warm-up, and when `trainer.max_time` caps the run, also
    by the fraction of that time spent (whichever is further), so a capped run still anneals; `backbone_lr_scale` times `lr` for the
    parameters of `model.backbone`."""
    name = o.get("name", "adamw")
    scale = float(o.get("backbone_lr_scale", 1.0))
    backbone = (  # at scale 1, one group: as runs before this option
        [p for n, p in module.named_parameters() if n.startswith("model.backbone.")]
        if scale != 1.0
        else []
    )
    ids = {id(p) for p in backbone}
    rest = [p for p in module.parameters() if id(p) not in ids]
    params: list[dict] = [{"params": rest}]
    if backbone:
        params.append({"params": backbone, "lr": o["lr"] * scale})
    opt: torch.optim.Optimizer
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
    warm = int(o.get("warmup_epochs", 0) * total / max(1, module.trainer.max_epochs or 1))
    timer = next((c for c in module.trainer.callbacks if isinstance(c, Timer)), None)  # type: ignore[attr-defined]
    budget = timer._duration if timer is not None else None  # max_time in seconds

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, total - warm))
        if timer is not None and budget:  # a time-capped run anneals by its clock too
            p = max(p, min(1.0, timer.time_elapsed("train") / budget))
        return 0.5 * (1 + math.cos(math.pi * p)) if o["schedule"] == "cosine" else (1 - p) ** 0.9

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class TaskModule(L.LightningModule):
    """Base of the tasks' modules: `self.config` is the recipe; subclasses set `task` (the
    registry name), keep their constructor arguments plain data (they are the checkpoint's
    `hyper_parameters`), and define `_eval_step(batch, stage)` (accumulate) and
    `_eval_end(stage)` (compute, log, reset) for "val" and "test"."""

    task: str = ""
    config: dict
    model: torch.nn.Module
    last_metrics: dict[str, dict]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def _eval_step(self, batch: dict, stage: str) -> None:
        raise NotImplementedError

    def _eval_end(self, stage: str) -> None:
        raise NotImplementedError

    def configure_optimizers(self):
        return configure_optim(self, self.config["optim"])

    def export_model(self) -> torch.nn.Module:
        """The network as ONNX exports it: (B, 3, H, W) in [0, 1] -> one (B, C, H, W) tensor."""
        return self.model

    @classmethod
    def from_checkpoint(cls: type[_T], ckpt: dict, path: str | Path = "checkpoint") -> _T:
        """Rebuild from a checkpoint dict read by `read_checkpoint`, in eval mode."""
        try:
            module = cls(**ckpt["hyper_parameters"])
            module.load_state_dict(ckpt["state_dict"])
        except PerpixelError as e:
            raise PerpixelError(f"{path}: {e}") from None
        except (TypeError, KeyError, RuntimeError, ValueError) as e:
            raise PerpixelError(
                f"{path}: not a perpixel {cls.task} checkpoint ({type(e).__name__}: {e})"
            ) from None
        return module.eval()

    @classmethod
    def load(cls: type[_T], path: str | Path, map_location: str = "cpu") -> _T:
        """The module saved in a checkpoint of this task, in eval mode."""
        ckpt = read_checkpoint(path, map_location)
        task = checkpoint_task(ckpt)
        if task != cls.task:
            raise PerpixelError(f"{path}: a checkpoint of task {task!r}, not {cls.task!r}")
        return cls.from_checkpoint(ckpt, path)
