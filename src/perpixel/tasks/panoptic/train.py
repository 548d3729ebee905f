"""Train and evaluate a panoptic recipe: what `perpixel train` and `perpixel evaluate` run for
`task: panoptic`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, cast

from perpixel.engine.data import RecipeData
from perpixel.engine.trainer import fit, init_weights, make_trainer, start_run
from perpixel.errors import PerpixelError
from perpixel.tasks.panoptic.datasets import build_dataset, collate
from perpixel.tasks.panoptic.module import PanopticTask
from perpixel.tasks.panoptic.report import panoptic_rows
from perpixel.viz.panoptic import plot_panoptic

MONITOR = "val/pq"


def panoptic_data(data: dict, seed: int = 0, role: str = "train") -> tuple[RecipeData, Any]:
    """(the data module of a recipe's `data:` section, the taxonomy of its `role` dataset);
    batches are padded with the taxonomy's ignore value."""
    dm = RecipeData(data, build_dataset, collate, seed)
    tax = cast(Any, dm.dataset(role)).taxonomy
    dm.collate = partial(collate, ignore_index=tax.ignore_index)
    return dm, tax


def train(
    conf: dict, resume: bool = False, recipe: str | None = None, find_lr: bool = False
) -> dict:
    """Train a panoptic recipe (see `perpixel.tasks.panoptic.defaults`); returns {"best",
    "last", "best_score" (validation PQ), "monitor", "seconds", "report", "is_global_zero"}."""
    start_run(conf, resume, find_lr)
    data, tax = panoptic_data(conf["data"], conf["seed"])
    for split in ("train", "val"):
        ds = data.dataset(split)
        if hasattr(ds, "validate"):  # files on disk: fail fast, naming the bad one
            ds.validate()
    if not tax.things:
        raise PerpixelError(f"data {conf['data']['kind']!r} declares no thing classes")
    task = PanopticTask(conf, tax.to_dict())
    if conf["init_from"] and not resume:
        init_weights(task, PanopticTask.load(conf["init_from"]), conf["init_from"])
    val_set = data.dataset("val")

    def figures(result: dict) -> list[tuple[str, str]]:
        best = PanopticTask.load(result["best"])
        plot_panoptic(panoptic_rows(best, val_set, 4), tax, Path(conf["out"]) / "panoptic.png")
        return [
            (
                "Validation images: ground truth and the best checkpoint's panoptic maps",
                "panoptic.png",
            )
        ]

    result = fit(
        task, data, conf, resume, monitor=MONITOR, recipe=recipe, figures=figures, find_lr=find_lr
    )
    return result if find_lr else {**result, "monitor": MONITOR}


def evaluate(
    checkpoint: str | Path | PanopticTask,
    data: dict,
    split: str = "test",
    devices: int | str = 1,
    accelerator: str = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
) -> dict:
    """Scores of a checkpoint (or a loaded task) on `split` of `data` (a recipe `data:`
    section): IoU and accuracies, iIoU, category scores, PQ / SQ / RQ (all, things, stuff,
    per class) and mask AP; under DDP every process returns the same, global numbers."""
    task = checkpoint if isinstance(checkpoint, PanopticTask) else PanopticTask.load(checkpoint)
    data = {**data, "test_split": split}
    if batch_size:
        data["val_batch_size"] = batch_size
    dm, _ = panoptic_data(data, task.config["seed"], "test")
    ds: Any = dm.dataset("test")
    if hasattr(ds, "validate"):
        ds.validate()
    if ds.taxonomy.names != task.taxonomy.names:
        raise PerpixelError(
            f"the checkpoint's classes {task.taxonomy.names} differ from the data's "
            f"{ds.taxonomy.names}"
        )
    trainer = make_trainer(
        task.config, None, checkpoints=False, devices=devices, accelerator=accelerator,
        strategy=strategy,
    )  # fmt: skip
    trainer.test(task, datamodule=dm, verbose=False)
    return task.last_metrics["test"]
