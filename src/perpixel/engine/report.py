"""The report every training run ends with: `report.html` and `summary.json` in the run
folder (when and on what it ran, the recipe, the validation metrics, the curves)."""

from __future__ import annotations

import csv
import datetime
import math
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from perpixel.io import write_json
from perpixel.viz import write_run_page


def package_version() -> str:
    try:
        return version("perpixel")
    except PackageNotFoundError:
        return "0+unknown"


def validation_rows(metrics_csv: Path, monitor: str) -> list[dict[str, float]]:
    """The rows of `metrics.csv` where `monitor` was logged (one per validation), numbers
    only, with 1-based `epoch`."""
    if not metrics_csv.is_file():
        return []
    with metrics_csv.open(newline="") as f:
        out = []
        for row in csv.DictReader(f):
            if not row.get(monitor):
                continue
            values = {k: float(v) for k, v in row.items() if k.startswith("val/") and v}
            out.append({**values, "epoch": int(float(row["epoch"])) + 1})
    return out


def run_report(
    out: Path,
    conf: dict,
    result: dict,
    monitor: str,
    mode: str,
    info: dict,
    figures: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write `out/report.html` and `out/summary.json` for a finished run; `result` is what
    `fit` returns, `info` what the run knows of itself (recipe, hardware, precision)."""
    rows = validation_rows(out / "logs" / "metrics.csv", monitor)
    best = None
    if rows:
        pick = max if mode == "max" else min
        best = pick(rows, key=lambda r: r.get(monitor, -math.inf if mode == "max" else math.inf))
    about = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "perpixel": package_version(),
        "task": conf["task"],
        "model": conf["model"].get("name"),
        **info,
        "train seconds": round(result["seconds"], 1),
        "best checkpoint": result["best"],
        "last checkpoint": result["last"],
        "full recipe": str(out / "config.yaml"),
    }
    tables = []
    if best is not None:
        last = rows[-1]
        keys = sorted(k for k in last if k.startswith("val/"))
        header = [
            "metric",
            f"best (epoch {best['epoch']})",
            f"last validation (epoch {last['epoch']})",
        ]
        tables.append(("Validation metrics", header, [[k, best.get(k), last.get(k)] for k in keys]))
    figs = (
        [("Training curves", "training_curves.png")]
        if (out / "training_curves.png").exists()
        else []
    )
    notes = [] if rows else ["No validation ran (fewer epochs than check_val_every_n_epoch)."]
    summary = {"info": about, "best": best, "validations": rows}
    write_json(out / "summary.json", summary)
    return write_run_page(out, f"Training run {out.name}", about, tables, [*figs, *figures], notes)
