"""The `perpixel` command: every subcommand, its --help and its error messages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

import perpixel
from perpixel.cli import main

SUBCOMMANDS = ["demo", "train", "evaluate", "predict", "export"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_has_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "perpixel " + cmd in capsys.readouterr().out.split("example")[-1]


def test_export_round_trip(tiny_run, tmp_path, capsys):
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", tiny_run["best"], str(onnx_path)]) == 0
    assert "matches PyTorch" in capsys.readouterr().out
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model = perpixel.load(tiny_run["best"]).model.float().eval()
    for h, w in [(64, 64), (61, 35)]:  # dynamic height and width, not multiples of 8
        x = torch.rand(1, 3, h, w)
        (got,) = sess.run(["logits"], {"image": x.numpy()})
        with torch.inference_mode():
            ref = model(x).numpy()
        assert got.shape == ref.shape == (1, 8, h, w)
        np.testing.assert_allclose(got, ref, atol=1e-4)


def test_predict_folder(tiny_run, tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, size in [("a", (40, 30)), ("b", (57, 64))]:
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(
            images / f"{name}.jpg"
        )
    out = tmp_path / "pred"
    assert main(["predict", tiny_run["best"], str(images), str(out)]) == 0
    ids = np.asarray(Image.open(out / "a.png"))
    assert ids.shape == (30, 40) and ids.max() < 8
    for picture in ("b_color.png", "b_overlay.png"):  # 64 x 57, then a legend strip below
        rgb = np.asarray(Image.open(out / picture))
        assert rgb.shape[0] > 64 and rgb.shape[1] >= 57 and rgb.shape[2] == 3
    seg = perpixel.load(tiny_run["best"])
    np.testing.assert_array_equal(ids, seg.predict(images / "a.jpg").labels)


def test_evaluate_writes_report(tiny_run, tmp_path, capsys):
    out = tmp_path / "rep"
    assert (
        main(["evaluate", tiny_run["best"], "synthetic", "--split", "val", "--out", str(out)]) == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["best"]["miou"] == pytest.approx(tiny_run["best_val_miou"], abs=1e-6)
    for f in ["report.html", "confusion_matrix.png", "overlays.png", "per_class.csv"]:
        assert (out / f).is_file(), f
    assert str(out / "report.html") in capsys.readouterr().out


def _write_folder(root: Path, mask_size=(32, 32), label=1, corrupt=False):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = [
        "sky",
        "grass",
        "road",
        "water",
        "disc",
        "triangle",
        "quad",
        "star",
    ]  # the synthetic world's
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    img = root / "images" / "x.png"
    if corrupt:
        img.write_bytes(b"\x89PNG garbage")
    else:
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    Image.fromarray(np.full(mask_size, label, np.uint8)).save(root / "masks" / "x.png")


@pytest.mark.parametrize(
    "kwargs, file, problem",
    [
        ({"corrupt": True}, "x.png", "cannot read image"),
        ({"mask_size": (30, 32)}, "x.png", "mask is 32x30"),
        ({"label": 9}, "x.png", "outside the taxonomy"),
    ],
)
def test_evaluate_bad_data_names_file(tiny_run, tmp_path, capsys, kwargs, file, problem):
    _write_folder(tmp_path / "d", **kwargs)
    code = main(["evaluate", tiny_run["best"], str(tmp_path / "d"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert file in err and problem in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists(), "no half-written output"


def test_train_bad_config_is_clear(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {kind: folder, root: " + str(tmp_path / "nowhere") + "}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "not found" in err


def test_empty_folder(tmp_path, capsys, tiny_run):
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    (tmp_path / "d" / "classes.txt").write_text("sky\ngrass\n")
    assert main(["evaluate", tiny_run["best"], str(tmp_path / "d")]) == 2
    assert "no images" in capsys.readouterr().err


def _run_cli(args, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    exe = Path(sys.executable).with_name("perpixel")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_ddp_two_processes_equal_one(tiny_run, tmp_path):
    """Metrics are summed across processes: a two-process DDP (gloo) evaluation of the same
    checkpoint and data gives exactly the one-process numbers (32 images, split 16/16; and
    an odd batch layout, so no sample may be counted twice)."""
    outs = {}
    for n in (1, 2):
        out = tmp_path / f"ddp{n}"
        args = [
            "evaluate",
            tiny_run["best"],
            "synthetic",
            "--split",
            "val",
            "--out",
            str(out),
            "--accelerator",
            "cpu",
            "--devices",
            str(n),
            "--batch-size",
            "5",
        ]
        if n == 2:
            args += ["--strategy", "ddp"]
        r = _run_cli(args, tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        outs[n] = json.loads((out / "metrics.json").read_text())["best"]
    assert outs[2]["confusion_matrix"] == outs[1]["confusion_matrix"]
    assert outs[2]["miou"] == outs[1]["miou"]
    assert outs[2]["num_pixels"] == 32 * 64 * 64


def test_ddp_training_runs(tmp_path, tiny_yaml):
    """`perpixel train --devices 2 --strategy ddp` on the CPU (gloo): both processes train on
    their shard and rank 0 writes the checkpoints once."""
    cfg = tiny_yaml
    out = tmp_path / "run"
    r = _run_cli(
        [
            "train",
            str(cfg),
            "--out",
            str(out),
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "-o",
            "trainer.max_epochs=1",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert "val/miou" in (out / "logs" / "metrics.csv").read_text()
    assert r.stdout.count("best checkpoint:") == 1  # only rank 0 reports


def test_evaluate_other_taxonomy_is_refused(tiny_run, tmp_path, capsys):
    _write_folder(tmp_path / "d")
    (tmp_path / "d" / "classes.txt").write_text("\n".join(f"c{i}" for i in range(8)) + "\n")
    assert (
        main(["evaluate", tiny_run["best"], str(tmp_path / "d"), "--out", str(tmp_path / "o")]) == 2
    )
    assert "classes" in capsys.readouterr().err and not (tmp_path / "o").exists()
