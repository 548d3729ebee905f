"""Tests for perpixel.tasks.keypoints.sequences."""

import numpy as np
import pytest
from PIL import Image

from perpixel.errors import DataError
from perpixel.tasks.keypoints.sequences import read_sequence, read_sequences, sequence_kind


def homography(k: int) -> np.ndarray:
    return np.array([[1.0 + k / 10, 0.02, k], [-0.01, 1.0, 2.5 * k], [1e-4, 0.0, 1.0]])


def write_matrix(path, H) -> None:
    path.write_text("\n".join("  ".join(f"{v:.10g}" for v in row) for row in H) + "\n")


def write_sequence(folder, layout: str, n: int = 6, ext: str = ".ppm") -> None:
    folder.mkdir(parents=True)
    for k in range(1, n + 1):
        stem = str(k) if layout == "hpatches" else f"img{k}"
        Image.fromarray(np.full((8, 10, 3), 20 * k, np.uint8)).save(folder / f"{stem}{ext}")
        if k > 1:
            name = f"H_1_{k}" if layout == "hpatches" else f"H1to{k}p"
            write_matrix(folder / name, homography(k))


def test_hpatches_layout(tmp_path):
    write_sequence(tmp_path / "v_graffiti", "hpatches")
    write_sequence(tmp_path / "i_ajuntament", "hpatches")
    (tmp_path / "notes").mkdir()  # a folder that is no sequence is passed over
    seqs = read_sequences(tmp_path)
    assert [s.name for s in seqs] == ["i_ajuntament", "v_graffiti"]
    assert [s.kind for s in seqs] == ["illumination", "viewpoint"]
    v = seqs[1]
    assert [p.name for p in v.images] == [f"{k}.ppm" for k in range(1, 7)]
    assert len(v.homographies) == 5
    for k, H in enumerate(v.homographies, 2):
        assert H.dtype == np.float64 and H.shape == (3, 3)
        np.testing.assert_allclose(H, homography(k), rtol=1e-9)
    with Image.open(v.images[2]) as im:
        assert im.size == (10, 8) and im.getpixel((0, 0)) == (60, 60, 60)


def test_oxford_layout_and_other_extensions(tmp_path):
    write_sequence(tmp_path / "graf", "oxford")
    write_sequence(tmp_path / "boat", "oxford", n=3, ext=".pgm")
    write_sequence(tmp_path / "leuven", "oxford", n=2, ext=".png")
    seqs = read_sequences(tmp_path)
    assert [(s.name, s.kind, len(s.images)) for s in seqs] == [
        ("boat", "other", 3),
        ("graf", "viewpoint", 6),
        ("leuven", "illumination", 2),
    ]
    assert [p.name for p in seqs[0].images] == ["img1.pgm", "img2.pgm", "img3.pgm"]
    np.testing.assert_allclose(seqs[1].homographies[-1], homography(6))


def test_a_sequence_folder_given_directly(tmp_path):
    write_sequence(tmp_path / "v_boat", "hpatches", n=3)
    seqs = read_sequences(tmp_path / "v_boat")
    assert len(seqs) == 1 and seqs[0].name == "v_boat" and len(seqs[0].homographies) == 2
    one = read_sequence(tmp_path / "v_boat")
    assert (one.name, one.kind, one.images) == (seqs[0].name, seqs[0].kind, seqs[0].images)
    np.testing.assert_array_equal(np.stack(one.homographies), np.stack(seqs[0].homographies))


def test_kinds():
    assert sequence_kind("i_dome") == "illumination"
    assert sequence_kind("v_wall") == "viewpoint"
    assert sequence_kind("wall") == "viewpoint"
    assert sequence_kind("bikes") == "other"


def test_missing_homography(tmp_path):
    write_sequence(tmp_path / "v_a", "hpatches", n=4)
    (tmp_path / "v_a" / "H_1_3").unlink()
    with pytest.raises(DataError, match=r"H_1_3: missing: the homography of 3\.ppm"):
        read_sequences(tmp_path)


def test_homography_without_image(tmp_path):
    write_sequence(tmp_path / "ubc", "oxford", n=3)
    write_matrix(tmp_path / "ubc" / "H1to4p", homography(4))
    with pytest.raises(DataError, match=r"H1to4p: no image img4"):
        read_sequences(tmp_path)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1 0 0\n0 1 0\n", r"expected a 3x3 matrix, got shape \(2, 3\)"),
        ("1 0 0 0\n0 1 0 0\n0 0 1 0\n", r"shape \(3, 4\)"),
        ("1 0 x\n0 1 0\n0 0 1\n", "not a 3x3 matrix of numbers"),
        ("0 0 0\n0 0 0\n0 0 0\n", "not an invertible homography"),
    ],
)
def test_malformed_homography(tmp_path, text, problem):
    write_sequence(tmp_path / "i_x", "hpatches", n=3)
    (tmp_path / "i_x" / "H_1_2").write_text(text)
    with pytest.raises(DataError, match=problem) as e:
        read_sequences(tmp_path)
    assert e.value.path == tmp_path / "i_x" / "H_1_2"


def test_empty_roots(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "sub").mkdir()
    with pytest.raises(DataError, match=r"no HPatches \(SEQ/1\.ppm \+ H_1_2\.\.\) or Oxford") as e:
        read_sequences(tmp_path / "empty")
    assert e.value.path == tmp_path / "empty"
    with pytest.raises(DataError, match="no such folder"):
        read_sequences(tmp_path / "nope")
    write_sequence(tmp_path / "single", "hpatches", n=1)
    with pytest.raises(DataError, match=r"one image \(1\.ppm\) and no others"):
        read_sequences(tmp_path / "single")
    with pytest.raises(DataError, match="not a sequence folder"):
        read_sequence(tmp_path / "empty")
