"""Instance-weighted IoU (iIoU) and category-level scores, as cityscapesScripts computes them
(`evalPixelLevelSemanticLabeling.py`), for any taxonomy (class ids 0..C-1 + ignore_index).

IoU favours large objects: a missed pedestrian costs a few hundred pixels of a class total of
millions. iIoU weighs each ground-truth pixel of a thing instance by `avg_size[class] /
instance size`, so every instance counts about as much as an average one of its class:

    iIoU = iTP / (iTP + FP + iFN)

iTP, iFN: the weighted true positive / false negative pixels of the class's instances; FP:
the plain (unweighted) false positive pixels of the confusion matrix (ground truth neither
void nor the class). Crowd pixels (thing class, instance 0) count in FP and IoU only.
Category scores merge classes: a pixel is right when its predicted class has the ground
truth's category. Category iIoU exists only for categories whose classes are all things
(Cityscapes: human, vehicle). Undefined scores (zero denominator) are NaN / None and left
out of the means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numba
import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from perpixel.data.taxonomy import Taxonomy
from perpixel.metrics.confusion import confusion_matrix, metrics_from_confusion

ArrayLike = torch.Tensor | np.ndarray


class InstanceRecords(NamedTuple):
    """One entry per ground-truth instance, each (K,) int64: class id, size (pixels), pixels
    predicted as its class (`tp`), pixels predicted as a class of its category (`cat_tp`)."""

    cls: torch.Tensor
    size: torch.Tensor
    tp: torch.Tensor
    cat_tp: torch.Tensor

    @staticmethod
    def cat(records: Sequence[InstanceRecords]) -> InstanceRecords:
        """Concatenate records (of several images)."""
        if not records:
            return InstanceRecords(*(torch.zeros(0, dtype=torch.long) for _ in range(4)))
        return InstanceRecords(*(torch.cat(list(f)) for f in zip(*records, strict=True)))


def _t(x: ArrayLike) -> torch.Tensor:
    if not isinstance(x, np.ndarray):
        return x
    if x.dtype.kind == "u" and x.itemsize > 1:  # torch lacks most uint16/32 ops
        x = x.astype(np.int32 if x.itemsize == 2 else np.int64)
    return torch.from_numpy(np.ascontiguousarray(x))


def _compact(key: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Keys -> (dense codes, number of codes); the identity where the key range is small."""
    n = int(key.max()) + 1 if key.numel() else 0
    if n <= 4 * key.numel() + (1 << 16):
        return key, n
    uniq, inverse = torch.unique(key, return_inverse=True)
    return inverse, int(uniq.numel())


def instance_records(
    pred: ArrayLike,
    semantic: ArrayLike,
    instances: ArrayLike,
    thing_ids: Sequence[int],
    category_lut: ArrayLike | None = None,
    ignore_index: int = 255,
) -> InstanceRecords:
    """The instances of one image and how much of each the prediction covers.

    Args:
        pred: (H, W) predicted class ids; ids outside 0..C-1 are right for no instance.
        semantic: (H, W) ground-truth class ids, `ignore_index` = void.
        instances: (H, W) instance ids, 0 = none (a thing pixel with 0 is crowd: no instance).
        thing_ids: the classes whose instances count; others are skipped.
        category_lut: (C,) class id -> category index; None: `cat_tp` = `tp`.

    An instance is a (class, instance id) pair, as in `perpixel.data.panoptic.to_segments`.
    """
    pred, semantic, instances = _t(pred), _t(semantic), _t(instances)
    if not pred.shape == semantic.shape == instances.shape:
        raise ValueError(
            f"shapes differ: pred {tuple(pred.shape)}, semantic {tuple(semantic.shape)}, "
            f"instances {tuple(instances.shape)}"
        )
    dev = semantic.device
    inst = instances.reshape(-1)
    where = torch.nonzero(inst > 0).squeeze(1)
    inst = inst[where].long()
    sem = semantic.reshape(-1)[where].long()
    n = max([int(sem.max()) if sem.numel() else 0, ignore_index, *thing_ids]) + 1
    is_thing = torch.zeros(n, dtype=torch.bool, device=dev)
    is_thing[list(thing_ids)] = True
    keep = is_thing[sem.clamp(min=0)] & (sem >= 0)
    inst, sem = inst[keep], sem[keep]
    prd = pred.reshape(-1)[where[keep]].long()
    key = inst * n + sem
    codes, m = _compact(key)
    size = torch.bincount(codes, minlength=m)
    hit = prd == sem
    tp = torch.bincount(codes[hit], minlength=m)
    if category_lut is None:
        cat_tp = tp
    else:
        lut = _t(category_lut).to(dev).long()
        c = lut.numel()
        lut = torch.cat([lut, lut.new_full((1,), -1)])
        cat_pred = lut[torch.where((prd >= 0) & (prd < c), prd, c)]
        cat_tp = torch.bincount(codes[cat_pred == lut[sem]], minlength=m)
    present = torch.nonzero(size).squeeze(1)
    if m and codes is not key:  # codes are unique() positions: recover the keys
        first = torch.zeros(m, dtype=torch.long, device=dev).scatter_(0, codes, key)
        cls = first[present] % n
    else:
        cls = present % n
    return InstanceRecords(cls, size[present], tp[present], cat_tp[present])


