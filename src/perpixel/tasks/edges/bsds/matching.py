"""The BSDS boundary benchmark's pixel matching (thinning is in `thin.py`).

Written with numba because this is where the benchmark spends its time, and it must
reproduce the reference exactly: `correspond_pixels` is the benchmark's `correspondPixels`
(Martin, Fowlkes, Malik; `match.cc`).

`correspondPixels` matches the "on" pixels of two binary maps one-to-one, a pixel pair being
allowed when they are at most `max_dist` apart; it solves a min-cost perfect matching in which
every pixel may instead go to an outlier at a cost far above any distance. So its solution is
a *maximum-cardinality* matching whose total rounded distance (`rint(100 * d)`, the reference's
integer costs) is minimal among maximum ones. We solve that same problem exactly, with the
shortest-augmenting-path (Hungarian / Jonker-Volgenant) method on the sparse graph: each pixel
of the smaller side of its connected component in turn is augmented along a Dijkstra
shortest path over reduced costs,
with a private outlier at cost `BIG` so that every search ends. The search is local because
the graph is geometric, which makes this far faster than the reference's cost-scaling solver
on a full outlier graph. Where several matchings are optimal (equal distances on the pixel
grid are common) the reference's CSA solver picks one arbitrarily; so do we, so which
prediction pixels are "matched" can differ on ties, moving precision by ~1e-4 on BSDS images.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from perpixel.tasks.edges.bsds.thin import _DX, _DY, _LUTS, _thin

MULTIPLIER = 100  # the reference's integer cost scale: cost = rint(100 * distance)
BIG = 1 << 40  # outlier cost: above any sum of real costs, so cardinality comes first
_INF = np.iinfo(np.int64).max


@numba.njit(cache=True, nogil=True)
def _heap_push(hk, hv, size, key, val):
    i = size
    hk[i] = key
    hv[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if hk[parent] <= hk[i]:
            break
        hk[parent], hk[i] = hk[i], hk[parent]
        hv[parent], hv[i] = hv[i], hv[parent]
        i = parent
    return size + 1


@numba.njit(cache=True, nogil=True)
def _heap_pop(hk, hv, size):
    key, val = hk[0], hv[0]
    size -= 1
    hk[0] = hk[size]
    hv[0] = hv[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        c = left
        if left + 1 < size and hk[left + 1] < hk[left]:
            c = left + 1
        if hk[i] <= hk[c]:
            break
        hk[c], hk[i] = hk[i], hk[c]
        hv[c], hv[i] = hv[i], hv[c]
        i = c
    return key, val, size


@numba.njit(cache=True, nogil=True)
def _relax(hk, hv, size, dist, pred, pcost, touched, nt, k, dk, r, c):
    if dk < dist[k]:
        if dist[k] == _INF:
            touched[nt] = k
            nt += 1
        dist[k] = dk
        pred[k] = r
        pcost[k] = c
        size = _heap_push(hk, hv, size, dk, k)
    return size, nt


@numba.njit(cache=True, nogil=True)
def _assign(nr, nc, start, col, cost):
    """Min-cost maximum-cardinality matching of rows to columns on a sparse graph.

    Rows 0..nr-1 with CSR edges (start, col, cost >= 0); every row r also has a private
    outlier column nc + r at cost BIG. Returns row_to_col (-1 = unmatched)."""
    ncol = nc + nr
    v = np.zeros(ncol, np.int64)  # column prices (dual variables)
    col_row = -np.ones(ncol, np.int64)
    row_col = -np.ones(nr, np.int64)
    row_cost = np.zeros(nr, np.int64)  # cost of each row's matched edge
    # zero-cost edges (coincident pixels) are tight under zero prices: match them first
    for r in range(nr):
        for e in range(start[r], start[r + 1]):
            if cost[e] == 0 and col_row[col[e]] < 0:
                col_row[col[e]] = r
                row_col[r] = col[e]
                break
    dist = np.full(ncol, _INF)
    pred = -np.ones(ncol, np.int64)
    pcost = np.zeros(ncol, np.int64)
    done = np.zeros(ncol, np.bool_)
    touched = np.empty(ncol, np.int64)
    cap = len(col) + 2 * nr + 8  # each relaxation pushes at most once per edge
    hk = np.empty(cap, np.int64)
    hv = np.empty(cap, np.int64)
    for r0 in range(nr):
        if row_col[r0] >= 0:
            continue
        nt = 0
        size = 0
        base = 0
        r = r0
        end = -1
        mu = 0
        while True:
            # extend the alternating path through row r, reached at reduced distance `base`
            for e in range(start[r], start[r + 1]):
                k = col[e]
                if not done[k]:
                    size, nt = _relax(
                        hk,
                        hv,
                        size,
                        dist,
                        pred,
                        pcost,
                        touched,
                        nt,
                        k,
                        base + cost[e] - v[k],
                        r,
                        cost[e],
                    )
            k = nc + r
            size, nt = _relax(
                hk, hv, size, dist, pred, pcost, touched, nt, k, base + BIG - v[k], r, BIG
            )
            j = -1
            while size > 0:
                d, jj, size = _heap_pop(hk, hv, size)
                if not done[jj] and d == dist[jj]:
                    j = jj
                    break
            done[j] = True
            if col_row[j] < 0:
                end, mu = j, dist[j]
                break
            r = col_row[j]  # the row holding j: the path continues through it
            base = dist[j] - row_cost[r] + v[j]
        for t in range(nt):  # price update keeps reduced costs >= 0 and tight on the path
            k = touched[t]
            if done[k]:
                v[k] += dist[k] - mu
        j = end
        while True:  # augment along the predecessor chain
            r = pred[j]
            prev = row_col[r]
            row_col[r] = j
            row_cost[r] = pcost[j]
            col_row[j] = r
            if r == r0:
                break
            j = prev
        for t in range(nt):
            k = touched[t]
            dist[k] = _INF
            done[k] = False
    for r in range(nr):
        if row_col[r] >= nc:
            row_col[r] = -1
    return row_col


@numba.njit(cache=True, nogil=True)
def _pixels(bmap):
    h, w = bmap.shape
    n = 0
    for y in range(h):
        for x in range(w):
            if bmap[y, x]:
                n += 1
    flat = np.empty(n, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            if bmap[y, x]:
                flat[n] = y * w + x
                n += 1
    return flat


@numba.njit(cache=True, nogil=True)
def _find(parent, k):
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


@numba.njit(cache=True, nogil=True)
def _correspond(pix1, pix2, h, w, max_dist, ids):
    """Matched pairs (K, 2) of flat pixel ids between two pixel sets; `ids` is an (h*w,)
    scratch array of -1, returned to -1."""
    rad = int(math.ceil(max_dist))
    md2 = max_dist * max_dist
    no = 0  # window offsets within reach, and their integer costs
    oy = np.empty((2 * rad + 1) ** 2, np.int64)
    ox = np.empty((2 * rad + 1) ** 2, np.int64)
    oc = np.empty((2 * rad + 1) ** 2, np.int64)
    for v in range(-rad, rad + 1):
        for u in range(-rad, rad + 1):
            d2 = u * u + v * v
            if d2 <= md2:
                oy[no], ox[no] = v, u
                oc[no] = np.int64(np.rint(np.sqrt(d2) * MULTIPLIER))
                no += 1
    # edges from map 1's pixels to map 2's, in CSR form
    n1, n2 = len(pix1), len(pix2)
    for c in range(n2):
        ids[pix2[c]] = c
    start = np.zeros(n1 + 1, np.int64)
    ecol = np.empty(n1 * no, np.int64)
    ecost = np.empty(n1 * no, np.int64)
    deg2 = np.zeros(n2 + 1, np.int64)
    m = 0
    for r in range(n1):
        y, x = pix1[r] // w, pix1[r] % w
        for k in range(no):
            yy, xx = y + oy[k], x + ox[k]
            if 0 <= yy < h and 0 <= xx < w:
                c = ids[yy * w + xx]
                if c >= 0:
                    ecol[m] = c
                    ecost[m] = oc[k]
                    deg2[c + 1] += 1
                    m += 1
        start[r + 1] = m
    for c in range(n2):
        ids[pix2[c]] = -1
    # transposed CSR (map 2 -> map 1), by counting sort
    for c in range(n2):
        deg2[c + 1] += deg2[c]
    start2 = deg2
    fill = start2[:-1].copy()
    tcol = np.empty(m, np.int64)
    tcost = np.empty(m, np.int64)
    for r in range(n1):
        for e in range(start[r], start[r + 1]):
            c = ecol[e]
            tcol[fill[c]] = r
            tcost[fill[c]] = ecost[e]
            fill[c] += 1
    # Connected components are independent problems. In each, the side with fewer pixels
    # plays the rows: fewer searches fail, and a failed search (no free partner reachable)
    # is the costly kind, as it explores its whole alternating tree.
    parent = np.arange(n1 + n2)
    for r in range(n1):
        for e in range(start[r], start[r + 1]):
            x, y = _find(parent, r), _find(parent, n1 + ecol[e])
            if x != y:
                parent[x] = y
    size = np.zeros(n1 + n2, np.int64)  # side-1 minus side-2 nodes per component root
    for r in range(n1):
        if start[r + 1] > start[r]:
            size[_find(parent, r)] += 1
    for c in range(n2):
        if start2[c + 1] > start2[c]:
            size[_find(parent, n1 + c)] -= 1
    # combined problem: node k < n1 is pixel k of map 1, else pixel k - n1 of map 2
    row_node = np.empty(n1 + n2, np.int64)
    col_of = -np.ones(n1 + n2, np.int64)
    col_node = np.empty(n1 + n2, np.int64)
    nr = 0
    nc = 0
    for k in range(n1 + n2):
        deg = (start[k + 1] - start[k]) if k < n1 else (start2[k - n1 + 1] - start2[k - n1])
        if deg == 0:
            continue
        rows_here = size[_find(parent, k)] <= 0  # side 1 rows where it is not larger
        if (k < n1) == rows_here:
            row_node[nr] = k
            nr += 1
        else:
            col_of[k] = nc
            col_node[nc] = k
            nc += 1
    cstart = np.zeros(nr + 1, np.int64)
    ccol = np.empty(m, np.int64)
    ccost = np.empty(m, np.int64)
    q = 0
    for i in range(nr):
        k = row_node[i]
        if k < n1:
            for e in range(start[k], start[k + 1]):
                ccol[q] = col_of[n1 + ecol[e]]
                ccost[q] = ecost[e]
                q += 1
        else:
            for e in range(start2[k - n1], start2[k - n1 + 1]):
                ccol[q] = col_of[tcol[e]]
                ccost[q] = tcost[e]
                q += 1
        cstart[i + 1] = q
    row_col = _assign(nr, nc, cstart, ccol, ccost)
    npair = 0
    for i in range(nr):
        if row_col[i] >= 0:
            npair += 1
    pairs = np.empty((npair, 2), np.int64)  # matched (pixel of map 1, pixel of map 2)
    q = 0
    for i in range(nr):
        if row_col[i] >= 0:
            k, j = row_node[i], col_node[row_col[i]]
            a, b = (k, j - n1) if k < n1 else (j, k - n1)
            pairs[q, 0], pairs[q, 1] = pix1[a], pix2[b]
            q += 1
    return pairs


def match_pairs(bmap1: np.ndarray, bmap2: np.ndarray, max_dist_px: float) -> np.ndarray:
    """Matched pixel pairs of two (H, W) bool maps as (K, 2) flat indices (map 1, map 2);
    `max_dist_px` in pixels."""
    b1 = np.ascontiguousarray(bmap1, dtype=np.bool_)
    b2 = np.ascontiguousarray(bmap2, dtype=np.bool_)
    if b1.shape != b2.shape or b1.ndim != 2:
        raise ValueError(f"maps must be 2-D and equal in size, got {b1.shape} and {b2.shape}")
    ids = -np.ones(b1.size, np.int64)
    h, w = b1.shape
    return _correspond(_pixels(b1), _pixels(b2), h, w, float(max_dist_px), ids)


def correspond_pixels(
    bmap1: np.ndarray, bmap2: np.ndarray, max_dist: float = 0.0075
) -> tuple[np.ndarray, np.ndarray]:
    """Match the on-pixels of two (H, W) binary maps one-to-one within a distance.

    `max_dist` is a fraction of the image diagonal, as in the reference (0.0075 for BSDS).
    Returns (matched1, matched2), (H, W) bool: which pixels of each map found a partner.
    """
    pairs = match_pairs(bmap1, bmap2, max_dist * math.hypot(*np.shape(bmap1)))
    m1 = np.zeros(np.shape(bmap1), bool)
    m2 = np.zeros(np.shape(bmap2), bool)
    m1.flat[pairs[:, 0]] = True
    m2.flat[pairs[:, 1]] = True
    return m1, m2


@numba.njit(cache=True, nogil=True)
def _count_matches(bmaps, gts, max_dist_px, do_thin, luts, dy, dx):
    nt, h, w = bmaps.shape
    out = np.zeros((nt, 4), np.int64)
    acc = np.zeros(h * w, np.bool_)
    ids = -np.ones(h * w, np.int64)
    gpix = [_pixels(gts[g]) for g in range(gts.shape[0])]
    sum_r = 0
    for g in range(gts.shape[0]):
        sum_r += len(gpix[g])
    for t in range(nt):
        if t > 0 and np.array_equal(bmaps[t], bmaps[t - 1]):  # e.g. binary inputs
            out[t] = out[t - 1]
            continue
        b = _thin(bmaps[t], luts, dy, dx) if do_thin else bmaps[t].copy()
        bpix = _pixels(b)
        acc[:] = False
        for g in range(gts.shape[0]):
            pairs = _correspond(bpix, gpix[g], h, w, max_dist_px, ids)
            out[t, 0] += pairs.shape[0]
            for q in range(pairs.shape[0]):
                acc[pairs[q, 0]] = True
        out[t, 1] = sum_r
        out[t, 2] = acc.sum()
        out[t, 3] = len(bpix)
    return out


def count_matches(
    bmaps: np.ndarray, gts: np.ndarray, max_dist_px: float, thin: bool = True
) -> np.ndarray:
    """Benchmark counts for binary maps (T, H, W) against annotators' boundaries (N, H, W).

    Each map is thinned (if `thin`) and matched to every annotator; returns (T, 4) int64
    columns cntR (matched annotator pixels, summed over annotators), sumR, cntP (predicted
    pixels matched to any annotator), sumP. Releases the GIL, so threads run in parallel."""
    return _count_matches(
        np.ascontiguousarray(bmaps, dtype=np.bool_),
        np.ascontiguousarray(gts, dtype=np.bool_),
        float(max_dist_px),
        bool(thin),
        _LUTS,
        _DY,
        _DX,
    )
