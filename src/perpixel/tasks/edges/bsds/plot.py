"""Edge-detection figures: the BSDS precision-recall plot, as users know it from the papers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from perpixel.viz import save_figure  # noqa: E402

# Human consistency on BSDS500 (one annotator against the others), as drawn by the
# reference plots (edgesEvalPlot): recall 0.7235, precision 0.9014, F = 0.80.
HUMAN = (0.7235, 0.9014)


def _curve(res) -> tuple[np.ndarray, np.ndarray, dict]:
    if isinstance(res, Mapping):  # an eval_bdry.json
        return np.asarray(res["curve"]["recall"]), np.asarray(res["curve"]["precision"]), res["ods"]
    return np.asarray(res.recall), np.asarray(res.precision), res.ods


def plot_pr(results: Mapping[str, object], path: str | Path) -> Path:
    """Precision-recall curves of one or more `BoundaryResult`s (or their `eval_bdry.json`
    dicts), with iso-F curves, each curve's ODS point, and the human-consistency point.
    Writes a PNG atomically."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    r = np.linspace(0.01, 1, 200)
    for f in np.arange(0.1, 1.0, 0.1):
        p = f * r / (2 * r - f)
        ok = (p > 0) & (p <= 1)
        ax.plot(r[ok], p[ok], color="0.85", lw=0.8, zorder=0)
        i = np.flatnonzero(ok)[-1] if ok.any() else None
        if i is not None:
            ax.text(r[i], p[i] + 0.01, f"{f:.1f}", color="0.6", fontsize=7, ha="right")
    ax.plot(*HUMAN, "o", color="green", ms=8, mfc="green", label="[F=.80] Human")
    for label, res in results.items():
        rec, prec, ods = _curve(res)
        keep = rec > 0.01  # the reference plots drop the curve's degenerate end
        (line,) = ax.plot(rec[keep], prec[keep], lw=2, label=f"[F={ods['f']:.3f}] {label}")
        ax.plot(ods["recall"], ods["precision"], "o", color=line.get_color(), ms=6)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Recall", ylabel="Precision", aspect="equal")
    ax.grid(True, color="0.92")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("BSDS boundary benchmark")
    return save_figure(fig, path)
