"""Our mask AP (`perpixel.metrics.mask_ap`) against pycocotools' COCOeval(iouType="segm").

    python benchmarks/coco_ap_parity.py [--images 100] [--size 640x480] [--workers 2]
                                        [--repeats 3]

Scenes of the synthetic world (as benchmarks/panoptic_parity.py: crowd regions become iscrowd
gt) give gt masks; detections are perturbed copies (shifted, eroded, dilated, duplicated,
re-classed, missed), detections on crowds, false positives, a class without gt, and images
with more than 100 detections; scores have 2 decimals, so many tie (tests the stable sort).
gt areas are the pixel counts times U(0.95, 1.05) (COCO's are polygon areas): both sides
must use the given ones. The masks go to the reference (`benchmarks/.venv-ref`) as .npz; it
writes the COCO files with pycocotools' RLE encoder (crowds as uncompressed RLE, as COCO)
and evaluates them. Ours reads those JSONs, decodes the RLEs with `perpixel.data.formats.rle`
and runs `evaluate_image` per image (1 and `--workers` processes), `accumulate`,
`summarize`. Times are wall seconds, best of `--repeats` runs: pycocotools = COCO index +
loadRes + evaluate + accumulate + summarize (its RLE encoding of the dense masks, which a
user with dense model outputs pays, reported apart); ours = JSON reading + RLE decoding +
evaluation. Parity: the largest difference over the 12 numbers, per-class
AP and the whole precision / recall arrays; exit status 1 above 1e-4.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from panoptic_parity import REF_PY, scene  # noqa: E402

CATS = {4: 1, 5: 3, 6: 18, 7: 44}  # SYNTHETIC thing class -> COCO category id
GHOST = 90  # a category with detections but no gt

REFERENCE = r"""
import contextlib, copy, io, json, sys, time
import numpy as np
from pycocotools import mask as mu
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
folder = sys.argv[1]
meta = json.load(open(folder + "/meta.json"))

encode_s = 0.0

def rle(m):
    global encode_s
    t0 = time.perf_counter()
    r = mu.encode(np.asfortranarray(m.astype(np.uint8)))
    encode_s += time.perf_counter() - t0
    return {"size": r["size"], "counts": r["counts"].decode("ascii")}

def runs(m):  # uncompressed RLE: column-major runs, starting with 0s
    f = m.ravel(order="F")
    r = np.diff(np.concatenate([[0], np.flatnonzero(f[1:] != f[:-1]) + 1, [f.size]]))
    return ([0] if f[0] else []) + r.tolist()

gt = {"images": [], "annotations": [], "categories": meta["categories"]}
dets = []
for im in meta["images"]:
    z = np.load(folder + "/" + im["file"])
    h, w = z["gt_masks"].shape[1:]
    gt["images"].append({"id": im["id"], "height": int(h), "width": int(w)})
    for m, c, cr, a in zip(z["gt_masks"], z["gt_classes"], z["gt_crowd"], z["gt_area"]):
        seg = {"size": [int(h), int(w)], "counts": runs(m)} if cr else rle(m)
        gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": im["id"],
            "category_id": int(c), "segmentation": seg, "area": float(a),
            "bbox": mu.toBbox(seg if not cr else rle(m)).tolist(),
            "iscrowd": int(cr)})
    for m, c, s in zip(z["det_masks"], z["det_classes"], z["det_scores"]):
        dets.append({"image_id": im["id"], "category_id": int(c), "segmentation": rle(m),
                     "score": float(s)})
