"""Train and evaluate a segmentation recipe: what `perpixel train` and `perpixel evaluate`
run for `task: segmentation`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

from perpixel.engine.data import RecipeData
from perpixel.engine.inference import TTA
from perpixel.engine.trainer import fit, init_weights, make_trainer, start_run
from perpixel.errors import PerpixelError
from perpixel.models import Model
from perpixel.tasks.segmentation.datasets import build_dataset, collate, ignore_index_of
from perpixel.tasks.segmentation.losses import class_pixel_counts, class_weights
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.predict import Segmenter
from perpixel.tasks.segmentation.report import overlay_rows
from perpixel.viz import plot_overlays

MONITOR = "val/miou"


def segmentation_data(data: dict, seed: int = 0) -> RecipeData:
    """The data module of a recipe's `data:` section."""
    return RecipeData(
        data, build_dataset, partial(collate, ignore_index=ignore_index_of(data)), seed
    )


def compute_class_weights(spec: str | list | None, dataset) -> list[float] | None:
    """Loss class weights from `conf["loss"]["class_weights"]`: a list, a method name (from
    the un-augmented masks of `dataset`), or None."""
    if spec is None or isinstance(spec, list):
        return spec
    t = dataset.taxonomy
    counts, image_pixels = class_pixel_counts(dataset.masks(), t.num_classes, t.ignore_index)
    return [float(w) for w in class_weights(counts, image_pixels, spec)]


def train(
    conf: dict, resume: bool = False, recipe: str | None = None, find_lr: bool = False
) -> dict:
    """Train a segmentation recipe (see `perpixel.tasks.segmentation.defaults`); returns
    {"best", "last", "best_score", "best_val_miou", "monitor", "seconds", "report",
    "is_global_zero"}. "best" is the last checkpoint when no validation ran. With `resume`,
    training continues from `out/checkpoints/last.ckpt`; `recipe` names the recipe in the
    run's report (report.html in the run folder, with overlays of validation images)."""
    start_run(conf, resume, find_lr)
    data = segmentation_data(conf["data"], conf["seed"])
    train_set: Any = data.dataset("train")  # has the taxonomy and masks()
    for split in ("train", "val"):
        ds = data.dataset(split)
        if hasattr(ds, "validate"):  # files on disk: fail fast, naming the bad one
            ds.validate()
    weights = compute_class_weights(conf["loss"]["class_weights"], train_set)
    task = SegmentationTask(conf, train_set.taxonomy.to_dict(), weights)
    if conf["init_from"] and not resume:
        init_weights(task, SegmentationTask.load(conf["init_from"]), conf["init_from"])
    elif not resume:
        source = cast(Model, task.model).load_pretrained()
        if source:
            print(f"pretrained weights: {source}", flush=True)
    val_set = data.dataset("val")

    def overlays(result: dict) -> list[tuple[str, str]]:
        out = Path(conf["out"])
        rows = overlay_rows(Segmenter(SegmentationTask.load(result["best"])), val_set, 4)
        plot_overlays(rows, train_set.taxonomy, out / "overlays.png")
        return [
            ("Validation images: ground truth and the best checkpoint's prediction", "overlays.png")
        ]

    result = fit(
        task, data, conf, resume, monitor=MONITOR, recipe=recipe, figures=overlays, find_lr=find_lr
    )
    if find_lr:
        return result
    return {**result, "best_val_miou": result["best_score"], "monitor": MONITOR}


def evaluate(
    checkpoint: str | Path | SegmentationTask,
    data: dict,
    split: str = "test",
    devices: int | str = 1,
    accelerator: str = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
    window: Sequence[int] | None = None,
    overlap: float | None = None,
    tta: TTA | str | None = None,
    crf: bool | Mapping[str, float] | None = None,
) -> dict:
    """Metrics of a checkpoint (or a task already loaded from one) on `split` of `data`
    (a config `data` section). With any of `window`, `overlap`, `tta`, `crf` (see
    `Segmenter`), each image is predicted as `Segmenter.predict` does (windows, test-time
    augmentation, dense CRF), else each batch by one forward pass.

    Returns the metrics dict (see `perpixel.metrics.confusion.metrics_from_confusion`)
    plus `confusion_matrix`; under DDP every process returns the same, global numbers.
    """
    if isinstance(checkpoint, SegmentationTask):
        task = checkpoint
    else:
        task = SegmentationTask.load(checkpoint)
    conf = task.config
    data = {**data, "test_split": split}
    if batch_size:
        data["val_batch_size"] = batch_size
    dm = segmentation_data(data, conf["seed"])
    ds: Any = dm.dataset("test")  # has the taxonomy
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
    if (window, overlap, tta, crf) != (None, None, None, None):
        seg = Segmenter(task, window=window, overlap=overlap, tta=tta, crf=crf)
        task.eval_labels = seg.predict_batch
    try:
        trainer.test(task, datamodule=dm, verbose=False)
    finally:
        task.eval_labels = None
    return task.last_metrics["test"]
