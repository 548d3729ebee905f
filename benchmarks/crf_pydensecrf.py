"""Our dense CRF (`perpixel.tasks.segmentation.crf`) against pydensecrf, on the same inputs.

    python benchmarks/crf_pydensecrf.py [--checkpoint CKPT] [--images 5] [--repeats 3]

pydensecrf (the `pydensecrf2` package, which builds Krahenbuhl's C++ code) is installed into
its own virtual environment, `benchmarks/.venv-crf`, the first time: it is not a dependency of
ours. If it does not build, this says so and reports our own timing only. Inputs: CamVid test
images from `../shared/data/camvid/test` (a synthetic two-region image if absent) with class
probabilities from `--checkpoint` (a segmentation checkpoint), else synthetic ones: noisy
logits around the ground-truth labels (`testannot`). Both run with the same parameters
(`CRF_DEFAULTS` unless overridden) on one thread, one after the other, best of `--repeats`;
we report the fraction of pixels with the same arg-max label, the largest |Q_ours - Q_theirs|,
seconds per image (CPU seconds of the one thread, `time.process_time`: less swayed by other
work on a shared machine than wall time), the ratio ours / theirs and, with CamVid's labels,
the pixel accuracy before and after the CRF.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
VENV = ROOT / "benchmarks" / ".venv-crf"

PYDENSECRF = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax
folder, p, repeats = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
out = []
for f in sorted(folder.glob("*_image.npy")):
    image = np.ascontiguousarray(np.load(f))
    probs = np.load(str(f).replace("_image", "_probs"))
    c, h, w = probs.shape
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        d = dcrf.DenseCRF2D(w, h, c)
        d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
        d.addPairwiseGaussian(sxy=p["theta_gamma"], compat=p["gaussian_weight"])
        d.addPairwiseBilateral(sxy=p["theta_alpha"], srgb=p["theta_beta"], rgbim=image,
                               compat=p["bilateral_weight"])
        q = np.array(d.inference(int(p["iterations"]))).reshape(c, h, w)
        best = min(best, time.process_time() - t0)
    np.save(str(f).replace("_image", "_theirs"), q.astype(np.float32))
    out.append(best)
print(json.dumps(out))
"""


def ensure_venv() -> Path | None:
    """The reference's interpreter, installing pydensecrf2 once; None (and why) if it fails."""
    py = VENV / "bin" / "python"
    if not (VENV / "ok").exists():
        print(f"installing pydensecrf2 into {VENV} (once; it compiles C++) ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            (VENV / ".gitignore").write_text("*\n")
            pkgs = ["pydensecrf2", "numpy"]
            subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
            subprocess.run([str(py), "-c", "import pydensecrf.densecrf"], check=True)
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"pydensecrf2 could not be installed or built ({e}): reporting ours only")
            return None
        (VENV / "ok").write_text("pydensecrf2 installed\n")
    return py


def synthetic_probs(labels: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) labels -> (C, H, W) float32 softmax of N(0, 1) logits, +1.5 on the true class."""
    logits = rng.normal(0.0, 1.0, (classes, *labels.shape))
    valid = labels < classes
    yy, xx = np.nonzero(valid)
    logits[labels[valid], yy, xx] += 1.5
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float32)


def annotation(name: str) -> np.ndarray | None:
    """CamVid's (H, W) test labels for image `name` (11: void), or None."""
    from PIL import Image

    path = CAMVID / "testannot" / f"{name}.png"
    return np.asarray(Image.open(path)).astype(np.int64) if path.exists() else None


