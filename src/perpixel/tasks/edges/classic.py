"""Classic edge detectors as baselines for the boundary benchmark: Sobel and Canny.

No learning: an image in, an (H, W) edge map out. Soft maps lie in [0, 1] so that the
benchmark's thresholds sweep them, as they sweep a network's edge probabilities.

Colour images are handled as OpenCV's Canny does: gradients per channel, and at every
pixel the channel with the largest gradient magnitude. Strength is edge *contrast*: the
gradient magnitude divided by the one an ideal step edge of height 1 gives at the same
smoothing, clipped to 1; so thresholds mean the same for every image and every sigma (a
fixed threshold over the data set, as ODS assumes). The default smoothing (sigma = 3 for
both) was the best of {1.5, 2, 3} (Sobel) and {2, 3, 4} (Canny) by the boundary F-measure at
the data-set best threshold on 10 BSDS500 *train* images.

The soft Canny map (`canny_edges`) is defined so that thresholding it *is* Canny:
`canny_edges(x) >= h` is the hysteresis result with high threshold h and low threshold
`low_ratio * h` (as MATLAB's `edge(I, 'canny')`, low = 0.4 high), for every h on the grid
k / levels. So the benchmark's precision-recall curve for it is Canny's own curve over its
threshold, with a fixed low/high ratio. A pixel first kept at level k gets the value
(k + 1/2) / levels (1 at the top level), half a step above its level, so that a threshold
rounded by a few ulps (float32 maps, `linspace` thresholds) still selects the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perpixel.engine.predictor import ImageLike, to_tensor
from perpixel.tasks.edges.nms import edge_nms
from perpixel.tasks.edges.predict import EdgeMaps

default_conf: dict[str, Any] = {
    "sigma_sobel": 3.0,
    "sigma_canny": 3.0,
    "low_ratio": 0.4,
    "levels": 100,
}

_EIGHT = np.ones((3, 3), dtype=bool)


def _channels(image) -> np.ndarray:
    """(3, H, W) / (H, W) / (H, W, 3), float in [0, 1] or uint8 -> (C, H, W) float64."""
    x = np.asarray(image)
    if x.dtype == np.uint8:
        x = x / 255.0
    x = x.astype(np.float64)
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3 and x.shape[0] in (1, 3):
        return x
    if x.ndim == 3 and x.shape[-1] in (1, 3):
        return np.moveaxis(x, -1, 0)
    raise ValueError(f"expected an (H, W), (3, H, W) or (H, W, 3) image, got shape {x.shape}")


def _gradients(image, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-smoothed Sobel gradients of the strongest channel: (gx, gy, magnitude)."""
    from scipy import ndimage

    x = _channels(image)
    gx = np.empty_like(x)
    gy = np.empty_like(x)
    for c, ch in enumerate(x):
        smooth = ndimage.gaussian_filter(ch, sigma, mode="nearest") if sigma > 0 else ch
        gx[c] = ndimage.sobel(smooth, axis=1, mode="nearest") / 8.0
        gy[c] = ndimage.sobel(smooth, axis=0, mode="nearest") / 8.0
    mag = np.hypot(gx, gy)
    best = np.argmax(mag, axis=0)[None]
    take = lambda a: np.take_along_axis(a, best, axis=0)[0]  # noqa: E731
    return take(gx), take(gy), take(mag)


def _step_peak(sigma: float) -> float:
    """Gradient magnitude that `_gradients` gives on an ideal step edge of height 1."""
    step = np.zeros((9, 96))
    step[:, 48:] = 1.0
    return float(_gradients(step, sigma)[2].max())


def _contrast(mag: np.ndarray, sigma: float) -> np.ndarray:
    """Gradient magnitude -> edge contrast: the height of the step edge that gives it."""
    return np.clip(mag / _step_peak(sigma), 0, 1).astype(np.float32)


def sobel_edges(image, sigma: float = default_conf["sigma_sobel"]) -> np.ndarray:
    """Sobel gradient magnitude after Gaussian smoothing.

    Args:
        image: (3, H, W), (H, W, 3) or (H, W) float in [0, 1] (or uint8).
        sigma: Gaussian smoothing, pixels (0 = none).

    Returns:
        (H, W) float32 soft edge strength in [0, 1] (thick: not thinned).
    """
    _, _, mag = _gradients(image, sigma)
    return _contrast(mag, sigma)


def canny_strength(image, sigma: float = default_conf["sigma_canny"]) -> np.ndarray:
    """Canny's first two steps: gradient magnitude thinned by NMS along the gradient.

    Returns:
        (H, W) float32 in [0, 1]: the scaled magnitude on ridge pixels, 0 elsewhere.
    """
    gx, gy, mag = _gradients(image, sigma)
    normal = np.mod(np.arctan2(gy, gx), np.pi)  # gradient direction, (column, row) axes
    return edge_nms(_contrast(mag, sigma), r=1, s=0, m=1.0, orientation=normal)


