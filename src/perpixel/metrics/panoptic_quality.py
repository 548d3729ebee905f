"""Panoptic quality (PQ = SQ x RQ, Kirillov et al. 2019), exactly as COCO panopticapi and
cityscapesScripts' `evalPanopticSemanticLabeling.py` (`pq_compute_single_core`, `PQStat`).

Per image, from the (gt, pred) pixel intersection counts of segments (one numba pass):

- a gt and a pred segment of the same class match when IoU > 0.5, where the union leaves out
  the pred segment's pixels on gt void (id 0): IoU = I / (|p| + |g| - I - |p on void|);
- gt crowd segments are never matched and never FN; each unmatched non-crowd gt is a FN;
- an unmatched pred segment is a FP unless more than half of its area lies on gt void plus
  the crowd region of its class (one per class: the last crowd segment listed wins);
- per class: tp, fp, fn and the sum of matched IoUs; PQ = sum IoU / (tp + fp/2 + fn/2),
  SQ = sum IoU / tp (0 without tp), RQ = tp / (tp + fp/2 + fn/2). Averages run over the
  classes with tp + fp + fn > 0 (All, Things, Stuff).

gt areas are pixel counts of the map (the reference reads them from the JSON, the same for
well-formed files); pass `gt_areas` to use given ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from torchmetrics import Metric

from perpixel.data.panoptic import Segment, read_panoptic_png, rgb_to_id, to_segments
from perpixel.data.png import map_files
from perpixel.errors import DataError

Map = np.ndarray | torch.Tensor  # an (H, W) or (B, H, W) map


@dataclass
class PQStats:
    """Per-class sums over images, class id = index: matched IoU sum and tp, fp, fn counts."""

    iou: np.ndarray  # (C,) float64
    tp: np.ndarray  # (C,) int64
    fp: np.ndarray  # (C,) int64
    fn: np.ndarray  # (C,) int64

    @classmethod
    def zeros(cls, num_classes: int) -> PQStats:
        z = np.zeros(num_classes, np.int64)
        return cls(np.zeros(num_classes), z.copy(), z.copy(), z.copy())

    def __iadd__(self, other: PQStats) -> PQStats:
        self.iou = self.iou + other.iou
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn
        return self


@numba.njit(cache=True, nogil=True)
def _index(keys: np.ndarray, v: np.int64, miss: int) -> int:
    if v == 0:
        return 0
    j = np.searchsorted(keys, v)
    if j < keys.size and keys[j] == v:
        return int(j + 1)
    return miss


@numba.njit(cache=True, nogil=True)
def _pair_counts(
    gt: np.ndarray, pred: np.ndarray, gt_keys: np.ndarray, pred_keys: np.ndarray
) -> tuple[np.ndarray, int]:
    """gt, pred (P,) segment ids; keys: sorted segment ids. -> counts (Ng + 2, Np + 1):
    row 0 / column 0 = void, row Ng + 1 = gt ids not in `gt_keys`; and the first pred id
    not in `pred_keys` (-1: none)."""
    ng, npr = gt_keys.size, pred_keys.size
    counts = np.zeros((ng + 2, npr + 1), np.int64)
    last_g, last_p, gi, pi = np.int64(-1), np.int64(-1), 0, 0
    for i in range(gt.size):
        g, p = np.int64(gt[i]), np.int64(pred[i])
        if g != last_g:
            last_g, gi = g, _index(gt_keys, g, ng + 1)
        if p != last_p:
            last_p, pi = p, _index(pred_keys, p, -1)
            if pi < 0:
                return counts, int(p)
        counts[gi, pi] += 1
    return counts, -1


def _pixels(ids: np.ndarray) -> np.ndarray:
    """(H, W) integer ids or (H, W, 3) uint8 PNG colours -> (P,) ids."""
    a = np.ascontiguousarray(ids)
    if a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8:
        return rgb_to_id(a).reshape(-1)
    if a.ndim != 2 or a.dtype.kind not in "iu":
        raise ValueError(f"a segment-id map is (H, W) integers or (H, W, 3) uint8, not {a.shape}")
    return a.reshape(-1)


def _table(segments: Mapping[int, Segment], num_classes: int, what: str) -> tuple:
    """-> sorted ids, their categories, crowd flags, and their positions in `segments`."""
    ids = np.fromiter((int(k) for k in segments), np.int64, len(segments))
    cats = np.fromiter((int(s.category) for s in segments.values()), np.int64, len(segments))
    crowd = np.fromiter((bool(s.iscrowd) for s in segments.values()), bool, len(segments))
    if (ids <= 0).any() or (ids >= 1 << 62).any():
        raise ValueError(f"{what} segment ids must be positive (0 is void)")
    bad = (cats < 0) | (cats >= num_classes)
    if bad.any():
        raise ValueError(f"{what} segment classes {sorted(set(cats[bad].tolist()))} not in 0..C-1")
    order = np.argsort(ids, kind="stable")
    return ids[order], cats[order], crowd[order], order


def pq_stats(
    gt_ids: np.ndarray,
    gt_segments: Mapping[int, Segment],
    pred_ids: np.ndarray,
    pred_segments: Mapping[int, Segment],
    num_classes: int,
    gt_areas: Mapping[int, int] | None = None,
) -> PQStats:
    """One image's per-class PQ sums (pred `iscrowd` flags are not used).

    Args:
        gt_ids, pred_ids: (H, W) integer segment ids (0 = void), or (H, W, 3) uint8 COCO
            panoptic PNG colours.
        gt_segments, pred_segments: segment id -> Segment(category, iscrowd); ids in a pred
            map must be listed and listed pred segments must have pixels (as the reference).
        num_classes: C; categories are 0..C-1.
        gt_areas: gt segment id -> area in pixels (default and missing: counted on the map).
    """
    g, p = _pixels(gt_ids), _pixels(pred_ids)
    if g.size != p.size:
        raise ValueError(f"gt map {np.shape(gt_ids)} and pred map {np.shape(pred_ids)} differ")
    gk, gcat, gcrowd, gpos = _table(gt_segments, num_classes, "gt")
    pk, pcat, _, _ = _table(pred_segments, num_classes, "pred")
    counts, bad = _pair_counts(g, p, gk, pk)
    if bad >= 0:
        raise ValueError(f"pred segment id {bad} is in the map but not in the segments")
    ng = gk.size
    inter, void = counts[1 : ng + 1, 1:], counts[0, 1:]
    parea = counts[:, 1:].sum(0)
    if (parea == 0).any():
        raise ValueError(f"pred segments {pk[parea == 0].tolist()} are listed but not in the map")
    garea = counts[1 : ng + 1].sum(1)
    if gt_areas is not None:
        garea = np.array([gt_areas.get(int(i), int(a)) for i, a in zip(gk, garea, strict=True)])
        garea = garea.astype(np.int64).reshape(ng)
    same = (gcat[:, None] == pcat[None, :]) & ~gcrowd[:, None] & (inter > 0)
    union = parea[None, :] + garea[:, None] - inter - void[None, :]
    iou = np.divide(inter, union, out=np.zeros(inter.shape), where=same & (union > 0))
    mg, mp = np.nonzero(same & (iou > 0.5))
    c = num_classes
    out = PQStats.zeros(c)
    out.tp = np.bincount(gcat[mg], minlength=c).astype(np.int64)
    out.iou = np.bincount(gcat[mg], weights=iou[mg, mp], minlength=c).astype(np.float64)
    g_matched = np.zeros(ng, bool)
    g_matched[mg] = True
    p_matched = np.zeros(pk.size, bool)
    p_matched[mp] = True
    out.fn = np.bincount(gcat[~g_matched & ~gcrowd], minlength=c).astype(np.int64)
    crowd_row = np.full(c, -1, np.int64)  # per class: its crowd segment, last listed wins
    for r in sorted(np.flatnonzero(gcrowd), key=lambda r: gpos[r]):
        crowd_row[gcat[r]] = r
    cr = crowd_row[pcat]
    ignored = void + np.where(cr >= 0, inter[np.maximum(cr, 0), np.arange(pk.size)], 0)
    fp = ~p_matched & ~(ignored / parea > 0.5)
    out.fp = np.bincount(pcat[fp], minlength=c).astype(np.int64)
    return out


@numba.njit(cache=True, nogil=True)
def _segment_keys(
    sem: np.ndarray, inst: np.ndarray, is_thing: np.ndarray, ignore: int, mult: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(P,) classes, instances -> (P,) segment ids (void 0, else class * mult + 1, + the
    instance for things), the pixel count of each id, and the first bad class (-1: none)."""
    keys, counts = np.empty(sem.size, np.int64), np.zeros(is_thing.size * mult + 1, np.int64)
    for i in range(sem.size):
        c = np.int64(sem[i])
        if c == ignore:
            keys[i] = 0
            continue
        if c < 0 or c >= is_thing.size or inst[i] < 0 or inst[i] >= mult:
            return keys, counts, int(c)
        keys[i] = c * mult + 1 + (np.int64(inst[i]) if is_thing[c] else 0)
        counts[keys[i]] += 1
    return keys, counts, -1


