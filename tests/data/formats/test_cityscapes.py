"""Cityscapes and KITTI semantics readers on small files written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from perpixel.data.formats import KITTI, Cityscapes, open_dataset
from perpixel.data.formats.cityscapes_labels import CITYSCAPES
from perpixel.errors import DataError

from .conftest import write_label, write_rgb

ROAD, SKY, PERSON, CAR, CARAVAN = 7, 23, 24, 26, 29  # label ids


def _maps():
    """(labelIds, instanceIds) 6x8: road, sky, two cars, a car group, a person, a caravan."""
    labels = np.full((6, 8), ROAD)
    labels[0] = SKY
    inst = labels.copy()
    labels[1:3, 0:2], inst[1:3, 0:2] = CAR, 26001
    labels[1:3, 2:4], inst[1:3, 2:4] = CAR, 26000
    labels[3, 0:3], inst[3, 0:3] = CAR, CAR  # cargroup: crowd
    labels[4, 4:6], inst[4, 4:6] = PERSON, 24001
    labels[5, 6:8], inst[5, 6:8] = CARAVAN, 29000  # has instances, not evaluated: void
    return labels, inst


def _cityscapes(root, split="val"):
    labels, inst = _maps()
    images = {}
    for k, city in enumerate(["aachen", "bonn"]):
        stem = f"{city}_000000_00001{k}"
        images[stem] = write_rgb(
            root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", 6, 8, k
        )
        gt = root / "gtFine" / split / city
        write_label(gt / f"{stem}_gtFine_labelIds.png", labels)
        write_label(gt / f"{stem}_gtFine_instanceIds.png", inst)
    return images


def _check_sample(s):
    assert s.semantic.dtype == np.uint8 and s.instances.dtype == np.int32
    car, person = CITYSCAPES.names.index("car"), CITYSCAPES.names.index("person")
    assert s.semantic[0, 0] == CITYSCAPES.names.index("sky")
    assert s.semantic[5, 0] == CITYSCAPES.names.index("road")
    assert s.semantic[1, 0] == car and s.semantic[4, 4] == person
    assert s.semantic[5, 6] == 255 and s.instances[5, 6] == 0  # caravan: void
    # instances renumbered by raw id: person 24001 -> 1, car 26000 -> 2, car 26001 -> 3
    assert s.instances[4, 4] == 1 and s.instances[1, 2] == 2 and s.instances[1, 0] == 3
    assert s.semantic[3, 0] == car and s.instances[3, 0] == 0  # the car group: crowd
    assert (s.instances[s.semantic == 0] == 0).all() and s.instances.max() == 3


def test_cityscapes_reads_train_ids_and_instances(tmp_path):
    images = _cityscapes(tmp_path)
    ds = open_dataset("cityscapes", tmp_path, "val")
    assert isinstance(ds, Cityscapes) and len(ds) == 2 and ds.taxonomy is CITYSCAPES
    assert ds.names == ["aachen_000000_000010", "bonn_000000_000011"]
    s = ds.load(1)
    np.testing.assert_array_equal(s.image, images[s.name])
    _check_sample(s)
    ds.validate()


def test_cityscapes_mismatch_names_instance_file(tmp_path):
    _cityscapes(tmp_path)
    labels, inst = _maps()
    inst[1, 0] = 24001  # a person id on a car pixel
    bad = tmp_path / "gtFine/val/bonn/bonn_000000_000011_gtFine_instanceIds.png"
    write_label(bad, inst)
    ds = Cityscapes(tmp_path, "val")
    ds.load(0)
    with pytest.raises(DataError, match="instance id map does not match the class map") as e:
        ds.validate()
    assert e.value.path == bad and "row 1, column 0" in str(e.value)


def test_cityscapes_missing_files(tmp_path):
    _cityscapes(tmp_path)
    inst = tmp_path / "gtFine/val/aachen/aachen_000000_000010_gtFine_instanceIds.png"
    inst.unlink()
    with pytest.raises(DataError, match="no instance ids") as e:
        Cityscapes(tmp_path, "val")
    assert e.value.path == inst
    s = Cityscapes(tmp_path, "val", require_instances=False).load(0)
    assert s.instances.max() == 0 and s.semantic[1, 0] == CITYSCAPES.names.index("car")
    with pytest.raises(DataError, match="folder not found"):
        Cityscapes(tmp_path, "train")


def test_cityscapes_instance_file_is_16_bit(tmp_path):
    _cityscapes(tmp_path)
    f = next((tmp_path / "gtFine/val/aachen").glob("*instanceIds.png"))
    with Image.open(f) as im:
        assert im.mode.startswith("I")


def _kitti(root):
    labels, cs = _maps()
    inst = labels * 256
    inst[cs == 26001] += 2
    inst[cs == 26000] += 1
    inst[cs == 24001] += 1
    inst[cs == 29000] += 1
    for k in range(2):
        write_rgb(root / "training/image_2" / f"00000{k}_10.png", 6, 8, k)
        write_label(root / "training/semantic" / f"00000{k}_10.png", labels)
        write_label(root / "training/instance" / f"00000{k}_10.png", inst)
    return inst


def test_kitti_reads_like_cityscapes(tmp_path):
    inst = _kitti(tmp_path)
    ds = open_dataset("kitti", tmp_path, "train")
    assert isinstance(ds, KITTI) and len(ds) == 2 and ds.names[0] == "000000_10"
    s = ds.load(0)
    car = CITYSCAPES.names.index("car")
    assert s.semantic[1, 0] == car and s.semantic[3, 0] == car and s.instances[3, 0] == 0
    # renumbered by raw id: person 24*256+1, car 26*256+1 (cols 2-3), car 26*256+2
    assert s.instances[4, 4] == 1 and s.instances[1, 2] == 2 and s.instances[1, 0] == 3
    bad = inst.copy()
    bad[0, 0] = CAR * 256 + 5  # a car instance on a sky pixel
    write_label(tmp_path / "training/instance/000001_10.png", bad)
    with pytest.raises(DataError, match="does not match") as e:
        ds.validate()
    assert e.value.path.name == "000001_10.png" and e.value.path.parent.name == "instance"
