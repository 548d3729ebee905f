"""Segmentation on the command line: `perpixel demo`, and what `perpixel evaluate` does
for a segmentation checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from perpixel.errors import PerpixelError

DEMO_EXAMPLE = "example:\n  perpixel demo --out reports/demo"


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


def data_from_arg(arg: str, base: dict, split: str) -> tuple[dict, str]:
    """A config `data` section and the split name for `perpixel evaluate DATA --split SPLIT`."""
    if arg == "synthetic":
        return {**base, "kind": "synthetic"}, split
    root = Path(arg)
    if not root.is_dir():
        raise PerpixelError(f"{root}: data folder not found")
    if any((root / f"{s}.txt").is_file() for s in ("train", "val", "test")):
        return {**base, "kind": "camvid", "root": str(root)}, split
    flat = (root / "images").is_dir()  # images/ + masks/ directly under root: no splits
    return {**base, "kind": "folder", "root": str(root)}, "." if flat else split


def evaluate_command(task, args: argparse.Namespace) -> None:
    """`perpixel evaluate CKPT DATA`: metrics, report folder, summary table."""
    import lightning as L

    from perpixel.tasks.segmentation.datasets import build_dataset
    from perpixel.tasks.segmentation.predict import Segmenter
    from perpixel.tasks.segmentation.report import overlay_rows, write_report
    from perpixel.tasks.segmentation.train import evaluate
    from perpixel.viz import summary_table

    data, split = data_from_arg(args.data, task.config["data"], args.split)
    hw = {"accelerator": "auto", "devices": 1, "strategy": "auto", **args.hw}
    m = evaluate(task, data, split, batch_size=args.batch_size, **hw)
    if L.fabric.utilities.rank_zero.rank_zero_only.rank != 0:  # type: ignore[attr-defined]
        return
    out = Path(args.out) if args.out else Path(args.checkpoint).parent.parent / f"eval_{args.split}"
    rows = overlay_rows(
        Segmenter(task), build_dataset({**data, "test_split": split}, "test"), args.overlays
    )
    name = Path(args.checkpoint).stem
    write_report(
        out,
        f"Evaluation of {args.checkpoint} on {args.data} ({args.split})",
        {name: m},
        task.taxonomy,
        overlays=rows,
        extra={"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split},
    )
    print(summary_table({name: m}))
    print(f"report: {out / 'report.html'}")
