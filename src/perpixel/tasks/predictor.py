"""Inference: `perpixel.load(checkpoint).predict(image)`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from perpixel.data.folder import ImageFolder, read_image
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import PerpixelError
from perpixel.io import write_png


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


def load_task(checkpoint: str | Path, map_location: str = "cpu"):
    """The `SegmentationTask` saved in a checkpoint, in eval mode."""
    from perpixel.tasks.segmentation import SegmentationTask

    path = Path(checkpoint)
    if not path.is_file():
        raise PerpixelError(f"{path}: checkpoint not found")
    try:
        task = SegmentationTask.load_from_checkpoint(
            path, map_location=map_location, weights_only=False
        )
    except Exception as e:  # noqa: BLE001 - any failure here means "not our checkpoint"
        raise PerpixelError(
            f"{path}: not a perpixel checkpoint ({type(e).__name__}: {e})"
        ) from None
    return task.eval()


def to_tensor(image: np.ndarray | Image.Image | str | Path | torch.Tensor) -> torch.Tensor:
    """A path, PIL image, (H, W, 3) uint8 array or (3, H, W) float tensor -> (3, H, W) in [0, 1]."""
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise PerpixelError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
    return image


class Segmenter:
    """A trained segmenter: `predict(image)` -> `Prediction`, `predict_folder(in, out)`."""

    def __init__(self, task, device: str = "cpu"):
        self.task = task.to(device).eval()
        self.device = device
        self.taxonomy: Taxonomy = task.taxonomy

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> Segmenter:
        return cls(load_task(checkpoint, device), device)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    @torch.inference_mode()
    def predict(self, image: np.ndarray | Image.Image | str | Path | torch.Tensor) -> Prediction:
        """Image as a path, PIL image, (H, W, 3) uint8 array or (3, H, W) float tensor in [0, 1]."""
        probs = self.task(to_tensor(image)[None].to(self.device)).float().softmax(1)[0]
        return Prediction(probs.argmax(0).cpu().numpy(), probs.cpu().numpy())

    def predict_folder(
        self, images: str | Path, out_dir: str | Path, alpha: float = 0.5
    ) -> list[Path]:
        """For each image write `NAME.png` (class ids), `NAME_color.png` and `NAME_overlay.png`."""
        out_dir = Path(out_dir)
        written = []
        ds = ImageFolder(images)
        for i in range(len(ds)):
            item = ds[i]
            pred = self.predict(item["image"])
            labels = pred.labels.astype(np.uint8)
            rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            written.append(write_png(out_dir / f"{item['name']}.png", labels))
            write_png(out_dir / f"{item['name']}_color.png", self.taxonomy.colorize(labels))
            write_png(
                out_dir / f"{item['name']}_overlay.png", overlay(rgb, labels, self.taxonomy, alpha)
            )
        return written


def load(checkpoint: str | Path, device: str = "cpu") -> Segmenter:
    """Load a trained model from a checkpoint: `perpixel.load("best.ckpt").predict(image)`."""
    return Segmenter.load(checkpoint, device)
