"""The BSDS500 boundary benchmark (Arbelaez et al., TPAMI 2011), reproduced.

For each threshold a predicted edge map is binarised and thinned, its pixels are matched to
each annotator's boundary pixels within 0.0075 x the image diagonal (`correspond_pixels`),
recall counts are summed over annotators and a predicted pixel counts for precision when it
matches any annotator. From the counts: ODS (one threshold for the data set), OIS (best
threshold per image) and AP, exactly as the reference's `collect_eval_bdry.m` computes them.
We use the standard precision = TP / (TP + FP) and recall = TP / (TP + FN).

Inputs, per image, are any of: a soft edge map in [0, 1] (an 8-bit PNG / 255, or an array),
a binary map, a list of segmentations (`segs`, one threshold each, scored on their
boundaries) or an ultrametric contour map (`ucm2`, double resolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np

from perpixel.tasks.edges.bsds.matching import count_matches

if TYPE_CHECKING:
    from perpixel.tasks.edges.bsds.regions import RegionResult

_ArrayOrFloat = TypeVar("_ArrayOrFloat", np.ndarray, float)


def default_thresholds(n: int) -> np.ndarray:
    """The reference's `n` thresholds: linspace(1/(n+1), 1 - 1/(n+1), n)."""
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def seg2bdry(seg: np.ndarray) -> np.ndarray:
    """Boundaries of a (H, W) label map at image size: the reference's `seg2bdry(seg, 'imageSize')`."""
    seg = np.asarray(seg)
    h, w = seg.shape
    b = np.zeros((2 * h + 1, 2 * w + 1), bool)
    ev = np.zeros((h, w), bool)
    ev[:-1] = seg[:-1] != seg[1:]
    eh = np.zeros((h, w), bool)
    eh[:, :-1] = seg[:, :-1] != seg[:, 1:]
    b[2::2, 1::2] = ev
    b[1::2, 2::2] = eh
    b[2:-1:2, 2:-1:2] = np.maximum(
        np.maximum(eh[:-1, :-1], eh[1:, :-1]), np.maximum(ev[:-1, :-1], ev[:-1, 1:])
    )
    b[0] = b[1]  # in the reference's order
    b[:, 0] = b[:, 1]
    b[-1] = b[-2]
    b[:, -1] = b[:, -2]
    return b[2::2, 2::2]


@dataclass
class EdgeInput:
    """One image's prediction, ready to score: binary maps (T, H, W) and their thresholds (T,)."""

    bmaps: np.ndarray
    thresholds: np.ndarray

    @classmethod
    def soft(cls, pb: np.ndarray, thresholds: np.ndarray | int = 99) -> EdgeInput:
        """A soft (H, W) edge map in [0, 1]; binary maps are soft maps too."""
        t = (
            default_thresholds(cast(int, thresholds))
            if np.isscalar(thresholds)
            else np.asarray(thresholds)
        )
        return cls(np.asarray(pb)[None] >= t[:, None, None], t.astype(float))

    @classmethod
    def ucm2(cls, ucm2: np.ndarray, thresholds: np.ndarray | int = 99) -> EdgeInput:
        """A (2H+1, 2W+1) ultrametric contour map, sampled at pixel positions."""
        return cls.soft(np.asarray(ucm2, float)[2::2, 2::2], thresholds)

    @classmethod
    def segs(cls, segs: list[np.ndarray]) -> EdgeInput:
        """Candidate segmentations, one threshold each (1..n), scored on their boundaries."""
        maps = np.stack([seg2bdry(s) for s in segs])
        return cls(maps, np.arange(1, len(segs) + 1, dtype=float))


def image_counts(
    pred: EdgeInput, gt_boundaries: np.ndarray, max_dist: float = 0.0075, thin: bool = True
) -> np.ndarray:
    """Benchmark counts of one image: (T, 4) int64 columns cntR, sumR, cntP, sumP.

    `gt_boundaries` is (N, H, W) bool, one map per annotator."""
    gts = np.ascontiguousarray(gt_boundaries, dtype=bool)
    if gts.ndim == 2:
        gts = gts[None]
    if pred.bmaps.shape[1:] != gts.shape[1:]:
        raise ValueError(
            f"prediction is {pred.bmaps.shape[1:]} but the ground truth is {gts.shape[1:]}"
        )
    max_px = max_dist * math.hypot(*gts.shape[1:])
    return count_matches(pred.bmaps, gts, max_px, thin)


def fmeasure(r: _ArrayOrFloat, p: _ArrayOrFloat) -> _ArrayOrFloat:
    return 2 * p * r / (p + r + ((p + r) == 0))


def ratio(cnt: np.ndarray, tot: np.ndarray) -> np.ndarray:
    """cnt / tot, 0 where tot is 0: the reference's `cnt ./ (tot + (tot==0))`."""
    return cnt / (tot + (tot == 0))


