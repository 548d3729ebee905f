"""`perpixel keypoints evaluate`: our network(s) and the classic methods on synthetic shapes
and on image pairs, into one table (Markdown + JSON) with pictures of a few pairs."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from perpixel.engine.trainer import hardware
from perpixel.io import write_json, write_text
from perpixel.tasks.keypoints.evaluation import (
    Method,
    Pair,
    pair_scores,
    shapes_ap,
    summarise,
)
from perpixel.tasks.keypoints.figures import draw_keypoints, draw_matches

PAIR_COLUMNS = (
    ("repeatability", "Rep."),
    ("localization_error", "Loc. err (px)"),
    ("homography@1", "H@1"),
    ("homography@3", "H@3"),
    ("homography@5", "H@5"),
    ("matching_score", "M.score"),
    ("mma@3", "MMA@3"),
)


def evaluate_pairs(
    methods: list[Method],
    pairs: list[Pair],
    out: Path,
    pictures: int = 3,
    ransac: str = "auto",
) -> dict[str, dict]:
    """Every method with `points` on every pair: {method: summary}; pictures of the first
    `pictures` pairs (matches of methods with descriptors, else detections)."""
    results: dict = {}
    for m in methods:
        if m.points is None:
            continue
        rows = []
        for i, pair in enumerate(pairs):
            s, found = pair_scores(m, pair, ransac)
            rows.append(s)
            if i < pictures:
                # not with_suffix: a name such as "sp_v1.2" would lose ".2"
                png = out / "pictures" / f"{m.name}_{pair.name.replace('/', '_')}.png"
                if "matches" in found:
                    draw_matches(
                        png,
                        pair.a[0],
                        pair.b[0],
                        found["kp_a"],
                        found["kp_b"],
                        found["matches"],
                        found["inliers"],
                        found["H"],
                    )
                else:
                    draw_keypoints(pair.a[0], found["kp_a"], png)
        summary = summarise(rows)
        if "mma" in summary:
            summary["mma@3"] = summary["mma"].get(3, float("nan"))
        results[m.name] = summary
    return results


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(results: dict, missing: list[str]) -> str:
    """The tables of `results` ({"shapes": {...}, "pairs": {set: {method: summary}}})."""
    lines: list[str] = []
    if "shapes" in results:
        lines += ["## Detection mAP on synthetic shapes", ""]
        lines += ["| method | mAP (no noise) | mAP (noise) |", "|---|---|---|"]
        clean, noisy = results["shapes"].get("clean", {}), results["shapes"].get("noise", {})
        for name in clean:
            lines.append(f"| {name} | {_cell(clean[name])} | {_cell(noisy.get(name))} |")
        lines.append("")
    for dataset, table in results.get("pairs", {}).items():
        n = max((s.get("pairs", 0) for s in table.values()), default=0)
        lines += [f"## {dataset} ({n} pairs)", ""]
        lines.append("| method | " + " | ".join(h for _, h in PAIR_COLUMNS) + " |")
        lines.append("|---" * (len(PAIR_COLUMNS) + 1) + "|")
        for name, s in table.items():
            lines.append(
                f"| {name} | " + " | ".join(_cell(s.get(k)) for k, _ in PAIR_COLUMNS) + " |"
            )
        ransac = {s["ransac"] for s in table.values() if "ransac" in s}
        if ransac:
            lines.append(f"\nhomographies by RANSAC ({', '.join(sorted(ransac))}), 3 px")
        lines.append("")
    if missing:
        lines.append(
            f"not run (OpenCV absent: pip install 'perpixel[classic]'): {', '.join(missing)}"
        )
    return "\n".join(lines) + "\n"


def run_evaluation(
    methods: list[Method],
    out: str | Path,
    shapes: dict | None,
    pair_sets: dict[str, list[Pair]],
    missing: list[str],
    ransac: str = "auto",
) -> dict:
    """Write OUT/results.json, OUT/table.md and OUT/pictures/; returns the results.
    `shapes`: {"data", "num", "seed"} for the detection table (None: skip)."""
    out = Path(out)
    t0 = time.time()
    results: dict = {"hardware": hardware(), "missing": missing}
    if shapes is not None:
        with torch.inference_mode():
            results["shapes"] = {
                key: shapes_ap(methods, shapes["data"], noise, shapes["num"], shapes["seed"])
                for key, noise in (("clean", False), ("noise", True))
            }
    results["pairs"] = {}
    for name, pairs in pair_sets.items():
        with torch.inference_mode():
            results["pairs"][name] = evaluate_pairs(methods, pairs, out / name, ransac=ransac)
    results["seconds"] = time.time() - t0
    write_json(out / "results.json", results)
    write_text(out / "table.md", markdown(results, missing))
    return results
