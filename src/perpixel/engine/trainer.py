"""Fitting any task: the Lightning trainer from a recipe's `trainer:` section (precision
`auto`, logs, best/last checkpoints, a plain line per epoch when output is not a terminal),
the run folder, resuming, and starting from another checkpoint's weights."""

from __future__ import annotations

import logging
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from perpixel.engine.checkpoint import read_checkpoint
from perpixel.engine.module import TaskModule
from perpixel.errors import Interrupted, PerpixelError
from perpixel.io import write_text

for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*sync_dist=True.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 10,
    "max_time": None,  # a wall-clock cap, "DD:HH:MM:SS" (e.g. "00:00:30:00"); None: none
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
    "max_epochs", "max_time", "accelerator", "devices", "strategy", "check_val_every_n_epoch",
    "limit_train_batches", "log_every_n_steps", "gradient_clip_val",
)  # fmt: skip


def _cpuinfo(field: str) -> str | None:
    """The first `field : value` of Linux /proc/cpuinfo (None elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    return set((_cpuinfo("flags") or "").split())


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
    cpu = _cpuinfo("model name") or platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} threads, {gpu}"


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


class RNGState(Callback):
    """Saves torch's global generators (CPU and CUDA) in every checkpoint and restores them
    on resume: what dropout draws after a resume is what it would have drawn."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class ResumedCSVLogger(CSVLogger):
    """`CSVLogger` that, resuming from the end of epoch `epoch`, keeps the rows of epochs up
    to it (Lightning's deletes the old metrics.csv; rows of an interrupted epoch go, as that
    epoch is trained again)."""

    def __init__(self, *args, epoch: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept: list[dict] = []
        csv_path = Path(self.log_dir) / "metrics.csv"
        if epoch is not None and csv_path.is_file():
            import csv

            with csv_path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            self.kept = [r for r in rows if r.get("epoch") and float(r["epoch"]) <= epoch]

    @property
    def experiment(self):
        fresh = self._experiment is None
        writer = super().experiment  # made on first use; that removes the old file
        if fresh and self.kept:
            writer.metrics = [dict(r) for r in self.kept]
            writer.save()
        return writer


def make_trainer(
    conf: dict,
    out: Path | None,
    checkpoints: bool = True,
    monitor: str = "val/miou",
    mode: str = "max",
    resumed_epoch: int | None = None,
    **overrides,
) -> L.Trainer:
    """A Lightning trainer from `conf["trainer"]`: CSV + TensorBoard logs and checkpoints
    under `out` (best.ckpt by `monitor`; last.ckpt at the end of every epoch, with the
    generators' state); a progress bar on a terminal, else one line per epoch. Resuming
    from the end of epoch `resumed_epoch` keeps the CSV rows up to it."""
    t = {**conf["trainer"], **overrides}
    precision, _ = resolve_precision(t["precision"], t["accelerator"])
    callbacks: list[Callback] = []
    loggers: list = []
    if out is not None:
        loggers = [
            ResumedCSVLogger(out, name="logs", version="", epoch=resumed_epoch),
            TensorBoardLogger(out, name="logs", version=""),
        ]
        if checkpoints:
            common: dict[str, Any] = {
                "dirpath": out / "checkpoints",
                "enable_version_counter": False,
                "auto_insert_metric_name": False,
            }
            callbacks += [
                ModelCheckpoint(filename="best", monitor=monitor, mode=mode, **common),
                # the end of every epoch, validated or not: what --resume continues from
                ModelCheckpoint(filename="last", save_on_train_epoch_end=True, **common),
                RNGState(),
            ]
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
        enable_checkpointing=checkpoints and out is not None,
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


def start_run(conf: dict, resume: bool, find_lr: bool = False) -> None:
    """Check `conf["out"]` against `resume` (a run to continue, or none to overwrite; the
    learning-rate finder writes no checkpoint, so any out does); seed."""
    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    if resume and not find_lr:
        if not last.is_file():
            raise PerpixelError(f"{last}: nothing to resume from")
        read_checkpoint(last)  # plain data only, before Lightning opens it
    elif not find_lr and last.is_file():
        raise PerpixelError(
            f"{out} already holds a run; pass --resume to continue it or choose another out"
        )
    L.seed_everything(conf["seed"], workers=True, verbose=False)


def fit(
    task: L.LightningModule,
    data,
    conf: dict,
    resume: bool,
    monitor: str,
    mode: str = "max",
    recipe: str | None = None,
    figures: Callable[[dict], list[tuple[str, str]]] | None = None,
    find_lr: bool = False,
) -> dict:
    """Fit `task` on `data` into `conf["out"]` (config.yaml, checkpoints, logs,
    training_curves.png, and the run's report.html + summary.json, with the task's
    `figures(result)` as (caption, file in out)). `recipe` names the recipe in the report.
    Returns {"best", "last", "best_score", "seconds", "report", "is_global_zero"}; the
    checkpoint paths are under `conf["out"]` as given; "best" is the last checkpoint when
    no validation ran. With `find_lr`, runs Lightning's learning-rate finder instead (see
    `find_learning_rate`)."""
    from perpixel.engine.report import run_report
    from perpixel.viz import plot_curves

    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    precision, why = resolve_precision(conf["trainer"]["precision"], conf["trainer"]["accelerator"])
    if find_lr:
        return find_learning_rate(task, data, conf, precision)
    epoch = int(read_checkpoint(last).get("epoch", 0)) if resume else None
    trainer = make_trainer(
        conf, out, monitor=monitor, mode=mode, precision=precision, resumed_epoch=epoch
    )
    if trainer.is_global_zero:
        print(f"precision {precision} ({why}); run folder {out}", flush=True)
        if epoch is not None:
            print(f"resuming after epoch {epoch + 1} from {last}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(conf, sort_keys=False))
    t0 = time.time()
    try:
        trainer.fit(
            task, datamodule=data, ckpt_path=str(last) if resume else None, weights_only=True
        )
    except SystemExit:  # Lightning's answer to Ctrl-C: a graceful stop, then exit(1)
        if not trainer.interrupted:
            raise
        done = read_checkpoint(last).get("epoch") if last.is_file() else None
        raise Interrupted(
            last if last.is_file() else None,
            None if done is None else int(done) + 1,
            trainer.max_epochs,
        ) from None
    ckpt = cast(ModelCheckpoint | None, trainer.checkpoint_callback)  # make_trainer's
    score = ckpt.best_model_score if ckpt else None
    best = out / "checkpoints" / "best.ckpt"  # as the user named out, like `last`
    result = {
        # no validation ran (e.g. fewer epochs than check_val_every_n_epoch): last is best
        "best": str(best if ckpt and ckpt.best_model_path else last) if last.exists() else None,
        "last": str(last) if last.exists() else None,
        "best_score": float(score) if score is not None else None,
        "seconds": time.time() - t0,
        "report": None,
        "is_global_zero": trainer.is_global_zero,
    }
    if trainer.is_global_zero:
        csv = out / "logs" / "metrics.csv"
        if csv.is_file():
            plot_curves(csv, out / "training_curves.png")
        info = {
            "recipe": recipe or "(a recipe dict)",
            "hardware": hardware(),
            "precision": f"{precision} ({why})",
            "epochs": f"{trainer.current_epoch}/{trainer.max_epochs}",
        }
        extra = figures(result) if figures and result["best"] else []
        result["report"] = str(run_report(out, conf, result, monitor, mode, info, extra))
    return result


def find_learning_rate(
    task: L.LightningModule, data, conf: dict, precision: str, steps: int = 100
) -> dict:
    """Lightning's learning-rate finder: `steps` batches at rates growing from 1e-6 to 1, the
    loss of each; the suggestion is where the loss falls fastest. Writes the curve to
    `out/lr_find.png`; returns {"lr", "plot", "is_global_zero"} (lr None if it found none)."""
    import tempfile

    from lightning.pytorch.tuner import Tuner

    from perpixel.viz import save_figure

    out = Path(conf["out"])
    with tempfile.TemporaryDirectory() as tmp:  # where the finder keeps its restore point
        trainer = make_trainer(conf, None, checkpoints=False, precision=precision)
        trainer._default_root_dir = tmp  # type: ignore[attr-defined]  # no public setter
        res = Tuner(trainer).lr_find(
            task, datamodule=data, min_lr=1e-6, max_lr=1.0, num_training=steps, update_attr=False
        )
    result: dict = {"lr": None, "plot": None, "is_global_zero": trainer.is_global_zero}
    if res is None:
        return result
    result["lr"] = res.suggestion()
    if trainer.is_global_zero:
        fig = res.plot(suggest=True)
        result["plot"] = str(save_figure(fig, out / "lr_find.png"))  # type: ignore[arg-type]
    return result
