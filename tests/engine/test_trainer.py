"""The trainer: precision `auto`, one plain line per epoch off a terminal, curves of any task."""

import subprocess
import sys

import pytest
import torch

from perpixel.engine import trainer
from perpixel.engine.trainer import make_trainer, resolve_precision
from perpixel.viz import curve_keys


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, "bf16-mixed"),
        ({"amx_bf16", "amx_tile"}, "bf16-mixed"),
        ({"avx2", "avx512f"}, "32-true"),  # AVX-512 without BF16: bf16 is slower there
        (set(), "32-true"),
    ],
)
def test_auto_precision_on_cpus(monkeypatch, flags, expected):
    monkeypatch.setattr(trainer, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    precision, why = resolve_precision("auto")
    assert precision == expected and why


def test_auto_precision_on_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Some GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto")[0] == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto")[0] == "32-true"
    assert resolve_precision("auto", "cpu")[0] in ("bf16-mixed", "32-true")  # the CPU decides
    assert resolve_precision("16-mixed") == ("16-mixed", "set by the recipe")


def test_trainer_gets_the_resolved_precision(monkeypatch, tiny_config, tmp_path):
    monkeypatch.setattr(trainer, "cpu_flags", lambda: set())
    conf = tiny_config(tmp_path)
    conf["trainer"]["precision"] = "auto"
    assert make_trainer(conf, None, checkpoints=False).precision == "32-true"


def test_log_file_gets_a_line_per_epoch(tiny_yaml, tmp_path):
    """Output to a file (not a terminal): the precision chosen, then one line per epoch with
    the losses and, when validation ran, its metrics."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "perpixel", "train", str(tiny_yaml), "--out", str(out)]
    cmd += ["-o", "trainer.precision=auto", "-o", "trainer.enable_progress_bar=true"]
    cmd += ["-o", "trainer.check_val_every_n_epoch=2"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("precision ") and ("bf16-mixed" in lines[0] or "32-true" in lines[0])
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2, p.stdout
    assert "train/loss " in epochs[0] and "val/" not in epochs[0]  # no validation in epoch 1
    assert "val/miou " in epochs[1] and "val/loss " in epochs[1]
    assert "\r" not in p.stdout + p.stderr  # no progress-bar redraws in a log file


def test_training_curves_plot_the_tasks_metric(tiny_run):
    png = tiny_run["out"] / "training_curves.png"
    assert png.is_file() and png.stat().st_size > 1000
    keys = curve_keys(tiny_run["out"] / "logs" / "metrics.csv")
    assert keys[0] == "val/miou" and "val/loss" not in keys


def test_backbone_learns_at_its_own_rate(tiny_config, tmp_path):
    from perpixel.engine.module import configure_optim
    from perpixel.tasks.segmentation.module import SegmentationTask

    conf = tiny_config(tmp_path)
    task = SegmentationTask(conf, {"names": ["a", "b"]})
    task.trainer = make_trainer(conf, None, checkpoints=False)  # type: ignore[misc]
    o = {**conf["optim"], "lr": 0.01, "backbone_lr_scale": 0.1, "schedule": "constant"}
    opt = configure_optim(task, o)
    backbone = {id(p) for p in task.model.backbone.parameters()}
    assert [g["lr"] for g in opt.param_groups] == [0.01, pytest.approx(0.001)]
    assert {id(p) for p in opt.param_groups[1]["params"]} == backbone
    assert len(configure_optim(task, {**o, "backbone_lr_scale": 1.0}).param_groups) == 1


def test_find_lr_plots_and_suggests_without_training(tiny_yaml, tmp_path, capsys):
    from perpixel import cli

    out = tmp_path / "run"
    assert cli.main(["train", str(tiny_yaml), "--out", str(out), "--find-lr"]) == 0
    text = capsys.readouterr().out
    assert (out / "lr_find.png").stat().st_size > 1000
    assert not (out / "checkpoints").exists()
    line = next(x for x in text.splitlines() if x.startswith("suggested optim.lr: "))
    assert 1e-6 <= float(line.split()[2]) <= 1.0
    assert f"perpixel train {tiny_yaml} -o optim.lr=" in text


def test_time_capped_cosine_anneals_by_the_clock(tiny_config, tmp_path):
    from perpixel.engine.module import configure_optim
    from perpixel.tasks.segmentation.module import SegmentationTask

    conf = tiny_config(tmp_path)
    conf["trainer"] = {**conf["trainer"], "max_time": "00:00:10:00", "max_epochs": 1000}
    task = SegmentationTask(conf, {"names": ["a", "b"]})
    task.trainer = make_trainer(conf, None, checkpoints=False)  # type: ignore[misc]
    sched = configure_optim(task, {**conf["optim"], "schedule": "cosine", "warmup_epochs": 0})
    factor = sched["lr_scheduler"]["scheduler"].lr_lambdas[0]
    timer = next(c for c in task.trainer.callbacks if type(c).__name__ == "Timer")
    assert factor(0) == pytest.approx(1.0)  # step 0, no time spent
    timer.time_elapsed = lambda stage: 300.0  # half of the 10 minutes
    assert factor(0) == pytest.approx(0.5, abs=1e-3)  # cosine half way, by the clock
    timer.time_elapsed = lambda stage: 900.0
    assert factor(0) == pytest.approx(0.0)
