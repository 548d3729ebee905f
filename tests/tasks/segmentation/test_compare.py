"""Tests for perpixel.tasks.segmentation.compare (`perpixel compare`)."""

import json

import pytest
import yaml

from perpixel import cli
from perpixel.errors import ConfigError
from perpixel.models import build_model
from perpixel.tasks.segmentation.compare import (
    comparison_table,
    model_cost,
    run_compare,
    with_budget,
)
from perpixel.tasks.segmentation.train import evaluate


def test_cost_of_a_1x1_convolution_is_exact():
    model = build_model({"name": "linear", "num_classes": 5})
    cost = model_cost(model, size=(6, 10), seconds=0.01)
    assert cost["parameters_m"] == pytest.approx((3 * 5 + 5) / 1e6)
    assert cost["gflops"] == pytest.approx(2 * 3 * 5 * 6 * 10 / 1e9)  # multiply-add = 2
    assert cost["images_per_s"] > 0


def test_budget_sets_epochs_and_a_clock_cap(tiny_config, tmp_path):
    conf = tiny_config(tmp_path)
    b = with_budget(conf, epochs=3, max_minutes=90.5)
    assert b["trainer"]["max_epochs"] == 3 and b["trainer"]["max_time"] == "00:01:30:30"
    assert with_budget(conf) == conf


def test_compare_trains_scores_and_reuses(tiny_run, tiny_config, tmp_path, capsys):
    linear = tiny_config(tmp_path, model={"name": "linear"}, trainer={"max_epochs": 1})
    out = tmp_path / "cmp"
    entries = {"linear": linear, "unet": tiny_run["best"]}
    rows = run_compare(entries, out, cost_seconds=0.05)
    assert set(rows) == {"linear", "unet"}
    want = evaluate(tiny_run["best"], tiny_run["conf"]["data"], "test")
    assert rows["unet"]["miou"] == pytest.approx(want["miou"])
    assert rows["unet"]["model"] == "unet" and rows["linear"]["model"] == "linear"
    assert rows["linear"]["train_minutes"] > 0
    saved = json.loads((out / "compare.json").read_text())
    assert saved["results"]["unet"]["miou"] == pytest.approx(want["miou"])
    table = (out / "compare.md").read_text().splitlines()
    best = max(rows, key=lambda n: rows[n]["miou"])
    assert table[2].startswith(f"| {best} |")  # best mIoU first
    assert (out / "miou.png").stat().st_size > 1000
    assert "Per-class IoU" in (out / "report.html").read_text()
    ckpt = out / "runs" / "linear" / "checkpoints" / "best.ckpt"
    stamp = ckpt.stat().st_mtime_ns
    again = run_compare(entries, out, reuse=True, cost_seconds=0.05)
    assert ckpt.stat().st_mtime_ns == stamp  # not retrained
    assert again["linear"]["miou"] == pytest.approx(rows["linear"]["miou"])
    assert comparison_table(again).count("\n") == 3


def test_compare_refuses_different_data(tiny_run, tiny_config, tmp_path):
    other = tiny_config(tmp_path, data={"test_split": "val"})
    with pytest.raises(ConfigError, match="same data"):
        run_compare({"a": tiny_run["best"], "b": other}, tmp_path / "x", cost_seconds=0.01)


def test_compare_command(tiny_run, tiny_yaml, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(tiny_yaml), tiny_run["best"], "--epochs", "1", "--out", str(out)]
    args += ["-o", "model.name=linear", "--speed-seconds", "0.05"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "budget: 1 epochs" in text and "| tiny | linear |" in text
    run = yaml.safe_load((out / "runs" / "tiny" / "config.yaml").read_text())
    assert run["trainer"]["max_epochs"] == 1 and run["model"]["name"] == "linear"
