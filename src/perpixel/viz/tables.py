"""Metric tables: per-class (Markdown, CSV) and the terminal summary."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

from perpixel.io import atomic_path
from perpixel.viz.figures import DASH, METRICS


def _fmt(value: float | None) -> str:
    """A fraction as `0.812`; None or NaN as an em dash."""
    if value is None or not math.isfinite(float(value)):
        return DASH
    return f"{float(value):.3f}"


def _write_utf8(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _per_class_rows(results: Mapping[str, Mapping], names: list[str]) -> list[tuple[str, list]]:
    """(label, [value per model]) for each class and then each summary metric."""
    out = [(n, [(m.get("per_class_iou") or {}).get(n) for m in results.values()]) for n in names]
    out += [(label, [m.get(key) for m in results.values()]) for key, label in METRICS[:3]]
    return out


def per_class_table(results: Mapping[str, Mapping], names: list[str]) -> str:
    """Markdown table: one row per class with each model's IoU ("—" when the class is
    absent), then mIoU, pixel accuracy and mean class accuracy rows (fractions)."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| class | " + " | ".join(f"{cell(m)} IoU" for m in results) + " |"]
    lines.append("|---|" + "---:|" * len(results))
    for i, (label, values) in enumerate(_per_class_rows(results, names)):
        label = cell(label) if i < len(names) else f"**{label}**"
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def per_class_csv(results: Mapping[str, Mapping], names: list[str], path: str | Path) -> Path:
    """Write the per-class IoU table as CSV (empty cell for an absent class)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", *results])
    for label, values in _per_class_rows(results, names):
        writer.writerow([label, *("" if v is None else f"{float(v):.6f}" for v in values)])
    return _write_utf8(path, buf.getvalue())


def summary_table(results: Mapping[str, Mapping]) -> str:
    """Fixed-width text table (model | mIoU | pixel acc | mean class acc | fw IoU)."""
    header = ["model"] + [label for _, label in METRICS[:4]]
    body = [[str(m)] + [_fmt(r.get(k)) for k, _ in METRICS[:4]] for m, r in results.items()]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [v.rjust(w) for v, w in zip(row, widths, strict=True)]
        return "  ".join([row[0].ljust(widths[0]), *cells[1:]])

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in body)]) + "\n"


# --------------------------------------------------------------------------- HTML
