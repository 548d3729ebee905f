"""Writers of small label files for the format readers' tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_rgb(path: Path, h: int, w: int, seed: int = 0, fmt: str = "PNG") -> np.ndarray:
    """A random RGB image (PNG is lossless; the array is what a reader must return)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(img).save(path, format=fmt)
    return img


def write_label(path: Path, arr: np.ndarray, palette: bool = False) -> None:
    """An 8-bit (grey or palette) or, for values past 255, 16-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    if arr.max(initial=0) > 255:
        im = Image.fromarray(arr.astype(np.uint16))
    else:
        im = Image.fromarray(arr.astype(np.uint8))
        if palette:
            im = im.convert("P")
            im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    im.save(path)
