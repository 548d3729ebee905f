"""Our IoU / iIoU / category scores (`perpixel.metrics`) against cityscapesScripts'
`evalPixelLevelSemanticLabeling.evaluateImgLists`, on the same Cityscapes-layout files.

    python benchmarks/cityscapes_parity.py [--images 20] [--size 2048x1024] [--workers N]

Writes synthetic street scenes to a temporary folder: `gtFine/val/synth/*_gtFine_labelIds.png`
(label ids 0..33), `*_gtFine_instanceIds.png` (class * 1000 + k; group regions keep the label
id < 1000, as in Cityscapes) and `results/*_pred_labelIds.png`: the ground truth with
realistic errors (shifted boundaries, swapped classes, missed small instances, wrong stuff
patches, void areas predicted as a nearby class). The reference runs in
`benchmarks/.venv-ref` (pure Python, CSUPPORT False) and, when it has been built, in
`benchmarks/.venv-ref-cython` (its Cython confusion-matrix core, CSUPPORT True), with its
default arguments (`avgClassSize`, evalInstLevelScore True, evalPixelAccuracy False). Ours
reads the same files (label ids -> train ids, instance ids >= 1000 -> instances, the rest 0),
one process or a pool of `--workers`. Decoding is timed on both sides. Exit 1 when any class
or category IoU / iIoU differs by 1e-4 or more.

The Cython venv: `pip install cython "numpy<2" setuptools wheel`, then `CYTHONIZE_EVAL=1 pip
install --no-binary cityscapesscripts --no-build-isolation <sdist>`. The PyPI sdist of 2.3.0
lacks `evaluation/addToConfusionMatrix.pyx` (and `_impl.c`), so it installs without the
extension; `--cython-src DIR` (the two files from github.com/mcordts/cityscapesScripts)
copies them into the sdist first. `--build-cython` makes this script try.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "benchmarks" / ".venv-ref"
CYTHON = ROOT / "benchmarks" / ".venv-ref-cython"

REFERENCE = r"""
import json, sys, time
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev
preds, gts = json.loads(open(sys.argv[1]).read())
a = ev.args
a.quiet, a.JSONOutput, a.colorized, a.bold, a.nocol = True, False, False, "", ""
a.evalInstLevelScore, a.evalPixelAccuracy = True, False
t = float("inf")
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    r = ev.evaluateImgLists(preds, gts, a)
    t = min(t, time.perf_counter() - t0)
keys = ["classScores", "classInstScores", "categoryScores", "categoryInstScores",
        "averageScoreClasses", "averageScoreInstClasses", "averageScoreCategories",
        "averageScoreInstCategories"]
