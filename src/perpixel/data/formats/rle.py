"""COCO run-length encoding (RLE) and polygon rasterisation in numpy, bit-exact with
pycocotools (`common/maskApi.c`: rleEncode, rleToString, rleFrString, rleFrPoly, rleMerge).

An RLE is `{"size": [H, W], "counts": ...}`: the mask read in column-major (Fortran) order as
alternating run lengths, starting with a run of 0s (possibly empty). `counts` is either a
list of ints ("uncompressed RLE") or pycocotools' compressed string: each count (from the
4th on, minus the count two before it) written as a little-endian signed number in 5-bit
groups, one ASCII character (48 + group, +32 when more groups follow) per group.

Polygons are rasterised as pycocotools' `frPyObjects` + `merge` do for a COCO annotation:
each polygon's vertices are scaled by 5 and rounded, its edges traced densely, and the pixel
column crossings taken back to the original grid; the union of the polygons is the mask.
Difference: pycocotools treats a polygon list whose FIRST polygon has exactly 4 numbers as a
list of boxes [x, y, w, h]; here every polygon is a polygon (such 2-point polygons are empty).
Errors are ValueError; dataset readers turn them into DataError naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_MAX_GROUPS = 7  # 5-bit groups of a signed 32-bit count delta


def _runs(mask: np.ndarray) -> np.ndarray:
    """(H, W) mask -> int64 run lengths in column-major order, starting with 0s."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges)
    if flat.size and flat[0]:
        runs = np.concatenate([[0], runs])
    return runs.astype(np.int64)


def counts_to_string(counts: Sequence[int] | np.ndarray) -> str:
    """Run lengths -> pycocotools' compressed string (rleToString)."""
    cnts = np.asarray(counts, np.int64)
    x = cnts.copy()
    x[3:] -= cnts[1:-2]
    chars = np.zeros((x.size, _MAX_GROUPS), np.uint8)
    used = np.zeros((x.size, _MAX_GROUPS), bool)
    more = np.ones(x.size, bool)
    for k in range(_MAX_GROUPS):
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, as on C's signed long
        nxt = more & np.where(c & 0x10, x != -1, x != 0)
        chars[:, k] = c + 48 + 32 * nxt
        used[:, k] = more
        more = nxt
    if more.any():
        raise ValueError("run length too large for a COCO RLE")
    return chars[used].tobytes().decode("ascii")


def string_to_counts(s: str | bytes) -> np.ndarray:
    """pycocotools' compressed string -> int64 run lengths (rleFrString)."""
    raw = s.encode("ascii") if isinstance(s, str) else bytes(s)
    c = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if (c < 0).any() or (c > 63).any():
        raise ValueError("RLE counts string has characters outside '0'..'o'")
    last = (c & 0x20) == 0
    if not last[-1]:
        raise ValueError("RLE counts string ends inside a number")
    number = np.concatenate([[0], np.cumsum(last)[:-1]])
    starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    k = np.arange(c.size) - starts[number]
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    ends = np.flatnonzero(last)
    ngroups = k[ends] + 1
    x = np.where(c[ends] & 0x10, x - (np.int64(1) << (5 * ngroups)), x)
    cnts = x.copy()
    cnts[1::2] = np.cumsum(x[1::2])  # cnts[m] = x[m] + cnts[m - 2] for m > 2
    if x.size > 2:
        cnts[2::2] = np.cumsum(x[2::2])
    return cnts & 0xFFFFFFFF  # C stores them as uint


def encode(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool mask -> {"size": [H, W], "counts": str} (compressed, as pycocotools)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode takes one (H, W) mask, not shape {mask.shape}")
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(_runs(mask))}


def counts(rle: dict[str, Any]) -> np.ndarray:
    """The run lengths (int64) of an RLE with string, bytes or list counts."""
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise ValueError("an RLE is a dict with 'size' and 'counts'")
    c = rle["counts"]
    if isinstance(c, (str, bytes)):
        return string_to_counts(c)
    out = np.asarray(c, np.int64).ravel()
    if (out < 0).any():
        raise ValueError("RLE counts are negative")
    return out


def decode(rle: dict[str, Any]) -> np.ndarray:
    """RLE (string, bytes or list counts) -> (H, W) bool mask."""
    h, w = (int(v) for v in rle["size"]) if isinstance(rle, dict) and "size" in rle else (0, 0)
    runs = counts(rle)
    if int(runs.sum()) != h * w:
        raise ValueError(f"RLE counts sum to {int(runs.sum())}, not {h} x {w} = {h * w}")
    values = np.arange(runs.size) % 2 == 1
    return np.repeat(values, runs).reshape((h, w), order="F")


