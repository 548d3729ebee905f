"""perpixel: image-to-image mapping by per-pixel classification.

import perpixel
seg = perpixel.load("runs/synthetic_unet/checkpoints/best.ckpt")
pred = seg.predict("image.png")   # pred.labels (H, W), pred.probs (C, H, W)
edges = perpixel.load("hed").predict("image.png")   # (H, W) edge probability
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("perpixel")  # single source: pyproject.toml
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def load(checkpoint, device: str = "cpu"):
    """The predictor for any task's checkpoint, or a built-in ("hed", "canny", "sobel"):
    `perpixel.load(path).predict(image)`. See `perpixel.tasks.load`."""
    from perpixel.tasks import load as _load

    return _load(checkpoint, device)


__all__ = ["__version__", "load"]
