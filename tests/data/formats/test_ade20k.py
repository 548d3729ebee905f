"""ADE20K scene-parsing reader on small files written here."""

from __future__ import annotations

import numpy as np
import pytest

from perpixel.data.formats import ADE20K, open_dataset
from perpixel.data.formats.ade20k import ADE20K_NAMES
from perpixel.errors import DataError

from .conftest import write_label, write_rgb


def _ade(root, split="validation"):
    label = np.arange(48).reshape(6, 8) % 151
    label[0, 0] = 150
    for k in range(2):
        n = f"ADE_val_0000000{k}"
        write_rgb(root / "images" / split / f"{n}.jpg", 6, 8, k, fmt="PNG")
        write_label(root / "annotations" / split / f"{n}.png", label)
    return label


def test_ade20k_shifts_classes_and_voids_other(tmp_path):
    label = _ade(tmp_path)
    ds = open_dataset("ade20k", tmp_path, "val")
    assert isinstance(ds, ADE20K) and len(ds) == 2 and ds.taxonomy.num_classes == 150
    assert len(set(ADE20K_NAMES)) == 150 and ADE20K_NAMES[:3] == ["wall", "building", "sky"]
    assert ds.taxonomy.things == [] and ADE20K_NAMES[149] == "flag"
    s = ds.load(1)
    want = np.where(label == 0, 255, label - 1)
    np.testing.assert_array_equal(s.semantic, want)
    assert s.semantic[0, 0] == 149 and s.semantic[0, 1] == 0 and (s.instances == 0).all()


def test_ade20k_errors(tmp_path):
    _ade(tmp_path)
    bad = tmp_path / "annotations/validation/ADE_val_00000001.png"
    write_label(bad, np.full((6, 8), 151))
    with pytest.raises(DataError, match="past the 150 classes") as e:
        ADE20K(tmp_path, "validation").validate()
    assert e.value.path == bad
    write_label(bad, np.zeros((5, 8)))
    with pytest.raises(DataError, match="label map is 8x5"):
        ADE20K(tmp_path, "validation").load(1)
    bad.unlink()
    with pytest.raises(DataError, match="no annotation for ADE_val_00000001.jpg"):
        ADE20K(tmp_path, "validation")