json.dump(gt, open(folder + "/gt.json", "w"))
json.dump(dets, open(folder + "/dets.json", "w"))
seconds = float("inf")
for _ in range(int(sys.argv[2])):
    g, d = copy.deepcopy(gt), copy.deepcopy(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        coco = COCO()
        coco.dataset = g
        coco.createIndex()
        E = COCOeval(coco, coco.loadRes(d), "segm")
        E.evaluate()
        E.accumulate()
        E.summarize()
        seconds = min(seconds, time.perf_counter() - t0)
p = E.eval["precision"]
per_class = {}
for k, c in enumerate(E.params.catIds):
    v = p[:, :, k, 0, -1]
    per_class[str(c)] = float(np.mean(v[v > -1])) if (v > -1).any() else None
np.save(folder + "/ref_precision.npy", p)
np.save(folder + "/ref_recall.npy", E.eval["recall"])
json.dump({"stats": E.stats.tolist(), "seconds": seconds, "per_class": per_class,
           "encode_s": encode_s,
           "cat_ids": [int(c) for c in E.params.catIds]}, open(folder + "/ref.json", "w"))
"""


def detections(masks, classes, crowd, rng: np.random.Generator):
    """Detections (masks, category ids, scores) made from gt masks by random edits."""
    from scipy import ndimage

    h, w = masks.shape[1:]
    out: list[tuple[np.ndarray, int, float]] = []
    score = lambda lo, hi: round(float(rng.uniform(lo, hi)), 2)  # noqa: E731
    for m, c, cr in zip(masks, classes, crowd, strict=True):
        if cr:
            xs = np.nonzero(m)[1]
            for half in (np.arange(w) < np.median(xs), np.arange(w) >= np.median(xs)):
                if rng.random() < 0.6:
                    out.append((m & half[None], int(c), score(0.2, 0.9)))
            continue
        n = int(rng.choice([0, 1, 1, 1, 1, 1, 2, 2, 3]))
        r = max(1, int(np.sqrt(m.sum()) * rng.choice([0.03, 0.06, 0.1, 0.2])))
        for _ in range(n):
            d = np.roll(m, tuple(rng.integers(-r, r + 1, 2)), (0, 1))
            if rng.random() < 0.3:
                op = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
                d = op(d, iterations=int(rng.integers(1, 4)))
            k = int(c) if rng.random() > 0.08 else int(rng.choice(list(CATS.values())))
            out.append((d, k, score(0.05, 1.0)))
    yy, xx = np.mgrid[:h, :w]
    many = rng.random() < 0.1  # an image with more than 100 detections
    for _ in range(int(rng.integers(110, 130)) if many else int(rng.integers(0, 4))):
        cy, cx, rad = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 0.15 * min(h, w))
        k = GHOST if rng.random() < 0.1 else int(rng.choice(list(CATS.values())))
        out.append(((yy - cy) ** 2 + (xx - cx) ** 2 < rad**2, k, score(0.0, 0.6)))
    order = rng.permutation(len(out))
    out = [out[i] for i in order]
    empty = np.zeros((0, h, w), bool)
    return (
        np.stack([o[0] for o in out]) if out else empty,
        np.array([o[1] for o in out], np.int64),
        np.array([o[2] for o in out], np.float64),
    )


def write_inputs(folder: Path, n: int, h: int, w: int, seed: int) -> None:
    """Per image an .npz of gt and detections, and meta.json (categories, images)."""
    from perpixel.data.synthetic import SYNTHETIC
    from perpixel.metrics.mask_ap import instance_targets

    images = []
    for i in range(n):
        sem, ins = scene(seed, i, h, w)
        rng = np.random.default_rng([seed, i, 3])
        masks, classes, crowd = instance_targets(sem, ins, SYNTHETIC.thing_ids, 255)
        cats = np.array([CATS[int(c)] for c in classes], np.int64)
        area = np.round(masks.reshape(len(masks), -1).sum(1) * rng.uniform(0.95, 1.05), 2)
        dm, dc, ds = detections(masks, cats, crowd, rng)
        name = f"img_{i:05d}.npz"
        np.savez_compressed(
            folder / name, gt_masks=masks, gt_classes=cats, gt_crowd=crowd, gt_area=area,
            det_masks=dm, det_classes=dc, det_scores=ds,
        )  # fmt: skip
        images.append({"id": int(i * 7 + 3), "file": name})
    np.random.default_rng(seed).shuffle(images)  # COCOeval sorts image ids
    names = dict(zip(SYNTHETIC.thing_ids, SYNTHETIC.things, strict=True))
    categories = [{"id": v, "name": names[k]} for k, v in CATS.items()]
    (folder / "meta.json").write_text(json.dumps({"images": images, "categories": categories}))


def _decode_image(job: tuple) -> dict:
    """(h, w, gt annotations, detections) -> evaluate_image's result (RLEs decoded here)."""
    from perpixel.data.formats.rle import decode
    from perpixel.metrics.mask_ap import evaluate_image

    h, w, anns, dets, class_ids = job

    def stack(items: list[dict]) -> np.ndarray:
        # RLEs decode column-major: stack the (W, H) transposes, C-contiguous without a
        # transposing copy (IoU and areas do not change; gt areas come from the JSON)
        if not items:
            return np.zeros((0, w, h), bool)
        return np.stack([decode(a["segmentation"]).T for a in items])

    return evaluate_image(
        stack(anns), [a["category_id"] for a in anns],
        stack(dets), [d["category_id"] for d in dets], [d["score"] for d in dets],
        class_ids, [a.get("iscrowd", 0) for a in anns], [a["area"] for a in anns],
    )  # fmt: skip


def ours(folder: Path, workers: int) -> dict:
    """Mask AP of gt.json + dets.json, images in id order, as COCOeval."""
    from perpixel.metrics.mask_ap import MaskAP

    gt = json.loads((folder / "gt.json").read_text())
    dets = json.loads((folder / "dets.json").read_text())
    class_ids = sorted(c["id"] for c in gt["categories"])
    by_image: dict[int, tuple[list, list]] = {im["id"]: ([], []) for im in gt["images"]}
    for a in gt["annotations"]:
        by_image[a["image_id"]][0].append(a)
    for d in dets:
        by_image[d["image_id"]][1].append(d)
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    jobs = [(*size[i], *by_image[i], class_ids) for i in sorted(by_image)]
    names = {c["id"]: c["name"] for c in gt["categories"]}
    metric = MaskAP(class_ids, [names[c] for c in class_ids])
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            metric.merge(list(pool.map(_decode_image, jobs, chunksize=4)))
    else:
        metric.merge([_decode_image(j) for j in jobs])
    return metric.compute()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", default="640x480", help="WxH")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="times: best of this many runs")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    from perpixel.metrics.mask_ap import STAT_NAMES

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {args.images} images of {w}x{h} to {folder} ...", flush=True)
        write_inputs(folder, args.images, h, w, args.seed)
        subprocess.run([str(REF_PY), "-c", REFERENCE, str(folder), str(args.repeats)], check=True)
        ref = json.loads((folder / "ref.json").read_text())
        ref_p, ref_r = np.load(folder / "ref_precision.npy"), np.load(folder / "ref_recall.npy")
        ours(folder, 1)  # load the compiled kernels once
        times = {w_: float("inf") for w_ in sorted({1, args.workers})}
        for _ in range(args.repeats):
            for workers in times:
                t0 = time.perf_counter()
                res = ours(folder, workers)
                times[workers] = min(times[workers], time.perf_counter() - t0)
        names = {c["id"]: c["name"] for c in json.loads((folder / "gt.json").read_text())[
            "categories"]}  # fmt: skip

    def diff(a: float | None, b: float | None) -> float:
        a = -1.0 if a is None or np.isnan(a) else a
        b = -1.0 if b is None or np.isnan(b) else b
        return abs(a - b)

    worst = max(diff(res[n], s) for n, s in zip(STAT_NAMES, ref["stats"], strict=True))
    for c, v in ref["per_class"].items():
        worst = max(worst, diff(res["per_class"][names[int(c)]], v))
    worst_arrays = max(
        float(np.abs(res["precision"] - ref_p).max()), float(np.abs(res["recall"] - ref_r).max())
    )
    fig = {
        "images": args.images,
        "size": f"{w}x{h}",
        **{n: res[n] for n in STAT_NAMES},
        "per_class_ap": res["per_class"],
        "max_abs_diff_stats_per_class": worst,
        "max_abs_diff_precision_recall_arrays": worst_arrays,
        "pycocotools_s": ref["seconds"],
        "pycocotools_rle_encoding_of_the_dense_masks_s": ref["encode_s"],
        **{f"ours_{k}_workers_s": v for k, v in times.items()},
    }
    print(json.dumps(fig, indent=2))
    if args.out:
        args.out.write_text(json.dumps(fig, indent=2))
    ok = max(worst, worst_arrays) <= 1e-4
    print("parity OK" if ok else "PARITY FAILURE", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
