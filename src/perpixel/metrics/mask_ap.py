"""Instance-mask average precision, exactly as pycocotools' `COCOeval(iouType="segm")`
(`evaluateImg`, `accumulate`, `summarize`), from dense binary masks.

Per image and class: detections sorted by score (stable mergesort: ties keep their given
order), the first 100 kept; mask IoU = |d & g| / |d | g|, or |d & g| / |d| against a crowd
gt. Per area range (all, small < 32^2, medium, large > 96^2, on pixel areas, bounds
inclusive) a gt is ignored when crowd or outside the range; for each IoU threshold
0.5:0.05:0.95 each detection, in score order, takes the best still-free gt with IoU >= the
threshold, preferring non-ignored gts (crowds can take any number); a detection matched to an
ignored gt, or unmatched and outside the range, is ignored. Over the images (in update order)
the kept detections of a class are merged by score, and precision is made monotone and read
at the 101 recall points 0:0.01:1 (0 past the last recall reached); classes without
non-ignored gt are left out. The 12 numbers are summarize's: AP, AP50, AP75, APs, APm, APl
(maxDets 100), AR1, AR10, AR100, ARs, ARm, ARl. Undefined values are NaN (pycocotools: -1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import torch

from perpixel.data.panoptic import to_segments

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0.0, 1e10), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e10))
AREA_NAMES = ("all", "small", "medium", "large")
Array = npt.ArrayLike | torch.Tensor  # inputs: arrays, tensors (any device) or lists
STAT_NAMES = tuple("AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl".split())
# summarize's (AP?, IoU threshold, area range index, maxDets index) per stat
_STATS = (
    (1, None, 0, 2), (1, 0.5, 0, 2), (1, 0.75, 0, 2), (1, None, 1, 2), (1, None, 2, 2),
    (1, None, 3, 2), (0, None, 0, 0), (0, None, 0, 1), (0, None, 0, 2), (0, None, 1, 2),
    (0, None, 2, 2), (0, None, 3, 2),
)  # fmt: skip


@dataclass
class ClassEval:
    """One image and class: scores (D,) of the kept detections, highest first; matched and
    ignored (A, T, D) bool per area range and IoU threshold; gts (A,) non-ignored gt count."""

    scores: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    gts: np.ndarray


def _np(x: Array, dtype: Any = None) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return a if dtype is None else a.astype(dtype, copy=False)


def _flat(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, H * W)."""
    return masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:])))


def _areas(masks: np.ndarray) -> np.ndarray:
    """(N, ...) bool -> (N,) float64 pixel counts (a loop: count_nonzero(axis=) is slow)."""
    return np.array([np.count_nonzero(m) for m in masks], np.float64).reshape(len(masks))


