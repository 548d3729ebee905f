"""A fast PNG reader for label maps (class ids, instance ids, panoptic RGB ids).

Evaluating result files against ground truth (Cityscapes, COCO panoptic) is mostly PNG
decoding: PIL spends about 80% of it in zlib's inflate and the row filters. Here the inflate
is ISA-L's (the `isal` package, 3-4x zlib's speed) and the filters are undone by numba, over
the whole file at once. Files of another kind (palette, interlaced, bit depths below 8) go
through PIL.
"""

from __future__ import annotations

import ctypes
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numba
import numpy as np
from isal import isal_zlib  # ISA-L's inflate: zlib's output, several times faster
from PIL import UnidentifiedImageError

from perpixel.data import images
from perpixel.errors import DataError

T = TypeVar("T")
SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


@numba.njit(cache=True, nogil=True)
def unfilter(raw: np.ndarray, h: int, row_bytes: int, bpp: int) -> np.ndarray:
    """Inflated IDAT -> (H, row_bytes) uint8 samples: undoes the per-row filters (None, Sub,
    Up, Average, Paeth; PNG spec 9.2) with `bpp` bytes per pixel (at least 1)."""
    out = np.empty((h, row_bytes), np.uint8)
    zero = np.zeros(row_bytes, np.uint8)
    for y in range(h):
        ft = raw[y * (row_bytes + 1)]
        line = raw[y * (row_bytes + 1) + 1 : (y + 1) * (row_bytes + 1)]
        cur = out[y]
        prev = out[y - 1] if y > 0 else zero
        if ft == 0:
            cur[:] = line
        elif ft == 1:
            cur[:bpp] = line[:bpp]
            for x in range(bpp, row_bytes):
                cur[x] = (line[x] + cur[x - bpp]) & 255
        elif ft == 2:
            for x in range(row_bytes):
                cur[x] = (line[x] + prev[x]) & 255
        elif ft == 3:
            for x in range(row_bytes):
                a = np.int32(cur[x - bpp]) if x >= bpp else 0
                cur[x] = (line[x] + ((a + np.int32(prev[x])) >> 1)) & 255
        elif ft == 4:
            for x in range(bpp):
                cur[x] = (line[x] + prev[x]) & 255
            for x in range(bpp, row_bytes):
                a, b, c = np.int32(cur[x - bpp]), np.int32(prev[x]), np.int32(prev[x - bpp])
                if b == c:  # pa = 0: a (most pixels of a label map: regions are flat)
                    p = a
                elif a == c:  # pb = 0 < pa: b
                    p = b
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        else:
            raise ValueError("unknown PNG filter type")
    return out


def _chunks(data: bytes) -> tuple[bytes, bytes]:
    """(IHDR payload, concatenated IDAT payloads) of a PNG file's bytes."""
    idat, pos, ihdr = [], 8, b""
    while pos + 8 <= len(data):
        n, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"IHDR":
            ihdr = data[pos + 8 : pos + 8 + n]
        elif kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + n])
        elif kind == b"IEND":
            break
        pos += 12 + n
    return ihdr, b"".join(idat)


def read_png(path: str | Path, max_pixels: int | None = None, what: str = "image") -> np.ndarray:
    """The samples of a PNG as stored: (H, W) for grey, (H, W, C) for grey+alpha, RGB, RGBA;
    uint8 or uint16 (native byte order); palette images give their indices, as PIL does.

    Raises DataError naming the file (a `what`: "image", "label map", ...) when it is
    missing, unreadable, or has more than `max_pixels` pixels (default `images.MAX_PIXELS`).
    Files that are not PNGs are read by PIL.
    """
    limit = images.MAX_PIXELS if max_pixels is None else max_pixels
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, f"{what} file not found") from None
    except OSError as e:
        raise DataError(path, f"cannot read {what} ({e})") from None
    if data[:8] == SIGNATURE and data[12:16] == b"IHDR":
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        depth, colour, method, filt, interlace = data[24:29]
        fast = depth in (8, 16) and colour in CHANNELS and (method, filt, interlace) == (0, 0, 0)
        if fast and 0 < w * h <= limit:
            c = CHANNELS[colour]
            bpp = c * depth // 8
            try:
                raw = isal_zlib.decompress(_chunks(data)[1], bufsize=h * (w * bpp + 1))
                if len(raw) < h * (w * bpp + 1):
                    raise ValueError(f"image data is {len(raw)} bytes, not {h * (w * bpp + 1)}")
                px = unfilter(np.frombuffer(raw, np.uint8), h, w * bpp, bpp)
            except (ValueError, isal_zlib.error, zlib.error) as e:  # type: ignore[misc]  # stub: an instance
                raise DataError(path, f"cannot read {what} ({e})") from None
            if depth == 16:  # big-endian samples, swapped in place (no new array)
                px = px.view(">u2")
                if sys.byteorder == "little":
                    px = px.byteswap(inplace=True).view(np.uint16)
            return px.reshape((h, w) if c == 1 else (h, w, c))
    try:
        with images.open_image(path, limit) as im:
            return np.array(im)  # writable, as the fast path's
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"cannot read {what} ({e})") from None


def decoder_process() -> None:
    """Initializer of processes that decode many large PNGs: glibc keeps freed blocks for
    reuse (mmap threshold 256 MB, no trimming) instead of handing each image's 2-8 MB
    buffers back to the OS, whose fresh pages then cost 20% of the time in page faults."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(-3, 1 << 28)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def map_files(
    fn: Callable[..., T], items: Sequence[Any], workers: int = 1, *args: Any
) -> Iterator[T]:
    """`fn(chunk, *args)` over `items` cut into chunks: all of them at once in this process
    for one worker, else 4 chunks per process (for balance) in a pool of `workers`
    `decoder_process`es. The results come in chunk order; the caller sums them."""
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        yield fn(items, *args)
        return
    chunks = [items[i :: workers * 4] for i in range(workers * 4)]
    with ProcessPoolExecutor(workers, initializer=decoder_process) as pool:
        yield from pool.map(fn, chunks, *([a] * len(chunks) for a in args))
