"""Training state a user relies on: last.ckpt is the end of the last epoch, Ctrl-C says how
to continue (exit 130), and a resumed run equals the uninterrupted one, logs included."""

import csv
import os
import signal
import subprocess
import sys

import pytest
import torch

from perpixel import cli
from perpixel.engine.checkpoint import read_checkpoint
from perpixel.tasks.segmentation.module import SegmentationTask

# 4 epochs of 12 batches, validation only after epoch 3: the best checkpoint (epoch 3) is not
# the last (epoch 4). Augmentation and dropout draw random numbers that a resume must replay.
OVERRIDES = [
    "-o", "trainer.max_epochs=4",
    "-o", "trainer.check_val_every_n_epoch=3",
    "-o", "data.synthetic.num_train=96",
    "-o", "data.augment={hflip: true, scale: [0.8, 1.2], crop: [48, 48]}",
    "-o", "model.dropout=0.3",
]  # fmt: skip


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def rows(out) -> list[dict]:
    with (out / "logs" / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def train(recipe, out, *extra) -> int:
    return cli.main(["train", str(recipe), "--out", str(out), *OVERRIDES, *extra])


def test_interrupted_run_resumes_exactly(tiny_yaml, tmp_path, monkeypatch, capsys, umask_022):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train(tiny_yaml, whole) == 0
    last = read_checkpoint(whole / "checkpoints" / "last.ckpt")
    best = read_checkpoint(whole / "checkpoints" / "best.ckpt")
    assert (last["epoch"], last["global_step"]) == (3, 48)  # the end of epoch 4, not the best
    assert best["epoch"] == 2

    def ctrl_c(self, batch, batch_idx):
        if self.current_epoch == 2 and batch_idx == 5:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(SegmentationTask, "on_train_batch_start", ctrl_c, raising=False)
        capsys.readouterr()
        assert train(tiny_yaml, parts) == 130
    err = capsys.readouterr().err
    ckpt = parts / "checkpoints" / "last.ckpt"
    assert f"the last checkpoint is {ckpt} (end of epoch 2/4)" in err
    assert f"perpixel train {tiny_yaml} --out {parts} " in err and err.rstrip().endswith("--resume")
    assert read_checkpoint(ckpt)["epoch"] == 1

    assert train(tiny_yaml, parts, "--resume") == 0
    a, b = rows(whole), rows(parts)
    assert [(r["epoch"], r["step"]) for r in a] == [(r["epoch"], r["step"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if key not in ("epoch", "step") and ra[key]:
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-5, abs=1e-7), key
    assert any(r["val/miou"] for r in b)
    wa = read_checkpoint(whole / "checkpoints" / "last.ckpt")["state_dict"]
    wb = read_checkpoint(ckpt)["state_dict"]
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5), k

    # every file perpixel wrote has the permissions of the umask, not a temp file's 0600
    files = [p for p in parts.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {
        p.name: "0o644" for p in files
    }


def test_ctrl_c_in_a_terminal_run(tiny_yaml, tmp_path):
    """A real SIGINT after an epoch: a message with the resume command, exit 130."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "perpixel", "train", str(tiny_yaml), "--out", str(out)]
    cmd += ["-o", "trainer.max_epochs=1000"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:  # type: ignore[union-attr]
            if line.startswith("epoch 2/"):  # epoch 1's checkpoint is surely written
                break
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=300)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert f"the last checkpoint is {out / 'checkpoints' / 'last.ckpt'}" in err
    assert err.rstrip().endswith("--resume")
    assert "Traceback" not in err
