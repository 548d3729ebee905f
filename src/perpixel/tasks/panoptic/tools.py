"""`perpixel panoptic cityscapes | pq`: score result files the way the reference scripts do
(cityscapesScripts' pixel-level benchmark, COCO panopticapi's `pq_compute`), exactly and
over a pool of processes; no checkpoint needed."""

from __future__ import annotations

import argparse
import math
import os

from perpixel.io import write_json

EXAMPLES = {
    "cityscapes": "examples:\n  perpixel panoptic cityscapes results/ cityscapes/gtFine/val\n"
    "  perpixel panoptic cityscapes results/ gtFine/val --workers 8 --out scores.json",
    "pq": "examples:\n  perpixel panoptic pq gt/panoptic_val.json results/panoptic.json\n"
    "  perpixel panoptic pq gt.json pred.json --gt-folder gt_png/ --pred-folder pred_png/",
}


def add_commands(subparsers, add) -> None:
    """Add the `panoptic` command group (`add(sub, name, help, example)` makes a subparser)."""
    grp = subparsers.add_parser(
        "panoptic",
        help="Instance and panoptic segmentation's own tools: score result files.",
        description="Instances and panoptic: train, evaluate, predict and export with the "
        "generic verbs; these score result files without a checkpoint.",
    )
    sub = grp.add_subparsers(dest="panoptic_command", required=True)
    workers = {"type": int, "default": os.cpu_count() or 1, "help": "processes (all cores)"}

    q = add(
        sub,
        "cityscapes",
        "Cityscapes pixel-level benchmark of *labelIds.png predictions: class and category "
        "IoU and iIoU, as cityscapesScripts' csEvalPixelLevelSemanticLabeling.",
        EXAMPLES["cityscapes"],
    )
    q.add_argument(
        "predictions", help="folder of CITY_SEQ_FRAME*.png label-id maps (searched deep)"
    )
    q.add_argument("ground_truth", help="folder with *_gtFine_labelIds.png + *_instanceIds.png")
    q.add_argument("--workers", **workers)
    q.add_argument("--out", default=None, help="write the scores here as JSON")
    q.set_defaults(func=cmd_cityscapes)

    q = add(
        sub,
        "pq",
        "Panoptic quality of COCO panoptic files (PNG + JSON), as panopticapi's pq_compute.",
        EXAMPLES["pq"],
    )
    q.add_argument("gt_json")
    q.add_argument("pred_json")
    q.add_argument("--gt-folder", default=None, help="ground-truth PNGs (default: JSON stem)")
    q.add_argument("--pred-folder", default=None, help="predicted PNGs (default: JSON stem)")
    q.add_argument("--workers", **workers)
    q.add_argument("--out", default=None, help="write the scores here as JSON")
    q.set_defaults(func=cmd_pq)


def _f(v: float | None) -> str:
    return "  n/a" if v is None or math.isnan(v) else f"{v:.3f}"


def _write(out: str | None, scores: dict) -> None:
    if out:
        print(f"scores: {write_json(out, scores)}")


def cmd_cityscapes(args: argparse.Namespace) -> None:
    from perpixel.metrics.cityscapes import evaluate_files, find_pairs

    pairs = find_pairs(args.predictions, args.ground_truth)
    s = evaluate_files(pairs, args.workers)
    iiou = s["per_class_iiou"]
    print(f"{len(pairs)} images\n\n{'class':<15}  IoU    iIoU")
    for name, v in s["per_class_iou"].items():
        print(f"{name:<15}  {_f(v)}  {_f(iiou[name]) if name in iiou else ''}")
    print(
        f"{'Score Average':<15}  {_f(s['miou'])}  {_f(s['miiou'])}\n\n{'category':<15}  IoU    iIoU"
    )
    ciiou = s["per_category_iiou"]
    for name, v in s["per_category_iou"].items():
        print(f"{name:<15}  {_f(v)}  {_f(ciiou[name]) if name in ciiou else ''}")
    print(f"{'Score Average':<15}  {_f(s['category_miou'])}  {_f(s['category_miiou'])}")
    _write(args.out, {"images": len(pairs), **s})


def cmd_pq(args: argparse.Namespace) -> None:
    from perpixel.metrics.panoptic_quality import pq_compute_files, pq_from_stats

    stats, cats = pq_compute_files(
        args.gt_json, args.pred_json, args.gt_folder, args.pred_folder, args.workers
    )
    things = [c["id"] for c in cats if c.get("isthing")]
    r = pq_from_stats(stats, {c["id"]: c["name"] for c in cats}, things)
    print(f"{'':<10}  PQ     SQ     RQ     N")
    for label, sfx in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        row = "  ".join(f"{100 * r[k + sfx]:5.1f}" for k in ("pq", "sq", "rq"))
        print(f"{label:<10}  {row}  {r['n' + sfx]}")
    _write(args.out, r)
