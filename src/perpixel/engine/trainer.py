"""Fitting any task: the Lightning trainer from a recipe's `trainer:` section (precision
`auto`, logs, best/last checkpoints, a plain line per epoch when output is not a terminal),
the run folder, resuming, and starting from another checkpoint's weights."""

from __future__ import annotations

import logging
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from perpixel.engine.checkpoint import read_checkpoint
from perpixel.engine.module import TaskModule
from perpixel.errors import PerpixelError
from perpixel.io import write_text

for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*sync_dist=True.*")

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 10,
    "accelerator": "auto",
    "devices": 1,
    "strategy": "auto",
    # auto: bf16-mixed where the hardware runs it fast (GPUs with bf16, CPUs with AVX512-BF16
    # or AMX), 32-true elsewhere (bf16 is several times slower on CPUs without it)
    "precision": "auto",
    "channels_last": False,
    "check_val_every_n_epoch": 1,
    "limit_train_batches": 1.0,
    "log_every_n_steps": 10,
    "gradient_clip_val": None,
    "enable_progress_bar": True,
}

# `trainer:` keys handed to lightning.Trainer as they are
TRAINER_KEYS = (
    "max_epochs", "accelerator", "devices", "strategy", "check_val_every_n_epoch",
    "limit_train_batches", "log_every_n_steps", "gradient_clip_val",
)  # fmt: skip


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(precision: str, accelerator: str = "auto") -> tuple[str, str]:
    """(Lightning precision, why) for a recipe's `trainer.precision`; "auto" picks
    bf16-mixed on a bf16 GPU or a CPU with AVX512-BF16 / AMX, else 32-true."""
    if precision != "auto":
        return precision, "set by the recipe"
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"GPU {torch.cuda.get_device_name(0)} runs bf16"
        return "32-true", f"GPU {torch.cuda.get_device_name(0)} without bf16"
    fast = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    if fast:
        return "bf16-mixed", f"CPU with {', '.join(fast)}"
    return "32-true", "CPU without AVX512-BF16 or AMX (bf16 would be several times slower)"


def hardware() -> str:
    """One line naming the processor, threads and GPU."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {gpu}"


class EpochLine(Callback):
    """One plain line per training epoch (losses, and validation metrics when validation ran):
    the progress report when the output is a log file rather than a terminal."""

    def __init__(self) -> None:
        self.validated = False
        self.t0 = time.time()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.validated = False
        self.t0 = time.time()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.validated = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        metrics = trainer.callback_metrics
        for key, value in sorted(metrics.items()):
            if key.endswith("_step") or f"{key}_epoch" in metrics:  # train/loss = its _epoch
                continue
            if key.startswith("val/") and not self.validated:
                continue
            parts.append(f"{key.removesuffix('_epoch')} {float(value):.4f}")
        parts.append(f"({time.time() - self.t0:.0f} s)")
        print("  ".join(parts), flush=True)


def make_trainer(
    conf: dict,
    out: Path | None,
    checkpoints: bool = True,
    monitor: str = "val/miou",
    mode: str = "max",
    **overrides,
) -> L.Trainer:
    """A Lightning trainer from `conf["trainer"]`: CSV + TensorBoard logs and best/last
    checkpoints (best by `monitor`) under `out`; a progress bar on a terminal, else one
    line per epoch."""
    t = {**conf["trainer"], **overrides}
    precision, _ = resolve_precision(t["precision"], t["accelerator"])
    callbacks: list[Callback] = []
    loggers: list = []
    if out is not None:
        loggers = [
            CSVLogger(out, name="logs", version=""),
            TensorBoardLogger(out, name="logs", version=""),
        ]
        if checkpoints:
            callbacks.append(
                ModelCheckpoint(
                    dirpath=out / "checkpoints",
                    filename="best",
                    monitor=monitor,
                    mode=mode,
                    save_last=True,
                    enable_version_counter=False,
                    auto_insert_metric_name=False,
                )
            )
    bar = bool(t["enable_progress_bar"]) and sys.stderr.isatty()
    if not bar and out is not None:
        callbacks.append(EpochLine())
    return L.Trainer(
        **{k: t[k] for k in TRAINER_KEYS},
        precision=precision,  # type: ignore[arg-type]  # a recipe's string; Lightning checks it
        enable_progress_bar=bar,
        default_root_dir=out,
        logger=loggers or False,
        callbacks=callbacks,
        enable_checkpointing=bool(callbacks),
        enable_model_summary=False,
        use_distributed_sampler=False,  # RecipeData shards itself (exact eval under DDP)
        num_sanity_val_steps=0,
    )


def init_weights(task: TaskModule, source: TaskModule, name: str | Path) -> None:
    """Start `task`'s model from the model weights of `source` (loaded from checkpoint
    `name`), which must have the same shape."""
    try:
        task.model.load_state_dict(source.model.state_dict())
    except RuntimeError as e:
        raise PerpixelError(f"{name}: its model does not fit this recipe's model ({e})") from None


def start_run(conf: dict, resume: bool) -> None:
    """Check `conf["out"]` against `resume` (a run to continue, or none to overwrite); seed."""
    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise PerpixelError(f"{last}: nothing to resume from")
    if resume:
        read_checkpoint(last)  # plain data only, before Lightning opens it
    if not resume and last.is_file():
        raise PerpixelError(
            f"{out} already holds a run; pass --resume to continue it or choose another out"
        )
    L.seed_everything(conf["seed"], workers=True, verbose=False)


def fit(
    task: L.LightningModule, data, conf: dict, resume: bool, monitor: str, mode: str = "max"
) -> dict:
    """Fit `task` on `data` into `conf["out"]` (config.yaml, checkpoints, logs,
    training_curves.png); returns {"best", "last", "best_score", "seconds",
    "is_global_zero"}. "best" is the last checkpoint when no validation ran."""
    from perpixel.viz import plot_curves

    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    precision, why = resolve_precision(conf["trainer"]["precision"], conf["trainer"]["accelerator"])
    trainer = make_trainer(conf, out, monitor=monitor, mode=mode, precision=precision)
    if trainer.is_global_zero:
        print(f"precision {precision} ({why}); run folder {out}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(conf, sort_keys=False))
    t0 = time.time()
    trainer.fit(task, datamodule=data, ckpt_path=str(last) if resume else None, weights_only=True)
    ckpt = cast(ModelCheckpoint | None, trainer.checkpoint_callback)  # make_trainer's
    score = ckpt.best_model_score if ckpt else None
    csv = out / "logs" / "metrics.csv"
    if trainer.is_global_zero and csv.is_file():
        plot_curves(csv, out / "training_curves.png")
    return {
        # no validation ran (e.g. fewer epochs than check_val_every_n_epoch): last is best
        "best": (ckpt.best_model_path if ckpt else None) or (str(last) if last.exists() else None),
        "last": str(last) if last.exists() else None,
        "best_score": float(score) if score is not None else None,
        "seconds": time.time() - t0,
        "is_global_zero": trainer.is_global_zero,
    }
