import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from perpixel.data.taxonomy import CAMVID, Taxonomy
from perpixel.viz.legend import (
    MIN_LEGEND_WIDTH,
    VOID_COLOR,
    VOID_NAME,
    legend_entries,
    legend_strip,
    with_legend,
)

# "road" is a grey that anti-aliased black text also produces, so swatches are found as
# solid squares, never as single pixels
TAX = Taxonomy(
    names=["sky", "grass", "road", "car"],
    colors=[(120, 180, 240), (60, 160, 60), (110, 110, 110), (230, 80, 60)],
    ignore_index=255,
)


def has_swatch(rgb: np.ndarray, colour, side: int = 8) -> bool:
    """Whether `rgb` holds a solid `side` x `side` square of `colour`."""
    mask = np.all(rgb == np.asarray(colour, dtype=np.uint8), axis=-1)
    if mask.shape[0] < side or mask.shape[1] < side:
        return False
    return bool(sliding_window_view(mask, (side, side)).all(axis=(2, 3)).any())


def test_entries_in_id_order_then_void():
    labels = np.array([[3, 1, 255], [1, 3, 3]])
    assert legend_entries(labels, TAX) == [
        (TAX.colors[1], "grass"),
        (TAX.colors[3], "car"),
        (VOID_COLOR, VOID_NAME),
    ]
    assert legend_entries(np.array([-1, 0]), TAX)[-1] == (VOID_COLOR, VOID_NAME)
    assert legend_entries(np.array([2]), TAX) == [(TAX.colors[2], "road")]
    assert legend_entries(np.zeros((0,), dtype=np.int64), TAX) == []


def test_strip_has_a_swatch_per_present_class():
    labels = np.array([[0, 2], [2, 255]])
    strip = legend_strip(labels, TAX, 300)
    assert strip.dtype == np.uint8 and strip.ndim == 3
    assert strip.shape[1:] == (300, 3) and 10 < strip.shape[0] < 60  # one line of entries
    for colour in (TAX.colors[0], TAX.colors[2], VOID_COLOR):
        assert has_swatch(strip, colour), colour
    for colour in (TAX.colors[1], TAX.colors[3]):  # absent classes
        assert not has_swatch(strip, colour, side=3), colour
    assert np.all(strip[0] == 255) and np.all(strip[:, 0] == 255)  # white margins
    text = np.all(strip < 100, axis=-1) & ~has_swatch_mask(strip)
    assert text.sum() > 50  # the names are written


def has_swatch_mask(strip: np.ndarray) -> np.ndarray:
    """Pixels of any taxonomy or void colour (the swatches)."""
    colours = [*TAX.colors, VOID_COLOR]
    out = np.zeros(strip.shape[:2], dtype=bool)
    for c in colours:
        out |= np.all(strip == np.asarray(c, dtype=np.uint8), axis=-1)
    return out


def test_strip_wraps_on_narrow_widths_and_cuts_long_names():
    wide = legend_strip(np.arange(11), CAMVID, 520)  # the same font size as at 140
    narrow = legend_strip(np.arange(11), CAMVID, 140)
    assert narrow.shape[1] == 140 and narrow.shape[0] > 2 * wide.shape[0]
    for k in range(11):
        assert has_swatch(narrow, CAMVID.colors[k]), CAMVID.names[k]
    long = Taxonomy(names=["a class name far too long to fit on any line " * 3, "b"])
    strip = legend_strip(np.array([0, 1]), long, 128)
    assert strip.shape[1] == 128 and has_swatch(strip, long.colors[0])
    assert legend_strip(np.array([], dtype=np.int64), TAX, 50).shape == (0, 50, 3)
    with pytest.raises(ValueError, match="width"):
        legend_strip(np.array([0]), TAX, 0)


def test_with_legend_keeps_the_picture_on_top():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (50, 200, 3), dtype=np.uint8)
    labels = np.array([[1, 3]])
    out = with_legend(picture, labels, TAX)
    assert out.shape[0] > 50 and out.shape[1] == 200
    np.testing.assert_array_equal(out[:50], picture)
    np.testing.assert_array_equal(out[50:], legend_strip(labels, TAX, 200))

    narrow = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)  # widened for the names
    out = with_legend(narrow, labels, TAX)
    assert out.shape[1] == MIN_LEGEND_WIDTH and out.shape[0] > 30
    np.testing.assert_array_equal(out[:30, :20], narrow)
    assert np.all(out[:30, 20:] == 255)
    with pytest.raises(ValueError, match="uint8"):
        with_legend(picture.astype(np.float32), labels, TAX)
