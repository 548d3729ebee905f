"""BSDS500 files: human ground truth (`groundTruth/*.mat`) and the benchmark's `.mat` inputs.

A ground-truth file holds a 1xN cell of annotations (N = 4..9 people); each has
`Segmentation` (H, W) uint16 region ids from 1 and `Boundaries` (H, W) uint8 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perpixel.errors import DataError


@dataclass
class GroundTruth:
    """All annotators of one image: `boundaries` (N, H, W) bool, `segmentations` (N, H, W) int32."""

    boundaries: np.ndarray
    segmentations: np.ndarray

    def __len__(self) -> int:
        return len(self.boundaries)


def _loadmat(path: str | Path) -> dict:
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as e:  # scipy raises several types for corrupt files
        raise DataError(path, f"cannot read MATLAB file ({e})") from None


def read_groundtruth(path: str | Path) -> GroundTruth:
    """Read a BSDS `groundTruth/<id>.mat` file."""
    m = _loadmat(path)
    if "groundTruth" not in m:
        raise DataError(path, "no 'groundTruth' variable (is this a BSDS ground-truth file?)")
    cell = m["groundTruth"].ravel()
    if len(cell) == 0:
        raise DataError(path, "no annotations in 'groundTruth'")
    bnds, segs = [], []
    for entry in cell:
        try:
            bnds.append(np.asarray(entry["Boundaries"][0, 0]).astype(bool))
            segs.append(np.asarray(entry["Segmentation"][0, 0]).astype(np.int32))
        except (ValueError, IndexError, KeyError):
            raise DataError(path, "an annotation lacks 'Boundaries' or 'Segmentation'") from None
    shapes = {b.shape for b in bnds} | {s.shape for s in segs}
    if len(shapes) != 1:
        raise DataError(path, f"annotations differ in size: {sorted(shapes)}")
    return GroundTruth(np.stack(bnds), np.stack(segs))


def read_segs(path: str | Path) -> list[np.ndarray]:
    """Read a benchmark input file holding `segs`, a cell of (H, W) segmentations."""
    m = _loadmat(path)
    if "segs" not in m:
        raise DataError(path, "no 'segs' variable")
    return [np.asarray(s).astype(np.int32) for s in m["segs"].ravel()]


def read_ucm2(path: str | Path) -> np.ndarray:
    """Read a benchmark input file holding `ucm2`, a (2H+1, 2W+1) ultrametric contour map."""
    m = _loadmat(path)
    if "ucm2" not in m:
        raise DataError(path, "no 'ucm2' variable")
    return np.asarray(m["ucm2"], dtype=np.float64)


def mat_kind(path: str | Path) -> str:
    """'groundTruth', 'segs' or 'ucm2': which BSDS variable a `.mat` file holds."""
    import scipy.io

    try:
        names = {name for name, _, _ in scipy.io.whosmat(str(path))}
    except Exception as e:
        raise DataError(path, f"cannot read MATLAB file ({e})") from None
    for kind in ("ucm2", "segs", "groundTruth"):
        if kind in names:
            return kind
    raise DataError(path, f"holds none of ucm2, segs, groundTruth (found {sorted(names)})")
