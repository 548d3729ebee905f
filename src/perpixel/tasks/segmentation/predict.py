"""Segmentation inference: `perpixel.load(checkpoint).predict(image)` and `perpixel predict`.

Images of any size: up to `WHOLE_IMAGE_PIXELS` the network sees the whole image; past it,
overlapping windows of the recipe's training crop (`data.augment.crop`, else 512 x 512) are
blended in bounded memory (`perpixel.engine.inference.sliding_window`). Test-time
augmentation (flips, scales) averages softmax probabilities, per window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from perpixel.data.images import to_uint8
from perpixel.data.taxonomy import Taxonomy
from perpixel.engine.inference import TTA, sliding_window
from perpixel.engine.predictor import ImageLike, Predictor, to_rgb, to_tensor
from perpixel.errors import ConfigError, PerpixelError
from perpixel.io import write_png
from perpixel.tasks.segmentation.defaults import CRF_DEFAULTS
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.viz.legend import with_legend

if TYPE_CHECKING:
    from perpixel.tasks.segmentation.crf import DenseCRF

WHOLE_IMAGE_PIXELS = 1024 * 1024  # automatic windows: whole-image inference up to this size
DEFAULT_WINDOW = (512, 512)  # windows past it when the recipe has no training crop
DEFAULT_OVERLAP = 0.25  # fraction of a window shared with each neighbour
PROBS_MAX_PIXELS = 4 * 1024 * 1024  # `Prediction.probs` by default up to this size
BAND_ROWS = 256  # pictures are drawn this many rows at a time


@dataclass
class Prediction:
    """labels: (H, W) class ids, int64 up to `PROBS_MAX_PIXELS` pixels, uint8 past it (an
    eighth of the memory). probs: (C, H, W) float32 class probabilities, None past
    `PROBS_MAX_PIXELS` unless asked for (`Segmenter.predict(image, probs=True)`)."""

    labels: np.ndarray
    probs: np.ndarray | None


def overlay(
    image: np.ndarray, labels: np.ndarray, taxonomy: Taxonomy, alpha: float = 0.5
) -> np.ndarray:
    """(H, W, 3) uint8 image tinted by the (H, W) label colours; ignore pixels untouched.
    Drawn in bands of `BAND_ROWS` rows: float only for a band at a time."""
    out = np.empty_like(image)
    for y in range(0, image.shape[0], BAND_ROWS):
        rows = slice(y, y + BAND_ROWS)
        color = taxonomy.colorize(labels[rows]).astype(np.float32)
        band = image[rows].astype(np.float32)
        tint = labels[rows] != taxonomy.ignore_index
        band[tint] = (1 - alpha) * band[tint] + alpha * color[tint]
        out[rows] = band.round().astype(np.uint8)
    return out


def colorize(labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """`taxonomy.colorize` in bands of `BAND_ROWS` rows: (H, W) -> (H, W, 3) uint8."""
    out = np.empty((*labels.shape, 3), np.uint8)
    for y in range(0, labels.shape[0], BAND_ROWS):
        out[y : y + BAND_ROWS] = taxonomy.colorize(labels[y : y + BAND_ROWS])
    return out


def present_ids(labels: np.ndarray) -> np.ndarray:
    """The distinct values of uint8 `labels` (any shape), counted in bands: (K,) int64."""
    counts = np.zeros(256, np.int64)
    flat = labels.reshape(labels.shape[0], -1) if labels.ndim > 1 else labels[None]
    for y in range(0, flat.shape[0], BAND_ROWS):
        counts += np.bincount(flat[y : y + BAND_ROWS].ravel(), minlength=256)
    return np.flatnonzero(counts)


def parse_crf(text: str | None) -> dict[str, float] | None:
    """`--crf` (""): {} (the recipe's parameters); `--crf k=v,...`: those changed; None
    without the flag. ConfigError naming a malformed item."""
    if text is None:
        return None
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = int(value) if value.strip().isdigit() else float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--crf {text}: expected KEY=NUMBER items, got {item!r}")
    return out


def crf_from(config: dict, crf: bool | Mapping[str, float]) -> DenseCRF | None:
    """The dense CRF of a checkpoint's recipe (`crf:` section, else `CRF_DEFAULTS`), with the
    parameters in `crf` (a dict) changed; None for False. ConfigError on a bad parameter."""
    if crf is False:
        return None
    from perpixel.tasks.segmentation.crf import DenseCRF

    params = {**CRF_DEFAULTS, **config.get("crf", {}), **(crf if isinstance(crf, Mapping) else {})}
    try:
        return DenseCRF.from_params(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"crf: {e}") from None


class Segmenter(Predictor):
    """A trained segmenter: `predict(image)` -> `Prediction`; `predict_folder(in, out)` writes
    NAME.png (class ids, the image's size: the machine-readable output), NAME_color.png and
    NAME_overlay.png (opacity `alpha`); the last two for people, with a legend strip of the
    classes present appended below the image (`perpixel.viz.legend.with_legend`).

    Inference options (`set_inference`): `window` (h, w) pixels, or None for automatic (whole
    image up to `WHOLE_IMAGE_PIXELS`, else `crop_window`); `overlap` fraction of a window
    shared with each neighbour; `tta` a `TTA` or its text ('flip,0.75,1,1.25'); `crf` the
    dense CRF (`crf_from`) applied to the probabilities (images up to `PROBS_MAX_PIXELS`)."""

    outputs = "NAME.png class ids, NAME_color.png, NAME_overlay.png (with a legend)"
    uint8_images = True

    def __init__(
        self,
        task: SegmentationTask,
        device: str = "cpu",
        alpha: float = 0.5,
        window: Sequence[int] | None = None,
        overlap: float | None = None,
        tta: TTA | str | None = None,
        crf: bool | Mapping[str, float] | None = None,
    ):
        self.task = task.to(device).eval()
        self.device = device
        self.alpha = alpha
        self.taxonomy: Taxonomy = task.taxonomy
        self.window: tuple[int, int] | None = None
        self.overlap = DEFAULT_OVERLAP
        self.tta = TTA()
        self.crf: DenseCRF | None = None
        self.set_inference(window, overlap, tta, crf)

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> Segmenter:
        return cls(SegmentationTask.load(checkpoint, device), device)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    def set_inference(
        self,
        window: Sequence[int] | None = None,
        overlap: float | None = None,
        tta: TTA | str | None = None,
        crf: bool | Mapping[str, float] | None = None,
    ) -> None:
        """Check and set the inference options given (None: unchanged). `crf`: True for the
        dense CRF with the recipe's `crf:` parameters, a dict to change some of them, False
        for none."""
        if window is not None:
            if len(window) != 2 or min(window) < 1:
                raise ConfigError(f"--window {window}: give a height and a width, e.g. 512 512")
            self.window = (int(window[0]), int(window[1]))
        if overlap is not None:
            if not 0.0 <= overlap < 1.0:
                raise ConfigError(f"--overlap {overlap}: a fraction of the window, 0 <= F < 1")
            self.overlap = float(overlap)
        if tta is not None:
            self.tta = TTA.parse(tta) if isinstance(tta, str) else tta
        if crf is not None:
            self.crf = crf_from(self.task.config, crf)

    @property
    def crop_window(self) -> tuple[int, int]:
        """Automatic windows: the recipe's training crop (`data.augment.crop`), else 512 x 512."""
        crop = (self.task.config.get("data", {}).get("augment") or {}).get("crop")
        return (int(crop[0]), int(crop[1])) if crop else DEFAULT_WINDOW

    def window_for(self, height: int, width: int) -> tuple[int, int]:
        """The window (h, w) used for an image of this size ((height, width): whole image)."""
        if self.window is not None:
            return self.window
        if height * width <= WHOLE_IMAGE_PIXELS:
            return (height, width)
        return self.crop_window

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) in [0, 1] -> (1, C, h, w) softmax probabilities."""
        device = next(self.task.parameters()).device
        return self.task(x.to(device)).float().softmax(1)

    @torch.inference_mode()
    def predict(self, image: ImageLike, probs: bool | None = None) -> Prediction:
        """Image as a path, PIL image, (H, W, 3) uint8 array or (3, H, W) float tensor in
        [0, 1]. `probs`: return probabilities (default: up to `PROBS_MAX_PIXELS` pixels)."""
        x = to_rgb(image)  # uint8 arrays stay uint8: never a float copy of the whole image
        if isinstance(x, np.ndarray) and x.dtype != np.uint8:
            x = to_tensor(x)
        h, w = x.shape[:2] if isinstance(x, np.ndarray) else x.shape[-2:]
        small = h * w <= PROBS_MAX_PIXELS
        win = self.window_for(h, w)
        overlap = (round(self.overlap * win[0]), round(self.overlap * win[1]))
        fn = self.tta.wrap(self._probs)
        if self.crf is not None and h * w > PROBS_MAX_PIXELS:
            raise PerpixelError(
                f"--crf: a {w}x{h} image is past the CRF's {PROBS_MAX_PIXELS:,} pixels "
                "(it needs the whole image's probabilities); leave out --crf"
            )
        want = self.crf is not None or (small if probs is None else probs)
        labels, p = sliding_window(fn, x, win, overlap, return_probs=want)
        if self.crf is not None and p is not None:
            rgb = x if isinstance(x, np.ndarray) else to_uint8(x)
            p = self.crf(rgb, p)
            labels = p.argmax(0)
        if probs is False or (probs is None and not small):
            p = None
        return Prediction(labels.astype(np.int64) if small else labels, p)

    def predict_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, H, W) int64 labels, on the images' device: `predict`
        image by image (`perpixel evaluate --window/--tta`)."""
        labels = [torch.from_numpy(self.predict(im, probs=False).labels) for im in images]
        return torch.stack(labels).long().to(images.device)

    def write(self, out_dir: Path, item: dict, prediction: Prediction) -> Path:
        """`item["image"]`: (H, W, 3) uint8 (as `predict_folder` reads it) or (3, H, W) float."""
        labels = prediction.labels.astype(np.uint8, copy=False)
        rgb = item["image"]
        if isinstance(rgb, torch.Tensor):
            rgb = to_uint8(rgb)
        name = item["name"]
        main = write_png(out_dir / f"{name}.png", labels)
        tax, ids = self.taxonomy, present_ids(labels)  # the legend's entries, without a full copy
        write_png(out_dir / f"{name}_color.png", with_legend(colorize(labels, tax), ids, tax))
        tinted = with_legend(overlay(rgb, labels, tax, self.alpha), ids, tax)
        write_png(out_dir / f"{name}_overlay.png", tinted)
        return main
