"""Segmentation inference: `perpixel.load(checkpoint).predict(image)` and `perpixel predict`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from perpixel.data.taxonomy import Taxonomy
from perpixel.engine.predictor import ImageLike, Predictor, to_tensor
from perpixel.io import write_png
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.viz.legend import with_legend


@dataclass
class Prediction:
    labels: np.ndarray  # (H, W) int64 class ids
    probs: np.ndarray  # (C, H, W) float32 class probabilities


def overlay(
    image: np.ndarray, labels: np.ndarray, taxonomy: Taxonomy, alpha: float = 0.5
) -> np.ndarray:
    """(H, W, 3) uint8 image tinted by the (H, W) label colours; ignore pixels untouched."""
    color = taxonomy.colorize(labels).astype(np.float32)
    out = image.astype(np.float32)
    tint = labels != taxonomy.ignore_index
    out[tint] = (1 - alpha) * out[tint] + alpha * color[tint]
    return out.round().astype(np.uint8)


class Segmenter(Predictor):
    """A trained segmenter: `predict(image)` -> `Prediction`; `predict_folder(in, out)` writes
    NAME.png (class ids, the image's size: the machine-readable output), NAME_color.png and
    NAME_overlay.png (opacity `alpha`); the last two for people, with a legend strip of the
    classes present appended below the image (`perpixel.viz.legend.with_legend`)."""

    outputs = "NAME.png class ids, NAME_color.png, NAME_overlay.png (with a legend)"

    def __init__(self, task: SegmentationTask, device: str = "cpu", alpha: float = 0.5):
        self.task = task.to(device).eval()
        self.device = device
        self.alpha = alpha
        self.taxonomy: Taxonomy = task.taxonomy

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> Segmenter:
        return cls(SegmentationTask.load(checkpoint, device), device)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    @torch.inference_mode()
    def predict(self, image: ImageLike) -> Prediction:
        """Image as a path, PIL image, (H, W, 3) uint8 array or (3, H, W) float tensor in [0, 1]."""
        probs = self.task(to_tensor(image)[None].to(self.device)).float().softmax(1)[0]
        return Prediction(probs.argmax(0).cpu().numpy(), probs.cpu().numpy())

    def write(self, out_dir: Path, item: dict, prediction: Prediction) -> Path:
        labels = prediction.labels.astype(np.uint8)
        rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        name = item["name"]
        main = write_png(out_dir / f"{name}.png", labels)
        tax = self.taxonomy
        write_png(out_dir / f"{name}_color.png", with_legend(tax.colorize(labels), labels, tax))
        tinted = overlay(rgb, labels, tax, self.alpha)
        write_png(out_dir / f"{name}_overlay.png", with_legend(tinted, labels, tax))
        return main
