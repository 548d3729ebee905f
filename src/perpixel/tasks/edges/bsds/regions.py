"""The BSDS500 region benchmarks: segmentation covering, probabilistic Rand index, VOI.

A port of the reference (BSR/bench/benchmarks: `evaluation_reg_image.m`,
`match_segmentations.m`, `match_segmentations2.m`, `collect_eval_reg.m`) that gives the same
figures. An image's input is either a list of candidate segmentations (a `segs` file: the
thresholds are then 1..n) or an ultrametric contour map `ucm2` at double resolution,
(2H+1, 2W+1): at threshold t the segmentation is the connected components of `ucm2 <= t`
(8-connected, MATLAB's `bwlabel` default) sampled at the pixel sites `[1::2, 1::2]`, with
thresholds `linspace(1/(n+1), 1 - 1/(n+1), n)`.

Against the N human segmentations G_1..G_N of an image, per threshold:

- covering G -> S (`cnt_r / sum_r`): every region of every G_k weighted by its area and
  scored by its best Jaccard overlap with a region of S; covering S -> G (`cnt_p / sum_p`):
  every region of S scored by its best overlap with any region of any G_k;
- PRI: the Rand index of S against each G_k, averaged over k; VOI likewise (bits).

The reference passes each image's figures through text files printed with `%10g` (six
significant digits) before collecting them; `reference_rounding=True` does the same, so the
collected figures agree with the reference's to the printed precision.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perpixel.io import write_json, write_text
from perpixel.tasks.edges.bsds.boundaries import format_rows, ratio
from perpixel.tasks.edges.bsds.files import GroundTruth

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class ImageRegionEval:
    """One image's region figures; arrays are (T,) over thresholds."""

    thresholds: np.ndarray
    cnt_r: np.ndarray  # sum over GT regions of area x best Jaccard overlap with S
    sum_r: np.ndarray  # total area of GT regions (N x H x W)
    cnt_p: np.ndarray  # sum over regions of S of area x best overlap with any GT region
    sum_p: np.ndarray  # total area of the regions of S
    cnt_r_best: float  # as cnt_r, each GT region taking its best overlap over all thresholds
    ri: np.ndarray  # Rand index averaged over the annotators
    voi: np.ndarray  # variation of information (bits) averaged over the annotators


