"""Atomic file writes (a reader never sees a half-written output), and reading torch files
as plain data only (a file someone sent you cannot run code when opened)."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from perpixel.errors import PerpixelError


def umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path` with the
    permissions a plain `open(path, "w")` would give (0666 less the umask), not the private
    0600 of the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG, atomically."""
    return atomic_write(path, lambda p: Image.fromarray(array).save(p, format="PNG"))


REFUSED = (
    "refused: the file holds Python objects that are not plain data (tensors, numbers, "
    "strings, lists, dicts), and unpickling them could run code"
)


def load_plain(path: str | Path, what: str, missing: str, map_location: str = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: tensors, numbers, strings, lists and dicts
    only. PerpixelError in one line naming the file: `missing` when there is none; the
    refused class or function when it carries code; "not `what`" when it is not a torch file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PerpixelError(f"{path}: {missing}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's plain-data unpickler names the class or function it refused ("GLOBAL ...")
        refused = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if refused:
            raise PerpixelError(f"{path}: {REFUSED} ({refused[0]})") from None
        raise PerpixelError(f"{path}: not {what} (not a torch file)") from None
    except Exception as e:  # noqa: BLE001 - any other failure means "not that kind of file"
        raise PerpixelError(f"{path}: not {what} ({type(e).__name__}: {e})") from None