def max_f(t: np.ndarray, r: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """Best F on the curve linearly interpolated between thresholds (100 steps per segment),
    the reference's `maxF`. Returns (threshold, recall, precision, F)."""
    best = (t[0], r[0], p[0], float(fmeasure(r[0], p[0])))
    d = np.linspace(0, 1, 100)
    for i in range(1, len(t)):
        tt = t[i] * d + t[i - 1] * (1 - d)
        rr = r[i] * d + r[i - 1] * (1 - d)
        pp = p[i] * d + p[i - 1] * (1 - d)
        ff = fmeasure(rr, pp)
        k = int(np.argmax(ff))  # first maximum, as the reference's strict `f > bestF`
        if ff[k] > best[3]:
            best = (tt[k], rr[k], pp[k], float(ff[k]))
    bt, br, bp, bf = best
    return float(bt), float(br), float(bp), float(bf)


def average_precision(r: np.ndarray, p: np.ndarray) -> float:
    """Area under the PR curve sampled at recall 0:0.01:1 (zero outside the measured range)."""
    ru, idx = np.unique(r, return_index=True)
    if len(ru) <= 1:
        return 0.0
    pi = np.interp(np.linspace(0, 1, 101), ru, p[idx], left=np.nan, right=np.nan)
    return float(np.nansum(pi) * 0.01)


@dataclass
class BoundaryResult:
    """Benchmark figures for a set of images (all recall/precision in [0, 1])."""

    names: list[str]
    thresholds: np.ndarray  # (T,)
    counts: np.ndarray  # (I, T, 4): cntR, sumR, cntP, sumP per image and threshold
    recall: np.ndarray = field(init=False)  # (T,) data-set curve
    precision: np.ndarray = field(init=False)
    f: np.ndarray = field(init=False)
    ods: dict = field(init=False)  # threshold, recall, precision, f
    ois: dict = field(init=False)  # recall, precision, f
    ap: float = field(init=False)
    per_image: list[dict] = field(init=False)  # name, threshold, recall, precision, f
    regions: RegionResult | None = None  # set when the region benchmarks ran

    def __post_init__(self) -> None:
        t, c = self.thresholds, self.counts
        self.per_image, best = [], []
        for name, ci in zip(self.names, c, strict=True):
            r, p = ratio(ci[:, 0], ci[:, 1]), ratio(ci[:, 2], ci[:, 3])
            bt, br, bp, bf = max_f(t, r, p)
            self.per_image.append(
                {"name": name, "threshold": bt, "recall": br, "precision": bp, "f": bf}
            )
            best.append(ci[int(np.argmax(fmeasure(r, p)))])  # first best, as `find(F==max(F))`
        tot = c.sum(0)
        self.recall, self.precision = ratio(tot[:, 0], tot[:, 1]), ratio(tot[:, 2], tot[:, 3])
        self.f = fmeasure(self.recall, self.precision)
        bt, br, bp, bf = max_f(t, self.recall, self.precision)
        self.ods = {"threshold": bt, "recall": br, "precision": bp, "f": bf}
        b = np.sum(best, 0) if best else np.zeros(4)
        ois_r, ois_p = float(ratio(b[0], b[1])), float(ratio(b[2], b[3]))
        self.ois = {"recall": ois_r, "precision": ois_p, "f": float(fmeasure(ois_r, ois_p))}
        self.ap = average_precision(self.recall, self.precision)

    def to_dict(self) -> dict:
        return {
            "ods": self.ods,
            "ois": self.ois,
            "ap": self.ap,
            "images": len(self.names),
            "curve": {
                "threshold": self.thresholds.tolist(),
                "recall": self.recall.tolist(),
                "precision": self.precision.tolist(),
                "f": self.f.tolist(),
            },
            "per_image": self.per_image,
        }

    def summary(self) -> str:
        return (
            f"ODS F {self.ods['f']:.4f} (R {self.ods['recall']:.4f}, P {self.ods['precision']:.4f},"
            f" t {self.ods['threshold']:.3f})  OIS F {self.ois['f']:.4f}  AP {self.ap:.4f}"
        )


def format_rows(fmt: str, rows) -> str:
    """Lines of a reference text file: MATLAB's `fprintf(fid, fmt, rows')` (`%10g` etc.)."""
    return "".join(fmt % tuple(row) + "\n" for row in rows)


def reference_files(result: BoundaryResult) -> dict[str, str]:
    """The reference's text files: eval_bdry.txt, eval_bdry_img.txt, eval_bdry_thr.txt."""
    o, s = result.ods, result.ois
    bdry = [o["threshold"], o["recall"], o["precision"], o["f"], s["recall"], s["precision"]]
    bdry += [s["f"], result.ap]
    keys = ("threshold", "recall", "precision", "f")
    img = [(i + 1, *(d[k] for k in keys)) for i, d in enumerate(result.per_image)]
    thr = zip(result.thresholds, result.recall, result.precision, result.f, strict=True)
    return {
        "eval_bdry.txt": format_rows(" ".join(["%10g"] * 8), [bdry]),
        "eval_bdry_img.txt": format_rows("%10d %10g %10g %10g %10g", img),
        "eval_bdry_thr.txt": format_rows("%10g %10g %10g %10g", thr),
    }
