"""Evaluation report: confusion matrix, training curves, overlays, tables and an HTML page.

Every file is written atomically (`perpixel.io`) and every figure is closed after saving.
Metrics dicts are the toolkit's (`miou`, `pixel_accuracy`, `per_class_iou`, ...), with
fractions in [0, 1] and None for a class absent from both ground truth and prediction.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from perpixel.data.taxonomy import Taxonomy  # noqa: E402
from perpixel.errors import DataError  # noqa: E402
from perpixel.io import atomic_path  # noqa: E402
from perpixel.viz.legend import legend_entries  # noqa: E402

DASH = "—"
DPI = 120
# (metrics-dict key, label): the terminal summary shows the first 4, the per-class table's
# summary rows the first 3, the HTML summary all of them.
METRICS = [
    ("miou", "mIoU"),
    ("pixel_accuracy", "pixel acc"),
    ("mean_class_accuracy", "mean class acc"),
    ("fw_iou", "fw IoU"),
    ("mean_dice", "mean Dice"),
]
LABELS = {f"val/{key}": label for key, label in METRICS}  # known metrics' labels
TRAIN_LOSS_KEYS = ("train/loss_epoch", "train/loss", "train/loss_step")
VAL_LOSS_KEYS = ("val/loss", "val/loss_epoch")


def _note(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Save `fig` as a PNG at `path`, atomically, and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------- figures


def plot_confusion(
    confmat: np.ndarray,
    names: list[str],
    path: str | Path,
    normalize: bool = True,
    title: str = "",
) -> Path:
    """Draw a (C, C) confusion matrix (rows = ground truth, columns = prediction) as a PNG.

    With `normalize`, each row is divided by its pixel count (so the diagonal is per-class
    recall, in [0, 1]); otherwise raw pixel counts are shown. Rows without any ground-truth
    pixel are drawn grey. Cell values are written when C <= 20.
    """
    cm = np.asarray(confmat)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be (C, C), got shape {cm.shape}")
    c = cm.shape[0]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for a {c}x{c} confusion matrix")
    cm = cm.astype(np.float64)
    row_sums = cm.sum(axis=1, keepdims=True)
    empty = np.broadcast_to(row_sums == 0, cm.shape)
    values = np.divide(cm, row_sums, out=np.zeros_like(cm), where=row_sums > 0) if normalize else cm
    shown = np.ma.masked_array(values, mask=empty)
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)

    side = min(max(4.0, 0.5 * c + 2.5), 26.0)
    label_size = 9 if c <= 20 else max(4, int(9 - (c - 20) / 15))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    cmap = plt.get_cmap("Blues").with_extremes(bad="#d9d9d9")
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("fraction of ground-truth pixels (recall)" if normalize else "pixels")

    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor", fontsize=label_size)
    ylabels = [f"{n} (no pixels)" if empty[i, 0] else n for i, n in enumerate(names)]
    ax.set_yticklabels(ylabels, fontsize=label_size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    default = "Confusion matrix (row-normalised)" if normalize else "Confusion matrix (pixels)"
    ax.set_title(title or default)

    if c <= 20:
        text_size = 9 if c <= 8 else 8 if c <= 12 else 6
        for i in range(c):
            if empty[i, 0]:
                continue
            for j in range(c):
                v = values[i, j]
                text = f"{v:.2f}" if normalize else _compact(v)
                colour = "white" if v > 0.55 * vmax else "#222222"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=text_size)
    return save_figure(fig, path)


def _compact(count: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= div:
            return f"{count / div:.1f}{suffix}"
    return f"{int(count)}"


def _read_metrics_csv(path: Path) -> dict[str, dict[float, list[float]]]:
    """metrics.csv -> column -> epoch -> values (empty and non-finite cells dropped)."""
    if not path.is_file():
        raise DataError(path, "metrics file not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise DataError(path, "metrics file is empty (no header row)")
        if "epoch" not in reader.fieldnames:
            raise DataError(path, f"no 'epoch' column (columns: {', '.join(reader.fieldnames)})")
        series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for lineno, row in enumerate(reader, 2):
            values = {k: _float(v) for k, v in row.items() if k and v and v.strip()}
            epoch = values.pop("epoch", None)
            if epoch is None:
                raise DataError(path, f"line {lineno}: epoch {row['epoch']!r} is not a number")
            for key, v in values.items():
                if key != "step" and v is not None and math.isfinite(v):
                    series[key][epoch].append(v)
    return series


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _per_epoch(values: Mapping[float, list[float]]) -> tuple[list[float], list[float]]:
    epochs = sorted(values)
    return epochs, [float(np.mean(values[e])) for e in epochs]


def validation_metrics(series: Mapping[str, object]) -> list[str]:
    """The validation metric columns of a metrics.csv (every `val/...` but the loss), the
    known ones (mIoU, accuracies) first."""
    keys = [k for k in series if k.startswith("val/") and k not in VAL_LOSS_KEYS]
    return sorted(
        keys, key=lambda k: (k not in LABELS, list(LABELS).index(k) if k in LABELS else 0, k)
    )


def curve_keys(metrics_csv: str | Path) -> list[str]:
    """The validation metrics `plot_curves` draws from `metrics_csv`."""
    return validation_metrics(_read_metrics_csv(Path(metrics_csv)))


def plot_curves(metrics_csv: str | Path, path: str | Path) -> Path:
    """Plot training curves from a Lightning CSVLogger `metrics.csv` as a PNG, for any task.

    Left: train and validation loss per epoch (step values averaged per epoch).
    Right: every validation metric logged (mIoU and accuracies for segmentation, the
    approximate F for edges, ...) per epoch. A panel with nothing to show says so.
    """
    series = _read_metrics_csv(Path(metrics_csv))
    metrics = {k: LABELS.get(k, k.removeprefix("val/")) for k in validation_metrics(series)}
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4.2))

    def draw(ax: plt.Axes, key: str | None, label: str) -> bool:
        if key not in series:
            return False
        x, y = _per_epoch(series[key])
        ax.plot(x, y, marker="o" if len(x) <= 40 else None, markersize=4, label=label)
        return True

    train_key = next((k for k in TRAIN_LOSS_KEYS if k in series), None)
    val_key = next((k for k in VAL_LOSS_KEYS if k in series), None)
    n_loss = sum([draw(ax_loss, k, lab) for k, lab in ((train_key, "train"), (val_key, "val"))])
    n_metric = sum(draw(ax_metric, k, lab) for k, lab in metrics.items())
    epochs = sorted({e for values in series.values() for e in values})

    for ax, n, title, ylabel in (
        (ax_loss, n_loss, "Loss", "loss"),
        (ax_metric, n_metric, "Validation metrics", "score"),
    ):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if n:
            ax.legend(fontsize=9)
        else:
            _note(ax, f"no {ylabel} logged")
        if len(epochs) == 1:  # a lone point: one tick, not a -0.04..0.04 axis
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks(epochs)
    shown = [v for k in metrics for v in _per_epoch(series[k])[1]]
    if shown and 0.0 <= min(shown) and max(shown) <= 1.0:
        ax_metric.set_ylim(0.0, 1.02)  # fractions: a fixed scale compares runs at a glance
    fig.tight_layout()
    return save_figure(fig, path)


def label_panel(labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """(H, W) integer class ids -> (H, W, 3) uint8 picture in flat class colours (the
    taxonomy's, as `Taxonomy.colorize`); the ignore value and any id outside
    0..num_classes-1 are drawn in `VOID_COLOR` (black)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    return taxonomy.colorize(labels.astype(np.int64))  # unknown ids: black = VOID_COLOR


def _mix(image: np.ndarray, panel: np.ndarray, alpha: float) -> np.ndarray:
    """`panel` at opacity `alpha` over `image`, both (H, W, 3) uint8; alpha 1 is `panel`."""
    if alpha >= 1.0:
        return panel
    out = (1.0 - alpha) * image.astype(np.float32) + alpha * panel.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def plot_overlays(
    rows: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
    taxonomy: Taxonomy,
    path: str | Path,
    alpha: float = 1.0,
    titles: Sequence[str] = ("image", "ground truth", "prediction"),
) -> Path:
    """Grid of samples: image | ground truth | prediction, as a PNG.

    `rows` holds (image (H, W, 3) uint8, ground truth (H, W) int or None, prediction (H, W)
    int); sizes may differ between rows. Ground truth and prediction are drawn as flat class
    colours (`label_panel`): pixels equal to `taxonomy.ignore_index`, or any id outside
    0..num_classes-1, are black. A legend below the grid names the classes that appear, plus
    "void / ignored" when such pixels do.

    `alpha` is the opacity of the label colours over the image: 1.0 (the default) draws the
    flat colours alone; a lower value lets the image show through every label pixel, void
    ones included.
    """
    if not rows:
        raise ValueError("plot_overlays needs at least one (image, ground truth, prediction) row")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    samples: list[list[Any]] = []  # per row: the image, then each label panel or None
    seen: set[int] = set()  # every id in a ground truth or prediction
    for i, (image, gt, pred) in enumerate(rows):
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"row {i}: image must be (H, W, 3) uint8, not {image.dtype} {image.shape}"
            )
        panels: list[Any] = [image]
        for name, lab in (("ground truth", gt), ("prediction", pred)):
            if lab is None:
                panels.append(None)
                continue
            lab = np.asarray(lab).astype(np.int64)
            if lab.shape != image.shape[:2]:
                raise ValueError(f"row {i}: {name} is {lab.shape}, image is {image.shape[:2]}")
            seen.update(int(k) for k in np.unique(lab))
            panels.append(_mix(image, label_panel(lab, taxonomy), alpha))
        samples.append(panels)

    ratios = [s[0].shape[0] / s[0].shape[1] for s in samples]
    size, grid = (3 * 3.4, 3.4 * sum(ratios) + 0.6), {"height_ratios": ratios}
    fig, axes = plt.subplots(len(samples), 3, figsize=size, squeeze=False, gridspec_kw=grid)
    for r, panels in enumerate(samples):
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if panel is None:
                ax.imshow(np.full_like(panels[0], 238))
                _note(ax, "no ground truth")
            else:  # label panels: nearest, so that class colours stay flat up to their edges
                ax.imshow(panel, interpolation=None if c == 0 else "nearest")
            if r == 0 and c < len(titles):
                ax.set_title(titles[c], fontsize=11)
    entries = legend_entries(np.fromiter(seen, dtype=np.int64, count=len(seen)), taxonomy)
    handles = [
        Patch(facecolor=(r / 255, g / 255, b / 255), edgecolor="black", linewidth=0.5)
        for (r, g, b), _ in entries
    ]
    labels = [name for _, name in entries]
    fig.tight_layout()
    if handles:  # below the grid, outside every image (bbox_inches="tight" keeps it)
        kw: dict[str, Any] = {"loc": "upper center", "bbox_to_anchor": (0.5, 0.0), "frameon": False}
        fig.legend(handles, labels, ncol=min(len(handles), 6), fontsize=9, **kw)
    return save_figure(fig, path)


def plot_bars(values: Mapping[str, float], path: str | Path, xlabel: str, title: str = "") -> Path:
    """Horizontal bar chart of `values` (label -> number), largest on top, each bar labelled
    with its value; a PNG."""
    if not values:
        raise ValueError("plot_bars needs at least one value")
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(items) + 1.2))
    bars = ax.barh([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:.3f}" for _, v in items], padding=3, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(1e-9, max(v for _, v in items)) * 1.15)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