def inputs(args: argparse.Namespace) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """[(name, (H, W, 3) uint8 image, (C, H, W) float32 probs)]."""
    from PIL import Image

    rng = np.random.default_rng(0)
    files = sorted((CAMVID / "test").glob("*.png")) + sorted((CAMVID / "test").glob("*.jpg"))
    if not files:
        print(f"no CamVid test images in {CAMVID / 'test'}: one synthetic 480x360 image")
        image = np.zeros((360, 480, 3), np.uint8)
        image[:, :240] = (200, 60, 50)
        image[:, 240:] = (40, 80, 190)
        labels = (np.arange(480)[None].repeat(360, 0) >= 240).astype(np.int64)
        return [("synthetic", image, synthetic_probs(labels, args.classes, rng))]
    segmenter = None
    if args.checkpoint:
        import perpixel

        segmenter = perpixel.load(args.checkpoint)
    out = []
    for f in files[: args.images]:
        image = np.asarray(Image.open(f).convert("RGB"))
        if segmenter is not None:
            probs = segmenter.predict(image).probs.astype(np.float32)  # type: ignore[attr-defined]
        else:
            labels = annotation(f.stem)
            labels = np.zeros(image.shape[:2], np.int64) if labels is None else labels
            probs = synthetic_probs(labels, args.classes, rng)
        out.append((f.stem, image, probs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=None, help="probabilities from this model")
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--classes", type=int, default=11, help="synthetic probabilities' classes")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs per image")
    ap.add_argument("--param", action="append", default=[], help="CRF override NAME=VALUE")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    from perpixel.tasks.segmentation.crf import CRF_DEFAULTS, DenseCRF

    params = dict(CRF_DEFAULTS)
    for item in args.param:
        name, value = item.split("=", 1)
        params[name] = float(value)
    params["iterations"] = int(params["iterations"])
    crf = DenseCRF.from_params(**params)
    data = inputs(args)
    crf(data[0][1][:8, :8].copy(), data[0][2][:, :8, :8].copy())  # compile once

    ours, qs = [], []
    for _, image, probs in data:
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.process_time()
            q = crf(image, probs)
            best = min(best, time.process_time() - t0)
        ours.append(best)
        qs.append(q)
    c, h, w = data[0][2].shape
    fig: dict = {
        "images": len(data),
        "size": f"{w}x{h}",
        "classes": c,
        "params": params,
        "probabilities": str(args.checkpoint) if args.checkpoint else "synthetic",
        "ours_s_per_image": float(np.mean(ours)),
    }
    py = ensure_venv()
    if py is not None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, image, probs in data:
                np.save(Path(tmp) / f"{name}_image.npy", image)
                np.save(Path(tmp) / f"{name}_probs.npy", probs)
            ref = subprocess.run(
                [str(py), "-c", PYDENSECRF, tmp, json.dumps(params), str(args.repeats)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            theirs = json.loads(ref.stdout.strip().splitlines()[-1])
            same, worst = [], 0.0
            for (name, _, _), q in zip(data, qs, strict=True):
                qt = np.load(Path(tmp) / f"{name}_theirs.npy")
                same.append(float((q.argmax(0) == qt.argmax(0)).mean()))
                worst = max(worst, float(np.abs(q - qt).max()))
        for (name, _, _), t_ours, t_theirs, s in zip(data, ours, theirs, same, strict=True):
            print(f"{name}: ours {t_ours:.3f} s, pydensecrf {t_theirs:.3f} s, same label {s:.5f}")
        fig |= {
            "pydensecrf_s_per_image": float(np.mean(theirs)),
            "ratio_ours_over_theirs": float(np.mean(ours) / np.mean(theirs)),
            "same_argmax_fraction": float(np.mean(same)),
            "max_abs_diff_q": worst,
        }
    hits = np.zeros((2, 2))  # [before, after] x [correct, labelled] over CamVid's labels
    for (name, _, probs), q in zip(data, qs, strict=True):
        labels = annotation(name)
        if labels is not None and labels.shape == probs.shape[1:]:
            valid = labels < probs.shape[0]
            for row, p in enumerate((probs, q)):
                hits[row] += ((p.argmax(0) == labels) & valid).sum(), valid.sum()
    if hits[0, 1]:
        fig |= {
            "pixel_acc_before": hits[0, 0] / hits[0, 1],
            "pixel_acc_after": hits[1, 0] / hits[1, 1],
        }
    print(json.dumps(fig, indent=2))
    if args.out:
        args.out.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
