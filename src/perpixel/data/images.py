"""Reading images: one RGB reader with errors that name the file and a pixel limit, and a
folder of images.

The pixel limit (`MAX_PIXELS`, raised with `set_max_pixels` or `perpixel predict
--max-pixels N`) is checked on the file's header, before anything is decoded. It stands in
for Pillow's own decompression-bomb guard (a warning past `PIL.Image.MAX_IMAGE_PIXELS`, 89
Mpx by default, an error past twice that, raised when a file is opened), which would warn
about photographs we accept: `read_image` raises Pillow's threshold to our limit when ours is
higher. That is a global setting of Pillow, kept for the process (Pillow reads it at every
open, and a reader-local switch would race with other threads): it is only ever raised,
never lowered, and left off when someone turned it off (None).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from perpixel.errors import ConfigError, DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

# 150 million pixels: a 12000 x 9000 (108 Mpx) photograph or a 150 Mpx medium-format frame is
# read and then segmented in windows (about 11 bytes per pixel at the peak of `perpixel
# predict`: 2.2 GB at the limit, see perpixel.engine.inference); past it, an image is more
# likely a stitched panorama, a scan at the wrong resolution or a decompression bomb (a small
# file that decodes to gigabytes) than a photograph.
MAX_PIXELS = 150_000_000
STRIP_PIXELS = 1 << 22  # decoded images are converted to an RGB array this many pixels at a time


def set_max_pixels(n: int) -> None:
    """Set the pixel limit of `read_image` (`MAX_PIXELS`) for this process."""
    global MAX_PIXELS
    if n < 1:
        raise ConfigError(f"--max-pixels must be a positive number of pixels, not {n}")
    MAX_PIXELS = int(n)


@contextmanager
def pixel_limit(n: int | None) -> Iterator[None]:
    """`MAX_PIXELS` set to `n` inside the block, restored after (None: unchanged)."""
    before = MAX_PIXELS
    if n is not None:
        set_max_pixels(n)
    try:
        yield
    finally:
        set_max_pixels(before)


def _too_big(size: str, pixels: str, limit: int) -> str:
    return (
        f"{size} ({pixels} pixels) is past the limit of {limit:,} pixels; raise it with "
        "--max-pixels N (perpixel.data.images.set_max_pixels in Python)"
    )


def open_image(path: str | Path, limit: int) -> Image.Image:
    """The file opened lazily (header only), refused when it has more than `limit` pixels."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():  # past Pillow's threshold: refused below, by us
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:  # past twice Pillow's threshold
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(found[1]):,}" if found else "too many"
        raise DataError(path, _too_big("image", pixels, limit)) from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise DataError(path, _too_big(f"{w}x{h} image", f"{w * h:,}", limit))
    return im


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or DataError naming the file: unreadable, or more than
    `max_pixels` pixels (default `MAX_PIXELS`), checked before decoding. The RGB array is
    filled strip by strip: at the peak the decoded image and the array, no third copy."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with open_image(path, limit) as im:
            im.load()
            w, h = im.size
            out = np.empty((h, w, 3), np.uint8)
            rows = max(1, STRIP_PIXELS // max(w, 1))
            for y in range(0, h, rows):
                strip = im.crop((0, y, w, min(h, y + rows)))
                out[y : y + rows] = np.asarray(
                    strip if strip.mode == "RGB" else strip.convert("RGB")
                )
            return out
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


def to_float(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1], what the networks take."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (rounded, clipped): `to_float` undone."""
    return (image.permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)


class ImageFolder(Dataset):
    """Images alone (for prediction): {"image": (3, H, W) float32 in [0, 1], "name", "path"};
    with `as_uint8`, "image" is the (H, W, 3) uint8 array as read (a quarter of the memory)."""

    def __init__(self, folder: str | Path | Sequence[Path], as_uint8: bool = False):
        """`folder`: a folder of images, one image file, or a list of image files."""
        self.as_uint8 = as_uint8
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
            "image": image if self.as_uint8 else to_float(image),
            "name": self.files[i].stem,
            "path": str(self.files[i]),
        }