def area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of an RLE."""
    return int(counts(rle)[1::2].sum())


def _trace(poly: np.ndarray, h: int, w: int) -> np.ndarray:
    """One polygon [x0, y0, x1, y1, ...] -> sorted column-major indices where it toggles
    (rleFrPoly's y-boundary points), with h * w appended."""
    scale = 5.0
    xy = np.asarray(poly, np.float64).reshape(-1, 2)
    x = np.trunc(scale * xy[:, 0] + 0.5).astype(np.int64)  # C's (int) truncates toward 0
    y = np.trunc(scale * xy[:, 1] + 0.5).astype(np.int64)
    xs, ys, xe, ye = x, y, np.roll(x, -1), np.roll(y, -1)
    dx, dy = np.abs(xe - xs), np.abs(ys - ye)
    along_x = dx >= dy
    flip = (along_x & (xs > xe)) | (~along_x & (ys > ye))
    xs, xe = np.where(flip, xe, xs), np.where(flip, xs, xe)
    ys, ye = np.where(flip, ye, ys), np.where(flip, ys, ye)
    n = np.where(along_x, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(along_x, (ye - ys) / n, (xe - xs) / n)
    edge = np.repeat(np.arange(len(x)), n + 1)
    d = np.arange(edge.size) - np.repeat(np.cumsum(n + 1) - (n + 1), n + 1)
    t = np.where(flip[edge], n[edge] - d, d)
    # C: (int)(ys + s*t + .5) / (int)(xs + s*t + .5); a zero-length edge's NaN slope only
    # reaches a point whose column equals its neighbours', so 0 stands in for it
    st = np.where(n[edge] > 0, np.nan_to_num(s)[edge] * t, 0.0)
    ax = along_x[edge]
    u = np.where(ax, t + xs[edge], np.trunc(xs[edge] + st + 0.5).astype(np.int64))
    v = np.where(ax, np.trunc(ys[edge] + st + 0.5).astype(np.int64), t + ys[edge])
    # points where the traced boundary crosses a pixel column, back on the original grid
    j = np.flatnonzero(u[1:] != u[:-1]) + 1
    xd = np.where(u[j] < u[j - 1], u[j], u[j] - 1).astype(np.float64)
    xd = (xd + 0.5) / scale - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    j, xd = j[keep], xd[keep]
    yd = np.minimum(v[j], v[j - 1]).astype(np.float64)
    yd = np.ceil(np.clip((yd + 0.5) / scale - 0.5, 0, h))
    a = xd.astype(np.int64) * h + yd.astype(np.int64)
    return np.sort(np.concatenate([a, [h * w]]))


def _poly_runs(poly: Sequence[float], h: int, w: int) -> np.ndarray:
    """rleFrPoly: the run lengths of one polygon."""
    a = _trace(np.asarray(poly, np.float64), h, w)
    diffs = np.diff(np.concatenate([[0], a]))
    # a zero difference (two toggles at one pixel) cancels: the next run joins the previous
    out = [int(diffs[0])]
    j = 1
    while j < diffs.size:
        if diffs[j] > 0:
            out.append(int(diffs[j]))
            j += 1
        else:
            j += 1
            if j < diffs.size:
                out[-1] += int(diffs[j])
                j += 1
    return np.asarray(out, np.int64)


def poly_to_rle(poly: Sequence[float], h: int, w: int) -> dict[str, Any]:
    """One polygon [x0, y0, x1, y1, ...] (pixel coordinates) -> RLE, as pycocotools' frPoly."""
    if len(poly) < 2 or len(poly) % 2:
        raise ValueError(f"a polygon is an even number of coordinates, not {len(poly)}")
    return {"size": [int(h), int(w)], "counts": counts_to_string(_poly_runs(poly, h, w))}


def polygons_to_mask(polygons: Sequence[Sequence[float]], h: int, w: int) -> np.ndarray:
    """List of polygons [x0, y0, x1, y1, ...] -> (H, W) bool mask, their union."""
    out = np.zeros((h, w), bool)
    for poly in polygons:
        if len(poly) < 2 or len(poly) % 2:
            raise ValueError(f"a polygon is an even number of coordinates, not {len(poly)}")
        runs = _poly_runs(poly, h, w)
        values = np.arange(runs.size) % 2 == 1
        out |= np.repeat(values, runs).reshape((h, w), order="F")
    return out
