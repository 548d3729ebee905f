"""The segmentation report folder: metrics.json, per-class table, figures and report.html."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.images import to_uint8
from perpixel.data.taxonomy import Taxonomy
from perpixel.io import write_json, write_text
from perpixel.viz import (
    per_class_csv,
    per_class_table,
    plot_confusion,
    plot_curves,
    plot_overlays,
    write_html_report,
)


def overlay_rows(segmenter, dataset, n: int = 6) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, ground truth, prediction) for the first `n` samples of `dataset`."""
    rows = []
    for i in range(min(n, len(dataset))):
        s = dataset[i]
        rows.append((to_uint8(s["image"]), s["mask"].numpy(), segmenter.predict(s["image"]).labels))
    return rows


def write_report(
    out: str | Path,
    title: str,
    results: dict[str, dict],
    taxonomy: Taxonomy,
    main: str | None = None,
    overlays: list | None = None,
    curves_csv: str | Path | None = None,
    extra: dict | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write the report folder `out` for `results` (model name -> metrics dict with a
    `confusion_matrix`); figures are drawn for model `main` (default: the first)."""
    out = Path(out)
    main = main or next(iter(results))
    names = taxonomy.names
    figures = []
    cm = np.asarray(results[main]["confusion_matrix"], dtype=np.int64)
    plot_confusion(
        cm, names, out / "confusion_matrix.png", title=f"{main}: confusion (row-normalised)"
    )
    figures.append(
        (
            f"Confusion matrix of {main}, rows = ground truth, normalised per row",
            "confusion_matrix.png",
        )
    )
    if curves_csv and Path(curves_csv).is_file():
        plot_curves(curves_csv, out / "training_curves.png")
        figures.append((f"Training curves of {main}", "training_curves.png"))
    if overlays:
        plot_overlays(overlays, taxonomy, out / "overlays.png")
        figures.append((f"Image, ground truth and {main}'s prediction", "overlays.png"))
    per_class_csv(results, names, out / "per_class.csv")
    write_text(out / "per_class.md", per_class_table(results, names) + "\n")
    absent = sorted({c for r in results.values() for c in r.get("absent_classes", [])})
    notes = list(notes or [])
    notes.append(
        "Metrics are dataset-level (confusion matrix accumulated over all images, then divided); "
        "ignored pixels are excluded."
    )
    if absent:
        notes.append(
            f"Classes absent from both ground truth and prediction, left out of the means: {', '.join(absent)}."
        )
    write_json(out / "metrics.json", {**results, **({"info": extra} if extra else {})})
    return write_html_report(out, title, results, names, figures, notes, extra)
