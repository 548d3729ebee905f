"""What `perpixel evaluate` does for a panoptic checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perpixel.errors import PerpixelError

# (layout marker relative to the data root, data.kind), checked in order
LAYOUTS = [
    ("gtFine", "cityscapes"),
    ("training/instance", "kitti"),
    ("annotations/panoptic_{split}.json", "coco_panoptic"),
    ("annotations/instances_{split}.json", "coco"),
    ("SegmentationObject", "voc"),
    ("ADEChallengeData2016", "ade20k"),
    ("annotations/training", "ade20k"),
]


def detect_kind(root: Path, split: str) -> str:
    """The `data.kind` of the layout at `root`: one of `LAYOUTS`, else "instance_folder"."""
    for marker, kind in LAYOUTS:
        if (root / marker.format(split=split)).exists():
            return kind
    return "instance_folder"


def data_from_arg(arg: str, base: dict, split: str | None) -> tuple[dict, str]:
    """(recipe `data:` section, split) for `perpixel evaluate CKPT DATA [--split S]`."""
    split = split or "test"
    if arg == "synthetic":
        return {**base, "kind": "synthetic"}, split
    root = Path(arg)
    if not root.is_dir():
        raise PerpixelError(f"{root}: data folder not found")
    kind = detect_kind(root, split)
    if kind == "instance_folder" and (root / "images").is_dir():
        split = "."  # images/, masks/, instances/ directly in the folder: all of it
    return {**base, "kind": kind, "root": str(root)}, split


def evaluate_command(task, args: argparse.Namespace) -> None:
    """`perpixel evaluate CKPT DATA`: PQ, IoU, iIoU, category scores, mask AP; report folder."""
    import lightning as L

    from perpixel.tasks.panoptic.report import panoptic_rows, summary_lines, write_report
    from perpixel.tasks.panoptic.train import evaluate, panoptic_data

    data, split = data_from_arg(args.data, task.config["data"], args.split)
    hw = {"accelerator": "auto", "devices": 1, "strategy": "auto", **args.hw}
    m = evaluate(task, data, split, batch_size=args.batch_size, **hw)
    if L.fabric.utilities.rank_zero.rank_zero_only.rank != 0:  # type: ignore[attr-defined]
        return
    out = Path(args.out) if args.out else Path(args.checkpoint).parent.parent / f"eval_{split}"
    dm, _ = panoptic_data({**data, "test_split": split}, task.config["seed"], "test")
    dataset: Any = dm.dataset("test")
    write_report(
        out,
        f"Evaluation of {args.checkpoint} on {args.data} ({split})",
        m,
        task.taxonomy,
        rows=panoptic_rows(task, dataset, args.overlays),
        extra={
            "checkpoint": str(args.checkpoint),
            "data": f"{args.data} ({data['kind']})",
            "split": split,
            "images": len(dataset),
        },
    )
    print(summary_lines(m), end="")
    print(f"report: {out / 'report.html'}")
