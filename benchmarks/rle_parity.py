"""Our COCO RLE and polygon rasteriser (`perpixel.data.formats.rle`) against pycocotools.

    python benchmarks/rle_parity.py [--masks 300] [--polygons 1000] [--seed 0]

pycocotools runs in `benchmarks/.venv-ref` (not a dependency of ours) on the same random
masks and polygons, in a subprocess. Checked: `encode` gives the same compressed string,
`decode` of pycocotools' strings gives the same mask, `area` the same area, and
`polygons_to_mask` the same mask as `frPyObjects` + `merge` + `decode` (COCO's annToMask).
Masks: empty, full, noise, blobs, 1-pixel and long thin shapes, sizes up to 600 x 800 (counts
past 2^15, whose deltas take 4+ characters). Polygons: random simple and self-intersecting,
fractional, on and past the image borders, negative, repeated vertices, several parts.
Prints the number of mismatches per check and exits 1 on any.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "benchmarks" / ".venv-ref" / "bin" / "python"

REFERENCE = r"""
import json, sys
import numpy as np
from pycocotools import mask as M
folder = sys.argv[1]
masks = np.load(folder + "/masks.npz")
out = {"encode": [], "area": [], "strings": []}
for k in sorted(masks.files, key=int):
    m = np.asfortranarray(masks[k].astype(np.uint8))
    r = M.encode(m)
    out["encode"].append(r["counts"].decode("ascii"))
    out["area"].append(int(M.area(r)))
polys = json.load(open(folder + "/polys.json"))
dec = {}
for i, (ps, h, w) in enumerate(polys):
    rle = M.merge(M.frPyObjects(ps, h, w))
    dec[str(i)] = M.decode(rle).astype(bool)
    out["strings"].append(rle["counts"].decode("ascii"))
np.savez_compressed(folder + "/poly_ref.npz", **dec)
json.dump(out, open(folder + "/ref.json", "w"))
"""


def random_masks(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = [
        np.zeros((5, 7), bool),
        np.ones((5, 7), bool),
        np.ones((1, 1), bool),
        np.zeros((1, 1), bool),
        np.eye(9, 4, dtype=bool),
        np.ones((600, 800), bool),
    ]
    big = np.zeros((600, 800), bool)
    big[100:500, 50:700] = True
    out.append(big)
    while len(out) < n:
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        kind = rng.integers(4)
        if kind == 0:
            m = rng.random((h, w)) < rng.random()
        elif kind == 1:  # blobs
            yy, xx = np.mgrid[:h, :w]
            m = np.zeros((h, w), bool)
            for _ in range(rng.integers(1, 6)):
                cy, cx, r = rng.random() * h, rng.random() * w, rng.random() * max(h, w) / 2
                m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        elif kind == 2:  # one pixel / thin lines
            m = np.zeros((h, w), bool)
            m[rng.integers(h), :] = True
            m[:, rng.integers(w)] = rng.random() < 0.5
        else:  # large image, small object (long first run)
            h, w = (int(v) for v in rng.integers(300, 700, 2))
            m = np.zeros((h, w), bool)
            y, x = rng.integers(h - 5), rng.integers(w - 5)
            m[y : y + 5, x : x + 5] = True
        out.append(m)
    return out


def random_polygons(rng: np.random.Generator, n: int) -> list[tuple[list[list[float]], int, int]]:
    out = [
        ([[1.0, 1.0, 8.0, 1.0, 8.0, 6.0, 1.0, 6.0]], 10, 12),  # axis-aligned box
        ([[0.0, 0.0, 12.0, 0.0, 12.0, 10.0, 0.0, 10.0]], 10, 12),  # whole image
        ([[-5.0, -5.0, 30.0, -3.0, 20.0, 40.0]], 20, 25),  # past every border
        ([[2.0, 2.0, 2.0, 2.0, 7.0, 2.0, 7.0, 7.0, 7.0, 7.0, 2.0, 7.0]], 10, 10),  # repeats
        ([[3.3, 1.2, 9.7, 4.4, 5.5, 9.9], [0.1, 0.1, 2.9, 0.2, 1.0, 3.0]], 12, 12),
    ]
    while len(out) < n:
        h, w = (int(v) for v in rng.integers(2, 200, 2))
        parts = []
        for _ in range(rng.integers(1, 4)):
            k = int(rng.integers(3, 25))
            if rng.random() < 0.5:  # star-shaped around a centre
                cx, cy = rng.random() * w, rng.random() * h
                ang = np.sort(rng.random(k) * 2 * np.pi)
                r = rng.random(k) * max(h, w) / 2
                pts = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
            else:  # arbitrary, self-intersecting, up to 10% past the borders
                pts = rng.random((k, 2)) * [w * 1.2, h * 1.2] - [w * 0.1, h * 0.1]
            if rng.random() < 0.3:
                pts = np.round(pts * 2) / 2  # on half-pixel grid: exact ties
            parts.append([float(v) for v in pts.ravel()])
        out.append((parts, h, w))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--masks", type=int, default=300)
    ap.add_argument("--polygons", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from perpixel.data.formats import rle

    if not REF.exists():
        print(f"{REF} is missing: build benchmarks/.venv-ref with pycocotools first")
        return 2
    rng = np.random.default_rng(args.seed)
    masks = random_masks(rng, args.masks)
    polys = random_polygons(rng, args.polygons)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez_compressed(f"{tmp}/masks.npz", **{str(i): m for i, m in enumerate(masks)})
        Path(f"{tmp}/polys.json").write_text(json.dumps(polys))
        t0 = time.perf_counter()
        subprocess.run([str(REF), "-c", REFERENCE, tmp], check=True)
        t_ref = time.perf_counter() - t0
        ref = json.loads(Path(f"{tmp}/ref.json").read_text())
        poly_ref = dict(np.load(f"{tmp}/poly_ref.npz"))
    bad_enc = bad_dec = bad_area = bad_poly = bad_pstr = 0
    t0 = time.perf_counter()
    for i, m in enumerate(masks):
        ours = rle.encode(m)
        bad_enc += ours["counts"] != ref["encode"][i]
        theirs = {"size": list(m.shape), "counts": ref["encode"][i]}
        bad_dec += not np.array_equal(rle.decode(theirs), m)
        bad_area += rle.area(theirs) != ref["area"][i] or ref["area"][i] != int(m.sum())
    worst = ""
    for i, (ps, h, w) in enumerate(polys):
        ours_m = rle.polygons_to_mask(ps, h, w)
        diff = int((ours_m != poly_ref[str(i)]).sum())
        bad_poly += diff > 0
        bad_pstr += rle.encode(ours_m)["counts"] != ref["strings"][i]
        if diff and not worst:
            worst = f"polygon case {i} ({h}x{w}): {diff} pixels differ"
    t_ours = time.perf_counter() - t0
    print(
        f"masks {len(masks)}: encode string mismatches {bad_enc}, decode {bad_dec}, area {bad_area}"
    )
    print(
        f"polygon sets {len(polys)}: mask mismatches {bad_poly}, merged RLE string "
        f"mismatches {bad_pstr}" + (f"; first: {worst}" if worst else "")
    )
    print(f"time: ours {t_ours:.2f} s, reference (incl. start-up and file io) {t_ref:.2f} s")
    return int(bad_enc + bad_dec + bad_area + bad_poly + bad_pstr > 0)


if __name__ == "__main__":
    sys.exit(main())