print(json.dumps({"seconds": t, "csupport": ev.CSUPPORT, **{k: r[k] for k in keys}}))
"""

# (label id, instance class?) weights for the things; confusable classes for swaps
THINGS = {24: 0.35, 25: 0.06, 26: 0.35, 27: 0.05, 28: 0.04, 31: 0.02, 32: 0.03, 33: 0.07,
          29: 0.015, 30: 0.015}  # fmt: skip
SWAP = {24: 25, 25: 24, 26: 27, 27: 26, 28: 31, 31: 28, 32: 33, 33: 32, 29: 26, 30: 27,
        8: 7, 22: 21, 12: 11, 13: 12, 19: 20, 20: 19, 7: 8, 11: 21, 21: 22}  # fmt: skip
# void label ids (train id 255) -> the evaluated class a network would predict there
VOID_TO = {0: 7, 1: 7, 2: 11, 3: 7, 4: 11, 5: 11, 6: 8, 9: 8, 10: 7, 14: 13, 15: 11, 16: 11,
           18: 17, 29: 26, 30: 27}  # fmt: skip


def ellipse(lab, inst, cy, cx, ry, rx, value, iid) -> None:
    h, w = lab.shape
    y0, y1, x0, x1 = max(cy - ry, 0), min(cy + ry + 1, h), max(cx - rx, 0), min(cx + rx + 1, w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    m = ((yy - cy) / max(ry, 1)) ** 2 + ((xx - cx) / max(rx, 1)) ** 2 <= 1
    lab[y0:y1, x0:x1][m] = value
    inst[y0:y1, x0:x1][m] = iid


def scene(seed: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label ids, instance ids, prediction label ids), each (H, W)."""
    rng = np.random.default_rng(seed)
    lab = np.full((h, w), 23, np.uint8)  # sky
    hz = int(h * rng.uniform(0.38, 0.5))
    x = 0
    while x < w:  # buildings, walls, vegetation along the horizon
        bw = int(rng.integers(w // 20, w // 5))
        lab[int(rng.integers(h // 10, hz)) : hz, x : x + bw] = rng.choice([11, 11, 21, 12, 15])
        x += bw
    lab[hz:] = 7  # road
    yy, xx = np.ogrid[:h, :w]
    side = (xx < (yy - hz) * rng.uniform(0.4, 1.2)) | (w - xx < (yy - hz) * rng.uniform(0.4, 1.2))
    lab[side & (yy >= hz)] = 8  # sidewalks
    lab[(yy > hz) & (yy < hz + h // 40) & ((xx < w // 6) | (xx > w - w // 6))] = 22  # terrain
    lab[hz - h // 30 : hz, : w // 3] = 13  # fence
    lab[hz + h // 20 : hz + h // 8, w // 3 : w // 2] = 9  # parking
    for _ in range(int(rng.integers(4, 10))):  # poles, signs, lights, pole groups
        px = int(rng.integers(0, w - 12))
        top = int(rng.integers(h // 8, hz))
        lab[top : hz + h // 10, px : px + int(rng.integers(4, 12))] = rng.choice([17, 17, 18])
        lab[top : top + h // 40, px - 8 : px + 20] = rng.choice([19, 20])
    inst = lab.astype(np.int32)  # stuff pixels: instance id = label id
    count: dict[int, int] = {}
    labels, p = list(THINGS), np.array(list(THINGS.values()))
    for _ in range(int(rng.integers(15, 45))):  # things, far to near (near ones occlude)
        cy = int(hz + (h - hz) * rng.uniform(0.0, 1.0) ** 2)
        scale = 0.02 + (cy - hz) / (h - hz)
        c = int(rng.choice(labels, p=p / p.sum()))
        big = c in (26, 27, 28, 29, 30, 31)
        rx = max(2, int(w * scale * (0.06 if big else 0.012) * rng.uniform(0.6, 1.6)))
        ry = max(3, int(rx * (0.6 if big else 2.2)))
        if rng.random() < 0.08:
            iid = c  # a group region (crowd): label id, no instance
        else:
            iid = c * 1000 + count.get(c, 0)
            count[c] = count.get(c, 0) + 1
        ellipse(lab, inst, cy - ry, int(rng.integers(0, w)), ry, rx, c, iid)
    lab[h - h // 12 :] = 1  # ego vehicle
    inst[h - h // 12 :] = 1
    lab[:, :3], inst[:, :3] = 2, 2  # rectification border
    # the prediction: start from the truth, void mapped to a plausible evaluated class
    void = np.arange(256, dtype=np.uint8)
    for k, v in VOID_TO.items():
        void[k] = v
    pred = void[lab]
    sizes = np.bincount(inst.ravel())
    ids = np.nonzero(sizes)[0]
    for iid in ids[ids >= 1000]:
        r = rng.random()
        if sizes[iid] < 0.0008 * h * w and r < 0.4:  # missed small instance
            pred[inst == iid] = 7
        elif r < 0.12:  # whole instance given a confusable class
            pred[inst == iid] = SWAP[iid // 1000]
    swap = np.arange(256, dtype=np.uint8)
    for k, v in SWAP.items():
        swap[k] = v
    for _ in range(int(rng.integers(3, 8))):  # stuff patches of a confusable class
        y0, x0 = int(rng.integers(0, h - 64)), int(rng.integers(0, w - 64))
        dy, dx = int(rng.integers(16, h // 6)), int(rng.integers(16, w // 6))
        pred[y0 : y0 + dy, x0 : x0 + dx] = swap[pred[y0 : y0 + dy, x0 : x0 + dx]]
    for _ in range(int(rng.integers(1, 4))):  # ids not evaluated: void, caravan, trailer
        y0, x0 = int(rng.integers(0, h - 64)), int(rng.integers(0, w - 64))
        pred[y0 : y0 + int(rng.integers(8, h // 10)), x0 : x0 + int(rng.integers(8, w // 10))] = (
            rng.choice([0, 4, 29, 30])
        )
    for iid in ids[(ids // 1000 >= 26) & (ids // 1000 <= 28)]:
        if rng.random() < 0.05:  # a vehicle called caravan: a vehicle for the category iIoU
            pred[inst == iid] = 29
    pred = np.roll(pred, (int(rng.integers(-3, 4)), int(rng.integers(-4, 5))), (0, 1))
    half = slice(int(rng.integers(0, h // 2)), h)  # a second shift in the lower part
    pred[half] = np.roll(pred[half], int(rng.integers(-3, 4)), 1)
    return lab, inst, void[pred]


def write_one(job: tuple[int, int, int, int, str]) -> tuple[str, str]:
    from PIL import Image

    seed, i, h, w, folder = job
    lab, inst, pred = scene(seed * 100003 + i, h, w)
    stem = f"synth_{seed:06d}_{i:06d}"
    gt = Path(folder) / "gtFine" / "val" / "synth" / f"{stem}_gtFine_labelIds.png"
    pr = Path(folder) / "results" / f"{stem}_pred_labelIds.png"
    Image.fromarray(lab).save(gt)
    Image.fromarray(inst.astype(np.uint16)).save(str(gt).replace("labelIds", "instanceIds"))
    Image.fromarray(pred).save(pr)
    return str(pr), str(gt)


def decode_only(pairs: list[tuple[str, str]], ours: bool = False) -> float:
    """Seconds to decode the three PNGs of every pair in this process, by PIL (the
    reference's reader) or by ours (`perpixel.data.png.read_png`)."""
    from PIL import Image

    from perpixel.data.png import read_png

    t0 = time.perf_counter()
    for pr, gt in pairs:
        for f in (pr, gt, gt.replace("labelIds", "instanceIds")):
            read_png(f) if ours else np.asarray(Image.open(f))
    return time.perf_counter() - t0


def run_ours(pairs: list[tuple[str, str]], workers: int) -> tuple[dict, float]:
    """`perpixel.metrics.cityscapes.evaluate_files`, what `perpixel panoptic cityscapes` runs."""
    from perpixel.metrics.cityscapes import evaluate_files

    t0 = time.perf_counter()
    out = evaluate_files(pairs, workers)
    return out, time.perf_counter() - t0


def reference(python: Path, listing: Path, repeats: int) -> dict:
    res = subprocess.run(
        [str(python), "-c", REFERENCE, str(listing), str(repeats)], capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    if res.returncode:
        raise RuntimeError(f"{python}: {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def build_cython(src: Path | None) -> None:
    """Try to build `.venv-ref-cython` with the Cython core (see the module docstring)."""
    py, pip = CYTHON / "bin" / "python", [str(CYTHON / "bin" / "python"), "-m", "pip"]
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(CYTHON)], check=True)
        subprocess.run([*pip, "install", "-q", "cython", "numpy<2", "setuptools", "wheel"],
                       check=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([*pip, "download", "-q", "--no-deps", "--no-binary", ":all:",
                            "-d", tmp, "cityscapesscripts"], check=True)  # fmt: skip
            sdist = next(Path(tmp).glob("*.tar.gz"))
            with tarfile.open(sdist) as tar:
                tar.extractall(tmp, filter="data")
            tree = next(p for p in Path(tmp).iterdir() if p.is_dir())
            for f in src.glob("addToConfusionMatrix*") if src else []:
                shutil.copy(f, tree / "cityscapesscripts" / "evaluation" / f.name)
            env = {**os.environ, "CYTHONIZE_EVAL": "1"}
            subprocess.run([*pip, "install", "-q", "--force-reinstall", "--no-build-isolation",
                            str(tree), "numpy<2"], check=True, env=env)  # fmt: skip
    except (subprocess.CalledProcessError, OSError, StopIteration) as e:
        print(f"building {CYTHON} failed: {e}")


def compare(ours: dict, ref: dict) -> dict[str, float]:
    """Largest |ours - reference| per group; inf where one is undefined and the other not."""

    def diff(a: float | None, b: float) -> float:
        a = float("nan") if a is None else a
        if math.isnan(a) or math.isnan(b):
            return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
        return abs(a - b)

    groups = {
        "class IoU": ("per_class_iou", "classScores"),
        "class iIoU": ("per_class_iiou", "classInstScores"),
        "category IoU": ("per_category_iou", "categoryScores"),
        "category iIoU": ("per_category_iiou", "categoryInstScores"),
    }
    out = {g: max(diff(v, ref[r][k]) for k, v in ours[o].items()) for g, (o, r) in groups.items()}
    means = [("miou", "averageScoreClasses"), ("miiou", "averageScoreInstClasses"),
             ("category_miou", "averageScoreCategories"),
             ("category_miiou", "averageScoreInstCategories")]  # fmt: skip
    out["means"] = max(diff(ours[o], ref[r]) for o, r in means)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", default="2048x1024", help="WxH")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs (wall time)")
    ap.add_argument("--build-cython", action="store_true", help="try to build the Cython venv")
    ap.add_argument("--cython-src", type=Path, default=None, help="folder with the .pyx/.c")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.build_cython or args.cython_src:
        build_cython(args.cython_src)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gtFine" / "val" / "synth").mkdir(parents=True)
        (Path(tmp) / "results").mkdir()
        t0 = time.perf_counter()
        jobs = [(args.seed, i, h, w, tmp) for i in range(args.images)]
        with mp.get_context("fork").Pool(args.workers) as pool:
            pairs = pool.map(write_one, jobs, chunksize=1)
        print(f"wrote {args.images} images of {w}x{h} in {time.perf_counter() - t0:.1f} s")
        listing = Path(tmp) / "files.json"
        listing.write_text(json.dumps([[p for p, _ in pairs], [g for _, g in pairs]]))
        run_ours(pairs[:1], 1)  # imports, numba's compilation (cached)
        ours, t1 = run_ours(pairs, 1)
        tn, td, tdo = t1, decode_only(pairs), decode_only(pairs, True)
        for r in range(args.repeats):
            td, tdo = min(td, decode_only(pairs)), min(tdo, decode_only(pairs, True))
            t1 = min(t1, run_ours(pairs, 1)[1]) if r else t1
            tn = min(tn, run_ours(pairs, args.workers)[1]) if args.workers > 1 else t1
        ref = reference(REF / "bin" / "python", listing, args.repeats)
        cy: dict | None = None
        cy_note = f"{CYTHON} absent (see --build-cython)"
        if (CYTHON / "bin" / "python").exists():
            try:
                cy = reference(CYTHON / "bin" / "python", listing, args.repeats)
                cy_note = "" if cy["csupport"] else "built, but CSUPPORT False (no .pyx in sdist)"
            except RuntimeError as e:
                cy_note = f"failed: {str(e).splitlines()[-1]}"
    diffs = compare(ours, ref)
    if cy is not None:
        diffs["cython vs python reference"] = max(compare(ours, cy).values())
    n = args.images
    rows = [("cityscapesScripts, pure Python (CSUPPORT False)", ref["seconds"])]
    if cy is not None and cy["csupport"]:
        rows.append(("cityscapesScripts, Cython core (CSUPPORT True)", cy["seconds"]))
    rows += [("ours, 1 process", t1), (f"ours, {args.workers} processes", tn)]
    rows += [("(decoding the PNGs alone with PIL, 1 process)", td)]
    rows += [("(decoding the PNGs alone with ours, 1 process)", tdo)]
    print(f"\n{n} images {w}x{h}, decoding included, best of {args.repeats} (wall time; "
          f"the pool's start-up included); {os.cpu_count()} CPU cores\n")  # fmt: skip
    print("| evaluator | seconds | s / image | vs pure Python |\n|---|---:|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {s / n:.3f} | {ref['seconds'] / s:.1f}x |")
    if cy_note:
        print(f"\nCython reference: {cy_note}")
    print("\n| max abs difference vs reference | value |\n|---|---:|")
    for k, v in diffs.items():
        print(f"| {k} | {v:.2e} |")
    print(f"\nours: mIoU {ours['miou']:.4f}, iIoU {ours['miiou']:.4f}, category mIoU "
          f"{ours['category_miou']:.4f}, category iIoU {ours['category_miiou']:.4f}")  # fmt: skip
    ok = max(diffs.values()) < 1e-4
    print("parity: OK" if ok else "parity: FAILED (difference >= 1e-4)")
    if args.out:
        fig = {"images": n, "size": f"{w}x{h}", "seconds": dict(rows), "diffs": diffs}
        args.out.write_text(json.dumps(fig, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
