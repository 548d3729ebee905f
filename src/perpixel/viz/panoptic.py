"""Panoptic pictures: every stuff region in its class colour, every thing instance in a shade
of its class colour with a white outline, void black; and a grid of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from perpixel.data.taxonomy import Taxonomy
from perpixel.viz.figures import save_figure
from perpixel.viz.legend import legend_entries


def panoptic_panel(semantic: np.ndarray, instances: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """(H, W) class ids and (H, W) instance ids (0 = none) -> (H, W, 3) uint8 picture.

    Instance k of a class is drawn in its class colour scaled by a factor in [0.55, 1.0] that
    changes from one instance id to the next, and outlined in white where it meets another
    segment, so touching instances of one class stay apart.
    """
    semantic, instances = np.asarray(semantic), np.asarray(instances).astype(np.int64)
    out = taxonomy.colorize(semantic.astype(np.int64)).astype(np.float32)
    shade = 1.0 - 0.45 * ((instances * 0.618034) % 1.0)
    out *= np.where(instances > 0, shade, 1.0)[..., None]
    seg = semantic.astype(np.int64) * (int(instances.max(initial=0)) + 1) + instances
    edge = np.zeros(seg.shape, bool)
    edge[:, 1:] |= seg[:, 1:] != seg[:, :-1]
    edge[1:] |= seg[1:] != seg[:-1]
    edge &= (instances > 0) | np.pad(instances[:, :-1] > 0, ((0, 0), (1, 0)))
    out[edge] = 255.0
    return out.round().astype(np.uint8)


def plot_panoptic(
    rows: Sequence[tuple[np.ndarray, tuple | None, tuple]],
    taxonomy: Taxonomy,
    path: str | Path,
    titles: Sequence[str] = ("image", "ground truth", "prediction"),
) -> Path:
    """Grid image | ground truth | prediction as a PNG; `rows` hold (image (H, W, 3) uint8,
    (semantic, instances) ground truth or None, (semantic, instances) prediction)."""
    if not rows:
        raise ValueError("plot_panoptic needs at least one row")
    ratios = [np.asarray(r[0]).shape[0] / np.asarray(r[0]).shape[1] for r in rows]
    fig, axes = plt.subplots(
        len(rows),
        3,
        figsize=(3 * 3.4, 3.4 * sum(ratios) + 0.6),
        squeeze=False,
        gridspec_kw={"height_ratios": ratios},
    )
    seen: set[int] = set()
    for r, (image, gt, pred) in enumerate(rows):
        panels = [np.asarray(image)]
        for lab in (gt, pred):
            if lab is None:
                panels.append(np.full_like(panels[0], 238))
                continue
            seen.update(int(k) for k in np.unique(lab[0]))
            panels.append(panoptic_panel(lab[0], lab[1], taxonomy))
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(panel, interpolation=None if c == 0 else "nearest")
            if r == 0:
                ax.set_title(titles[c], fontsize=11)
    entries = legend_entries(np.fromiter(seen, dtype=np.int64, count=len(seen)), taxonomy)
    handles = [
        Patch(facecolor=(cr / 255, cg / 255, cb / 255), edgecolor="black", linewidth=0.5)
        for (cr, cg, cb), _ in entries
    ]
    fig.tight_layout()
    if handles:
        fig.legend(
            handles,
            [n for _, n in entries],
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            frameon=False,
            ncol=min(len(handles), 6),
            fontsize=9,
        )
    return save_figure(fig, path)