@dataclass
class RegionResult:
    """Dataset figures, named after the reference's output files.

    `cover` = (ODS threshold, ODS covering, OIS covering, best covering) as in
    `eval_cover.txt`: covering G -> S at the dataset-best threshold; with each image at its
    own best threshold; with each GT region at its own best threshold.
    `ri_voi` = (threshold, PRI, per-image-best PRI, threshold, VOI, per-image-best VOI).
    """

    names: list[str]
    images: list[ImageRegionEval]
    thresholds: np.ndarray  # (T,)
    cover_thr: np.ndarray  # (T,) dataset covering G -> S per threshold
    cover_img: np.ndarray  # (I, 4): index from 1, best threshold, covering G->S, S->G there
    cover: tuple[float, float, float, float]
    ri_thr: np.ndarray  # (T,) PRI averaged over images
    voi_thr: np.ndarray  # (T,) VOI averaged over images
    ri_voi: tuple[float, float, float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        t, c, c_ois, c_best = self.cover
        rt, ri, ri_ois, vt, voi, voi_ois = self.ri_voi
        return {
            "covering": {"ods_threshold": t, "ods": c, "ois": c_ois, "best": c_best},
            "pri": {"ods_threshold": rt, "ods": ri, "ois": ri_ois},
            "voi": {"ods_threshold": vt, "ods": voi, "ois": voi_ois},
            "thresholds": self.thresholds.tolist(),
            "covering_per_threshold": self.cover_thr.tolist(),
            "pri_per_threshold": self.ri_thr.tolist(),
            "voi_per_threshold": self.voi_thr.tolist(),
            "images": [
                {"name": n, "threshold": row[1], "covering": row[2], "covering_s_to_g": row[3]}
                for n, row in zip(self.names, self.cover_img.tolist(), strict=True)
            ],
        }


def ucm_thresholds(n: int) -> np.ndarray:
    """The reference's n thresholds for a ucm2: `linspace(1/(n+1), 1 - 1/(n+1), n)`."""
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def segment_ucm2(ucm2: np.ndarray, threshold: float) -> np.ndarray:
    """(2H+1, 2W+1) ucm2 -> (H, W) int32 region ids from 1 at `threshold` (`bwlabel`, 8-conn)."""
    from scipy import ndimage

    labels, _ = ndimage.label(ucm2 <= threshold, structure=_EIGHT)
    return labels[1::2, 1::2].astype(np.int32)


def _pair_counts(ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of non-negative `ids` below `size` and how often each occurs."""
    if size <= 1 << 22:
        counts = np.bincount(ids, minlength=size)
        keys = np.flatnonzero(counts)
        return keys, counts[keys].astype(np.float64)
    keys, counts = np.unique(ids, return_counts=True)
    return keys, counts.astype(np.float64)


def _compare(seg: np.ndarray, gt_ids: np.ndarray, gt_areas: np.ndarray, gt_offsets: np.ndarray):
    """Figures of one segmentation against all annotators.

    Args:
        seg: (H, W) non-negative int region ids.
        gt_ids: (N, H*W) int64 GT region ids, annotator k's shifted by `gt_offsets[k]`.
        gt_areas: (R,) areas of the GT labels 0..max of every annotator, stacked.
        gt_offsets: (N,) where each annotator's labels start in `gt_areas`.

    Returns:
        (cnt_r, best overlap per GT label (R,), cnt_p, sum_p, RI, VOI).
    """
    n_ann, npix = gt_ids.shape
    s = seg.reshape(-1).astype(np.int64)
    ns = int(s.max()) + 1
    seg_area = np.bincount(s, minlength=ns).astype(np.float64)
    keys, c = _pair_counts((gt_ids * ns + s).reshape(-1), len(gt_areas) * ns)
    gi, si = keys // ns, keys % ns
    ann = np.searchsorted(gt_offsets, gi, side="right") - 1
    gt_label = gi - gt_offsets[ann]

    # covering: Jaccard of every overlapping pair; label 0 is not a region (regionprops)
    jac = c / (gt_areas[gi] + seg_area[si] - c)
    jac[(gt_label == 0) | (si == 0)] = 0.0
    match_gt = np.zeros(len(gt_areas))
    np.maximum.at(match_gt, gi, jac)
    match_seg = np.zeros(ns)
    np.maximum.at(match_seg, si, jac)
    region = np.ones(len(gt_areas), dtype=bool)
    region[gt_offsets] = False
    cnt_r = float(np.sum(gt_areas[region] * match_gt[region]))
    cnt_p = float(np.sum(seg_area[1:] * match_seg[1:]))
    sum_p = float(np.sum(seg_area[1:]))

    # Rand index and VOI per annotator (Allen Yang's formulas, as the reference)
    sum_sq_pairs = np.bincount(ann, weights=c * c, minlength=n_ann)
    sum_sq_gt = np.bincount(
        np.searchsorted(gt_offsets, np.arange(len(gt_areas)), side="right") - 1,
        weights=gt_areas * gt_areas,
        minlength=n_ann,
    )
    sum_sq_seg = float(np.sum(seg_area * seg_area))
    ri = 1.0 - (sum_sq_seg / 2 + sum_sq_gt / 2 - sum_sq_pairs) / (npix * (npix - 1) / 2)

    p_seg = seg_area / npix
    h_seg = -np.sum(p_seg[p_seg > 0] * np.log2(p_seg[p_seg > 0]))
    p_gt = gt_areas / npix
    ent = np.zeros_like(p_gt)
    ent[p_gt > 0] = -p_gt[p_gt > 0] * np.log2(p_gt[p_gt > 0])
    h_gt = np.add.reduceat(ent, gt_offsets)
    joint = c / npix
    mi = np.bincount(ann, weights=joint * np.log2(joint / (p_gt[gi] * p_seg[si])), minlength=n_ann)
    voi = h_seg + h_gt - 2 * mi
    return cnt_r, match_gt, cnt_p, sum_p, float(np.mean(ri)), float(np.mean(voi))


def evaluate_image(
    pred: np.ndarray | list[np.ndarray], gt: GroundTruth, nthresh: int = 99
) -> ImageRegionEval:
    """Region figures of one image (`evaluation_reg_image.m`).

    Args:
        pred: a (2H+1, 2W+1) float ucm2, evaluated at `nthresh` thresholds; or a list of
            (H, W) integer segmentations (or an (n, H, W) integer array), thresholds 1..n.
        gt: the image's annotations; `gt.segmentations` is (N, H, W).
    """
    gts = np.asarray(gt.segmentations)
    _, h, w = gts.shape
    if gts.min() < 0:
        raise ValueError("ground-truth region ids must be non-negative")
    ucm: np.ndarray | None = None  # pred when it is a ucm2
    segs: list[np.ndarray] = []  # pred's segmentations otherwise
    if isinstance(pred, np.ndarray) and pred.ndim == 2 and pred.shape == (2 * h + 1, 2 * w + 1):
        ucm = pred
        thresholds = ucm_thresholds(nthresh)
    else:
        segs = [np.asarray(x) for x in pred]
        for x in segs:
            if x.shape != (h, w):
                raise ValueError(f"segmentation of shape {x.shape}, ground truth is {(h, w)}")
            if not np.issubdtype(x.dtype, np.integer) or x.min() < 0:
                raise ValueError("segmentations must hold non-negative integer region ids")
        thresholds = np.arange(1, len(segs) + 1, dtype=np.float64)
    gt_max = gts.reshape(len(gts), -1).max(1).astype(np.int64)
    gt_offsets = np.concatenate([[0], np.cumsum(gt_max + 1)[:-1]]).astype(np.int64)
    gt_areas = np.concatenate(
        [np.bincount(g.reshape(-1), minlength=m + 1) for g, m in zip(gts, gt_max, strict=True)]
    ).astype(np.float64)
    region = np.ones(len(gt_areas), dtype=bool)
    region[gt_offsets] = False
    sum_r = float(gt_areas[region].sum())
    gt_ids = gts.reshape(len(gts), -1).astype(np.int64) + gt_offsets[:, None]

    nt = len(thresholds)
    out = {k: np.zeros(nt) for k in ("cnt_r", "sum_r", "cnt_p", "sum_p", "ri", "voi")}
    best_gt = np.zeros(len(gt_areas))
    for t in range(nt):
        seg = segment_ucm2(ucm, thresholds[t]) if ucm is not None else segs[t]
        cnt_r, match_gt, cnt_p, sum_p, ri, voi = _compare(seg, gt_ids, gt_areas, gt_offsets)
        out["cnt_r"][t], out["sum_r"][t], out["cnt_p"][t], out["sum_p"][t] = (
            cnt_r,
            sum_r,
            cnt_p,
            sum_p,
        )
        out["ri"][t], out["voi"][t] = ri, voi
        best_gt = np.maximum(best_gt, match_gt)
    cnt_r_best = float(np.sum(gt_areas[region] * best_gt[region]))
    return ImageRegionEval(thresholds=thresholds, cnt_r_best=cnt_r_best, **out)


def _g(x: np.ndarray | float) -> np.ndarray:
    """Round like the reference's `%10g` text files (six significant digits)."""
    return np.array([float(format(v, "g")) for v in np.ravel(x)]).reshape(np.shape(x))


def collect(
    names: list[str], images: list[ImageRegionEval], reference_rounding: bool = True
) -> RegionResult:
    """Dataset figures from per-image ones (`collect_eval_reg.m`), images in `names` order."""
    if not images:
        raise ValueError("no images to collect")
    nt = len(images[0].thresholds)
    for n, im in zip(names, images, strict=True):
        if len(im.thresholds) != nt:
            raise ValueError(f"image {n} has {len(im.thresholds)} thresholds, others {nt}")
    rnd = _g if reference_rounding else (lambda v: np.asarray(v, dtype=np.float64))

    tot = {k: np.zeros(nt) for k in ("cnt_r", "sum_r", "ri", "voi")}
    best = {"cnt_r": 0.0, "sum_r": 0.0, "cnt_r_total": 0.0, "ri": 0.0, "voi": 0.0}
    rows = []
    thresholds = rnd(images[0].thresholds)
    for i, im in enumerate(images):
        thresholds = rnd(im.thresholds)
        cnt_r, sum_r, cnt_p, sum_p = (rnd(v) for v in (im.cnt_r, im.sum_r, im.cnt_p, im.sum_p))
        r, p = ratio(cnt_r, sum_r), ratio(cnt_p, sum_p)
        k = int(np.argmax(r))  # first maximum, as MATLAB's max
        rows.append([i + 1, thresholds[k], r[k], p[k]])
        tot["cnt_r"] += cnt_r
        tot["sum_r"] += sum_r
        last = int(np.flatnonzero(r == r.max())[-1])  # find(R == max(R)), last
        best["cnt_r"] += cnt_r[last]
        best["sum_r"] += sum_r[last]
        best["cnt_r_total"] += float(rnd(im.cnt_r_best))
        ri, voi = rnd(im.ri), rnd(im.voi)
        tot["ri"] += ri
        tot["voi"] += voi
        best["ri"] += ri.max()
        best["voi"] += voi.min()

    cover_thr = ratio(tot["cnt_r"], tot["sum_r"])
    k = int(np.argmax(cover_thr))
    r_best = best["cnt_r"] / (best["sum_r"] + (best["sum_r"] == 0))
    r_best_total = best["cnt_r_total"] / tot["sum_r"][0]
    n_img = len(images)
    ri_thr, voi_thr = tot["ri"] / n_img, tot["voi"] / n_img
    kr, kv = int(np.argmax(ri_thr)), int(np.argmin(voi_thr))
    return RegionResult(
        names=list(names),
        images=list(images),
        thresholds=thresholds,
        cover_thr=cover_thr,
        cover_img=np.array(rows, dtype=np.float64),
        cover=(float(thresholds[k]), float(cover_thr[k]), float(r_best), float(r_best_total)),
        ri_thr=ri_thr,
        voi_thr=voi_thr,
        ri_voi=(
            float(thresholds[kr]),
            float(ri_thr[kr]),
            best["ri"] / n_img,
            float(thresholds[kv]),
            float(voi_thr[kv]),
            best["voi"] / n_img,
        ),
    )


def _evaluate_star(args) -> ImageRegionEval:
    return evaluate_image(*args)


def region_bench(
    inputs: dict[str, np.ndarray | list[np.ndarray]],
    gts: dict[str, GroundTruth],
    nthresh: int = 99,
    workers: int = 1,
    reference_rounding: bool = True,
) -> RegionResult:
    """Run the region benchmarks on a data set.

    Args:
        inputs: image name -> a (2H+1, 2W+1) ucm2 or a list of (H, W) segmentations.
        gts: image name -> its annotations; every name in `inputs` must have one.
        nthresh: thresholds for ucm2 inputs (segmentation lists use 1..n).
        workers: processes across images (1 = in this process).
        reference_rounding: round per-image figures as the reference's text files do.

    Images are collected in sorted-name order, as the reference lists its files.
    """
    names = sorted(inputs)
    missing = [n for n in names if n not in gts]
    if missing:
        raise KeyError(f"no ground truth for {missing[:5]}")
    jobs = [(inputs[n], gts[n], nthresh) for n in names]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            images = list(pool.map(_evaluate_star, jobs))
    else:
        images = [_evaluate_star(j) for j in jobs]
    return collect(names, images, reference_rounding)


def format_region_results(result: RegionResult) -> dict[str, str]:
    """File name -> text of the reference's five output files (`collect_eval_reg.m`)."""
    th = result.thresholds
    img = [(int(r[0]), r[1], r[2], r[3]) for r in result.cover_img]
    return {
        "eval_cover.txt": format_rows("%10g %10g %10g %10g", [result.cover]),
        "eval_cover_img.txt": format_rows("%10d %10g %10g %10g", img),
        "eval_cover_th.txt": format_rows("%10g %10g", zip(th, result.cover_thr, strict=True)),
        "eval_RI_VOI.txt": format_rows("%10g %10g %10g %10g %10g %10g", [result.ri_voi]),
        "eval_RI_VOI_thr.txt": format_rows(
            "%10g %10g %10g", zip(th, result.ri_thr, result.voi_thr, strict=True)
        ),
    }


def write_region_results(result: RegionResult, out_dir: str | Path) -> list[Path]:
    """Write the reference's text files and `eval_regions.json` into `out_dir`, atomically."""
    out_dir = Path(out_dir)
    paths = [write_text(out_dir / n, t) for n, t in format_region_results(result).items()]
    paths.append(write_json(out_dir / "eval_regions.json", result.to_dict()))
    return paths
