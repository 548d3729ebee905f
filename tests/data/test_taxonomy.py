"""Tests for perpixel.data.taxonomy."""

import json

import numpy as np
import pytest

from perpixel.data.taxonomy import CAMVID, Taxonomy, default_colors
from perpixel.errors import DataError


def write(tmp_path, text: str, name: str = "classes.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- from_file


def test_names_only(tmp_path):
    t = Taxonomy.from_file(write(tmp_path, "sky\nroad\ncar\n"))
    assert t.names == ["sky", "road", "car"]
    assert t.num_classes == 3
    assert t.ignore_index == 255
    assert not t.colors_given
    assert t.colors == default_colors(3)


def test_names_with_colours(tmp_path):
    text = "sky 70 130 180\ntraffic sign 220 220 0\nroad, 128, 64, 128\n"
    t = Taxonomy.from_file(write(tmp_path, text))
    assert t.names == ["sky", "traffic sign", "road"]
    assert t.colors == [(70, 130, 180), (220, 220, 0), (128, 64, 128)]
    assert t.colors_given


def test_comments_and_blank_lines(tmp_path):
    text = "# the classes\n\nsky 0 0 255  # up there\n   \n# skipped 1 2 3\nground 0 255 0\n"
    t = Taxonomy.from_file(write(tmp_path, text))
    assert t.names == ["sky", "ground"]
    assert t.colors == [(0, 0, 255), (0, 255, 0)]


def test_ignore_index_option(tmp_path):
    t = Taxonomy.from_file(write(tmp_path, "a\nb\n"), ignore_index=200)
    assert t.ignore_index == 200


def test_colour_above_255_names_file_and_line(tmp_path):
    path = write(tmp_path, "sky 0 0 255\nroad 128 300 128\n", name="my_classes.txt")
    with pytest.raises(DataError, match="my_classes.txt") as e:
        Taxonomy.from_file(path)
    assert "line 2" in str(e.value)
    assert e.value.path == path


def test_mixed_colour_and_no_colour(tmp_path):
    path = write(tmp_path, "sky 0 0 255\nroad\n", name="mixed.txt")
    with pytest.raises(DataError, match="mixed.txt"):
        Taxonomy.from_file(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # another\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text, name="empty.txt")
    with pytest.raises(DataError, match="empty.txt"):
        Taxonomy.from_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nowhere.txt"):
        Taxonomy.from_file(tmp_path / "nowhere.txt")


# ---------------------------------------------------------------- construction


def test_ignore_index_colliding_with_class_raises():
    with pytest.raises(ValueError, match="ignore_index"):
        Taxonomy(names=["a", "b", "c"], ignore_index=2)
    with pytest.raises(ValueError, match="ignore_index"):
        Taxonomy(names=["a", "b", "c"], ignore_index=0)
    assert Taxonomy(names=["a", "b", "c"], ignore_index=3).ignore_index == 3


def test_ignore_index_colliding_in_file_raises(tmp_path):
    with pytest.raises(DataError, match="classes.txt.*collides"):
        Taxonomy.from_file(write(tmp_path, "a\nb\n"), ignore_index=1)


def test_colour_count_mismatch_raises():
    with pytest.raises(ValueError, match="colours"):
        Taxonomy(names=["a", "b"], colors=[(1, 2, 3)])


def test_default_colours_are_distinct():
    colors = default_colors(12)
    assert len(set(colors)) == 12
    assert all(0 <= v <= 255 for c in colors for v in c)


# ---------------------------------------------------------------- colorize


def test_colorize():
    t = Taxonomy(names=["a", "b", "c"], colors=[(10, 20, 30), (40, 50, 60), (70, 80, 90)])
    labels = np.array([[0, 1, 2], [255, 7, 1]])
    out = t.colorize(labels)
    assert out.shape == (2, 3, 3)
    assert out.dtype == np.uint8
    assert out[0].tolist() == [[10, 20, 30], [40, 50, 60], [70, 80, 90]]
    assert out[1, 0].tolist() == [0, 0, 0]  # ignore: black
    assert out[1, 1].tolist() == [0, 0, 0]  # unknown id: black
    assert out[1, 2].tolist() == [40, 50, 60]


def test_colorize_camvid_void_is_black():
    out = CAMVID.colorize(np.array([[11, 3]]))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [128, 64, 128]


def test_colorize_negative_ignore_is_black():
    t = Taxonomy(names=["a", "b"], colors=[(10, 20, 30), (40, 50, 60)], ignore_index=-1)
    assert t.colorize(np.array([[-1]]))[0, 0].tolist() == [0, 0, 0]


# ---------------------------------------------------------------- serialisation


def test_to_dict_from_dict_round_trip():
    t = Taxonomy(
        names=["sky", "car"], colors=[(1, 2, 3), (4, 5, 6)], ignore_index=9, things=["car"]
    )
    d = json.loads(json.dumps(t.to_dict()))  # JSON-ready (what a checkpoint stores)
    u = Taxonomy.from_dict(d)
    assert u.names == t.names
    assert u.colors == t.colors
    assert u.ignore_index == 9
    assert u.things == ["car"]
    assert u == t


def test_from_dict_defaults():
    u = Taxonomy.from_dict({"names": ["a", "b"]})
    assert u.ignore_index == 255
    assert u.things == []
    assert u.colors == default_colors(2)


def test_camvid_round_trip():
    u = Taxonomy.from_dict(CAMVID.to_dict())
    assert u.names == CAMVID.names and u.colors == CAMVID.colors
    assert u.ignore_index == 11 and u.things == CAMVID.things


def test_round_trip_keeps_generated_colours_generated():
    t = Taxonomy(names=["a", "b"])
    u = Taxonomy.from_dict(json.loads(json.dumps(t.to_dict())))
    assert u.colors_given == t.colors_given
    assert u == t


def test_categories_thing_ids_and_lut():
    from perpixel.data.synthetic import SYNTHETIC

    assert SYNTHETIC.thing_ids == [4, 5, 6, 7]
    assert SYNTHETIC.category_names == ["sky", "nature", "flat", "round", "polygon"]
    assert SYNTHETIC.category_lut().tolist() == [0, 1, 2, 1, 3, 4, 4, 4]
    t = Taxonomy.from_dict(SYNTHETIC.to_dict())
    assert t.categories == SYNTHETIC.categories and t.things == SYNTHETIC.things
    with pytest.raises(ValueError, match="2 classes but 1 categories"):
        Taxonomy(["a", "b"], categories=["x"])
    with pytest.raises(ValueError, match="not class names"):
        Taxonomy(["a", "b"], things=["c"])
    with pytest.raises(ValueError, match="no categories"):
        Taxonomy(["a"]).category_lut()