def hysteresis(strength: np.ndarray, high: float, low: float) -> np.ndarray:
    """(H, W) bool: pixels >= low that are 8-connected through such pixels to one >= high."""
    from scipy import ndimage

    labels, n = ndimage.label(strength >= low, structure=_EIGHT)
    if n == 0:
        return np.zeros(strength.shape, dtype=bool)
    strong = np.zeros(n + 1, dtype=bool)
    strong[labels[strength >= high]] = True
    strong[0] = False
    return strong[labels]


def canny_binary(
    image,
    high: float = 0.2,
    low: float | None = None,
    sigma: float = default_conf["sigma_canny"],
) -> np.ndarray:
    """Canny's binary edge map, thresholds on edge contrast (see the module's docstring).

    Args:
        image: (3, H, W), (H, W, 3) or (H, W) float in [0, 1] (or uint8).
        high, low: hysteresis thresholds on contrast in [0, 1]; `low` defaults to 0.4 x
            `high`.

    Returns:
        (H, W) bool, one pixel wide.
    """
    low = default_conf["low_ratio"] * high if low is None else low
    return hysteresis(canny_strength(image, sigma), high, low)


def canny_edges(
    image,
    sigma: float = default_conf["sigma_canny"],
    low_ratio: float = default_conf["low_ratio"],
    levels: int = default_conf["levels"],
) -> np.ndarray:
    """Soft Canny: each pixel's value is the highest threshold at which Canny keeps it.

    Args:
        image: (3, H, W), (H, W, 3) or (H, W) float in [0, 1] (or uint8).
        sigma: Gaussian smoothing, pixels.
        low_ratio: hysteresis low threshold / high threshold.
        levels: high thresholds k / levels, k = 1..levels.

    Returns:
        (H, W) float32 in [0, 1], one pixel wide; `>= k / levels` gives
        `canny_binary(image, k / levels, low_ratio * k / levels)` for k = 1..levels.
    """
    return soft_hysteresis(canny_strength(image, sigma), low_ratio, levels)


def _level_value(k: int, levels: int) -> float:
    return min((k + 0.5) / levels, 1.0)


def soft_hysteresis(strength: np.ndarray, low_ratio: float, levels: int) -> np.ndarray:
    """(H, W) -> (H, W) float32: from the highest level k / levels at which hysteresis (high
    k / levels, low `low_ratio` x that) keeps a pixel, the value (k + 1/2) / levels (<= 1)."""
    out = np.zeros(strength.shape, dtype=np.float32)
    # Canny edges shrink as the high threshold grows (same low/high ratio), so sweeping
    # from the top, the first level that keeps a pixel is its value.
    for k in range(levels, 0, -1):
        high = k / levels
        kept = hysteresis(strength, high, low_ratio * high) & (out == 0)
        out[kept] = _level_value(k, levels)
    return out


def opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def canny_opencv(
    image,
    sigma: float = default_conf["sigma_canny"],
    low_ratio: float = default_conf["low_ratio"],
    levels: int = default_conf["levels"],
) -> np.ndarray:
    """Soft Canny from OpenCV's `cv2.Canny` (the optional `classic` extra), as `canny_edges`.

    The image is smoothed with a Gaussian (scipy), converted to 8 bits, and `cv2.Canny`
    (L2 gradient, 3x3 Sobel) run at `levels` high thresholds on contrast, calibrated like
    `canny_edges` on a unit step put through the same steps; each pixel gets the highest
    threshold that keeps it (valued as in `canny_edges`).

    Returns:
        (H, W) float32 in [0, 1].
    """
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "canny_opencv needs OpenCV: pip install 'perpixel[classic]' "
            "(opencv-python-headless), or use canny_edges (pure numpy/scipy)"
        ) from None
    from scipy import ndimage

    def prepare(x: np.ndarray) -> np.ndarray:  # (C, H, W) float -> (H, W[, C]) uint8
        if sigma > 0:
            x = np.stack([ndimage.gaussian_filter(c, sigma, mode="nearest") for c in x])
        x8 = np.clip(np.moveaxis(x, 0, -1) * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(x8[..., 0] if x8.shape[-1] == 1 else x8)

    def magnitude(x8: np.ndarray) -> np.ndarray:
        gx = cv2.Sobel(x8, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(x8, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy)
        return mag.max(-1) if mag.ndim == 3 else mag

    step = np.zeros((1, 9, 96))
    step[..., 48:] = 1.0
    peak = float(magnitude(prepare(step)).max())
    img8 = prepare(_channels(image))
    out = np.zeros(img8.shape[:2], dtype=np.float32)
    for k in range(levels, 0, -1):
        high = k / levels
        kept = cv2.Canny(img8, low_ratio * high * peak, high * peak, L2gradient=True) > 0
        out[kept & (out == 0)] = _level_value(k, levels)
    return out


class ClassicDetector(EdgeMaps):
    """A classic baseline as an edge predictor: "canny" or "sobel" (soft maps as above)."""

    def __init__(self, name: str):
        if name not in CLASSIC:
            raise ValueError(f"unknown classic detector {name!r}: {sorted(CLASSIC)}")
        self.name = name

    def predict(self, image: ImageLike) -> np.ndarray:
        return CLASSIC[self.name](to_tensor(image).numpy()).astype(np.float32)


CLASSIC = {"canny": canny_edges, "sobel": sobel_edges}
