import csv
import re

import numpy as np
import pytest
from PIL import Image

import perpixel.viz.figures as figures_module
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError
from perpixel.viz import (
    per_class_csv,
    per_class_table,
    plot_confusion,
    plot_curves,
    plot_overlays,
    summary_table,
    write_html_report,
)
from perpixel.viz.figures import _per_epoch, _read_metrics_csv, label_panel

NAMES = ["sky", "grass", "road", "car"]


def metrics(miou, ious):
    return {
        "miou": miou,
        "pixel_accuracy": 0.93,
        "mean_class_accuracy": 0.88,
        "fw_iou": 0.87,
        "mean_dice": 0.89,
        "per_class_iou": dict(zip(NAMES, ious, strict=True)),
        "per_class_accuracy": dict(zip(NAMES, ious, strict=True)),
        "per_class_dice": dict(zip(NAMES, ious, strict=True)),
        "absent_classes": [n for n, v in zip(NAMES, ious, strict=True) if v is None],
        "num_pixels": 1000,
        "num_classes": len(NAMES),
    }


RESULTS = {
    "unet": metrics(0.8123, [0.9, None, 0.75, 0.7869]),
    "linear": metrics(0.5, [0.6, None, 0.5, 0.4]),
}


def read_png(path):
    """The PNG as an (H, W, 3) array, after checking it is a real, non-blank picture."""
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width > 0 and im.height > 0
        rgb = np.asarray(im.convert("RGB"))
    packed = (
        (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    )
    assert len(np.unique(packed)) > 10, "image is (nearly) blank"
    return rgb


def assert_no_temporaries(folder):
    left = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert left == []


def test_confusion_greys_rows_without_pixels(tmp_path):
    cm = np.array([[50, 2, 0, 1], [0, 0, 0, 0], [3, 0, 40, 7], [0, 0, 5, 20]], dtype=np.int64)
    out = plot_confusion(cm, NAMES, tmp_path / "cm.png", title="test")
    rgb = read_png(out)
    # the masked row is painted with the "bad" colour #d9d9d9
    assert (np.all(rgb == 217, axis=-1)).sum() > 100
    counts = read_png(plot_confusion(cm, NAMES, tmp_path / "counts.png", normalize=False))
    assert counts.shape[0] > 100
    assert_no_temporaries(tmp_path)


def test_confusion_many_classes_and_bad_input(tmp_path):
    c = 21  # just past the 20 classes that get numbers in the cells
    cm = np.random.default_rng(0).integers(0, 9, (c, c)) + np.eye(c, dtype=np.int64) * 100
    read_png(plot_confusion(cm, [f"c{i}" for i in range(c)], tmp_path / "big.png"))
    with pytest.raises(ValueError, match="class names"):
        plot_confusion(cm, NAMES, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"\(C, C\)"):
        plot_confusion(np.zeros((3, 4)), NAMES[:3], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


SPARSE_CSV = """epoch,step,train/loss_step,val/loss,val/miou,val/pixel_accuracy
0,0,2.0,,,
0,1,1.0,,,
0,1,,1.4,0.30,0.6
1,2,0.8,,,
1,3,0.4,,,
1,3,,0.9,0.45,0.7
2,4,0.3,,,
2,5,0.2,,,
2,5,,0.7,0.55,
"""


def test_curves_sparse_csv_averages_steps_per_epoch(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(SPARSE_CSV)
    series = _read_metrics_csv(path)
    epochs, loss = _per_epoch(series["train/loss_step"])
    assert epochs == [0.0, 1.0, 2.0] and loss == pytest.approx([1.5, 0.6, 0.25])
    assert _per_epoch(series["val/pixel_accuracy"])[0] == [0.0, 1.0]
    assert "step" not in series
    read_png(plot_curves(path, tmp_path / "curves.png"))
    assert_no_temporaries(tmp_path)


def test_curves_single_epoch_and_missing_columns(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("epoch,step,train/loss_epoch,val/miou\n0,9,1.25,\n0,9,,0.4\n")
    read_png(plot_curves(one, tmp_path / "one.png"))
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("epoch,step,lr-Adam\n0,0,0.001\n")
    read_png(plot_curves(nothing, tmp_path / "nothing.png"))


def test_curves_bad_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plot_curves(tmp_path / "missing.csv", tmp_path / "x.png")
    no_epoch = tmp_path / "no_epoch.csv"
    no_epoch.write_text("step,train/loss\n0,1.0\n")
    with pytest.raises(DataError, match="no_epoch.csv.*epoch"):
        plot_curves(no_epoch, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


TAX = Taxonomy(names=NAMES, ignore_index=255)


def sample(h, w, seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gt = (np.arange(w)[None, :] * len(NAMES) // w).repeat(h, axis=0)
    gt[: h // 4] = 255
    pred = np.roll(gt, 3, axis=1) % len(NAMES)
    return image, gt, pred


def test_overlays_mixed_sizes_and_missing_ground_truth(tmp_path):
    a, b = sample(48, 64, 0), sample(80, 40, 1)
    rows = [a, (b[0], None, b[2]), sample(30, 90, 2)]
    rgb = read_png(plot_overlays(rows, TAX, tmp_path / "overlays.png", alpha=0.6))
    assert rgb.shape[0] > rgb.shape[1] * 0.5  # three rows of panels stacked
    assert_no_temporaries(tmp_path)
    with pytest.raises(ValueError, match="row 0: prediction"):
        plot_overlays([(a[0], a[1], a[2][:10])], TAX, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_overlays([], TAX, tmp_path / "bad.png")


def test_label_panel_is_flat_colours_with_black_void():
    label = np.array([[0, 1, 255], [3, -1, 7]])  # 255 = ignore; -1 and 7 are no class either
    out = label_panel(label, TAX)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    for (i, j), k in [((0, 0), 0), ((0, 1), 1), ((1, 0), 3)]:
        assert tuple(out[i, j]) == TAX.colors[k]
    for i, j in [(0, 2), (1, 1), (1, 2)]:
        assert tuple(out[i, j]) == (0, 0, 0)
    np.testing.assert_array_equal(out, TAX.colorize(label))  # what NAME_color.png shows
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        label_panel(np.zeros((2, 3, 1), dtype=np.int64), TAX)


def _pixels(rgb, colour):
    return np.all(rgb == np.asarray(colour, dtype=np.uint8), axis=-1)


def test_overlays_draw_flat_label_colours_not_blended(tmp_path, monkeypatch):
    """The ground-truth and prediction panels show the class colours themselves: over a grey
    image, a blended panel would hold (grey + colour) / 2 instead."""
    grey = 200
    image = np.full((40, 60, 3), grey, dtype=np.uint8)
    image[::2, ::2] = 20  # some texture, so the picture is not blank
    gt = np.full((40, 60), 1)
    gt[:, 30:] = 255  # right half ignored
    pred = np.full((40, 60), 2)
    legends = []

    def spy(fig, path, **kw):  # keep the legend's entries before the figure is closed
        legends.append([t.get_text() for t in fig.legends[0].get_texts()])
        return save(fig, path, **kw)

    save = figures_module.save_figure
    monkeypatch.setattr(figures_module, "save_figure", spy)
    rgb = read_png(plot_overlays([(image, gt, pred)], TAX, tmp_path / "flat.png"))
    assert legends == [["grass", "road", "void / ignored"]]

    width = rgb.shape[1]
    gt_colour, pred_colour = _pixels(rgb, TAX.colors[1]), _pixels(rgb, TAX.colors[2])
    assert gt_colour.sum() > 2000 and pred_colour.sum() > 4000
    # flat ground truth in the middle column, flat prediction in the right one
    assert width / 3 < np.nonzero(gt_colour)[1].mean() < 2 * width / 3
    assert np.nonzero(pred_colour)[1].mean() > 2 * width / 3
    # the ignored half: black in the middle column (not the image's grey); elsewhere only
    # the panels' frames are black
    black = _pixels(rgb, (0, 0, 0))
    left, middle, right = (black[:, i * width // 3 : (i + 1) * width // 3].sum() for i in range(3))
    assert middle > 10 * max(left, right) and middle > 20000
    for k in (1, 2):  # no colour blended with the image
        blended = np.round((grey + np.asarray(TAX.colors[k])) / 2)
        assert np.all(np.abs(rgb.astype(int) - blended).max(axis=-1) > 2)

    # alpha < 1 lets the image through the label colours
    half = read_png(plot_overlays([(image, gt, pred)], TAX, tmp_path / "half.png", alpha=0.5))
    assert _pixels(half, TAX.colors[1]).sum() < 1000  # the legend's swatch only
    assert _pixels(half, np.round((grey + np.asarray(TAX.colors[1])) / 2)).sum() > 1000


def test_per_class_table_rows_and_absent_class():
    table = per_class_table(RESULTS, NAMES)
    lines = table.strip().splitlines()
    assert lines[0] == "| class | unet IoU | linear IoU |"
    class_rows = [ln for ln in lines[2:] if not ln.startswith("| **")]
    assert [ln.split("|")[1].strip() for ln in class_rows] == NAMES
    assert len(lines) == 2 + len(NAMES) + 3
    assert "| grass | — | — |" in table
    assert "| **mIoU** | 0.812 | 0.500 |" in table
    assert "a\\|b" in per_class_table({"a|b": RESULTS["unet"]}, NAMES)


def test_per_class_csv_round_trip(tmp_path):
    path = per_class_csv(RESULTS, NAMES, tmp_path / "per_class.csv")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["class", "unet", "linear"]
    assert rows[2] == ["grass", "", ""]
    assert float(rows[1][1]) == pytest.approx(0.9)
    assert [r[0] for r in rows[1 : 1 + len(NAMES)]] == NAMES
    assert_no_temporaries(tmp_path)


def test_summary_table_is_aligned():
    text = summary_table(RESULTS | {"a model with a long name": metrics(None, [None] * 4)})
    lines = text.strip().splitlines()
    assert len({len(ln) for ln in lines}) == 1
    assert lines[0].split()[:2] == ["model", "mIoU"]
    assert "0.812" in lines[2] and lines[2].startswith("unet ")
    assert "—" in lines[4]


def test_html_report(tmp_path):
    (tmp_path / "figs").mkdir()
    figures = [("Confusion <unet>", "figs/cm.png"), ("Curves", str(tmp_path / "curves.png"))]
    names = [*NAMES[:3], "car & bus"]
    results = {
        m: r | {"per_class_iou": dict(zip(names, r["per_class_iou"].values(), strict=True))}
        for m, r in RESULTS.items()
    }
    page = write_html_report(
        tmp_path,
        "Eval <CamVid>",
        results,
        names,
        figures,
        notes=["classes absent from both ground truth and prediction are left out: grass"],
        extra={"wall time": "12.5 s", "hardware": "2 CPU cores"},
    )
    assert page == tmp_path / "report.html"
    text = page.read_text(encoding="utf-8")
    assert '<img src="figs/cm.png"' in text and '<img src="curves.png"' in text
    assert "Confusion &lt;unet&gt;" in text and "Eval &lt;CamVid&gt;" in text
    for name in ["sky", "grass", "road", "car &amp; bus"]:
        assert f"<td>{name}</td>" in text
    assert "0.812" in text and "—" in text
    assert "left out: grass" in text and "2 CPU cores" in text
    assert "<script" not in text and not re.search(r"(src|href)=\"(https?:)?//", text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figs", "report.html"]