def _map_segments(sem: np.ndarray, inst: np.ndarray, things: Sequence[int], ignore: int, c: int):
    """`to_segments` in one numba pass (ids: class * mult + 1 + instance) when ids stay small."""
    sem, inst = np.asarray(sem), np.asarray(inst)
    mult = int(inst.max(initial=0)) + 1
    if c * mult > 1 << 22:
        return to_segments(sem, inst, things, ignore)
    is_thing = np.zeros(c, bool)
    is_thing[[t for t in things if t < c]] = True
    s, k = (np.ascontiguousarray(a).reshape(-1) for a in (sem, inst))
    keys, counts, bad = _segment_keys(s, k, is_thing, ignore, mult)
    if bad != -1:
        raise ValueError(f"class {bad} outside 0..{c - 1} or a negative instance id")
    ids = np.flatnonzero(counts)
    cat, ins = (ids - 1) // mult, (ids - 1) % mult
    crowd = is_thing[cat] & (ins == 0)
    segs = {int(i): Segment(int(k), bool(w)) for i, k, w in zip(ids, cat, crowd, strict=True)}
    return keys.reshape(sem.shape), segs


def pq_stats_from_maps(
    pred_semantic: np.ndarray, pred_instances: np.ndarray, semantic: np.ndarray,
    instances: np.ndarray, things: Sequence[int], ignore_index: int, num_classes: int,
) -> PQStats:  # fmt: skip
    """`pq_stats` of (H, W) (semantic, instances) maps, pred and gt (see data/panoptic.py)."""
    gi, gs = _map_segments(semantic, instances, things, ignore_index, num_classes)
    pi, ps = _map_segments(pred_semantic, pred_instances, things, ignore_index, num_classes)
    return pq_stats(gi, gs, pi, ps, num_classes)


