"""Dense inference of any size in bounded memory: overlapping windows blended row band by
row band (`sliding_window`), and test-time augmentation (`tta`: flips and image pyramids,
softmax probabilities averaged).

Memory: `sliding_window` holds the input image, the (H, W) labels and, for the rows that a
pending window still covers, C x window_h x W float32 sums: never (C, H, W) and never a float
copy of the whole image. `perpixel predict` with a segmentation checkpoint measured (README,
"Large images") a peak of about `BYTES_PER_PIXEL` bytes per image pixel plus `BASE_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError

# Peak resident memory of `perpixel predict` (segmentation, CPU, 512 x 512 windows) is about
# BYTES_PER_PIXEL * H * W + BASE_BYTES: the image (3 B/px; 7 while Pillow decodes it into its
# 4-byte pixels), the labels (1 B/px) and a legend picture as it is written (3 B/px, and 4 in
# Pillow's copy), plus Python, torch and the model (0.45 GB for a small U-Net) and, while the
# network runs, band sums of C x 512 x W x 4 bytes. Measured: 1.56 GiB for 12000 x 9000 and
# 0.74 GiB for 6000 x 4500 (8 classes, README "Large images"): 10.8 B/px + 0.47 GiB.
BYTES_PER_PIXEL = 11
BASE_BYTES = 500 * 2**20

ProbsFn = Callable[[torch.Tensor], torch.Tensor]


def window_starts(size: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of length `window` covering [0, size), neighbours sharing at least
    `overlap` pixels: evenly spaced, the first at 0, the last flush with the border
    (size - window). One window at 0 when it is as long as `size` or longer."""
    if window < 1 or not 0 <= overlap < window:
        raise ConfigError(f"window {window} with overlap {overlap}: need 0 <= overlap < window")
    if size <= window:
        return [0]
    span = size - window
    n = -(-span // (window - overlap)) + 1  # windows: gaps of at most window - overlap
    return [i * span // (n - 1) for i in range(n)]


def blend_weights(start: int, length: int, size: int, overlap: int, margin: int) -> torch.Tensor:
    """(length,) float32 weights of the window [start, start + length) along an axis of
    `size` pixels. At an edge inside the image: 0 on the outer `margin` pixels (the most
    border-affected outputs), then a linear ramp over the next `overlap - 2 * margin` pixels
    from 1 / (ramp + 1) up to 1, so that two neighbours sharing `overlap` pixels cross-fade
    with weights summing to 1. At an edge on the image border: no taper (1). Every pixel of
    the image gets a weight of at least 1 / (ramp + 1) from some window of
    `window_starts(size, length, overlap)`."""
    d = torch.arange(length, dtype=torch.float32)
    ramp = overlap - 2 * margin + 1
    w = torch.ones(length)
    if start > 0:
        w = torch.minimum(w, ((d - margin + 1) / ramp).clamp(0, 1))
    if start + length < size:
        w = torch.minimum(w, ((length - d - margin) / ramp).clamp(0, 1))
    return w


def _tile(image: np.ndarray | torch.Tensor, y: int, x: int, h: int, w: int) -> torch.Tensor:
    """(1, 3, h, w) float32 in [0, 1] from an (H, W, 3) uint8 array or (3, H, W) float tensor."""
    if isinstance(image, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(image[y : y + h, x : x + w]))
        return t.permute(2, 0, 1)[None].float().div_(255)
    return image[:, y : y + h, x : x + w][None].float()


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def sliding_window(
    fn: ProbsFn,
    image: np.ndarray | torch.Tensor,
    window: int | Sequence[int],
    overlap: int | Sequence[int] = 0,
    margin: int | Sequence[int] | None = None,
    return_probs: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels of an image by windows of `window` (h, w) pixels (cut to the image), neighbours
    sharing `overlap` (h, w) pixels; `margin` (default overlap // 4) pixels at a window's inner
    edges are dropped, the rest blended by `blend_weights` (separable: wy x wx).

    fn: (1, 3, h, w) float32 in [0, 1] -> (1, C, h, w) probabilities (any device).
    image: (H, W, 3) uint8 array (each tile becomes float when it is used) or (3, H, W) float
    tensor in [0, 1]. Returns labels (H, W), uint8 when C <= 256 (else int64), the arg-max of
    the blended probabilities, and their (C, H, W) float32 array when `return_probs`, else None.

    Windows run row band by row band; rows no later window covers are emitted as soon as a
    band is done, so the sums hold C x window_h x W floats, not C x H x W. Labels equal
    whole-image inference when the model's receptive radius is at most `margin`. One window
    covering the image is whole-image inference itself: labels and probabilities as `fn`
    gives them.
    """
    H, W = (image.shape[:2]) if isinstance(image, np.ndarray) else image.shape[-2:]
    wh, ww = min(_pair(window)[0], H), min(_pair(window)[1], W)
    oh, ow = (min(o, w - 1) for o, w in zip(_pair(overlap), (wh, ww), strict=True))
    mh, mw = _pair(margin) if margin is not None else (oh // 4, ow // 4)
    if not (0 <= 2 * mh <= oh and 0 <= 2 * mw <= ow):
        raise ConfigError(f"margin ({mh}, {mw}) must be at most half the overlap ({oh}, {ow})")
    ys, xs = window_starts(H, wh, oh), window_starts(W, ww, ow)

    if len(ys) == 1 and len(xs) == 1:
        p = fn(_tile(image, 0, 0, H, W)).float()[0]
        labels = p.argmax(0).cpu().numpy()
        return _narrow(labels, p.shape[0]), (p.cpu().numpy() if return_probs else None)

    wx = [blend_weights(x, ww, W, ow, mw) for x in xs]
    num: torch.Tensor | None = None  # (C, wh, W) sums of weighted probabilities, rows from top
    den = torch.zeros(wh, W if return_probs else 0)  # sums of weights, for probabilities
    labels_out: np.ndarray | None = None
    probs_out: np.ndarray | None = None
    for k, top in enumerate(ys):
        wy = blend_weights(top, wh, H, oh, mh)
        for x, wxx in zip(xs, wx, strict=True):
            p = fn(_tile(image, top, x, wh, ww)).float()[0].cpu()
            if num is None:
                num = torch.zeros(p.shape[0], wh, W)
                labels_out = np.empty((H, W), np.uint8 if p.shape[0] <= 256 else np.int64)
                if return_probs:
                    probs_out = np.empty((p.shape[0], H, W), np.float32)
            weight = wy[:, None] * wxx[None, :]
            num[:, :, x : x + ww] += p * weight
            if return_probs:
                den[:, x : x + ww] += weight
        assert num is not None and labels_out is not None
        done = ys[k + 1] - top if k + 1 < len(ys) else wh  # rows no later window covers
        labels_out[top : top + done] = num[:, :done].argmax(0).numpy()
        if probs_out is not None:
            probs_out[:, top : top + done] = (num[:, :done] / den[:done]).numpy()
        _shift_up(num, den, done)
    assert labels_out is not None
    return labels_out, probs_out


def _narrow(labels: np.ndarray, classes: int) -> np.ndarray:
    return labels.astype(np.uint8) if classes <= 256 else labels


def _shift_up(num: torch.Tensor, den: torch.Tensor, rows: int) -> None:
    """Move the sums up by `rows` rows in place (chunks of `rows` never overlap), zero the rest."""
    n = den.shape[0]
    for i in range(0, n - rows, rows):
        k = min(rows, n - rows - i)
        num[:, i : i + k] = num[:, i + rows : i + rows + k]
        den[i : i + k] = den[i + rows : i + rows + k]
    num[:, max(n - rows, 0) :] = 0
    den[max(n - rows, 0) :] = 0


def tta(fn: ProbsFn, flips: bool = True, scales: Sequence[float] = (1.0,)) -> ProbsFn:
    """`fn` averaged over test-time augmentations: the input at each of `scales` (resized
    bilinearly, antialiased when shrunk; the probabilities resized back bilinearly), and
    with `flips` also mirrored left-right (the output mirrored back). fn and the result map
    (B, 3, h, w) -> (B, C, h, w) probabilities; the average of probabilities sums to 1."""
    scales = tuple(float(s) for s in scales)

    def averaged(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        total: torch.Tensor | None = None
        for s in scales:
            size = (max(1, round(h * s)), max(1, round(w * s)))
            xs = x if size == (h, w) else _resize(x, size)
            for flip in (False, True) if flips else (False,):
                p = fn(xs.flip(-1) if flip else xs).float()
                p = p.flip(-1) if flip else p
                p = p if size == (h, w) else _resize(p, (h, w))
                total = p if total is None else total.add_(p)
        assert total is not None
        return total.div_(len(scales) * (2 if flips else 1))

    return averaged


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: `flips` (left-right) and `scales` (image pyramid)."""

    flips: bool = False
    scales: tuple[float, ...] = (1.0,)

    @classmethod
    def parse(cls, text: str) -> TTA:
        """'flip', '0.75,1,1.25' or 'flip,0.75,1,1.25' (the command line's --tta)."""
        flips, scales = False, []
        for item in (s.strip() for s in text.split(",")):
            if item == "flip":
                flips = True
                continue
            try:
                scale = float(item)
            except ValueError:
                scale = 0.0
            if not 0.0 < scale <= 8.0:
                raise ConfigError(
                    f"--tta {text!r}: {item!r} is neither 'flip' nor a scale such as 0.75 "
                    "(e.g. --tta flip,0.75,1,1.25)"
                )
            scales.append(scale)
        return cls(flips, tuple(scales) or (1.0,))

    @property
    def active(self) -> bool:
        return self.flips or self.scales != (1.0,)

    def wrap(self, fn: ProbsFn) -> ProbsFn:
        """`fn` under these augmentations (`fn` itself when there are none)."""
        return tta(fn, self.flips, self.scales) if self.active else fn