def mask_iou(dt: Array, gt: Array, iscrowd: Array | None = None) -> np.ndarray:
    """(D, H, W) and (G, H, W) bool masks -> (D, G) float64 IoU (|d & g| / |d| for crowd gt),
    0 where masks do not meet; intersections are exact integer counts: float32 products of
    the flattened masks over the pixels in some d and some g, in chunks of <= 2^22 pixels."""
    d, g = _flat(_np(dt, bool)), _flat(_np(gt, bool))
    crowd = np.zeros(g.shape[0], bool) if iscrowd is None else _np(iscrowd, bool)
    if d.shape[0] == 0 or g.shape[0] == 0:
        return np.zeros((d.shape[0], g.shape[0]))
    if d.shape[1] != g.shape[1]:
        raise ValueError(f"detection masks {np.shape(dt)} and gt masks {np.shape(gt)} differ")
    cols = np.flatnonzero(d.any(0) & g.any(0))  # only pixels in some d and some g count
    inter = np.zeros((d.shape[0], g.shape[0]))
    step = max(1, min(1 << 22, (1 << 23) // (d.shape[0] + g.shape[0])))  # <= 32 MB of float32
    for s in range(0, cols.size, step):
        c = cols[s : s + step]
        inter += d[:, c].astype(np.float32) @ g[:, c].astype(np.float32).T
    da, ga = _areas(d)[:, None], _areas(g)[None, :]
    union = np.where(crowd[None, :], da, da + ga - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) int64 boxes y0, y1, x0, x1 (end exclusive); empty: 0 0 0 0."""
    n, h, w = masks.shape
    rows, cols = np.any(masks, axis=2), np.any(masks, axis=1)
    out = np.stack(
        [rows.argmax(1), h - rows[:, ::-1].argmax(1), cols.argmax(1), w - cols[:, ::-1].argmax(1)],
        1,
    ).astype(np.int64)
    out[~rows.any(1)] = 0
    return out.reshape(n, 4)


@numba.njit(cache=True)
def _match(
    ious: np.ndarray, ignore: np.ndarray, crowd: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """evaluateImg's greedy matching; gts sorted non-ignored first. -> matched gt (T, D)
    (-1: none) and the detection's ignore flag (T, D)."""
    nt, nd, ng = thresholds.size, ious.shape[0], ious.shape[1]
    dtm = np.full((nt, nd), -1, np.int64)
    dtig = np.zeros((nt, nd), np.bool_)
    for t in range(nt):
        taken = np.zeros(ng, np.bool_)
        for d in range(nd):
            best, m = min(thresholds[t], 1 - 1e-10), -1
            for g in range(ng):
                if taken[g] and not crowd[g]:
                    continue
                if m > -1 and not ignore[m] and ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m > -1:
                dtig[t, d], dtm[t, d], taken[m] = ignore[m], m, True
    return dtm, dtig


def evaluate_image(
    gt_masks: Array,
    gt_classes: Array,
    det_masks: Array,
    det_classes: Array,
    det_scores: Array,
    class_ids: Sequence[int],
    gt_iscrowd: Array | None = None,
    gt_area: Array | None = None,
    max_det: int = MAX_DETS[-1],
) -> dict[int, ClassEval]:
    """One image -> {class id: ClassEval} for the classes of `class_ids` with a gt or a
    detection. gt_masks (N, H, W) bool, gt_classes (N,), gt_iscrowd (N,) bool (default
    none), gt_area (N,) (default: mask pixel counts); det_masks (D, H, W) bool, det_classes
    (D,), det_scores (D,). Instances of other classes are left out."""
    gc, dc = _np(gt_classes, np.int64).reshape(-1), _np(det_classes, np.int64).reshape(-1)
    if gc.size == 0 and dc.size == 0:
        return {}
    gm, dm = np.ascontiguousarray(_np(gt_masks, bool)), np.ascontiguousarray(_np(det_masks, bool))
    gm = gm if gm.ndim == 3 else gm.reshape(0, *dm.shape[1:])  # no gt given as []
    dm = dm if dm.ndim == 3 else dm.reshape(0, *gm.shape[1:])
    ds = _np(det_scores, np.float64).reshape(-1)
    crowd = np.zeros(gc.size, bool) if gt_iscrowd is None else _np(gt_iscrowd, bool).reshape(-1)
    garea = _areas(gm) if gt_area is None else _np(gt_area, np.float64).reshape(-1)
    if not (gm.shape[0] == gc.size == crowd.size == garea.size and dm.shape[0] == dc.size):
        raise ValueError("masks, classes, iscrowd, area and scores must agree in length")
    if ds.size != dc.size:
        raise ValueError(f"{dc.size} detections but {ds.size} scores")
    gbox, dbox = _boxes(gm), _boxes(dm)
    out = {}
    for k in class_ids:
        gi, di = np.flatnonzero(gc == k), np.flatnonzero(dc == k)
        if gi.size == 0 and di.size == 0:
            continue
        di = di[np.argsort(-ds[di], kind="mergesort")[:max_det]]
        # all of the class's masks lie in the union of their boxes: IoU on that crop only
        b = np.concatenate([gbox[gi], dbox[di]])
        b = b[b[:, 1] > b[:, 0]]
        y0, y1, x0, x1 = (
            (b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max()) if b.size else (0, 0, 0, 0)
        )
        dmk = dm[di, y0:y1, x0:x1]
        ious = mask_iou(dmk, gm[gi, y0:y1, x0:x1], crowd[gi])
        darea = _areas(dmk)
        shape = (len(AREA_RANGES), IOU_THRESHOLDS.size, di.size)
        matched, ignored = np.zeros(shape, bool), np.zeros(shape, bool)
        gts = np.zeros(len(AREA_RANGES), np.int64)
        for a, (lo, hi) in enumerate(AREA_RANGES):
            g_ig = crowd[gi] | (garea[gi] < lo) | (garea[gi] > hi)
            order = np.argsort(g_ig, kind="mergesort")
            dtm, dtig = _match(
                np.ascontiguousarray(ious[:, order]), g_ig[order], crowd[gi][order], IOU_THRESHOLDS
            )
            outside = (darea < lo) | (darea > hi)
            matched[a], ignored[a] = dtm >= 0, dtig | ((dtm < 0) & outside[None, :])
            gts[a] = int(np.count_nonzero(~g_ig))
        out[int(k)] = ClassEval(ds[di], matched, ignored, gts)
    return out


def accumulate(
    images: Sequence[dict[int, ClassEval]], class_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image results, in image order -> precision (T, R, K, A, M) and recall (T, K, A, M),
    -1 where a class has no non-ignored gt (pycocotools' `accumulate`)."""
    nt, nr, nk = IOU_THRESHOLDS.size, RECALL_THRESHOLDS.size, len(class_ids)
    na, nm = len(AREA_RANGES), len(MAX_DETS)
    precision, recall = -np.ones((nt, nr, nk, na, nm)), -np.ones((nt, nk, na, nm))
    for k, cid in enumerate(class_ids):
        evs = [im[cid] for im in images if cid in im]
        if not evs:
            continue
        for a in range(na):
            npig = int(sum(int(e.gts[a]) for e in evs))
            if npig == 0:
                continue
            for m, max_det in enumerate(MAX_DETS):
                scores = np.concatenate([e.scores[:max_det] for e in evs])
                inds = np.argsort(-scores, kind="mergesort")
                dtm = np.concatenate([e.matched[a][:, :max_det] for e in evs], axis=1)[:, inds]
                dtig = np.concatenate([e.ignored[a][:, :max_det] for e in evs], axis=1)[:, inds]
                tp_sum = np.cumsum(dtm & ~dtig, axis=1).astype(float)
                fp_sum = np.cumsum(~dtm & ~dtig, axis=1).astype(float)
                nd = scores.size
                for t in range(nt):
                    tp, fp = tp_sum[t], fp_sum[t]
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]
                    idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
                    q = np.zeros(nr)
                    q[idx < nd] = pr[idx[idx < nd]]
                    precision[t, :, k, a, m] = q
    return precision, recall


def summarize(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """pycocotools' 12 summary numbers (STAT_NAMES order), -1 where undefined."""
    out = np.zeros(len(_STATS))
    for i, (ap, thr, a, m) in enumerate(_STATS):
        s = precision if ap else recall
        if thr is not None:
            s = s[np.where(thr == IOU_THRESHOLDS)[0]]
        s = s[..., a, m]
        out[i] = np.mean(s[s > -1]) if (s > -1).any() else -1
    return out


def instance_targets(
    semantic: Array, instances: Array, thing_ids: Sequence[int], ignore_index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W) (semantic, instances) maps (data/panoptic.py) -> gt masks (N, H, W) bool, classes
    (N,) int64, iscrowd (N,) bool: one mask per thing instance and one crowd mask per class
    with crowd pixels, in order of (class, instance)."""
    ids, segs = to_segments(_np(semantic), _np(instances), thing_ids, ignore_index)
    things = set(int(t) for t in thing_ids)
    keep = [(sid, s) for sid, s in segs.items() if s.category in things]
    sids = np.array([sid for sid, _ in keep], np.int64)
    masks = ids[None] == sids[:, None, None]
    classes = np.array([s.category for _, s in keep], np.int64)
    return masks, classes, np.array([s.iscrowd for _, s in keep], bool)


class MaskAP:
    """Streaming mask AP: `update` per image keeps its per-class results; `compute` at the
    end. Under DDP gather `images` (a picklable list) from every process and `merge`.

    Args:
        class_ids: the classes evaluated (a panoptic task: its thing classes).
        names: their names, for `per_class` (default: the ids).
        ignore_index: void value of the semantic maps given to `update_maps`.
    """

    def __init__(
        self, class_ids: Sequence[int], names: Sequence[str] | None = None, ignore_index: int = 255
    ):
        self.class_ids = [int(c) for c in class_ids]
        self.names = list(names) if names is not None else [str(c) for c in self.class_ids]
        if len(self.names) != len(self.class_ids):
            raise ValueError(f"{len(self.class_ids)} classes but {len(self.names)} names")
        self.ignore_index = ignore_index
        self.images: list[dict[int, ClassEval]] = []

    def reset(self) -> None:
        self.images = []

    def update(
        self,
        gt_masks: Array,
        gt_classes: Array,
        det_masks: Array,
        det_classes: Array,
        det_scores: Array,
        gt_iscrowd: Array | None = None,
        gt_area: Array | None = None,
    ) -> None:
        """One image; shapes as `evaluate_image`."""
        gt = (gt_masks, gt_classes)
        dets = (det_masks, det_classes, det_scores)
        self.images.append(evaluate_image(*gt, *dets, self.class_ids, gt_iscrowd, gt_area))

    def update_maps(
        self,
        semantic: Array,
        instances: Array,
        det_masks: Array,
        det_classes: Array,
        det_scores: Array,
    ) -> None:
        """One image whose gt is (H, W) (semantic, instances) maps (crowd -> iscrowd gt)."""
        masks, classes, crowd = instance_targets(
            semantic, instances, self.class_ids, self.ignore_index
        )
        self.update(masks, classes, det_masks, det_classes, det_scores, crowd)

    def merge(self, other: MaskAP | Sequence[dict[int, ClassEval]]) -> None:
        self.images.extend(other.images if isinstance(other, MaskAP) else other)

    def compute(self) -> dict[str, Any]:
        """The 12 STAT_NAMES (NaN where undefined), "per_class": name -> AP (IoU 0.5:0.95,
        all areas, 100 detections; None without gt), and "precision" (T, R, K, A, M) /
        "recall" (T, K, A, M) arrays (-1: undefined)."""
        precision, recall = accumulate(self.images, self.class_ids)
        stats = summarize(precision, recall)
        out: dict[str, Any] = {
            n: float(v) if v > -1 else float("nan") for n, v in zip(STAT_NAMES, stats, strict=True)
        }
        per_class = {}
        for k, name in enumerate(self.names):
            p = precision[:, :, k, 0, -1]
            per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else None
        return out | {"per_class": per_class, "precision": precision, "recall": recall}
