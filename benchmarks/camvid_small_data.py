"""Small data on a CPU: a U-Net from scratch (`camvid_unet`) against the `small_data` recipe
(VGG16 encoder from the pretrained HED), both on the same 60 CamVid training images with the
same wall-clock cap, evaluated on the full CamVid test split (233 images at 480x360).

    python benchmarks/camvid_small_data.py [--out runs/small_data_bench] [--minutes 12]

The subset (60 train, 30 val images, drawn with seed 0) is written as CamVid split lists that
point into `../shared/data/camvid`; nothing is copied. Prints one README table row per recipe.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
PERPIXEL = [sys.executable, "-m", "perpixel"]
RUNS = {
    # name: (recipe, overrides beyond the data and the time cap)
    "scratch": ("camvid_unet", ["trainer.max_epochs=90", "trainer.check_val_every_n_epoch=10"]),
    "small_data": ("small_data", ["data.kind=camvid", "trainer.max_epochs=24"]),
}


def subset(out: Path, sizes: dict[str, int | None], seed: int = 0) -> Path:
    """CamVid split lists under `out` with absolute paths: `sizes[split]` random lines (None:
    all of them)."""
    out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        lines = [line for line in (CAMVID / f"{split}.txt").read_text().splitlines() if line]
        if n is not None:
            lines = sorted(random.Random(seed).sample(lines, n))
        text = "".join(" ".join(str(CAMVID / p) for p in line.split()) + "\n" for line in lines)
        (out / f"{split}.txt").write_text(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/small_data_bench")
    ap.add_argument("--minutes", type=int, default=12, help="wall-clock cap per training run")
    args = ap.parse_args()
    if not (CAMVID / "train.txt").is_file():
        sys.exit(f"{CAMVID}: CamVid not found")
    out = Path(args.out)
    data = subset(out / "camvid60", {"train": 60, "val": 30, "test": None})
    cap = f"trainer.max_time=00:00:{args.minutes:02d}:00"
    for name, (recipe, over) in RUNS.items():
        run = out / name
        sets = [f"data.root={data}", cap, *over]
        cmd = [*PERPIXEL, "train", recipe, "--out", str(run), *(x for s in sets for x in ("-o", s))]
        subprocess.run(cmd, check=True)
        best = run / "checkpoints" / "best.ckpt"
        test = run / "eval_test"
        ev = [*PERPIXEL, "evaluate", str(best), str(CAMVID), "--split", "test", "--out", str(test)]
        subprocess.run(ev, check=True)
        m = json.loads((test / "metrics.json").read_text())["best"]
        s = json.loads((run / "summary.json").read_text())["info"]
        print(
            f"| {name} (`{recipe}`) | {s['epochs']} | {s['train seconds'] / 60:.1f} min | "
            f"{m['miou']:.3f} | {m['pixel_accuracy']:.3f} | {m['mean_class_accuracy']:.3f} |"
        )


if __name__ == "__main__":
    main()
