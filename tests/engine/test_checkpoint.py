"""Checkpoints load as plain data: a file that carries code is refused and runs nothing."""

import os
import shutil

import pytest
import torch

import perpixel
from perpixel.cli import main
from perpixel.engine.checkpoint import checkpoint_task, read_checkpoint, save_checkpoint
from perpixel.errors import PerpixelError
from perpixel.tasks import open_checkpoint
from perpixel.tasks.segmentation.module import SegmentationTask


class _Payload:
    """Unpickling this runs `touch <path>`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _poisoned(source, dest, marker):
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["note"] = _Payload(marker)
    torch.save(ckpt, dest)
    return dest


def test_payload_really_runs_when_unpickled_unsafely(tmp_path, tiny_run):
    """The crafted file is a real threat: full unpickling creates the marker file."""
    marker = tmp_path / "ran"
    bad = _poisoned(tiny_run["best"], tmp_path / "bad.ckpt", marker)
    torch.load(bad, weights_only=False)
    assert marker.exists()


def test_code_carrying_checkpoint_is_refused_and_runs_nothing(tmp_path, tiny_run, capsys):
    marker = tmp_path / "ran"
    bad = _poisoned(tiny_run["best"], tmp_path / "bad.ckpt", marker)
    for load in (read_checkpoint, perpixel.load, SegmentationTask.load, open_checkpoint):
        with pytest.raises(PerpixelError, match="refused.*could run code.*GLOBAL"):
            load(bad)
    for argv in (
        ["predict", str(bad), str(tmp_path), str(tmp_path / "out")],
        ["export", str(bad), str(tmp_path / "m.onnx")],
        ["evaluate", str(bad), "synthetic"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.onnx").exists()


def test_resume_from_a_code_carrying_checkpoint_is_refused(tmp_path, tiny_run, tiny_config):
    from perpixel.tasks.segmentation.train import train

    run = tmp_path / "run"
    shutil.copytree(tiny_run["out"], run)
    marker = tmp_path / "ran"
    last = run / "checkpoints" / "last.ckpt"
    _poisoned(last, last, marker)
    with pytest.raises(PerpixelError, match="refused"):
        train(tiny_config(run), resume=True)
    assert not marker.exists()


def test_checkpoints_written_by_training_are_plain_data(tiny_run):
    for name in ("best", "last"):
        ckpt = torch.load(tiny_run[name], map_location="cpu", weights_only=True)
        assert checkpoint_task(ckpt) == "segmentation"
        assert ckpt["hyper_parameters"]["config"]["task"] == "segmentation"


def test_save_checkpoint_round_trip(tmp_path, tiny_run):
    task = SegmentationTask.load(tiny_run["best"])
    hp = {"config": task.config, "taxonomy": task.taxonomy.to_dict(), "class_weights": None}
    path = save_checkpoint(tmp_path / "c.ckpt", task.state_dict(), hp, source="test")
    assert read_checkpoint(path)["source"] == "test"
    again = SegmentationTask.load(path)
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(again(x), task(x))


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "junk.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PerpixelError, match="not a perpixel checkpoint"):
        read_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(PerpixelError, match="no state_dict"):
        read_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(PerpixelError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_task_mismatch_is_named(tiny_run):
    from perpixel.tasks.edges.module import EdgeTask

    with pytest.raises(PerpixelError, match="a checkpoint of task 'segmentation', not 'edges'"):
        EdgeTask.load(tiny_run["best"])
