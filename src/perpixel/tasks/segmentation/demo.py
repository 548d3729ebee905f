"""`perpixel demo`: the whole recipe on the synthetic world, in minutes on a CPU."""

from __future__ import annotations

import time
from pathlib import Path

from perpixel.config import merge, read_recipe, resolve_recipe
from perpixel.engine.trainer import hardware
from perpixel.tasks.segmentation.datasets import build_dataset
from perpixel.tasks.segmentation.defaults import DEFAULTS
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.predict import Segmenter
from perpixel.tasks.segmentation.report import overlay_rows, write_report
from perpixel.tasks.segmentation.train import evaluate, train

RECIPE = "synthetic_unet"  # configs/segmentation/synthetic_unet.yaml
LINEAR = {"model": {"name": "linear"}, "optim": {"lr": 0.05, "schedule": "cosine"}}


def demo_recipe(overrides: dict | None = None) -> dict:
    """The demo's U-Net recipe with `overrides` (a nested dict) applied."""
    return merge(merge(DEFAULTS, read_recipe(resolve_recipe(RECIPE))), overrides)


def run_demo(
    out: str | Path = "reports/demo", overrides: dict | None = None, linear_epochs: int = 2
) -> dict:
    """Train a U-Net and the per-pixel linear baseline on the synthetic world, evaluate both
    on its validation split, and write the report to `out`. Returns the metrics by model."""
    out = Path(out)
    t0 = time.time()
    base = demo_recipe(overrides)
    runs = {
        "unet": merge(base, {"out": str(out / "runs" / "unet")}),
        "linear": merge(
            base,
            {
                **LINEAR,
                "out": str(out / "runs" / "linear"),
                "trainer": {"max_epochs": linear_epochs},
            },
        ),
    }
    results, seconds, tasks = {}, {}, {}
    for name, conf in runs.items():
        print(f"== training {name} ({conf['trainer']['max_epochs']} epochs) ==", flush=True)
        ckpt_dir = Path(conf["out"]) / "checkpoints"
        if ckpt_dir.exists():  # a previous demo in the same folder: start afresh
            for f in ckpt_dir.glob("*.ckpt"):
                f.unlink()
        r = train(conf)
        seconds[name] = r["seconds"]
        tasks[name] = SegmentationTask.load(r["best"])
        results[name] = evaluate(tasks[name], conf["data"], split="val")
    best = Path(runs["unet"]["out"]) / "checkpoints" / "best.ckpt"
    seg = Segmenter(tasks["unet"])
    rows = overlay_rows(seg, build_dataset(base["data"], "val", seed=base["seed"]), n=6)
    info = {
        "wall_seconds": round(time.time() - t0, 1),
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "hardware": hardware(),
        "split": "synthetic val",
        "checkpoint": str(best),
    }
    write_report(
        out,
        "perpixel demo: U-Net vs per-pixel linear classifier on the synthetic world",
        results,
        seg.taxonomy,
        main="unet",
        overlays=rows,
        curves_csv=Path(runs["unet"]["out"]) / "logs" / "metrics.csv",
        extra=info,
    )
    return {**results, "info": info}
