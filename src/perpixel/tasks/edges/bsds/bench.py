"""Score a folder of edge predictions against BSDS ground truth: `perpixel edges bench`.

Predictions are matched to ground-truth files by name (`<id>.png` or `<id>.mat` or `<id>.npy`
for `groundTruth/<id>.mat`). The kind of each is told from its type and content:

- image file (PNG, ...): a soft edge map, value / max (binary maps are soft maps too)
- `.mat` with `ucm2`: an ultrametric contour map (double resolution); with `segs`: segmentations
- `.npy`: (H, W) float or bool = soft or binary map; (2H+1, 2W+1) = ucm2; (T, H, W) int = segs
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from perpixel.errors import DataError
from perpixel.io import write_json, write_text
from perpixel.tasks.edges.bsds.boundaries import (
    BoundaryResult,
    EdgeInput,
    image_counts,
    reference_files,
)
from perpixel.tasks.edges.bsds.files import (
    GroundTruth,
    mat_kind,
    read_groundtruth,
    read_segs,
    read_ucm2,
)

PRED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".mat", ".npy")


def read_prediction(
    path: str | Path, shape: tuple[int, int], thresholds: int | np.ndarray = 99, nms: bool = False
):
    """Read one prediction file of any kind as an `EdgeInput` for an image of (H, W) `shape`.

    `nms` thins soft maps by edge non-maximum suppression first (the HED evaluation protocol).
    Returns (EdgeInput, kind, raw) with kind 'soft', 'ucm2' or 'segs' and raw the array read
    (the ucm2, or the (T, H, W) segmentations)."""
    path = Path(path)
    h, w = shape
    if path.suffix == ".mat":
        kind = mat_kind(path)
        if kind == "ucm2":
            arr = read_ucm2(path)
        elif kind == "segs":
            arr = np.stack(read_segs(path))
        else:
            raise DataError(path, "holds ground truth, not a prediction")
    elif path.suffix == ".npy":
        try:
            arr = np.load(path)
        except Exception as e:
            raise DataError(path, f"cannot read array ({e})") from None
        kind = (
            "segs" if arr.ndim == 3 else "ucm2" if arr.shape == (2 * h + 1, 2 * w + 1) else "soft"
        )
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("I") if im.mode.startswith("I;16") else im)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(path, f"cannot read image ({e})") from None
        if arr.ndim == 3:
            arr = arr[..., :3].mean(-1)
        kind = "soft"
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
    expected = (2 * h + 1, 2 * w + 1) if kind == "ucm2" else (h, w)
    if arr.shape[-2:] != expected:
        raise DataError(path, f"is {arr.shape[-2:]} but the ground truth needs {expected} ({kind})")
    if kind == "segs":
        return EdgeInput.segs(list(arr)), kind, arr
    if kind == "ucm2":
        return EdgeInput.ucm2(arr, thresholds), kind, arr
    arr = arr.astype(float)
    if arr.min() < 0 or arr.max() > 1:
        raise DataError(path, f"values must lie in [0, 1], found [{arr.min():g}, {arr.max():g}]")
    if nms:
        from perpixel.tasks.edges.nms import thin_edges

        arr = thin_edges(arr.astype(np.float32)).astype(float)
    return EdgeInput.soft(arr, thresholds), kind, arr


def pair_files(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, prediction, ground truth) for every ground-truth file; error if any lacks one."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d in (pred_dir, gt_dir):
        if not d.is_dir():
            raise DataError(d, "folder not found")
    gts = sorted(gt_dir.glob("*.mat"))
    if not gts:
        raise DataError(gt_dir, "no ground-truth .mat files in this folder")
    preds: dict[str, Path] = {}
    for p in sorted(pred_dir.iterdir()):
        if p.suffix.lower() in PRED_SUFFIXES and p.stem not in preds:
            preds[p.stem] = p
    missing = [g.stem for g in gts if g.stem not in preds]
    if missing:
        raise DataError(
            pred_dir,
            f"no prediction for {len(missing)} of {len(gts)} ground-truth images "
            f"(e.g. {', '.join(missing[:3])})",
        )
    return [(g.stem, preds[g.stem], g) for g in gts]


def _score_one(item, thresholds, max_dist, thin, nms, keep):
    """Counts, thresholds and kind of one image; with `keep`, also what the region
    benchmarks need of a segmentation (the ucm2 or segs read, and the ground truth)."""
    name, pred_path, gt_path = item
    gt: GroundTruth = read_groundtruth(gt_path)
    pred, kind, raw = read_prediction(pred_path, gt.boundaries.shape[1:], thresholds, nms)
    counts = image_counts(pred, gt.boundaries, max_dist, thin)
    if keep and kind in ("ucm2", "segs"):
        return counts, pred.thresholds, kind, (list(raw) if kind == "segs" else raw, gt)
    return counts, pred.thresholds, kind, None


def boundary_bench(
    pred_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path | None = None,
    thresholds: int = 99,
    max_dist: float = 0.0075,
    thin: bool = True,
    nms: bool = False,
    regions: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> BoundaryResult:
    """Run the boundary benchmark over a folder; write the reference's files to `out_dir`.

    Images are scored in parallel threads (`workers`, default: all cores); the matcher
    releases the GIL. When every prediction is a segmentation (ucm2 or segs) and `regions`,
    the region benchmarks run too (`result.regions`, files eval_cover*.txt, eval_RI_VOI*.txt)."""
    items = pair_files(pred_dir, gt_dir)
    workers = workers or os.cpu_count() or 1
    results: list[Any] = [None] * len(items)  # (counts, thresholds, kind, regions input)
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(_score_one, it, thresholds, max_dist, thin, nms, regions) for it in items
        ]
        it: Iterable[tuple[int, Future]] = enumerate(futures)
        if progress:
            from rich.progress import track

            it = track(it, total=len(futures), description="boundary benchmark")
        for i, fut in it:
            results[i] = fut.result()
    ts = {tuple(r[1]) for r in results}
    if len(ts) > 1:
        raise DataError(pred_dir, "predictions have different numbers of segmentations (segs)")
    res = BoundaryResult([n for n, _, _ in items], results[0][1], np.stack([r[0] for r in results]))
    if regions and all(r[3] is not None for r in results):
        from perpixel.tasks.edges.bsds.regions import region_bench

        names = [n for n, _, _ in items]
        inputs = {n: r[3][0] for n, r in zip(names, results, strict=True)}
        gts = {n: r[3][1] for n, r in zip(names, results, strict=True)}
        res.regions = region_bench(inputs, gts, nthresh=thresholds, workers=workers)
    if out_dir is not None:
        write_boundary_results(res, out_dir, label=Path(pred_dir).name)
    return res


def write_boundary_results(
    result: BoundaryResult, out_dir: str | Path, label: str = "prediction"
) -> None:
    """eval_bdry.txt, eval_bdry_img.txt, eval_bdry_thr.txt (reference formats),
    eval_bdry.json, and the precision-recall plot pr_curve.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in reference_files(result).items():
        write_text(out / name, text)
    write_json(out / "eval_bdry.json", result.to_dict())
    if result.regions is not None:
        from perpixel.tasks.edges.bsds.regions import write_region_results

        write_region_results(result.regions, out)
    from perpixel.tasks.edges.bsds.plot import plot_pr

    plot_pr({label: result}, out / "pr_curve.png")