@numba.njit(cache=True, nogil=True)
def _joint_kernel(pred, sem, inst, c, ignore, thing_index, t, cat, n_keys):
    """One pass: (C, C) confusion and, per key `instance * t + thing index`, size / tp /
    cat_tp. Returns a flat index of the first out-of-range pixel, or -1."""
    cm = np.zeros((c, c), np.int64)
    counts = np.zeros((3, n_keys), np.int64)
    for i in range(pred.size):
        g = np.int64(sem[i])
        if g == ignore:
            continue
        p = np.int64(pred[i])
        if g < 0 or g >= c or p < 0 or p >= c:
            return cm, counts, i
        cm[g, p] += 1
        k = np.int64(inst[i])
        if k > 0 and thing_index[g] >= 0:
            key = k * t + thing_index[g]
            counts[0, key] += 1
            counts[1, key] += p == g
            counts[2, key] += cat[p] == cat[g]
    return cm, counts, -1


def joint_counts(
    pred: ArrayLike,
    semantic: ArrayLike,
    instances: ArrayLike,
    num_classes: int,
    thing_ids: Sequence[int],
    category_lut: ArrayLike | None = None,
    ignore_index: int = 255,
) -> tuple[torch.Tensor, InstanceRecords]:
    """`confusion_matrix` and `instance_records` of one (H, W) image in one pass over the
    pixels (numba) on the CPU; on another device (or with huge instance ids) the two calls.
    Returns ((C, C) int64 confusion, records) equal to theirs."""
    things = sorted({int(x) for x in thing_ids})
    t = max(len(things), 1)
    maps = (pred, semantic, instances)
    if not pred.shape == semantic.shape == instances.shape:
        raise ValueError(f"shapes differ: {[tuple(x.shape) for x in maps]}")
    cpu = all(isinstance(x, np.ndarray) or x.device.type == "cpu" for x in maps)
    n_keys = -1
    if cpu:
        p, s, i = (np.ascontiguousarray(_as_np(x)).reshape(-1) for x in maps)
        n_keys = (max(int(i.max()) if i.size else 0, 0) + 1) * t
    if not cpu or n_keys > 4 * semantic.reshape(-1).shape[0] + (1 << 16):
        pred, semantic, instances = _t(pred), _t(semantic), _t(instances)
        cm = confusion_matrix(pred, semantic, num_classes, ignore_index)
        rec = instance_records(pred, semantic, instances, things, category_lut, ignore_index)
        return cm, rec
    thing_index = np.full(max(num_classes, 1), -1, np.int64)
    thing_index[things] = np.arange(len(things))
    cat = np.zeros(num_classes) if category_lut is None else _as_np(category_lut)
    cat = cat.astype(np.int64)
    cm, counts, bad = _joint_kernel(p, s, i, num_classes, ignore_index, thing_index, t, cat, n_keys)
    if bad >= 0:  # raises confusion_matrix's error
        confusion_matrix(_t(pred), _t(semantic), num_classes, ignore_index)
    keys = np.nonzero(counts[0])[0]
    size, tp, cat_tp = (torch.from_numpy(counts[j, keys]) for j in range(3))
    cls = torch.from_numpy(np.asarray(things, np.int64)[keys % t])
    return torch.from_numpy(cm), InstanceRecords(
        cls, size, tp, tp if category_lut is None else cat_tp
    )


