"""Our panoptic quality (`perpixel.metrics.panoptic_quality`) against cityscapesScripts'
`evalPanopticSemanticLabeling` (COCO panopticapi's `pq_compute`), on the same files.

    python benchmarks/panoptic_parity.py [--images 100] [--size 1024x512] [--workers 2]
                                         [--repeats 3]

Writes COCO panoptic ground truth and predictions (PNG + JSON) into a temporary folder:
scenes of the synthetic world (SYNTHETIC taxonomy) with void blobs and crowd regions added,
predictions = perturbed ground truth (shifted, split, merged, dropped, re-classed instances,
instances on void and crowd, false positives, shifted stuff). Segment ids are random in
1..2^24-1 and category ids sparse (3 c + 7), to exercise the PNG encoding and the id lookups.
The reference (`benchmarks/.venv-ref`, pure-Python wheel) runs in a subprocess: its
`pq_compute_single_core` on all images and its `pq_compute_multi_core` (one process per
core, as `evaluatePanoptic`). Ours reads the same PNGs and JSONs (`pq_compute_files`) with 1
and `--workers` processes. Times are wall seconds, best of `--repeats` runs (the machine may
be shared), PNG decoding included, JSON reading included on our side only; the single-core
runs also report CPU seconds (`time.process_time`, less swayed by other work), beside the
CPU seconds that zlib alone takes to inflate the PNGs (a floor for any reader). Parity:
the largest |ours - theirs| over PQ/SQ/RQ of All/Things/Stuff and every class, plus exact
equality of the per-class tp/fp/fn; exit status 1 when it exceeds 1e-4 or counts differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF_PY = ROOT / "benchmarks" / ".venv-ref" / "bin" / "python"

REFERENCE = r"""
import contextlib, io, json, sys, time
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as ev
gt_json, gt_dir, pred_json, pred_dir, out, repeats = sys.argv[1:7]
gt, pr = json.load(open(gt_json)), json.load(open(pred_json))
categories = {el["id"]: el for el in gt["categories"]}
preds = {el["image_id"]: el for el in pr["annotations"]}
pairs = [(a, preds[a["image_id"]]) for a in gt["annotations"]]
t_single = t_multi = cpu_single = float("inf")
with contextlib.redirect_stdout(io.StringIO()):
    for _ in range(int(repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        single = ev.pq_compute_single_core(0, pairs, gt_dir, pred_dir, categories)
        t_single = min(t_single, time.perf_counter() - t0)
        cpu_single = min(cpu_single, time.process_time() - c0)
        t0 = time.perf_counter()
        multi = ev.pq_compute_multi_core(pairs, gt_dir, pred_dir, categories)
        t_multi = min(t_multi, time.perf_counter() - t0)
    results = ev.average_pq(multi, categories)
stats = {c: [multi[c].iou, multi[c].tp, multi[c].fp, multi[c].fn] for c in categories}
json.dump({"single_s": t_single, "multi_s": t_multi, "single_cpu_s": cpu_single, "results": results, "stats": stats,
           "cores": ev.multiprocessing.cpu_count()}, open(out, "w"), default=float)
"""


def scene(seed: int, i: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth (semantic uint8, instances int32) of one synthetic scene with void blobs
    (255) and crowd regions (thing pixels with instance 0) added."""
    from perpixel.data.synthetic import generate

    s = generate(seed, i, height=h, width=w, min_things=4, max_things=14, thing_size=(0.03, 0.25))
    rng = np.random.default_rng([seed, i, 1])
    sem, ins = s.semantic.copy(), s.instances.astype(np.int32)
    for k in np.unique(ins[ins > 0]):
        if rng.random() < 0.15:
            ins[ins == k] = 0  # crowd: merges with any other crowd of its class
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(1, 4))):  # void blobs: ellipses
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.03, 0.15) * h, rng.uniform(0.03, 0.15) * w
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        sem[blob], ins[blob] = 255, 0
    sem[-h // 16 :], ins[-h // 16 :] = 255, 0  # the "ego vehicle" band
    return sem, ins


def perturb(sem: np.ndarray, ins: np.ndarray, things: list[int], rng: np.random.Generator):
    """A prediction (semantic, instances) made from ground truth by random edits."""
    h, w = sem.shape
    stuff = (sem < 255) & ~np.isin(sem, things)
    _, (iy, ix) = ndimage.distance_transform_edt(~stuff, return_indices=True)
    bg = np.roll(sem[iy, ix], tuple(rng.integers(-4, 5, 2)), (0, 1))  # nearest stuff, shifted
    for c in np.unique(bg):
        if rng.random() < 0.1:
            bg[bg == c] = rng.integers(0, min(things))
    psem, pins = bg.astype(np.uint8), np.zeros((h, w), np.int32)
    nxt = [0]

    def paint(mask: np.ndarray, c: int, pid: int | None = None) -> int:
        if pid is None:
            nxt[0] += 1
            pid = nxt[0]
        psem[mask], pins[mask] = c, pid
        return pid

    last_of_class: dict[int, int] = {}
    for k in np.unique(ins[ins > 0]):
        m = ins == k
        c = int(sem[m][0])
        a = rng.random()
        r = max(1, int(np.sqrt(m.sum()) * rng.uniform(0.0, 0.45)))
        if a < 0.55:
            last_of_class[c] = paint(np.roll(m, tuple(rng.integers(-r, r + 1, 2)), (0, 1)), c)
        elif a < 0.65:
            continue  # missed
        elif a < 0.75:
            paint(m, int(rng.choice([t for t in things if t != c])))
        elif a < 0.85:  # split in two halves
            xs = np.nonzero(m)[1]
            cut = m & (np.arange(w)[None] < np.median(xs))
            paint(cut, c), paint(m & ~cut, c)
        elif a < 0.95 and c in last_of_class:  # merged with the previous one of its class
            paint(m, c, last_of_class[c])
        else:
            paint(ndimage.binary_erosion(m, iterations=max(1, r // 3)), c)
    for c in things:  # predicted instances on the crowd regions
        crowd = (sem == c) & (ins == 0)
        if crowd.any():
            xs = np.nonzero(crowd)[1]
            cuts = np.sort(rng.uniform(xs.min(), xs.max() + 1, int(rng.integers(0, 3))))
            part = np.searchsorted(cuts, np.arange(w))[None].repeat(h, 0)
            for j in range(cuts.size + 1):
                paint(crowd & (part == j), c)
    yy, xx = np.mgrid[:h, :w]
    void = sem == 255
    for _ in range(int(rng.integers(1, 5))):  # things on void (partly) and false positives
        cy, cx = np.argwhere(void)[rng.integers(void.sum())] if rng.random() < 0.5 else (
            rng.uniform(0, h), rng.uniform(0, w))  # fmt: skip
        rad = rng.uniform(0.02, 0.08) * min(h, w)
        paint((yy - cy) ** 2 + (xx - cx) ** 2 < rad**2, int(rng.choice(things)))
    return psem, pins


def write_dataset(folder: Path, n: int, h: int, w: int, seed: int) -> tuple[Path, Path]:
    """COCO panoptic gt.json + gt/*.png and pred.json + pred/*.png for `n` scenes."""
    from perpixel.data.panoptic import id_to_rgb, to_segments
    from perpixel.data.synthetic import SYNTHETIC

    things = SYNTHETIC.thing_ids
    cat = lambda c: 3 * int(c) + 7  # noqa: E731
    cats = [
        {"id": cat(c), "name": n_, "isthing": int(c in things), "color": list(SYNTHETIC.colors[c])}
        for c, n_ in enumerate(SYNTHETIC.names)
    ]
    docs: dict[str, dict] = {
        "gt": {"images": [], "annotations": [], "categories": cats},
        "pred": {"annotations": []},
    }
    for d in docs:
        (folder / d).mkdir()
    for i in range(n):
        sem, ins = scene(seed, i, h, w)
        rng = np.random.default_rng([seed, i, 2])
        pairs = {"gt": (sem, ins), "pred": perturb(sem, ins, things, rng)}
        name = f"scene_{i:05d}"
        docs["gt"]["images"].append(
            {"id": name, "file_name": f"{name}.png", "height": h, "width": w}
        )
        for d, (s, k) in pairs.items():
            ids, segs = to_segments(s, k, things, 255)
            new = np.concatenate([[0], rng.choice(2**24 - 1, len(segs), replace=False) + 1])
            ids = new[ids]
            Image.fromarray(id_to_rgb(ids)).save(folder / d / f"{name}.png")
            present, sizes = np.unique(ids, return_counts=True)
            area = dict(zip(present.tolist(), sizes.tolist(), strict=True))
            info = []
            for j, sg in segs.items():
                item = {"id": int(new[j]), "category_id": cat(sg.category)}
                if d == "gt":
                    item |= {"iscrowd": int(sg.iscrowd), "area": area[int(new[j])]}
                info.append(item)
            rng.shuffle(info)  # JSON order is not id order
            docs[d]["annotations"].append(
                {"image_id": name, "file_name": f"{name}.png", "segments_info": info}
            )
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{n} scenes written", flush=True)
    for d, doc in docs.items():
        (folder / f"{d}.json").write_text(json.dumps(doc))
    return folder / "gt.json", folder / "pred.json"


def inflate_time(folder: Path) -> float:
    """CPU seconds of zlib-inflating every PNG's image data: a floor under any decoder."""
    total = 0.0
    for f in sorted(folder.glob("*/*.png")):
        data, pos, idat = f.read_bytes(), 8, []
        while pos + 8 <= len(data):
            n = int.from_bytes(data[pos : pos + 4], "big")
            if data[pos + 4 : pos + 8] == b"IDAT":
                idat.append(data[pos + 8 : pos + 8 + n])
            pos += 12 + n
        t0 = time.process_time()
        zlib.decompress(b"".join(idat))
        total += time.process_time() - t0
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", default="1024x512", help="WxH")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="times: best of this many runs")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    from perpixel.metrics.panoptic_quality import pq_compute_files, pq_from_stats

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {args.images} scenes of {w}x{h} to {folder} ...", flush=True)
        gt_json, pred_json = write_dataset(folder, args.images, h, w, args.seed)
        pq_compute_files(gt_json, pred_json)  # load the compiled kernels once (numba cache)
        times = {w_: float("inf") for w_ in sorted({1, args.workers})}
        cpu = float("inf")
        for _ in range(args.repeats):
            for workers in times:
                t0, c0 = time.perf_counter(), time.process_time()
                stats, cats = pq_compute_files(gt_json, pred_json, workers=workers)
                times[workers] = min(times[workers], time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0) if workers == 1 else cpu
        ours = pq_from_stats(
            stats, {c["id"]: c["name"] for c in cats}, [c["id"] for c in cats if c["isthing"]]
        )
        floor = inflate_time(folder)
        out = folder / "reference.json"
        cmd = [str(REF_PY), "-c", REFERENCE, str(gt_json), str(folder / "gt"), str(pred_json)]
        subprocess.run([*cmd, str(folder / "pred"), str(out), str(args.repeats)], check=True)
        ref = json.loads(out.read_text())

    worst, counts_ok = 0.0, True
    res = ref["results"]
    for ours_key, ref_key in (("", "All"), ("_things", "Things"), ("_stuff", "Stuff")):
        for m in ("pq", "sq", "rq"):
            worst = max(worst, abs(ours[f"{m}{ours_key}"] - res[ref_key][m]))
        counts_ok &= ours[f"n{ours_key}"] == res[ref_key]["n"]
    for c in cats:
        mine, theirs = ours["per_class"][c["name"]], res["per_class"][str(c["id"])]
        for m in ("pq", "sq", "rq"):
            worst = max(worst, abs((mine[m] or 0.0) - theirs[m]))
        iou, tp, fp, fn = ref["stats"][str(c["id"])]
        counts_ok &= [mine["tp"], mine["fp"], mine["fn"]] == [tp, fp, fn]
        worst = max(worst, abs(float(stats.iou[c["id"]]) - iou) / max(tp, 1))
    fig = {
        "images": args.images,
        "size": f"{w}x{h}",
        "pq": ours["pq"],
        "pq_things": ours["pq_things"],
        "pq_stuff": ours["pq_stuff"],
        "max_abs_diff": worst,
        "counts_equal": bool(counts_ok),
        "reference_single_core_s": ref["single_s"],
        f"reference_multi_core_s ({ref['cores']} processes)": ref["multi_s"],
        **{f"ours_{k}_workers_s": v for k, v in times.items()},
        "reference_single_core_cpu_s": ref["single_cpu_s"],
        "ours_1_worker_cpu_s": cpu,
        "cpu_speedup_one_core": ref["single_cpu_s"] / cpu,
        "zlib_inflate_only_cpu_s": floor,
        "speedup_ours_best_vs_reference_single": ref["single_s"] / min(times.values()),
        "speedup_ours_best_vs_reference_multi": ref["multi_s"] / min(times.values()),
    }
    print(json.dumps(fig, indent=2))
    if args.out:
        args.out.write_text(json.dumps(fig, indent=2))
    ok = worst <= 1e-4 and counts_ok
    print("parity OK" if ok else "PARITY FAILURE", file=sys.stderr if not ok else sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
