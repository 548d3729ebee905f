"""COCO RLE: round trips, pycocotools' own strings, polygon rasterisation."""

from __future__ import annotations

import numpy as np
import pytest

from perpixel.data.formats import rle

# strings produced by pycocotools 2.0.11 (benchmarks/.venv-ref) for the masks built below
SMALL_STRING = "7330:N"
POLY_STRING = "a0261O10N100O7"


def _small() -> np.ndarray:
    m = np.zeros((6, 5), bool)
    m[1:4, 1:3] = True
    m[5, 4] = True
    return m


def test_encode_matches_pycocotools_string():
    assert rle.encode(_small()) == {"size": [6, 5], "counts": SMALL_STRING}


def test_decode_pycocotools_string_str_and_bytes():
    for counts in (SMALL_STRING, SMALL_STRING.encode()):
        np.testing.assert_array_equal(rle.decode({"size": [6, 5], "counts": counts}), _small())
    assert rle.area({"size": [6, 5], "counts": SMALL_STRING}) == 7


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 48), (300, 500)])
def test_round_trip_random(shape):
    rng = np.random.default_rng(sum(shape))
    for p in (0.0, 0.02, 0.5, 0.98, 1.0):
        m = rng.random(shape) < p
        r = rle.encode(m)
        assert isinstance(r["counts"], str) and r["size"] == list(shape)
        np.testing.assert_array_equal(rle.decode(r), m)
        assert rle.area(r) == int(m.sum())


def test_large_counts_need_several_characters():
    m = np.zeros((700, 900), bool)
    m[650:, 880:] = True  # first run 880 * 700 + 650 zeros: a 5-group number
    r = rle.encode(m)
    np.testing.assert_array_equal(rle.decode(r), m)
    np.testing.assert_array_equal(rle.string_to_counts(r["counts"]), rle._runs(m))


def test_uncompressed_list_counts():
    m = _small()
    runs = rle._runs(m).tolist()
    assert runs[0] == 7 and sum(runs) == 30
    np.testing.assert_array_equal(rle.decode({"size": [6, 5], "counts": runs}), m)


def test_decode_rejects_bad_rle():
    with pytest.raises(ValueError, match="sum to"):
        rle.decode({"size": [6, 6], "counts": SMALL_STRING})
    with pytest.raises(ValueError, match="characters"):
        rle.decode({"size": [6, 5], "counts": "7 3"})
    with pytest.raises(ValueError, match="ends inside"):
        rle.decode({"size": [6, 5], "counts": "7330:N_"})


def test_polygon_matches_pycocotools():
    m = rle.polygons_to_mask([[1.2, 0.7, 7.9, 2.1, 4.4, 5.6]], 8, 9)
    assert rle.encode(m)["counts"] == POLY_STRING
    assert rle.poly_to_rle([1.2, 0.7, 7.9, 2.1, 4.4, 5.6], 8, 9)["counts"] == POLY_STRING


def test_polygon_box_and_union():
    # a box polygon on pixel corners covers the pixels whose centres lie inside
    m = rle.polygons_to_mask([[1, 1, 5, 1, 5, 4, 1, 4]], 6, 7)
    want = np.zeros((6, 7), bool)
    want[1:4, 1:5] = True
    np.testing.assert_array_equal(m, want)
    two = rle.polygons_to_mask([[1, 1, 5, 1, 5, 4, 1, 4], [0, 5, 2, 5, 2, 6, 0, 6]], 6, 7)
    assert two.sum() == m.sum() + 2 and two[5, :2].all()


def test_polygon_clipped_and_odd_length():
    m = rle.polygons_to_mask([[-10, -10, 50, -10, 50, 50, -10, 50]], 4, 5)
    assert m.all()
    with pytest.raises(ValueError, match="even number"):
        rle.polygons_to_mask([[1, 2, 3]], 4, 4)