def _as_np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def _named(names: Sequence[str], v: np.ndarray, idx: Sequence[int]) -> dict:
    return {names[i]: (None if np.isnan(v[i]) else float(v[i])) for i in idx}


def _avg_sizes(
    given: Mapping[str, float] | Mapping[int, float] | None,
    cls: np.ndarray,
    size: np.ndarray,
    names: Sequence[str],
) -> np.ndarray:
    """(C,) weights' numerators: given (by class name or id), else the records' mean size."""
    c = len(names)
    count = np.bincount(cls, minlength=c)
    if given is None:
        return _ratio(np.bincount(cls, weights=size, minlength=c), count.astype(np.float64))
    avg = np.full(c, np.nan)
    for k, v in given.items():
        i = names.index(k) if isinstance(k, str) and k in names else k
        if isinstance(i, int) and 0 <= i < c:
            avg[i] = float(v)
    missing = [names[int(i)] for i in np.nonzero((count > 0) & np.isnan(avg))[0]]
    if missing:
        raise ValueError(f"avg_sizes gives no size for instance classes {missing}")
    return avg


def instance_scores(
    confmat: ArrayLike,
    records: InstanceRecords,
    thing_ids: Sequence[int],
    avg_sizes: Mapping[str, float] | Mapping[int, float] | None = None,
    category_lut: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    category_names: Sequence[str] | None = None,
) -> dict:
    """iIoU and category scores from a (C, C) confusion matrix (rows = ground truth, void
    excluded; or (C, C + E), extra columns counting misses as in `metrics_from_confusion`)
    and the data set's instance records.

    Args:
        avg_sizes: class name (or id) -> average instance size in pixels (Cityscapes:
            `AVG_CLASS_SIZE`); None: the mean size of the class's instances in `records`.
        category_lut: (C,) class id -> category index; None: no category scores.

    Returns a JSON-ready dict: `per_class_iiou` (thing class name -> float or None), `miiou`,
    `num_instances`, `avg_instance_size`; with categories also `per_category_iou`,
    `category_miou`, `per_category_iiou` (all-thing categories only), `category_miiou`.
    """
    cm = _as_np(confmat).astype(np.float64)
    c = cm.shape[0]
    names = list(names) if names is not None else [str(i) for i in range(c)]
    if cm.ndim != 2 or cm.shape[1] < c or len(names) != c:
        raise ValueError(f"confusion matrix {cm.shape} and {len(names)} class names do not match")
    things = sorted({int(t) for t in thing_ids})
    if things and not 0 <= things[0] <= things[-1] < c:
        raise ValueError(f"thing ids {things} outside 0..{c - 1}")
    cls, size, tp, cat_tp = (_as_np(r).astype(np.int64) for r in records)
    keep = np.isin(cls, things) & (size > 0)
    cls, size, tp, cat_tp = cls[keep], size[keep].astype(np.float64), tp[keep], cat_tp[keep]
    avg = _avg_sizes(avg_sizes, cls, size, names)
    w = avg[cls] / size  # each instance's pixel weight

    def iiou(group: np.ndarray, hits: np.ndarray, fp: np.ndarray, k: int) -> np.ndarray:
        itp = np.bincount(group, weights=hits * w, minlength=k)
        ifn = np.bincount(group, weights=(size - hits) * w, minlength=k)
        return _ratio(itp, itp + fp + ifn)

    fp = cm[:, :c].sum(0) - np.diag(cm)
    class_iiou = iiou(cls, tp, fp, c)
    count = np.bincount(cls, minlength=c)
    out: dict = {
        "per_class_iiou": _named(names, class_iiou, things),
        "miiou": _mean(class_iiou[things]),
        "num_instances": {names[i]: int(count[i]) for i in things},
        "avg_instance_size": _named(names, avg, things),
    }
    if category_lut is None:
        return out
    lut = _as_np(category_lut).astype(np.int64).reshape(-1)
    if lut.shape != (c,):
        raise ValueError(f"category_lut has {lut.size} entries for {c} classes")
    k = int(lut.max()) + 1
    cnames = list(category_names) if category_names is not None else [str(i) for i in range(k)]
    if len(cnames) < k:
        raise ValueError(f"category_lut names {k} categories but {len(cnames)} names given")
    onehot = np.eye(k)[lut]  # (C, K)
    rows = onehot.T @ cm  # (K, C + E)
    ccm = rows[:, :c] @ onehot  # the category confusion matrix, misses left out
    cat_fp = ccm.sum(0) - np.diag(ccm)
    cat_iou = _ratio(np.diag(ccm), ccm.sum(0) + rows.sum(1) - np.diag(ccm))
    is_thing = np.zeros(c, bool)
    is_thing[things] = True
    members = np.bincount(lut, minlength=k)
    all_things = [
        int(i) for i in np.nonzero((members > 0) & (members == np.bincount(lut, is_thing, k)))[0]
    ]
    cat_iiou = iiou(lut[cls], cat_tp, cat_fp, k)
    used = [int(i) for i in np.nonzero(members)[0]]
    return out | {
        "per_category_iou": _named(cnames, cat_iou, used),
        "category_miou": _mean(cat_iou[used]),
        "per_category_iiou": _named(cnames, cat_iiou, all_things),
        "category_miiou": _mean(cat_iiou[all_things]),
    }


