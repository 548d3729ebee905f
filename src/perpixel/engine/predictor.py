"""Inference shared by every task: image input of any kind, and `predict_folder` with a
progress bar; each task's predictor says what one prediction is and which files it writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from perpixel.data.images import ImageFolder, read_image, to_float
from perpixel.errors import PerpixelError

ImageLike = np.ndarray | Image.Image | str | Path | torch.Tensor


def to_rgb(image: ImageLike) -> np.ndarray | torch.Tensor:
    """A path or PIL image -> its (H, W, 3) uint8 array; an (H, W, 3) array or a tensor
    unchanged; PerpixelError for an array of another shape."""
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray) and (image.ndim != 3 or image.shape[2] != 3):
        raise PerpixelError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return image


def to_tensor(image: ImageLike) -> torch.Tensor:
    """A path, PIL image, (H, W, 3) uint8 array or (3, H, W) float tensor -> (3, H, W) in [0, 1]."""
    image = to_rgb(image)
    if isinstance(image, np.ndarray):
        image = to_float(image)
    return image


class Predictor:
    """Base of the tasks' predictors: `predict(image)` for one image, `write(out_dir, item,
    prediction)` for its files; `predict_folder` runs both over a folder of images."""

    device: str = "cpu"
    outputs: str = "NAME.png"  # what `write` makes, for messages
    uint8_images: bool = False  # `predict_folder` items: (H, W, 3) uint8, not (3, H, W) float

    def predict(self, image: ImageLike) -> Any:
        raise NotImplementedError

    def write(self, out_dir: Path, item: dict, prediction: Any) -> Path:
        """Write the files of one prediction (`item`: {"image", "name", "path"}); returns the
        main file."""
        raise NotImplementedError

    def predict_folder(
        self, images: str | Path | Sequence[Path], out_dir: str | Path, progress: bool = True
    ) -> list[Path]:
        """Predict every image of `images` (a folder, a file or a list of files) into
        `out_dir`."""
        from rich.progress import track

        out_dir = Path(out_dir)
        ds = ImageFolder(images, as_uint8=self.uint8_images)
        written = []
        for i in track(range(len(ds)), "predict", total=len(ds), disable=not progress):
            item = ds[i]
            written.append(self.write(out_dir, item, self.predict(item["image"])))
        return written
