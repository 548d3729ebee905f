"""The numbers users compare, for our networks and the classic methods in one code path:
detection mAP on synthetic shapes (the MagicPoint table), and on image pairs with a known
homography the repeatability, localisation error, homography accuracy at 1/3/5 px, matching
score and mean matching accuracy (the SuperPoint tables).

A method is a `Method`: a dense `response` for the detection table (decoded by the same
`decode.detect` for every method) and/or `points` for the pair tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from perpixel.tasks.keypoints import classic, metrics
from perpixel.tasks.keypoints.datasets import SyntheticShapes, read_gray
from perpixel.tasks.keypoints.decode import detect
from perpixel.tasks.keypoints.homographies import (
    HOMOGRAPHY_DEFAULTS,
    resize_homography,
    sample_homography,
    warp_images,
)
from perpixel.tasks.keypoints.matching import estimate_homography, mutual_nearest_neighbours
from perpixel.tasks.keypoints.photometric import PHOTOMETRIC_DEFAULTS, photometric_augment

Points = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # keypoints, scores, desc


@dataclass
class Method:
    """One row of the tables. `response`: (B, 1, H, W) gray -> (B, H, W) point scores >= 0;
    `points`: (1, 1, H, W) gray -> (keypoints (N, 2), scores (N,), descriptors (N, D) or
    None), best first; `metric` "l2" (float descriptors) or "hamming" (binary); `shapes_nms`
    the NMS radius of its response in the detection table (`SHAPES_NMS` for all by default)."""

    name: str
    response: Callable[[torch.Tensor], torch.Tensor] | None = None
    points: Callable[[torch.Tensor], Points] | None = None
    metric: str = "l2"
    shapes_nms: int = 4


@dataclass
class Pair:
    """Two gray images (1, 1, H, W) and the homography from a to b (3, 3)."""

    name: str
    a: torch.Tensor
    b: torch.Tensor
    H: torch.Tensor


def network_method(name: str, detector, top_k: int = 1000) -> Method:
    """A `predict.KeypointDetector` as a method (its response is its heatmap); one without
    descriptors still has points (the detector columns of the pair tables)."""
    from perpixel.tasks.keypoints.labels import heatmap

    def response(gray: torch.Tensor) -> torch.Tensor:
        return heatmap(detector.logits(gray))

    def points(gray: torch.Tensor) -> Points:
        p = detector.predict(gray[0])
        k = slice(0, top_k)
        desc = p.get("descriptors")
        return p["keypoints"][k], p["scores"][k], None if desc is None else desc[k]

    return Method(name, response, points)


def classic_methods(detect_conf: dict, top_k: int = 1000) -> tuple[list[Method], list[str]]:
    """(the classic methods this machine runs, names of those it cannot: OpenCV absent)."""
    found, missing = [], []
    for name, fn in classic.CLASSIC_DETECTORS.items():
        if classic.needs_opencv(name) and not classic.opencv_available():
            missing.append(name)
            continue
        points = _dense_points(fn, detect_conf, top_k)  # normalised: one threshold for all
        found.append(Method(name, response=_raw(fn, 1 if name == "fast" else 255), points=points))
    for name, fn in classic.CLASSIC_DESCRIPTORS.items():
        if not classic.opencv_available():
            missing.append(name)
            continue
        found.append(Method(name, points=_sparse_points(fn, top_k), metric=_metric(name)))
    return found, missing


def _raw(fn, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """A classic response without per-image normalisation, of the image times `scale` (255:
    OpenCV's 0..255 intensities; FAST reads 8-bit images itself)."""

    def response(gray: torch.Tensor) -> torch.Tensor:
        return fn(gray * scale, normalize=False)

    return response


def _metric(name: str) -> str:
    return "hamming" if name == "orb" else "l2"


def _dense_points(fn, detect_conf: dict, top_k: int) -> Callable[[torch.Tensor], Points]:
    def points(gray: torch.Tensor) -> Points:
        kp, sc = detect(fn(gray), **{**detect_conf, "top_k": top_k})[0]
        return kp, sc, None

    return points


def _sparse_points(fn, top_k: int) -> Callable[[torch.Tensor], Points]:
    def points(gray: torch.Tensor) -> Points:
        kp, sc, desc = fn(gray)
        order = torch.as_tensor(sc).argsort(descending=True)[:top_k]
        return torch.as_tensor(kp)[order], torch.as_tensor(sc)[order], torch.as_tensor(desc)[order]

    return points


# ----------------------------------------------------------------------- synthetic shapes

# The detection table, one protocol for every method (rpautrat/SuperPoint's
# configs/classical-detectors_shapes.yaml and notebooks/detector_evaluation_magic_point): the
# response map after NMS of radius 4, no border removed, every score above 1e-4 a point of the
# PR curve pooled over the images, a detection correct within 4 px of a corner. The classic
# responses are raw, on 0..255 intensities as OpenCV's: scores are ranked across images, so
# normalising each image would reorder them (Harris falls from 0.71 to 0.27 mAP).
SHAPES_NMS = 4


def shapes_ap(
    methods: list[Method],
    data: dict,
    noise: bool,
    num: int | None = None,
    seed: int = 0,
    distance: float = 4.0,
    batch: int = 50,
) -> dict[str, float]:
    """Detection mAP of every method with a `response` on the synthetic-shapes test images
    (photometric noise on them when `noise`), in the MagicPoint table's protocol (above)."""
    data = {**data, "kind": "shapes", "pairs": False}  # a folder recipe's data may ask pairs
    if num is not None:
        data["num_test"] = num
    ds = SyntheticShapes(data, "test", train=False, seed=seed, noise=noise)
    items = [ds[i] for i in range(len(ds))]
    truth = [it["points"] for it in items]
    out = {}
    for m in methods:
        if m.response is None:
            continue
        found = []
        for i in range(0, len(items), batch):
            gray = torch.stack([it["image"] for it in items[i : i + batch]])
            heat = m.response(gray).float()
            found += detect(heat, radius=m.shapes_nms, threshold=1e-4, top_k=None, border=0)
        out[m.name] = metrics.detection_ap(found, truth, distance=distance)
    return out


# ----------------------------------------------------------------------- image pairs

# Pairs (a): the adaptation's ranges, but rotations up to 45 degrees (viewpoint changes as in
# HPatches; the detectors are trained up to 90 and SuperPoint's descriptors are not rotation
# invariant) and no region from outside the image.
PAIR_HOMOGRAPHY = {**HOMOGRAPHY_DEFAULTS, "allow_artifacts": False, "max_angle": math.pi / 4}
PAIR_PHOTOMETRIC = PHOTOMETRIC_DEFAULTS


def warped_pairs(
    files: list[Path], shape: tuple[int, int], seed: int = 0, homography: dict | None = None
) -> Iterator[Pair]:
    """Pairs (a): each image fitted to `shape`, and its copy warped by a random homography
    (seeded by (seed, index)) with photometric change."""
    for i, path in enumerate(files):
        a = read_gray(path, shape)[None]
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        H = sample_homography(shape, homography or PAIR_HOMOGRAPHY, g)
        b = warp_images(a, H[None], shape)
        b = photometric_augment(b, PAIR_PHOTOMETRIC, g)
        yield Pair(path.stem, a, b, H)


def sequence_pairs(root: str | Path, shape: tuple[int, int] | None = None) -> Iterator[Pair]:
    """Pairs (b): (1, k) of every HPatches / Oxford sequence under `root`, named
    "KIND/SEQ/1-k"; images resized to `shape` (H, W) when given, the homographies with them."""
    import torch.nn.functional as F

    from perpixel.tasks.keypoints.sequences import read_sequences

    for seq in read_sequences(root):
        ref = read_gray(seq.images[0])[None]
        for k, (path, H) in enumerate(zip(seq.images[1:], seq.homographies, strict=True), 2):
            img = read_gray(path)[None]
            Ht = torch.as_tensor(H, dtype=torch.float64)
            a, b = ref, img
            if shape is not None:
                Ht = (
                    resize_homography(img.shape[-2:], shape)
                    @ Ht
                    @ torch.linalg.inv(resize_homography(ref.shape[-2:], shape))
                )
                a = F.interpolate(ref, shape, mode="bilinear", antialias=True)
                b = F.interpolate(img, shape, mode="bilinear", antialias=True)
            yield Pair(f"{seq.kind}/{seq.name}/1-{k}", a, b, Ht.float())


def pair_scores(method: Method, pair: Pair, ransac: str = "auto") -> tuple[dict, dict]:
    """The metrics of one method on one pair, and what it found (for the pictures)."""
    assert method.points is not None
    (ka, _, da), (kb, _, db) = method.points(pair.a), method.points(pair.b)
    sh_a, sh_b = tuple(pair.a.shape[-2:]), tuple(pair.b.shape[-2:])
    s: dict = {
        "repeatability": metrics.repeatability(ka, kb, pair.H, sh_a, sh_b),
        "localization_error": metrics.localization_error(ka, kb, pair.H, sh_a, sh_b),
    }
    found: dict = {"kp_a": ka, "kp_b": kb}
    if da is not None and db is not None:
        m = mutual_nearest_neighbours(da, db, metric=method.metric)
        Hest, inliers, which = estimate_homography(ka[m[:, 0]], kb[m[:, 1]], method=ransac)
        s["corner_error"] = metrics.corner_error(Hest, pair.H, sh_a)
        s["matching_score"] = metrics.matching_score(ka, kb, m, pair.H, sh_a, sh_b)
        s["mma"] = metrics.mean_matching_accuracy(ka, kb, m, pair.H)
        s["ransac"] = which
        found.update(matches=m, inliers=inliers, H=Hest)
    return s, found


def summarise(rows: list[dict], thresholds=(1, 3, 5)) -> dict:
    """Means over pairs: repeatability, localization_error, homography accuracy at each
    threshold (share of pairs with corner error <= t), matching_score, mma (per threshold).
    A mean over no defined value (e.g. no point in the shared view of any pair) is None."""
    out: dict = {"pairs": len(rows)}
    keys = ["repeatability", "localization_error"]
    if any("matching_score" in r for r in rows):
        keys.append("matching_score")
    for key in keys:
        vals = [r[key] for r in rows if key in r and np.isfinite(r[key])]  # NaN: undefined
        out[key] = float(np.mean(vals)) if vals else None
    errors = [r["corner_error"] for r in rows if "corner_error" in r]
    if errors:
        acc = metrics.homography_accuracy(errors, thresholds)
        out.update({f"homography@{t}": acc[t] for t in thresholds})
        mma = [r["mma"] for r in rows if "mma" in r]
        out["mma"] = {t: float(np.mean([m[t] for m in mma])) for t in mma[0]}
        out["ransac"] = rows[0]["ransac"]
    return out
