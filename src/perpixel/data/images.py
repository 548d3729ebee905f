"""Reading images: one RGB reader with errors that name the file, and a folder of images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from perpixel.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or DataError naming the file."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(path, f"cannot read image ({e})") from None


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(folder, "no images in this folder")
    return files


class ImageFolder(Dataset):
    """Images alone (for prediction): {"image": (3, H, W) float32 in [0, 1], "name", "path"}."""

    def __init__(self, folder: str | Path | Sequence[Path]):
        """`folder`: a folder of images, one image file, or a list of image files."""
        if not isinstance(folder, (str, Path)):
            self.files = [Path(f) for f in folder]
            return
        folder = Path(folder)
        self.files = [folder] if folder.is_file() else list_images(folder)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        image = read_image(self.files[i])
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).float().div_(255),
            "name": self.files[i].stem,
            "path": str(self.files[i]),
        }