def pq_from_stats(
    stats: PQStats, names: Sequence[str] | Mapping[int, str], thing_ids: Iterable[int]
) -> dict[str, Any]:
    """PQ, SQ, RQ of All / Things / Stuff and per class, as the reference's `pq_average`.

    names: class names by class id, or {class id: name} to report only those classes.
    Returns "pq", "sq", "rq", "n" (classes averaged), the same with suffixes "_things" and
    "_stuff" (NaN where n = 0), and "per_class": name -> {pq, sq, rq (None where
    tp + fp + fn = 0), tp, fp, fn}.
    """
    items = list(names.items()) if isinstance(names, Mapping) else list(enumerate(names))
    things = set(int(t) for t in thing_ids)
    per_class: dict[str, dict] = {}
    sums = {k: [0.0, 0.0, 0.0, 0] for k in ("", "_things", "_stuff")}
    for cid, name in items:
        tp, fp, fn = (int(a[cid]) if cid < a.size else 0 for a in (stats.tp, stats.fp, stats.fn))
        iou = float(stats.iou[cid]) if cid < stats.iou.size else 0.0
        row: dict[str, Any] = {"pq": None, "sq": None, "rq": None, "tp": tp, "fp": fp, "fn": fn}
        if tp + fp + fn > 0:
            den = tp + 0.5 * fp + 0.5 * fn
            row.update(pq=iou / den, sq=iou / tp if tp != 0 else 0.0, rq=tp / den)
            for key in ("", "_things" if cid in things else "_stuff"):
                new = (row["pq"], row["sq"], row["rq"], 1)
                sums[key] = [a + b for a, b in zip(sums[key], new, strict=True)]
        per_class[name] = row
    out: dict[str, Any] = {}
    for key, (pq, sq, rq, n) in sums.items():
        for m, v in (("pq", pq), ("sq", sq), ("rq", rq)):
            out[f"{m}{key}"] = v / n if n else float("nan")
        out[f"n{key}"] = int(n)
    return out | {"per_class": per_class}


