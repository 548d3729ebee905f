"""perpixel: image-to-image mapping by per-pixel classification.

import perpixel
seg = perpixel.load("runs/synthetic_unet/checkpoints/best.ckpt")
pred = seg.predict("image.png")   # pred.labels (H, W), pred.probs (C, H, W)
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(checkpoint, device: str = "cpu"):
    """Load a trained segmenter; see `perpixel.tasks.predictor.Segmenter`."""
    from perpixel.tasks.predictor import load as _load

    return _load(checkpoint, device)


__all__ = ["__version__", "load"]
