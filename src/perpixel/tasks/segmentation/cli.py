"""Segmentation on the command line: `perpixel demo`, and what `perpixel evaluate` does
for a segmentation checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perpixel.errors import PerpixelError

DEMO_EXAMPLE = "example:\n  perpixel demo --out reports/demo"
COMPARE_EXAMPLE = (
    "examples:\n"
    "  perpixel compare camvid_fcn8s camvid_deeplab_v3plus camvid_vgg_unet \\\n"
    "      -o data.root=../shared/data/camvid --max-minutes 30 --out reports/compare\n"
    "  perpixel compare runs/a/checkpoints/best.ckpt runs/b/checkpoints/best.ckpt"
)


def add_commands(sub, add) -> None:
    """Add `perpixel demo` (`add(sub, name, help, example)` makes a subparser)."""
    q = add(
        sub,
        "demo",
        "Train a U-Net and a linear baseline on the synthetic world; write a report.",
        DEMO_EXAMPLE,
    )
    q.add_argument("--out", default="reports/demo", help="report folder (default: reports/demo)")
    q.add_argument("--epochs", type=int, default=None, help="U-Net epochs (default: the recipe's)")
    q.add_argument("--train-samples", type=int, default=None, help="synthetic training images")
    q.set_defaults(func=cmd_demo)

    q = add(
        sub,
        "compare",
        "Train segmentation recipes under one budget (or take checkpoints) and compare them in "
        "one table: mIoU, accuracies, parameters, FLOPs, images/s, training time.",
        COMPARE_EXAMPLE,
    )
    q.add_argument("entries", nargs="+", metavar="RECIPE|CKPT", help="recipes or checkpoints")
    q.add_argument("--out", default="reports/compare", help="report folder")
    q.add_argument(
        "-o", "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a value in every recipe",
    )  # fmt: skip
    q.add_argument("--epochs", type=int, default=None, help="training epochs for every recipe")
    q.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock cap per recipe (minutes)"
    )
    q.add_argument("--split", default="test", help="split every model is scored on (test)")
    q.add_argument(
        "--speed-seconds", type=float, default=5.0, help="time spent measuring images/s (5)"
    )
    q.add_argument(
        "--reuse", action="store_true", help="keep finished runs in OUT/runs instead of retraining"
    )
    q.set_defaults(func=cmd_compare)


def cmd_demo(args: argparse.Namespace) -> None:
    from perpixel.tasks.segmentation.demo import run_demo
    from perpixel.viz import summary_table

    over: dict = {}
    if args.epochs is not None:
        over["trainer"] = {"max_epochs": args.epochs}
    if args.train_samples is not None:
        over["data"] = {"synthetic": {"num_train": args.train_samples}}
    res = run_demo(args.out, over)
    info = res.pop("info")
    print()
    print(summary_table(res))
    print(f"\nwall time {info['wall_seconds']:.0f} s on {info['hardware']}")
    print(f"report: {Path(args.out) / 'report.html'}")


def cmd_compare(args: argparse.Namespace) -> None:
    from perpixel.tasks import load_recipe
    from perpixel.tasks.segmentation.compare import (
        budget_note,
        comparison_table,
        run_compare,
        with_budget,
    )

    entries: dict[str, Any] = {}
    recipes: dict[str, str] = {}
    for e in args.entries:
        name = Path(e).parent.parent.name if e.endswith(".ckpt") else Path(e).stem
        if name in entries:
            raise PerpixelError(f"compare: {e} and another entry are both named {name!r}")
        if e.endswith(".ckpt"):
            entries[name] = e
            continue
        conf = load_recipe(e, args.set)
        if conf["task"] != "segmentation":
            raise PerpixelError(f"compare: {e} is a {conf['task']} recipe; compare segmentation")
        entries[name] = with_budget(conf, args.epochs, args.max_minutes)
        recipes[name] = e
    print(f"budget: {budget_note(args.epochs, args.max_minutes)}", flush=True)
    rows = run_compare(
        entries, args.out, args.split, args.reuse, args.speed_seconds, recipes=recipes
    )
    print()
    print(comparison_table(rows))
    print(f"report: {Path(args.out) / 'report.html'}")


def data_from_arg(arg: str, base: dict, split: str | None) -> tuple[dict, str, str]:
    """(config `data` section, split to read, what was read) for `perpixel evaluate DATA
    [--split SPLIT]`; `base` is the checkpoint's recipe `data:`. SPLIT defaults to test. A
    folder with images/ + masks/ directly in it (no splits) is read whole, unless it is the
    folder the checkpoint was trained on with a seeded `data.split`: then its test part (or
    SPLIT)."""
    from perpixel.tasks.segmentation.datasets import flat_layout

    if arg == "synthetic":
        return {**base, "kind": "synthetic"}, split or "test", f"synthetic {split or 'test'}"
    root = Path(arg)
    if not root.is_dir():
        raise PerpixelError(f"{root}: data folder not found")
    if any((root / f"{s}.txt").is_file() for s in ("train", "val", "test")):
        return {**base, "kind": "camvid", "root": str(root)}, split or "test", split or "test"
    data = {**base, "kind": "folder", "root": str(root)}
    if not flat_layout(root):  # root/<split>/images
        return data, split or "test", split or "test"
    trained_here = (
        base.get("kind") == "folder"
        and base.get("split")
        and base.get("root")
        and Path(base["root"]).resolve() == root.resolve()
    )
    if trained_here:
        part = split or "test"
        return data, part, f"{part} part of the seeded split {base['split']}"
    if split is not None:
        raise PerpixelError(
            f"{root}: images/ and masks/ sit directly in this folder (no {split}/ split); "
            "leave out --split to evaluate all its images"
        )
    return data, ".", "all images; the folder has no splits"


def evaluate_command(task, args: argparse.Namespace) -> None:
    """`perpixel evaluate CKPT DATA`: metrics, report folder, summary table."""
    import lightning as L

    from perpixel.tasks.segmentation.datasets import build_dataset
    from perpixel.tasks.segmentation.predict import Segmenter, parse_crf
    from perpixel.tasks.segmentation.report import overlay_rows, write_report
    from perpixel.tasks.segmentation.train import evaluate
    from perpixel.viz import summary_table

    data, split, read = data_from_arg(args.data, task.config["data"], args.split)
    hw = {"accelerator": "auto", "devices": 1, "strategy": "auto", **args.hw}
    window, overlap, tta = (getattr(args, k, None) for k in ("window", "overlap", "tta"))
    crf = parse_crf(getattr(args, "crf", None))
    inference = {"window": window, "overlap": overlap, "tta": tta, "crf": crf}
    m = evaluate(
        task,
        data,
        split,
        batch_size=args.batch_size,
        window=window,
        overlap=overlap,
        tta=tta,
        crf=crf,
        **hw,
    )
    if L.fabric.utilities.rank_zero.rank_zero_only.rank != 0:  # type: ignore[attr-defined]
        return
    label = "all" if split == "." else split
    out = Path(args.out) if args.out else Path(args.checkpoint).parent.parent / f"eval_{label}"
    dataset: Any = build_dataset({**data, "test_split": split}, "test")
    segmenter = Segmenter(task, window=window, overlap=overlap, tta=tta, crf=crf)
    rows = overlay_rows(segmenter, dataset, args.overlays)
    name = Path(args.checkpoint).stem
    write_report(
        out,
        f"Evaluation of {args.checkpoint} on {args.data} ({read})",
        {name: m},
        task.taxonomy,
        overlays=rows,
        extra={
            "checkpoint": str(args.checkpoint),
            "data": str(args.data),
            "split": read,
            "images": len(dataset),
            **{k: str(v) for k, v in inference.items() if v is not None},
        },
    )
    print(summary_table({name: m}))
    print(f"report: {out / 'report.html'}")