class PanopticQuality(Metric):
    """Streaming PQ: per-class sums as states, summed across processes under DDP.

    `update(pred_semantic, pred_instances, semantic, instances)` with (H, W) or (B, H, W)
    maps (tensors or arrays, see data/panoptic.py); `compute()` -> `pq_from_stats`'s dict.
    """

    full_state_update = False  # states: iou (C,) float64, tp / fp / fn (C,) int64

    def __init__(self, names: Sequence[str], thing_ids: Sequence[int], ignore_index: int = 255):
        super().__init__()
        self.names, self.thing_ids = list(names), [int(t) for t in thing_ids]
        self.ignore_index = ignore_index
        c = len(self.names)
        self.add_state("iou", default=torch.zeros(c, dtype=torch.float64), dist_reduce_fx="sum")
        for s in ("tp", "fp", "fn"):
            self.add_state(s, default=torch.zeros(c, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, pred_semantic: Map, pred_instances: Map, semantic: Map, instances: Map
    ) -> None:
        maps = [
            x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            for x in (pred_semantic, pred_instances, semantic, instances)
        ]
        if maps[0].ndim == 2:
            maps = [m[None] for m in maps]
        total = PQStats.zeros(len(self.names))
        for ps, pi, gs, gi in zip(*maps, strict=True):
            total += pq_stats_from_maps(
                ps, pi, gs, gi, self.thing_ids, self.ignore_index, len(self.names)
            )
        for name in ("iou", "tp", "fp", "fn"):
            state = getattr(self, name)
            state += torch.from_numpy(getattr(total, name)).to(state.device, state.dtype)

    def compute(self) -> dict[str, Any]:
        stats = PQStats(*(getattr(self, s).cpu().numpy() for s in ("iou", "tp", "fp", "fn")))
        return pq_from_stats(stats, self.names, self.thing_ids)


# --- COCO panoptic files (PNG + JSON), as the reference's pq_compute ----------------------


def _segments(info: list[dict]) -> tuple[dict[int, Segment], dict[int, int]]:
    segs = {int(s["id"]): Segment(int(s["category_id"]), bool(s.get("iscrowd", 0))) for s in info}
    return segs, {int(s["id"]): int(s["area"]) for s in info if "area" in s}


def _files_stats(pairs: list[tuple], num_classes: int) -> PQStats:
    total = PQStats.zeros(num_classes)
    for gt_png, gt_info, pred_png, pred_info in pairs:
        gs, areas = _segments(gt_info)
        ps, _ = _segments(pred_info)
        try:
            total += pq_stats(
                read_panoptic_png(gt_png),
                gs,
                read_panoptic_png(pred_png),
                ps,
                num_classes,
                areas or None,
            )
        except (ValueError, KeyError) as e:
            raise DataError(pred_png, str(e)) from None
    return total


def pq_compute_files(
    gt_json: str | Path,
    pred_json: str | Path,
    gt_folder: str | Path | None = None,
    pred_folder: str | Path | None = None,
    workers: int = 1,
) -> tuple[PQStats, list[dict]]:
    """PQ sums of COCO panoptic files (PNGs beside `<json stem>/` unless folders are given),
    over the gt's images, `workers` processes. -> (stats indexed by category id, the gt
    JSON's categories); then `pq_from_stats(stats, {c["id"]: c["name"]}, thing ids)`."""
    gt_json, pred_json = Path(gt_json), Path(pred_json)
    gt_dir = Path(gt_folder) if gt_folder else gt_json.with_suffix("")
    pred_dir = Path(pred_folder) if pred_folder else pred_json.with_suffix("")
    docs = []
    for path in (gt_json, pred_json):
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise DataError(path, f"cannot read the panoptic JSON ({e})") from None
    gt_doc, pred_doc = docs
    cats = list(gt_doc.get("categories", []))
    num_classes = max((int(c["id"]) for c in cats), default=-1) + 1
    preds = {a["image_id"]: a for a in pred_doc.get("annotations", [])}
    pairs = []
    for a in gt_doc.get("annotations", []):
        p = preds.get(a["image_id"])
        if p is None:
            raise DataError(pred_json, f"no prediction for image {a['image_id']}")
        gt_png, pred_png = gt_dir / a["file_name"], pred_dir / p["file_name"]
        unknown = {s["category_id"] for s in p["segments_info"]} - {c["id"] for c in cats}
        if unknown:
            raise DataError(pred_json, f"image {a['image_id']}: unknown categories {unknown}")
        pairs.append((gt_png, a["segments_info"], pred_png, p["segments_info"]))
    total = PQStats.zeros(num_classes)
    for s in map_files(_files_stats, pairs, workers, num_classes):
        total += s
    return total, cats
