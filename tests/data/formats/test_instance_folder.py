"""The generic instance layout, classes.txt with thing markers, and open_dataset."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from perpixel.data.formats import FORMATS, InstanceFolder, open_dataset
from perpixel.data.formats.instance_folder import read_classes
from perpixel.errors import ConfigError, DataError

from .conftest import write_label, write_rgb

CLASSES = "# the classes\nroad\nsky 70 130 180\ncar thing\ntraffic sign\nthing\n"


def _maps():
    sem = np.zeros((6, 8), np.uint8)
    sem[0] = 1
    sem[2:4, 1:3] = 2
    sem[2:4, 5:7] = 2
    sem[5, 0] = 255
    inst = np.zeros((6, 8), np.int64)
    inst[2:4, 1:3] = 700  # 16-bit ids
    inst[2:4, 5:7] = 300
    inst[3, 6] = 0  # a car pixel without instance: crowd
    return sem, inst


def _folder(root, split="train", classes=CLASSES.replace("sky 70 130 180", "sky")):
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text(classes)
    sem, inst = _maps()
    for k in range(2):
        write_rgb(root / split / "images" / f"im{k}.png", 6, 8, k)
        write_label(root / split / "masks" / f"im{k}.png", sem)
        write_label(root / split / "instances" / f"im{k}.png", inst if k else inst // 100)
    return sem, inst


def test_classes_file_thing_markers(tmp_path):
    f = tmp_path / "classes.txt"
    f.write_text("road  # comment\ncar thing\nthing\nbig truck thing\n")
    tax = read_classes(f)
    assert tax.names == ["road", "car", "thing", "big truck"]
    assert tax.things == ["car", "big truck"] and tax.thing_ids == [1, 3]
    assert tax.colors_given is False
    f.write_text("road 1 2 3\ncar 0 0 142 THING\n")
    tax = read_classes(f)
    assert tax.things == ["car"] and tax.colors == [(1, 2, 3), (0, 0, 142)]
    f.write_text(CLASSES)
    with pytest.raises(DataError, match="every class or for none"):
        read_classes(f)
    f.write_text("road 0 0 300\n")
    with pytest.raises(DataError, match="outside 0..255"):
        read_classes(f)


def test_instance_folder_reads_8_and_16_bit(tmp_path):
    sem, inst = _folder(tmp_path)
    ds = open_dataset("instance_folder", tmp_path, "train")
    assert isinstance(ds, InstanceFolder) and ds.names == ["im0", "im1"]
    assert ds.taxonomy.things == ["car"]
    for i in range(2):
        s = ds.load(i)
        np.testing.assert_array_equal(s.semantic, sem)
        # renumbered in ascending id order: 300 (right car) -> 1, 700 (left car) -> 2
        assert s.instances[2, 1] == 2 and s.instances[2, 5] == 1 and s.instances[3, 6] == 0
        assert s.instances.dtype == np.int32 and s.instances.max() == 2


def test_instance_folder_rejects_instances_off_things(tmp_path):
    sem, inst = _folder(tmp_path)
    inst[0, 0] = 9  # on sky (stuff)
    bad = tmp_path / "train" / "instances" / "im1.png"
    write_label(bad, inst)
    ds = InstanceFolder(tmp_path, "train")
    with pytest.raises(DataError, match=r"lies on stuff class 1 \(sky\)") as e:
        ds.validate()
    assert e.value.path == bad
    inst[0, 0] = 0
    inst[5, 0] = 5  # on void
    write_label(bad, inst)
    with pytest.raises(DataError, match="lies on void"):
        ds.load(1)
    sem2 = sem.copy()
    sem2[2, 1] = 4  # "thing" is a stuff class here: instance 700 on it is off the things
    write_label(tmp_path / "train" / "masks" / "im1.png", sem2)
    inst[5, 0] = 0
    write_label(bad, inst)
    with pytest.raises(DataError, match="stuff class 4"):
        ds.load(1)


def test_instance_spanning_two_thing_classes(tmp_path):
    sem, inst = _folder(tmp_path, classes="road\nsky\ncar thing\nbus thing\n")
    sem[2, 1] = 3  # one pixel of the left car (700) is a bus
    write_label(tmp_path / "train" / "masks" / "im1.png", sem)
    with pytest.raises(DataError, match=r"instance 700 spans two or more classes") as e:
        InstanceFolder(tmp_path, "train").load(1)
    assert e.value.path.parent.name == "instances"


def test_colour_masks_and_flat_folder(tmp_path):
    (tmp_path / "classes.txt").write_text("road 128 64 128\ncar 0 0 142 thing\n")
    sem = np.zeros((4, 5), np.uint8)
    sem[1:3, 1:3] = 1
    rgb = np.array([(128, 64, 128), (0, 0, 142)], np.uint8)[sem]
    write_rgb(tmp_path / "images" / "a.png", 4, 5)
    (tmp_path / "masks").mkdir()
    Image.fromarray(rgb).save(tmp_path / "masks" / "a.png")
    write_label(tmp_path / "instances" / "a.png", (sem == 1) * 3)
    s = InstanceFolder(tmp_path).load(0)
    np.testing.assert_array_equal(s.semantic, sem)
    assert s.instances[1, 1] == 1
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"colours \[\(1, 2, 3\)\]"):
        InstanceFolder(tmp_path).load(0)


def test_missing_parts(tmp_path):
    _folder(tmp_path)
    (tmp_path / "train" / "instances" / "im0.png").unlink()
    with pytest.raises(DataError, match="no instance map for im0.png"):
        InstanceFolder(tmp_path, "train")
    (tmp_path / "classes.txt").unlink()
    with pytest.raises(DataError, match="no classes.txt"):
        InstanceFolder(tmp_path, "train")


def test_open_dataset_errors(tmp_path):
    assert set(FORMATS) >= {"cityscapes", "kitti", "voc", "sbd", "ade20k", "coco"}
    with pytest.raises(ConfigError, match="unknown dataset kind 'nope'"):
        open_dataset("nope", tmp_path)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        open_dataset("ade20k", tmp_path, "training", bogus=1)
