"""Speed of our BSDS boundary benchmark against pyEdgeEval, side by side, on the same inputs.

    python benchmarks/bsds_speed.py [--pred DIR --gt DIR] [--images N] [--thresholds 99]

pyEdgeEval (and the opencv-python-headless it needs) is installed into its own virtual
environment, `benchmarks/.venv-pyedgeeval`, the first time: it is not a dependency of ours.
Both run one image at a time on one core (OMP_NUM_THREADS=1, our `workers=1`), one after the
other; we report seconds per image, the ratio, and how far the two disagree on R and P.
Then our all-cores run over the same folder. Default inputs: the soft maps in
`../shared/data/bsds500/bench/png` with their ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "data" / "bsds500" / "bench"
VENV = ROOT / "benchmarks" / ".venv-pyedgeeval"

PYEDGEEVAL = r"""
import json, sys, time
import numpy as np, scipy.io
from PIL import Image
from pyEdgeEval.common.binary_label.evaluate_boundaries import (
    evaluate_boundaries_threshold_multiple_gts as evaluate)
items, n = json.loads(sys.argv[1]), int(sys.argv[2])
t = np.linspace(1 / (n + 1), 1 - 1 / (n + 1), n)
out = []
for pred, gt in items:
    cell = scipy.io.loadmat(gt)["groundTruth"].ravel()
    gts = np.stack([c["Boundaries"][0, 0].astype(bool) for c in cell])
    pb = np.asarray(Image.open(pred).convert("L"), float) / 255
    t0 = time.perf_counter()
    cr, sr, cp, sp = evaluate(t, pb, gts, max_dist=0.0075, apply_thinning=True)
    out.append({"seconds": time.perf_counter() - t0, "counts": np.stack([cr, sr, cp, sp], 1).tolist()})
print(json.dumps(out))
"""


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"installing pyEdgeEval into {VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pkgs = ["pyEdgeEval==0.2.8", "opencv-python-headless", "scipy", "pillow", "numpy"]
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
    return py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pred", type=Path, default=BENCH / "png")
    ap.add_argument("--gt", type=Path, default=BENCH / "groundTruth")
    ap.add_argument("--images", type=int, default=5, help="how many images to time")
    ap.add_argument("--thresholds", type=int, default=99)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--no-all-cores", action="store_true", help="skip the all-cores folder run")
    args = ap.parse_args()

    from perpixel.data.bsds import read_groundtruth
    from perpixel.metrics.boundaries import EdgeInput, image_counts
    from perpixel.tasks.edge_bench import boundary_bench, pair_files
    from PIL import Image

    items = [(p, g) for _, p, g in pair_files(args.pred, args.gt)][: args.images]
    py = ensure_venv()
    ref = subprocess.run(
        [
            str(py),
            "-c",
            PYEDGEEVAL,
            json.dumps([[str(p), str(g)] for p, g in items]),
            str(args.thresholds),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    theirs = json.loads(ref.stdout.strip().splitlines()[-1])  # it prints warnings first

    ours, worst_r, worst_p = [], 0.0, 0.0
    image_counts(EdgeInput.soft(np.zeros((8, 8)), 3), np.zeros((1, 8, 8), bool))  # compile once
    for (pred, gt), th in zip(items, theirs, strict=True):
        boundaries = read_groundtruth(gt).boundaries
        pb = np.asarray(Image.open(pred).convert("L"), float) / 255
        t0 = time.perf_counter()
        c = image_counts(EdgeInput.soft(pb, args.thresholds), boundaries)
        ours.append(time.perf_counter() - t0)
        tc = np.asarray(th["counts"])
        r = lambda a: a[:, 0] / np.maximum(a[:, 1], 1)  # noqa: E731
        p = lambda a: a[:, 2] / np.maximum(a[:, 3], 1)  # noqa: E731
        worst_r = max(worst_r, float(np.abs(r(c) - r(tc)).max()))
        worst_p = max(worst_p, float(np.abs(p(c) - p(tc)).max()))
        print(f"{Path(pred).stem}: pyEdgeEval {th['seconds']:.2f} s, perpixel {ours[-1]:.3f} s")
    t_theirs = float(np.mean([t["seconds"] for t in theirs]))
    t_ours = float(np.mean(ours))
    t0 = time.perf_counter()
    if not args.no_all_cores:
        boundary_bench(args.pred, args.gt, None, args.thresholds, progress=False)
    t_all = None if args.no_all_cores else time.perf_counter() - t0
    n_all = len(pair_files(args.pred, args.gt))
    fig = {
        "images_timed": len(items),
        "thresholds": args.thresholds,
        "pyedgeeval_s_per_image": t_theirs,
        "perpixel_s_per_image": t_ours,
        "speedup": t_theirs / t_ours,
        "max_abs_diff_recall": worst_r,
        "max_abs_diff_precision": worst_p,
        "all_cores": {"images": n_all, "seconds": t_all, "cores": os.cpu_count()},
    }
    print(json.dumps(fig, indent=2))
    if args.out:
        args.out.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
