"""Readers of the image-sequence benchmarks with ground-truth homographies.

HPatches (Balntas et al. 2017, hpatches-sequences-release): ROOT/SEQ/1.ppm .. 6.ppm with
SEQ/H_1_2 .. H_1_6, text 3x3 matrices mapping pixels of image 1 to image k; "i_*" sequences
change the illumination, "v_*" the viewpoint. Oxford affine (Mikolajczyk et al. 2005):
ROOT/SEQ/img1.ppm .. img6.ppm with SEQ/H1to2p .. H1to6p. Images may also be .pgm, .png or .jpg;
ROOT may be one sequence folder itself. The homographies are returned as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perpixel.errors import DataError

IMAGE_EXTENSIONS = (".ppm", ".pgm", ".png", ".jpg", ".jpeg")
# (image file stem of image k, homography file name of image k) per layout
LAYOUTS = {
    "hpatches": (lambda k: str(k), lambda k: f"H_1_{k}"),
    "oxford": (lambda k: f"img{k}", lambda k: f"H1to{k}p"),
}
# the change in the Oxford sequences that are one of the two kinds
OXFORD_KINDS = {"graf": "viewpoint", "wall": "viewpoint", "leuven": "illumination"}


@dataclass
class Sequence:
    """One sequence: `images` [1, 2, ...]; `homographies` (3, 3) float64 for images[1:], each
    mapping pixels of images[0] to that image. `kind`: "illumination", "viewpoint" or "other"."""

    name: str
    kind: str
    images: list[Path] = field(default_factory=list)
    homographies: list[np.ndarray] = field(default_factory=list)


def sequence_kind(name: str) -> str:
    """ "illumination" / "viewpoint" from the HPatches prefix "i_" / "v_" (or a known Oxford
    name: leuven / graf, wall), else "other"."""
    if name.startswith("i_"):
        return "illumination"
    if name.startswith("v_"):
        return "viewpoint"
    return OXFORD_KINDS.get(name.lower(), "other")


def read_homography(path: Path) -> np.ndarray:
    """A text file of a 3x3 matrix (whitespace-separated rows) -> (3, 3) float64."""
    try:
        H = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as e:
        raise DataError(path, f"not a 3x3 matrix of numbers ({e})") from None
    if H.shape != (3, 3):
        raise DataError(path, f"expected a 3x3 matrix, got shape {H.shape}")
    if not np.isfinite(H).all() or abs(np.linalg.det(H)) < 1e-12:
        raise DataError(path, "not an invertible homography")
    return H


def _image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for name in (stem + ext, stem + ext.upper()):
            if (folder / name).is_file():
                return folder / name
    return None


def _layout(folder: Path) -> str | None:
    """The layout of `folder`, None when it is not a sequence (no first image)."""
    for layout, (image, _) in LAYOUTS.items():
        if _image(folder, image(1)) is not None:
            return layout
    return None


def read_sequence(folder: str | Path) -> Sequence:
    """One sequence folder (either layout) -> `Sequence`; DataError naming a missing or
    malformed file."""
    folder = Path(folder)
    layout = _layout(folder)
    if layout is None:
        raise DataError(folder, "no first image (1.ppm or img1.ppm): not a sequence folder")
    image, hfile = LAYOUTS[layout]
    images, homographies = [], []
    k = 1
    while (path := _image(folder, image(k))) is not None:
        images.append(path)
        if k > 1:
            if not (folder / hfile(k)).is_file():
                raise DataError(folder / hfile(k), f"missing: the homography of {path.name}")
            homographies.append(read_homography(folder / hfile(k)))
        k += 1
    if (folder / hfile(k)).is_file():
        raise DataError(folder / hfile(k), f"no image {image(k)} (.ppm, .pgm, .png, .jpg) for it")
    if len(images) < 2:
        raise DataError(folder, f"one image ({images[0].name}) and no others: not a sequence")
    return Sequence(folder.name, sequence_kind(folder.name), images, homographies)


def read_sequences(root: str | Path) -> list[Sequence]:
    """Every sequence under `root` (its sub-folders, or `root` itself), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "no such folder")
    if _layout(root) is not None:
        return [read_sequence(root)]
    seqs = [read_sequence(d) for d in sorted(root.iterdir()) if d.is_dir() and _layout(d)]
    if not seqs:
        raise DataError(
            root,
            "no HPatches (SEQ/1.ppm + H_1_2..) or Oxford (img1.ppm + H1to2p..) sequences here",
        )
    return sorted(seqs, key=lambda s: s.name)
