"""The panoptic report folder: metrics.json, summary and per-class tables, panoptic pictures
and report.html."""

from __future__ import annotations

from pathlib import Path

from perpixel.data.images import to_uint8
from perpixel.data.taxonomy import Taxonomy
from perpixel.io import write_json, write_text
from perpixel.viz import write_run_page
from perpixel.viz.panoptic import plot_panoptic

# (key, label) of the summary, in order
SUMMARY = [
    ("pq", "PQ"), ("sq", "SQ"), ("rq", "RQ"), ("pq_things", "PQ things"),
    ("pq_stuff", "PQ stuff"), ("miou", "mIoU"), ("miiou", "iIoU"),
    ("category_miou", "category IoU"), ("category_miiou", "category iIoU"),
    ("pixel_accuracy", "pixel accuracy"), ("ap", "mask AP"), ("ap50", "AP50"),
    ("ap75", "AP75"), ("ap_small", "AP small"), ("ap_medium", "AP medium"),
    ("ap_large", "AP large"), ("ar100", "AR100"),
]  # fmt: skip


def panoptic_rows(task, dataset, n: int = 6) -> list[tuple]:
    """(image uint8, (semantic, instances) ground truth, (semantic, instances) prediction) of
    the first `n` samples of `dataset`, for `plot_panoptic`."""
    import torch

    rows = []
    for i in range(min(n, len(dataset))):
        s = dataset[i]
        with torch.no_grad():
            p = task.predict(s["image"][None].to(task.device))[0]
        gt = (s["mask"].numpy(), s["instances"].numpy())
        rows.append(
            (to_uint8(s["image"]), gt, (p.semantic.cpu().numpy(), p.instances.cpu().numpy()))
        )
    return rows


def summary_lines(m: dict) -> str:
    """The summary as aligned text lines, `label  value`."""
    items = [(label, float(m[k])) for k, label in SUMMARY if m.get(k) is not None]
    width = max(len(label) for label, _ in items)
    return "\n".join(f"{label.ljust(width)}  {v:.4f}" for label, v in items) + "\n"


def per_class_rows(m: dict, taxonomy: Taxonomy) -> list[list]:
    """[class, thing/stuff, IoU, iIoU, PQ, SQ, RQ, AP] per class."""
    rows = []
    for name in taxonomy.names:
        pq = (m.get("per_class_pq") or {}).get(name) or {}
        rows.append(
            [
                name,
                "thing" if name in taxonomy.things else "stuff",
                (m.get("per_class_iou") or {}).get(name),
                (m.get("per_class_iiou") or {}).get(name),
                pq.get("pq"),
                pq.get("sq"),
                pq.get("rq"),
                (m.get("per_class_ap") or {}).get(name),
            ]
        )
    return rows


def write_report(
    out: str | Path,
    title: str,
    metrics: dict,
    taxonomy: Taxonomy,
    rows: list | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the report folder `out`: metrics.json, summary.txt, per_class.md, panoptic.png
    (from `rows`, see `panoptic_rows`) and report.html."""
    out = Path(out)
    write_json(out / "metrics.json", {**metrics, **({"info": extra} if extra else {})})
    write_text(out / "summary.txt", summary_lines(metrics))
    header = ["class", "kind", "IoU", "iIoU", "PQ", "SQ", "RQ", "AP"]
    body = per_class_rows(metrics, taxonomy)
    md = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * 6]
    md += [
        "| "
        + " | ".join(
            "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in r
        )
        + " |"
        for r in body
    ]
    write_text(out / "per_class.md", "\n".join(md) + "\n")
    tables = [
        (
            "Summary",
            ["metric", "value"],
            [[label, metrics.get(k)] for k, label in SUMMARY if k in metrics],
        ),
        ("Per class", header, body),
    ]
    if metrics.get("per_category_iou"):
        cats = metrics["per_category_iou"]
        icats = metrics.get("per_category_iiou") or {}
        tables.append(
            (
                "Per category",
                ["category", "IoU", "iIoU"],
                [[c, v, icats.get(c)] for c, v in cats.items()],
            )
        )
    figures = []
    if rows:
        plot_panoptic(rows, taxonomy, out / "panoptic.png")
        figures.append(("Image, ground truth and prediction (instances outlined)", "panoptic.png"))
    notes = [
        "PQ follows the COCO panoptic protocol (IoU > 0.5 matches; void and crowd regions "
        "neither match nor count as false positives); iIoU weights each ground-truth "
        "instance's pixels by the mean instance size of its class over its own size "
        "(Cityscapes); mask AP is COCO's (IoU 0.5:0.95, 101-point precision, up to 100 "
        "masks per image).",
    ]
    return write_run_page(out, title, extra or {}, tables, figures, notes)
