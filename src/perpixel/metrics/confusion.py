"""Segmentation metrics, written once: a streaming confusion matrix and what follows from it.

Everything is dataset-level: accumulate the confusion matrix over all batches (and all
processes), then divide. Ignored pixels never enter the matrix. A class absent from both
ground truth and prediction has no defined IoU and is left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> torch.Tensor:
    """Count (ground truth, prediction) pairs.

    Args:
        pred: (...) predicted class ids, or (B, C, H, W) scores (arg-maxed over C).
        target: (...) ground-truth class ids; `ignore_index` pixels are skipped.
        num_classes: C.

    Returns:
        (C, C) int64 matrix, rows = ground truth, columns = prediction.
    """
    if pred.dim() == target.dim() + 1:
        pred = pred.argmax(1)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel():
        bad = (target < 0) | (target >= num_classes)
        if bad.any():
            raise ValueError(
                f"target ids {sorted(target[bad].unique().tolist())} outside 0..{num_classes - 1}"
            )
        if pred.min() < 0 or pred.max() >= num_classes:
            raise ValueError(f"predicted ids outside 0..{num_classes - 1}")
    idx = target * num_classes + pred
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def metrics_from_confusion(
    confmat: torch.Tensor | np.ndarray, names: Sequence[str] | None = None
) -> dict:
    """All segmentation metrics from a (C, C) confusion matrix (rows = ground truth). A
    (C, C + E) matrix's extra columns count pixels predicted as none of the C classes (e.g.
    a void label id): misses of their row's class, never false positives.

    Returns a JSON-ready dict: `miou`, `pixel_accuracy`, `mean_class_accuracy`, `fw_iou`,
    `mean_dice`, `per_class_iou`/`per_class_accuracy`/`per_class_dice` (name -> float, or
    None where undefined), `absent_classes` (in neither ground truth nor prediction; left out
    of every mean), `num_pixels`, `num_classes`.
    """
    cm = np.asarray(
        confmat.cpu() if isinstance(confmat, torch.Tensor) else confmat, dtype=np.float64
    )
    c = cm.shape[0]
    names = list(names) if names is not None else [str(i) for i in range(c)]
    if cm.ndim != 2 or cm.shape[1] < c or len(names) != c:
        raise ValueError(f"confusion matrix {cm.shape} and {len(names)} class names do not match")
    tp = np.diag(cm)
    gt, pr = cm.sum(1), cm[:, :c].sum(0)
    total = cm.sum()
    iou = _ratio(tp, gt + pr - tp)
    acc = _ratio(tp, gt)
    dice = _ratio(2 * tp, gt + pr)
    present = (gt + pr) > 0

    def mean(v: np.ndarray) -> float:
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")

    def per_class(v: np.ndarray) -> dict:
        return {n: (None if np.isnan(x) else float(x)) for n, x in zip(names, v, strict=True)}

    freq = gt / total if total > 0 else np.zeros(c)
    return {
        "miou": mean(iou),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_class_accuracy": mean(acc),
        "fw_iou": float(np.nansum(freq * iou)) if total > 0 else float("nan"),
        "mean_dice": mean(dice),
        "per_class_iou": per_class(iou),
        "per_class_accuracy": per_class(acc),
        "per_class_dice": per_class(dice),
        "absent_classes": [n for n, p in zip(names, present, strict=True) if not p],
        "num_pixels": int(total),
        "num_classes": c,
    }


class SegmentationMetrics(Metric):
    """Streaming confusion matrix, summed across processes under DDP (torchmetrics state).

    `update(pred_or_logits, target)`; `compute()` -> the dict of `metrics_from_confusion`
    with the global `confusion_matrix` added.
    """

    full_state_update = False
    confmat: torch.Tensor  # a state, (C, C) counts

    def __init__(
        self, num_classes: int, ignore_index: int | None = 255, names: Sequence[str] | None = None
    ):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.names = list(names) if names is not None else None
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.confmat += confusion_matrix(
            pred.detach(), target, self.num_classes, self.ignore_index
        ).to(self.confmat.device)

    def compute(self) -> dict:
        """The metrics of the (process-summed) matrix, plus it as `confusion_matrix` (a list)."""
        return {
            **metrics_from_confusion(self.confmat, self.names),
            "confusion_matrix": self.confmat.tolist(),
        }
