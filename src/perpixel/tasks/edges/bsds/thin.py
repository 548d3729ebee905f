"""MATLAB's `bwmorph(bw, 'thin', Inf)`, exactly: the BSDS benchmark thins every binary
boundary map before matching. Compiled with numba (it runs once per threshold per image,
inside the matcher's GIL-free loop, so it must be fast and callable from numba code)."""

from __future__ import annotations

import numba
import numpy as np

# bwmorph 'thin' (Lam, Lee & Suen 1992, as MATLAB implements it): two look-up tables over the
# 8-neighbourhood code n = sum of bit k for neighbour k, k = 0..7 counter-clockwise from east.


def _thin_luts() -> np.ndarray:
    luts = np.zeros((2, 256), np.bool_)
    for n in range(256):
        b = [(n >> i) & 1 for i in range(8)]
        g1 = sum(1 for i in (0, 2, 4, 6) if not b[i] and (b[i + 1] or b[(i + 2) % 8])) == 1
        n1 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[k - 1])
        n2 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[(k + 1) % 8])
        g2 = min(n1, n2) in (2, 3)
        g3 = not ((b[1] or b[2] or not b[7]) and b[0])
        g3p = not ((b[5] or b[6] or not b[3]) and b[4])
        luts[0, n] = g1 and g2 and g3
        luts[1, n] = g1 and g2 and g3p
    return luts


_LUTS = _thin_luts()
_DY = np.array([0, -1, -1, -1, 0, 1, 1, 1], np.int64)
_DX = np.array([1, 1, 0, -1, -1, -1, 0, 1], np.int64)


@numba.njit(cache=True, nogil=True)
def _thin(bw: np.ndarray, luts: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    h, w = bw.shape
    out = bw.copy()
    ys = np.empty(h * w, np.int64)
    xs = np.empty(h * w, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            if out[y, x]:
                ys[n] = y
                xs[n] = x
                n += 1
    kill = np.empty(n, np.int64)
    while True:
        changed = False
        for sub in range(2):
            nk = 0
            for p in range(n):  # decide on the image as it was before this sub-iteration
                y, x = ys[p], xs[p]
                code = 0
                for k in range(8):
                    yy, xx = y + dy[k], x + dx[k]
                    if 0 <= yy < h and 0 <= xx < w and out[yy, xx]:
                        code |= 1 << k
                if luts[sub, code]:
                    kill[nk] = p
                    nk += 1
            if nk:
                changed = True
                for q in range(nk):
                    out[ys[kill[q]], xs[kill[q]]] = False
                m = 0  # keep the survivors' list compact
                for p in range(n):
                    if out[ys[p], xs[p]]:
                        ys[m] = ys[p]
                        xs[m] = xs[p]
                        m += 1
                n = m
        if not changed:
            return out


def thin(bw: np.ndarray) -> np.ndarray:
    """MATLAB's `bwmorph(bw, 'thin', Inf)`: thin (H, W) bool regions to 8-connected lines."""
    return _thin(np.ascontiguousarray(bw, dtype=np.bool_), _LUTS, _DY, _DX)
