"""Segmentation of large images: windows picked automatically (whole image when small, the
training crop when large), the same labels in windows as whole for a per-pixel model, no
probabilities past the size limit, and the `perpixel predict` / `evaluate` flags."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import perpixel
from perpixel.cli import main
from perpixel.data import images as image_io
from perpixel.data.synthetic import SYNTHETIC
from perpixel.engine.checkpoint import save_checkpoint
from perpixel.errors import ConfigError
from perpixel.tasks.segmentation import predict as seg_predict
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.predict import Segmenter


def linear_task(conf: dict) -> SegmentationTask:
    """The per-pixel linear classifier (receptive field 1 pixel): windows cannot change it."""
    torch.manual_seed(0)
    task = SegmentationTask({**conf, "model": {"name": "linear"}}, SYNTHETIC.to_dict())
    with torch.no_grad():
        task.model.classifier.weight.normal_(0, 3.0)  # spread, so classes differ in the image
    return task.eval()


@pytest.fixture(scope="module")
def linear_ckpt(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("linear")
    task = linear_task(tiny_config(out))
    hp = {"config": task.config, "taxonomy": SYNTHETIC.to_dict(), "class_weights": None}
    return save_checkpoint(out / "linear.ckpt", task.state_dict(), hp)


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_windows_give_the_whole_image_labels_of_a_per_pixel_model(tiny_config, tmp_path):
    seg = Segmenter(linear_task(tiny_config(tmp_path)))
    rgb = photo(50, 70)
    ref = seg.predict(rgb)
    assert seg.window_for(50, 70) == (50, 70)  # small: the whole image
    assert len(np.unique(ref.labels)) > 2
    seg.set_inference(window=(16, 24), overlap=0.5, tta="flip")
    got = seg.predict(rgb)
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_allclose(got.probs, ref.probs, atol=1e-5)  # per pixel: flips change nothing
    assert got.labels.dtype == np.int64


def test_automatic_windows_and_no_probabilities_past_the_limit(tiny_config, tmp_path, monkeypatch):
    conf = tiny_config(tmp_path)
    seg = Segmenter(linear_task(conf))
    assert seg.crop_window == seg_predict.DEFAULT_WINDOW
    conf["data"]["augment"] = {"crop": [24, 40]}
    seg = Segmenter(linear_task(conf))
    monkeypatch.setattr(seg_predict, "WHOLE_IMAGE_PIXELS", 40 * 60 - 1)
    monkeypatch.setattr(seg_predict, "PROBS_MAX_PIXELS", 40 * 60 - 1)
    assert seg.window_for(40, 60) == (24, 40)  # the training crop
    assert seg.window_for(40, 59) == (40, 59)
    rgb = photo(40, 60, seed=1)
    big = seg.predict(rgb)
    assert big.probs is None and big.labels.dtype == np.uint8
    forced = seg.predict(rgb, probs=True)
    assert forced.probs is not None and forced.probs.shape == (SYNTHETIC.num_classes, 40, 60)
    np.testing.assert_array_equal(big.labels, forced.probs.argmax(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"window": (0, 16)}, "--window"),
        ({"window": (16,)}, "--window"),
        ({"overlap": 1.0}, "--overlap"),
        ({"tta": "mirror"}, "--tta"),
    ],
)
def test_bad_inference_options(tiny_config, tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Segmenter(linear_task(tiny_config(tmp_path)), **kwargs)


def test_cli_predict_with_windows_writes_the_same_labels(linear_ckpt, tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(photo(45, 61, seed=2)).save(images / "a.png")
    outs = {}
    for name, flags in [
        ("whole", []),
        ("windows", ["--window", "16", "20", "--overlap", "0.3"]),
        ("tta", ["--window", "32", "32", "--tta", "flip,0.75,1"]),
    ]:
        out = tmp_path / name
        assert main(["predict", str(linear_ckpt), str(images), str(out), *flags]) == 0
        outs[name] = np.asarray(Image.open(out / "a.png"))
        assert (out / "a_color.png").is_file() and (out / "a_overlay.png").is_file()
    assert outs["whole"].shape == (45, 61) and len(np.unique(outs["whole"])) > 2
    np.testing.assert_array_equal(outs["windows"], outs["whole"])
    np.testing.assert_array_equal(
        outs["whole"], perpixel.load(linear_ckpt).predict(images / "a.png").labels
    )
    # scaled inputs blur a per-pixel model's map a little: most labels stay
    assert (outs["tta"] == outs["whole"]).mean() > 0.8


def test_cli_predict_refuses_past_max_pixels_and_unsupported_flags(linear_ckpt, tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(photo(30, 40)).save(images / "big.png")
    code = main(
        ["predict", str(linear_ckpt), str(images), str(tmp_path / "o"), "--max-pixels", "1000"]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "big.png: 40x30 image (1,200 pixels) is past the limit of 1,000 pixels" in err
    assert image_io.MAX_PIXELS == 150_000_000  # the flag lasts for its command only
    assert (
        main(
            ["predict", str(linear_ckpt), str(images), str(tmp_path / "p"), "--max-pixels", "1200"]
        )
        == 0
    )
    for argv in (
        ["predict", "canny", str(images), str(tmp_path / "c"), "--window", "16", "16"],
        ["evaluate", "canny", str(tmp_path), "--tta", "flip"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "for segmentation checkpoints only; canny is for edges" in err
    assert main(["predict", str(linear_ckpt), str(images), str(tmp_path / "t"), "--tta", "x"]) == 2
    assert "'x' is neither 'flip' nor a scale" in capsys.readouterr().err


def test_cli_evaluate_with_windows_matches_plain_evaluation(
    linear_ckpt, tmp_path, capsys, monkeypatch
):
    batches: list = []
    predict_batch = Segmenter.predict_batch

    def spy(self, images):
        batches.append(images.shape)
        return predict_batch(self, images)

    monkeypatch.setattr(Segmenter, "predict_batch", spy)
    results = {}
    for name, flags in [("plain", []), ("windows", ["--window", "24", "40", "--overlap", "0.5"])]:
        out = tmp_path / name
        argv = ["evaluate", str(linear_ckpt), "synthetic", "--split", "val", "--out", str(out)]
        assert main(argv + flags + ["--overlays", "1"]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())["linear"]
    assert sum(b[0] for b in batches) == 32  # the windowed run: every val image, by predict
    assert results["windows"]["confusion_matrix"] == results["plain"]["confusion_matrix"]
    assert results["plain"]["miou"] > 0
    info = json.loads((tmp_path / "windows" / "metrics.json").read_text())["info"]
    assert info["window"] == "[24, 40]" and info["overlap"] == "0.5"
