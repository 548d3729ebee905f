"""Train and evaluate: the functions behind `perpixel train` and `perpixel evaluate`."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from perpixel.errors import PerpixelError
from perpixel.io import write_text
from perpixel.losses import class_pixel_counts, class_weights
from perpixel.tasks.data import SegmentationData
from perpixel.tasks.segmentation import SegmentationTask

for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*sync_dist=True.*")


# `trainer:` config keys handed to lightning.Trainer as they are
TRAINER_KEYS = (
    "max_epochs", "accelerator", "devices", "strategy", "precision", "check_val_every_n_epoch",
    "limit_train_batches", "log_every_n_steps", "gradient_clip_val", "enable_progress_bar",
)  # fmt: skip


def make_trainer(
    conf: dict,
    out: Path | None,
    checkpoints: bool = True,
    monitor: str = "val/miou",
    mode: str = "max",
    **overrides,
) -> L.Trainer:
    """A Lightning trainer from `conf["trainer"]`: CSV + TensorBoard logs and best/last
    checkpoints (best by `monitor`, validation mIoU for segmentation) under `out`."""
    t = {**conf["trainer"], **overrides}
    callbacks, loggers = [], []
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
    return L.Trainer(
        **{k: t[k] for k in TRAINER_KEYS},
        default_root_dir=out,
        logger=loggers or False,
        callbacks=callbacks,
        enable_checkpointing=bool(callbacks),
        enable_model_summary=False,
        use_distributed_sampler=False,  # SegmentationData shards itself (exact eval under DDP)
        num_sanity_val_steps=0,
    )


def compute_class_weights(spec: str | list | None, dataset) -> list[float] | None:
    """Loss class weights from `conf["loss"]["class_weights"]`: a list, a method name (from
    the un-augmented masks of `dataset`), or None."""
    if spec is None or isinstance(spec, list):
        return spec
    t = dataset.taxonomy
    counts, image_pixels = class_pixel_counts(dataset.masks(), t.num_classes, t.ignore_index)
    return [float(w) for w in class_weights(counts, image_pixels, spec)]


def init_weights(task: L.LightningModule, checkpoint: str | Path, load=None) -> None:
    """Start `task`'s model from the model weights of another checkpoint of the same shape,
    read by `load` (default: a segmentation checkpoint)."""
    if load is None:
        from perpixel.tasks.predictor import load_task as load

    source = load(checkpoint)
    try:
        task.model.load_state_dict(source.model.state_dict())
    except RuntimeError as e:
        raise PerpixelError(
            f"{checkpoint}: its model does not fit this recipe's model ({e})"
        ) from None


def start_run(conf: dict, resume: bool) -> None:
    """Check `conf["out"]` against `resume` (a run to continue, or none to overwrite); seed."""
    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise PerpixelError(f"{last}: nothing to resume from")
    if not resume and last.is_file():
        raise PerpixelError(
            f"{out} already holds a run; pass --resume to continue it or choose another out"
        )
    L.seed_everything(conf["seed"], workers=True, verbose=False)


def fit(
    task: L.LightningModule, data, conf: dict, resume: bool, monitor: str = "val/miou", mode="max"
) -> dict:
    """Fit `task` on `data` into `conf["out"]` (config.yaml, checkpoints, logs); returns
    {"best", "last", "best_score", "seconds", "is_global_zero"}. "best" is the last
    checkpoint when no validation ran."""
    out = Path(conf["out"])
    last = out / "checkpoints" / "last.ckpt"
    trainer = make_trainer(conf, out, monitor=monitor, mode=mode)
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(conf, sort_keys=False))
    t0 = time.time()
    trainer.fit(task, datamodule=data, ckpt_path=str(last) if resume else None)
    ckpt = trainer.checkpoint_callback
    score = ckpt.best_model_score if ckpt else None
    return {
        # no validation ran (e.g. fewer epochs than check_val_every_n_epoch): last is best
        "best": (ckpt.best_model_path if ckpt else None) or (str(last) if last.exists() else None),
        "last": str(last) if last.exists() else None,
        "best_score": float(score) if score is not None else None,
        "seconds": time.time() - t0,
        "is_global_zero": trainer.is_global_zero,
    }


def train(conf: dict, resume: bool = False) -> dict:
    """Train `conf` (see `perpixel.tasks.config`); returns {"best", "last", "best_val_miou",
    "seconds", "is_global_zero"}. "best" is the last checkpoint when no validation ran.

    With `resume`, training continues from `out/checkpoints/last.ckpt`.
    """
    start_run(conf, resume)
    data = SegmentationData(conf["data"], conf["seed"])
    train_set = data.dataset("train")
    for split in ("train", "val"):
        if hasattr(data.dataset(split), "validate"):  # files on disk: fail fast, naming the bad one
            data.dataset(split).validate()
    weights = compute_class_weights(conf["loss"]["class_weights"], train_set)
    task = SegmentationTask(conf, train_set.taxonomy.to_dict(), weights)
    if conf["init_from"] and not resume:
        init_weights(task, conf["init_from"])
    result = fit(task, data, conf, resume)
    result["best_val_miou"] = result.pop("best_score")
    return result


def evaluate(
    checkpoint: str | Path | SegmentationTask,
    data: dict,
    split: str = "test",
    devices: int | str = 1,
    accelerator: str = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
) -> dict:
    """Metrics of a checkpoint (or a task already loaded from one) on `split` of `data`
    (a config `data` section).

    Returns the metrics dict (see `perpixel.metrics.metrics_from_confusion`) plus
    `confusion_matrix`; under DDP every process returns the same, global numbers.
    """
    from perpixel.tasks.predictor import load_task

    task = checkpoint if isinstance(checkpoint, SegmentationTask) else load_task(checkpoint)
    conf = task.config
    data = {**data, "test_split": split}
    if batch_size:
        data["val_batch_size"] = batch_size
    dm = SegmentationData(data, conf["seed"])
    ds = dm.dataset("test")
    if hasattr(ds, "validate"):
        ds.validate()  # fail fast, naming the bad file
    ds_tax = ds.taxonomy
    if ds_tax.names != task.taxonomy.names:
        raise PerpixelError(
            f"the checkpoint's classes {task.taxonomy.names} differ from the data's {ds_tax.names}"
        )
    trainer = make_trainer(
        conf,
        None,
        checkpoints=False,
        devices=devices,
        accelerator=accelerator,
        strategy=strategy,
    )
    trainer.test(task, datamodule=dm, verbose=False)
    return task.last_metrics["test"]
