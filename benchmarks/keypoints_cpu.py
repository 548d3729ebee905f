"""The interest-point pipeline on a CPU, end to end, as the README's results were made:

1. MagicPoint on synthetic shapes (`magicpoint_shapes_cpu`, 25-minute cap);
2. homographic adaptation of BSDS500 train + every other CamVid train image (383 images,
   linked, not copied, into OUT/adapt_images) with that MagicPoint;
3. SuperPoint on those labels, started from the MagicPoint (`superpoint_folder_cpu`);
4. `perpixel keypoints evaluate`: synthetic-shapes mAP, and warped pairs of the first 60
   BSDS500 test and CamVid test images at 240x320, with the classic methods (OpenCV's when
   the `classic` extra is installed).

    python benchmarks/keypoints_cpu.py [--out runs/keypoints_bench] [--adapt-num 50]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PERPIXEL = [sys.executable, "-m", "perpixel"]


def run(*args: str) -> float:
    """Run one perpixel command; returns its wall time in seconds."""
    print("$ perpixel " + " ".join(args), flush=True)
    t0 = time.time()
    subprocess.run([*PERPIXEL, *args], check=True)
    return time.time() - t0


def link_images(out: Path) -> Path:
    """BSDS500 train + every other CamVid train image, as links in one folder."""
    folder = out / "adapt_images"
    folder.mkdir(parents=True, exist_ok=True)
    files = [("bsds", p) for p in sorted((SHARED / "bsds500/images/train").glob("*.jpg"))]
    files += [("camvid", p) for p in sorted((SHARED / "camvid/train").glob("*.jpg"))[1::2]]
    for prefix, path in files:
        link = folder / f"{prefix}_{path.name}"
        if not link.exists():
            link.symlink_to(path)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/keypoints_bench")
    ap.add_argument("--adapt-num", type=int, default=50, help="homographies per image")
    ap.add_argument("--pairs", type=int, default=60, help="test images per pair set")
    args = ap.parse_args()
    out = Path(args.out)
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data is needed for steps 2 and 4")
    times = {}
    mp = out / "magicpoint"
    times["magicpoint"] = run("train", "magicpoint_shapes_cpu", "--out", str(mp))
    images, labels = link_images(out), out / "labels"
    ckpt = str(mp / "checkpoints" / "best.ckpt")
    times["adapt"] = run(
        "keypoints", "adapt", ckpt, str(images), "--out", str(labels), "--num", str(args.adapt_num)
    )
    sp = out / "superpoint"
    times["superpoint"] = run(
        "train", "superpoint_folder_cpu", "--out", str(sp),
        "-o", f"data.root={images}", "-o", f"data.labels={labels}", "-o", f"init_from={ckpt}",
    )  # fmt: skip
    times["evaluate"] = run(
        "keypoints", "evaluate", str(sp / "checkpoints" / "best.ckpt"), ckpt,
        "--pairs", str(SHARED / "bsds500/images/test"),
        "--pairs", str(SHARED / "camvid/test"),
        "--limit", str(args.pairs), "--out", str(out / "eval"),
    )  # fmt: skip
    print("wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))


if __name__ == "__main__":
    main()
