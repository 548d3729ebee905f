"""`perpixel compare RECIPE|CKPT ...`: several segmentation recipes trained under one budget
(or finished checkpoints), scored on one test split, in one table: Markdown, JSON and an
HTML page with a bar chart."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from perpixel.config import merge
from perpixel.engine.trainer import hardware
from perpixel.errors import ConfigError
from perpixel.io import write_json, write_text
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.train import evaluate, train
from perpixel.viz import plot_bars, write_run_page

COST_SIZE = (360, 480)  # (H, W) of the cost and speed measurements: CamVid's frames
# (key, column heading, format) of the comparison table
COLUMNS = [
    ("miou", "mIoU", "{:.3f}"),
    ("pixel_accuracy", "pixel acc", "{:.3f}"),
    ("mean_class_accuracy", "class acc", "{:.3f}"),
    ("parameters_m", "params (M)", "{:.3g}"),
    ("gflops", "GFLOPs", "{:.1f}"),
    ("images_per_s", "images/s", "{:.2f}"),
    ("train_minutes", "train (min)", "{:.1f}"),
]


def model_cost(
    model: torch.nn.Module, size: tuple[int, int] = COST_SIZE, seconds: float = 5.0
) -> dict[str, float]:
    """Size and speed of a segmentation model on one (1, 3, H, W) image of `size`:
    {"parameters_m": millions of parameters, "gflops": 1e9 FLOPs of one forward pass as
    torch's `FlopCounterMode` counts them (a multiply-add is 2), "images_per_s": forward
    passes per second in float32 at batch 1 on this machine's threads, timed for about
    `seconds` after one warm-up pass}."""
    model = model.eval()
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(x)
        model(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            model(x)
            n += 1
        per_s = n / (time.perf_counter() - t0)
    return {
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": counter.get_total_flops() / 1e9,
        "images_per_s": per_s,
    }


def with_budget(conf: dict, epochs: int | None = None, max_minutes: float | None = None) -> dict:
    """`conf` with the comparison's budget: `epochs` and/or a wall-clock cap of `max_minutes`
    (the cosine schedule then anneals by the clock, see `configure_optim`)."""
    t: dict[str, Any] = {}
    if epochs is not None:
        t["max_epochs"] = epochs
    if max_minutes is not None:
        s = round(max_minutes * 60)
        t["max_time"] = f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    return merge(conf, {"trainer": t}) if t else conf


def _test_data(conf: dict) -> tuple:
    d = conf["data"]
    return d["kind"], str(Path(d["root"]).resolve()) if d.get("root") else None, d["test_split"]


def _train_seconds(run: Path) -> float | None:
    summary = run / "summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text())["info"].get("train seconds")


def run_compare(
    entries: Mapping[str, dict | str | Path],
    out: str | Path,
    split: str = "test",
    reuse: bool = False,
    cost_seconds: float = 5.0,
    recipes: Mapping[str, str] | None = None,
) -> dict[str, dict]:
    """Train (or reuse) and score each entry; write the comparison to `out`.

    `entries`: name -> a full recipe (`perpixel.tasks.load_recipe`, budget applied; trained
    into `out/runs/<name>`) or a checkpoint path (scored as it is). All are scored on the
    same data (`split` of the first entry's test data; the others must name the same data).
    With `reuse`, a recipe whose run folder already holds a finished run is not retrained.
    Returns name -> row (the `COLUMNS` keys, the metrics, `per_class_iou`).
    """
    out = Path(out)
    rows: dict[str, dict] = {}
    data: dict | None = None
    for name, entry in entries.items():
        if isinstance(entry, dict):
            conf = merge(entry, {"out": str(out / "runs" / name)})
            run = Path(conf["out"])
            best = run / "checkpoints" / "best.ckpt"
            if not (reuse and best.is_file() and (run / "summary.json").is_file()):
                print(f"== compare: training {name} ==", flush=True)
                recipe = (recipes or {}).get(name)
                best = Path(train(conf, recipe=recipe)["best"])
            seconds = _train_seconds(run)
            task = SegmentationTask.load(best)
        else:
            task = SegmentationTask.load(entry)
            conf = task.config
            seconds = _train_seconds(Path(entry).resolve().parent.parent)
        if data is None:
            data = conf["data"]
        elif _test_data(conf) != _test_data({"data": data}):
            raise ConfigError(
                f"compare: {name} is scored on {_test_data(conf)}, the first entry on "
                f"{_test_data({'data': data})}; compare models on the same data"
            )
        print(f"== compare: scoring {name} on {split} ==", flush=True)
        m = evaluate(task, data, split)
        rows[name] = {
            "model": task.config["model"]["name"],
            **{k: m[k] for k in ("miou", "pixel_accuracy", "mean_class_accuracy")},
            "per_class_iou": m["per_class_iou"],
            **model_cost(task.model, seconds=cost_seconds),
            "train_minutes": None if seconds is None else seconds / 60,
        }
    write_comparison(out, rows, {"split": split, "hardware": hardware()})
    return rows


def comparison_table(rows: Mapping[str, Mapping]) -> str:
    """The Markdown table of `run_compare`'s rows, best mIoU first."""
    order = sorted(rows, key=lambda n: -rows[n]["miou"])
    lines = [
        "| recipe | model | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for n in order:
        cells = ["–" if rows[n].get(k) is None else f.format(rows[n][k]) for k, _, f in COLUMNS]
        lines.append(f"| {n} | {rows[n]['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_comparison(out: Path, rows: Mapping[str, Mapping], info: dict) -> Path:
    """compare.md, compare.json, miou.png and report.html in `out`; returns the page."""
    info = {**info, "cost measured at": f"{COST_SIZE[1]}x{COST_SIZE[0]}, batch 1, float32"}
    write_text(out / "compare.md", comparison_table(rows) + "\n")
    write_json(out / "compare.json", {"info": info, "results": rows})
    plot_bars({n: r["miou"] for n, r in rows.items()}, out / "miou.png", f"{info['split']} mIoU")
    order = sorted(rows, key=lambda n: -rows[n]["miou"])
    table = [[n, rows[n]["model"], *(rows[n].get(k) for k, _, _ in COLUMNS)] for n in order]
    classes = list(next(iter(rows.values()))["per_class_iou"]) if rows else []
    per_class = [[c, *(rows[n]["per_class_iou"].get(c) for n in order)] for c in classes]
    return write_run_page(
        out,
        "Comparison",
        info,
        [
            ("Results", ["recipe", "model", *(h for _, h, _ in COLUMNS)], table),
            ("Per-class IoU", ["class", *order], per_class),
        ],
        [("mIoU of each recipe", "miou.png")],
        ["FLOPs by torch.utils.flop_counter.FlopCounterMode: a multiply-add counts 2."],
    )


def budget_note(epochs: int | None, max_minutes: float | None) -> str:
    """How the budget reads in messages."""
    parts: Sequence[str] = [
        *([f"{epochs} epochs"] if epochs is not None else []),
        *([f"at most {max_minutes:g} min"] if max_minutes is not None else []),
    ]
    return " and ".join(parts) or "each recipe's own schedule"