class InstanceMetrics(Metric):
    """Streaming confusion matrix + instance records, gathered across processes under DDP.

    `update(pred, gt_semantic, gt_instances)` with (H, W) or (B, H, W) maps (pred may be
    (B, C, H, W) scores); `compute()` -> `metrics_from_confusion`'s dict plus the keys of
    `instance_scores`.
    """

    full_state_update = False
    confmat: torch.Tensor  # (C, C) counts, summed
    records: list[torch.Tensor] | torch.Tensor  # (K, 4) per update: cls, size, tp, cat_tp

    def __init__(
        self,
        num_classes: int,
        thing_ids: Sequence[int],
        ignore_index: int = 255,
        names: Sequence[str] | None = None,
        category_lut: ArrayLike | None = None,
        category_names: Sequence[str] | None = None,
        avg_sizes: Mapping[str, float] | Mapping[int, float] | None = None,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.thing_ids = [int(t) for t in thing_ids]
        self.ignore_index = ignore_index
        self.names = list(names) if names is not None else None
        self.category_lut = None if category_lut is None else _as_np(category_lut).copy()
        self.category_names = list(category_names) if category_names is not None else None
        self.avg_sizes = avg_sizes
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state("records", default=[], dist_reduce_fx="cat")

    @classmethod
    def from_taxonomy(
        cls,
        taxonomy: Taxonomy,
        avg_sizes: Mapping[str, float] | Mapping[int, float] | None = None,
    ) -> InstanceMetrics:
        """Classes, things, categories and ignore value from a `Taxonomy`."""
        cats = bool(taxonomy.categories)
        return cls(
            taxonomy.num_classes,
            taxonomy.thing_ids,
            taxonomy.ignore_index,
            taxonomy.names,
            taxonomy.category_lut() if cats else None,
            taxonomy.category_names if cats else None,
            avg_sizes,
        )

    def update(
        self, pred: torch.Tensor, gt_semantic: torch.Tensor, gt_instances: torch.Tensor
    ) -> None:
        pred = pred.detach()
        if pred.dim() == gt_semantic.dim() + 1:
            pred = pred.argmax(1)
        if gt_semantic.dim() == 2:
            pred, gt_semantic, gt_instances = pred[None], gt_semantic[None], gt_instances[None]
        recs = []
        for p, s, i in zip(pred, gt_semantic, gt_instances, strict=True):
            cm, r = joint_counts(
                p, s, i, self.num_classes, self.thing_ids, self.category_lut, self.ignore_index
            )
            self.confmat += cm.to(self.confmat.device)
            recs.append(r)
        rec = torch.stack(list(InstanceRecords.cat(recs)), 1)
        assert isinstance(self.records, list)
        self.records.append(rec.to(self.confmat.device))

    def compute(self) -> dict:
        """The metrics of the (process-summed) matrix and (gathered) records."""
        recs = self.records
        rec = dim_zero_cat(recs) if len(recs) else torch.zeros(0, 4, dtype=torch.long)
        return metrics_from_confusion(self.confmat, self.names) | instance_scores(
            self.confmat,
            InstanceRecords(*rec.reshape(-1, 4).unbind(1)),
            self.thing_ids,
            self.avg_sizes,
            self.category_lut,
            self.names,
            self.category_names,
        )
