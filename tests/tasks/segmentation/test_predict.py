"""`perpixel predict`'s files: NAME.png class ids exactly the image's size, NAME_color.png and
NAME_overlay.png with a legend strip of the classes present below the picture."""

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from perpixel.data.synthetic import SYNTHETIC
from perpixel.tasks.segmentation.module import SegmentationTask
from perpixel.tasks.segmentation.predict import Prediction, Segmenter, overlay
from perpixel.viz.legend import MIN_LEGEND_WIDTH, legend_strip


@pytest.fixture(scope="module")
def segmenter(tiny_config, tmp_path_factory):
    """An untrained tiny U-Net: `write` only needs the taxonomy, `predict_folder` any model."""
    torch.manual_seed(0)
    conf = tiny_config(tmp_path_factory.mktemp("untrained"))
    return Segmenter(SegmentationTask(conf, SYNTHETIC.to_dict()))


def read(path):
    with Image.open(path) as im:
        return np.asarray(im)


def has_swatch(rgb, colour, side=8):
    mask = np.all(rgb == np.asarray(colour, dtype=np.uint8), axis=-1)
    return bool(sliding_window_view(mask, (side, side)).all(axis=(2, 3)).any())


def test_write_appends_a_legend_and_keeps_class_ids_untouched(segmenter, tmp_path):
    h, w = 48, 160
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), dtype=np.int64)
    labels[:, 40:] = 2  # road
    labels[:, 100:] = 5  # triangle
    present, absent = (0, 2, 5), (1, 3, 4, 6, 7)
    item = {"image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255, "name": "x"}
    probs = np.zeros((SYNTHETIC.num_classes, h, w), dtype=np.float32)
    main = segmenter.write(tmp_path, item, Prediction(labels, probs))

    assert main == tmp_path / "x.png"
    ids = read(main)
    assert ids.shape == (h, w) and ids.dtype == np.uint8  # exactly the image: machine-readable
    np.testing.assert_array_equal(ids, labels)

    tax = segmenter.taxonomy
    plain = {
        "x_color.png": tax.colorize(labels),
        "x_overlay.png": overlay(rgb, labels, tax, segmenter.alpha),
    }
    for name, picture in plain.items():
        out = read(tmp_path / name)
        assert out.shape[0] > h and out.shape[1:] == (w, 3), name  # taller by the strip
        np.testing.assert_array_equal(out[:h], picture)  # the top part: the plain picture
        strip = out[h:]
        np.testing.assert_array_equal(strip, legend_strip(labels, tax, w))
        for k in present:
            assert has_swatch(strip, tax.colors[k]), (name, tax.names[k])
        for k in absent:
            assert not has_swatch(strip, tax.colors[k], side=3), (name, tax.names[k])


def test_predict_folder_narrow_image(segmenter, tmp_path):
    """An image narrower than the legend needs: NAME.png keeps its size, the pictures for
    people are widened (white on the right) for the names."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rgb = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "n.png")
    segmenter.predict_folder(folder, tmp_path / "out", progress=False)

    labels = segmenter.predict(rgb).labels
    ids = read(tmp_path / "out" / "n.png")
    assert ids.shape == (37, 45)
    np.testing.assert_array_equal(ids, labels)
    tax = segmenter.taxonomy
    over = read(tmp_path / "out" / "n_overlay.png")
    assert over.shape[0] > 37 and over.shape[1] == MIN_LEGEND_WIDTH
    np.testing.assert_array_equal(over[:37, :45], overlay(rgb, labels, tax, segmenter.alpha))
    colour = read(tmp_path / "out" / "n_color.png")
    np.testing.assert_array_equal(colour[:37, :45], tax.colorize(labels))
    for k in np.unique(labels):
        assert has_swatch(colour[37:], tax.colors[k]), tax.names[k]
