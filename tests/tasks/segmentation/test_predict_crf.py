"""`--crf` in `perpixel predict` / `perpixel evaluate` and `Segmenter(crf=...)`."""

import json

import numpy as np
import pytest
from PIL import Image

from perpixel.cli import main
from perpixel.errors import ConfigError
from perpixel.tasks.segmentation.crf import dense_crf
from perpixel.tasks.segmentation.defaults import CRF_DEFAULTS
from perpixel.tasks.segmentation.predict import Segmenter, parse_crf

from .test_large_images import linear_ckpt, linear_task, photo  # noqa: F401


def test_parse_crf():
    assert parse_crf(None) is None
    assert parse_crf("") == {}
    assert parse_crf("iterations=3, theta_alpha=80.5") == {"iterations": 3, "theta_alpha": 80.5}
    for bad in ("iterations", "theta_alpha=x"):
        with pytest.raises(ConfigError, match="KEY=NUMBER"):
            parse_crf(bad)


def test_segmenter_crf_is_the_dense_crf_of_its_probabilities(tiny_config, tmp_path):
    task = linear_task(tiny_config(tmp_path))
    rgb = photo(30, 40)
    plain = Segmenter(task).predict(rgb)
    seg = Segmenter(task, crf={"iterations": 3})
    assert seg.crf is not None and seg.crf.iterations == 3
    assert seg.crf.theta_alpha == CRF_DEFAULTS["theta_alpha"]  # the rest: the recipe's
    got = seg.predict(rgb)
    want = dense_crf(rgb, plain.probs, **{**CRF_DEFAULTS, "iterations": 3})
    np.testing.assert_allclose(got.probs, want, atol=1e-6)
    np.testing.assert_array_equal(got.labels, want.argmax(0))
    assert (got.labels != plain.labels).any()  # a noisy photo: the CRF changes labels
    seg.set_inference(crf=False)
    np.testing.assert_array_equal(seg.predict(rgb).labels, plain.labels)
    with pytest.raises(ConfigError, match="theta_alpha"):
        Segmenter(task, crf={"theta_alpha": -1})


def test_cli_crf(linear_ckpt, tmp_path, capsys):  # noqa: F811
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(photo(24, 32, seed=3)).save(images / "a.png")
    out = tmp_path / "crf"
    assert main(["predict", str(linear_ckpt), str(images), str(out), "--crf", "iterations=2"]) == 0
    labels = np.asarray(Image.open(out / "a.png"))
    seg = Segmenter.load(linear_ckpt)
    seg.set_inference(crf={"iterations": 2})
    np.testing.assert_array_equal(labels, seg.predict(images / "a.png").labels)
    assert main(["predict", str(linear_ckpt), str(images), str(tmp_path / "x"), "--crf", "k"]) == 2
    assert "--crf k: expected KEY=NUMBER" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    argv = ["evaluate", str(linear_ckpt), "synthetic", "--split", "val", "--overlays", "1"]
    assert main([*argv, "--out", str(tmp_path / "e"), "--crf", "iterations=1"]) == 0
    info = json.loads((tmp_path / "e" / "metrics.json").read_text())["info"]
    assert info["crf"] == "{'iterations': 1}"
    assert main(["evaluate", "canny", str(tmp_path), "--crf"]) == 2
    assert "--crf: for segmentation checkpoints only" in capsys.readouterr().err
